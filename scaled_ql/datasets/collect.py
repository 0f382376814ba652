"""Play real games (ALE or MinAtar) with a policy and log every episode as an `rlu_atari`-schema
dataset.

One game/run is one process (`collect_run`); `collect_games` runs several in parallel processes
(spawned, so each imports ALE/MinAtar and TF afresh) with one overall progress bar.  The game
decides the suite: the environment comes from `suites.make_environment`, the suite's defaults
fill in sticky actions and the episode cap, and each RLDS step stores the newest frame of the
observation (`types.ObservationSpec.frame_shape`: Atari [84, 84, 1], MinAtar [10, 10, 10]).

The policy seam.  A policy is any object with
    __call__(observation: uint8 ObservationSpec.shape) -> int   (index into the minimal action
                                                                 set; Atari [84, 84, 4])
    checkpoint_id: int                                 (the policy snapshot acting now)
and, optionally, `observe(action, timestep)`, called after every environment step, and
`attach(env)`, called once with the environment before play (for policies that read it).  Each
episode is stamped with the `checkpoint_id` the policy had when the episode began, as the DQN
Replay Dataset stamps each episode with the 1M-step snapshot that played it.  `observe` is
how an online learning agent sees the stream it is logged on (its whole replay) and bumps
`checkpoint_id` as training moves on.  Policies are built inside the worker process from a
name in `POLICY_FACTORIES`: "random", "checkpoint" (epsilon-greedy with a saved network) and
"online_c51" (an online C51 agent learning from its own replay while it is logged, the way
the DQN Replay Dataset was made); `register_policy` adds more.  A factory is called as
`factory(num_actions, seed, **policy_kwargs)`, plus `observation=<the game's ObservationSpec>`
when it has a parameter named `observation`.
"""

import contextlib
import dataclasses
import importlib
import inspect
import multiprocessing
import os
import pathlib
import queue
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from scaled_ql import types
from scaled_ql.datasets import rlds


class Policy(Protocol):
    """What the collector needs from a behaviour policy (see the module docstring)."""

    checkpoint_id: int

    def __call__(self, observation: np.ndarray) -> int: ...


class UniformRandomPolicy:
    """Uniformly random actions from the minimal action set; `checkpoint_id` 0."""

    def __init__(self, num_actions: int, seed: int, checkpoint_id: int = 0):
        self.num_actions = num_actions
        self.checkpoint_id = checkpoint_id
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: np.ndarray) -> int:
        del observation
        return int(self._rng.integers(self.num_actions))


# name -> factory(num_actions, seed, **kwargs) -> Policy, or "module:attribute" naming one.
# Collection workers are spawned processes: a factory registered at run time in the parent does
# not exist there, but an import string resolves in any process.  Strings also keep this layer
# free of imports from the agent layer above it.
PolicyFactory = Callable[..., Policy]
POLICY_FACTORIES: dict[str, PolicyFactory | str] = {
    "random": UniformRandomPolicy,
    # epsilon-greedy with a saved Q-network: policy_kwargs checkpoint=RUN_DIR, game=..., epsilon=
    "checkpoint": "scaled_ql.agents.scaled_ql.actor:CheckpointPolicy",
    # an online C51 agent learning while it is logged: policy_kwargs total_steps=<budget>
    "online_c51": "scaled_ql.agents.scaled_ql.online:OnlineC51Policy",
    # a scripted ALE player reading the game's RAM (Breakout): policy_kwargs epsilon=
    "scripted_ram": "scaled_ql.agents.scripted:ScriptedRamPolicy",
}


def register_policy(name: str, factory: PolicyFactory | str) -> None:
    """Makes `factory(num_actions, seed, **policy_kwargs)` available as `--policy name`.

    Pass a "module:attribute" string for policies that collection worker processes must find.
    """
    if name in POLICY_FACTORIES:
        raise ValueError(f"policy {name!r} is already registered")
    POLICY_FACTORIES[name] = factory


def resolve_policy_factory(name: str) -> PolicyFactory:
    """The factory registered as `name` (importing it if registered as a string)."""
    factory = POLICY_FACTORIES[name]
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """What one collection process plays and writes.

    Attributes:
      game: a game of any suite ("Pong", "minatar/Breakout"); stored as its catalogue name.
      run: run number of the dataset (`{Game}_run_{run}`).
      num_steps: environment steps (actions) to log; the last episode is truncated at the budget.
        Exactly one of num_steps / num_episodes is set.
      num_episodes: complete episodes to log.
      policy: a name in `POLICY_FACTORIES`.
      policy_kwargs: extra keyword arguments of the policy factory (plain data: pickled).
      seed: seeds the environment and the policy (derived per game/run by the CLI).
      sticky_action_prob: sticky-action probability; None (default) is the suite's
        (`Suite.default_sticky_action_prob`: ALE 0.25 as in the DQN Replay Dataset, MinAtar 0.1).
      max_episode_frames: emulator frames before an episode is truncated; None (default) is
        the suite's (ALE 108,000; MinAtar 10,000 steps).
      layout: `rlu_atari` (one train split) or `rlu_atari_checkpoints_ordered`, stored under the
        game suite's dataset name (`rlds.resolve_layout`: `rlu_minatar...` for MinAtar).
      max_episodes_per_shard: episodes per TFRecord shard.
      overwrite: replace an existing dataset of this game/run.
    """

    game: str
    run: int = 1
    num_steps: int | None = None
    num_episodes: int | None = None
    policy: str = "random"
    policy_kwargs: tuple[tuple[str, object], ...] = ()
    seed: int = 0
    sticky_action_prob: float | None = None
    max_episode_frames: int | None = None
    layout: str = rlds.RLU_ATARI
    max_episodes_per_shard: int = 100
    overwrite: bool = False

    def __post_init__(self):
        from scaled_ql.environments.games import get_game
        from scaled_ql.environments.suites import suite_of

        suite = suite_of(self.game)  # ValueError on unknown names, before ALE sees them
        rlds.resolve_layout(self.layout, self.game)  # ValueError: a layout of another suite
        # Resolved values: what the dataset's name and provenance record.
        object.__setattr__(self, "game", get_game(self.game).name)
        if self.sticky_action_prob is None:
            object.__setattr__(self, "sticky_action_prob", suite.default_sticky_action_prob)
        if self.max_episode_frames is None:
            object.__setattr__(self, "max_episode_frames", suite.default_max_episode_frames)
        if (self.num_steps is None) == (self.num_episodes is None):
            raise ValueError("set exactly one of num_steps and num_episodes")
        budget = self.num_steps if self.num_steps is not None else self.num_episodes
        if budget < 1:
            raise ValueError(f"the step/episode budget must be >= 1, got {budget}")
        if self.policy not in POLICY_FACTORIES:
            raise ValueError(f"unknown policy {self.policy!r}; known: {sorted(POLICY_FACTORIES)}")
        if self.run < 1:
            raise ValueError(f"run must be >= 1, got {self.run}")


def _play_episode(
    env, policy, budget_left: int | None, on_step, observation: types.ObservationSpec
) -> tuple[rlds.EpisodeArrays, int]:
    """Plays one episode (or until the step budget ends it); returns it and its action count.

    Each step stores the newest frame of the observation: its last `frame_shape[-1]` channels.
    """
    channels = observation.frame_shape[-1]
    checkpoint_id = int(policy.checkpoint_id)
    timestep = env.reset()
    frames = [timestep.observation[..., -channels:]]  # [H, W, C], the newest frame
    actions, rewards, discounts = [], [], []
    observe = getattr(policy, "observe", None)
    while not timestep.last() and (budget_left is None or len(actions) < budget_left):
        action = int(policy(timestep.observation))
        timestep = env.step(action)
        if observe is not None:
            observe(action, timestep)
        frames.append(timestep.observation[..., -channels:])
        actions.append(action)
        rewards.append(timestep.reward)
        discounts.append(timestep.discount)
        on_step()
    is_terminal = bool(timestep.last() and timestep.discount == 0.0)
    # The last step holds the final observation; its action/reward/discount are placeholders.
    actions.append(0)
    rewards.append(0.0)
    discounts.append(0.0 if is_terminal else 1.0)
    episode = rlds.EpisodeArrays(
        frames=np.stack(frames),  # [T, H, W, C]
        actions=np.asarray(actions, np.int64),
        rewards=np.asarray(rewards, np.float32),
        discounts=np.asarray(discounts, np.float32),
        is_terminal=is_terminal,
        episode_id=0,
        checkpoint_id=checkpoint_id,
        observation=observation,
    )
    return episode, len(actions) - 1


def make_policy(name: str, num_actions: int, seed: int, observation: types.ObservationSpec,
                **policy_kwargs) -> Policy:
    """The policy registered as `name`; its factory gets `observation=` if it takes one."""
    factory = resolve_policy_factory(name)
    try:
        takes_observation = "observation" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no inspectable signature (some builtins)
        takes_observation = False
    if takes_observation and "observation" not in policy_kwargs:
        policy_kwargs["observation"] = observation
    return factory(num_actions, seed, **policy_kwargs)


def _plain(value):
    """A policy argument as JSON-ready data for the provenance file (configs as dicts)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def collect_run(
    config: CollectConfig,
    data_dir: str | os.PathLike,
    *,
    on_step: Callable[[], None] = lambda: None,
) -> pathlib.Path:
    """Plays `config.game` and writes the dataset; returns the dataset folder."""
    from scaled_ql.environments.suites import suite_of

    suite = suite_of(config.game)
    observation = suite.observation
    env = suite.make_environment(
        config.game,
        sticky_action_prob=config.sticky_action_prob,
        max_episode_frames=config.max_episode_frames,
        seed=config.seed,
    )
    policy = make_policy(
        config.policy, env.num_actions, config.seed + 1, observation, **dict(config.policy_kwargs)
    )
    if hasattr(policy, "attach"):  # a policy that reads the environment itself (its RAM)
        policy.attach(env)
    provenance = {
        "collected_by": "scaled-ql collect",
        "policy": config.policy,
        "policy_kwargs": {k: _plain(v) for k, v in config.policy_kwargs},
        "seed": config.seed,
        "sticky_action_prob": config.sticky_action_prob,
        "max_episode_frames": config.max_episode_frames,
    }
    writer = rlds.RluAtariWriter(
        data_dir,
        config.game,
        config.run,
        layout=config.layout,
        max_episodes_per_shard=config.max_episodes_per_shard,
        provenance=provenance,
        overwrite=config.overwrite,
    )
    steps = 0
    try:
        with writer:
            while True:
                if config.num_episodes is not None and writer.num_episodes >= config.num_episodes:
                    break
                budget_left = None if config.num_steps is None else config.num_steps - steps
                if budget_left is not None and budget_left <= 0:
                    break
                episode, num_actions = _play_episode(
                    env, policy, budget_left, on_step, observation
                )
                episode = dataclasses.replace(episode, episode_id=writer.num_episodes)
                writer.add_episode(episode)
                steps += num_actions
    finally:
        env.close()
    return writer.final_dir


def _worker(config: CollectConfig, data_dir: str, progress) -> str:
    from scaled_ql._quiet import quiet_third_party

    quiet_third_party()  # a spawned process starts with the stack's import noise back on
    pending = 0

    def on_step():
        nonlocal pending
        pending += 1
        if pending >= 100:
            progress.put(pending)
            pending = 0

    path = collect_run(config, data_dir, on_step=on_step)
    progress.put(pending)
    return str(path)


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def collect_games(
    configs: Sequence[CollectConfig],
    data_dir: str | os.PathLike,
    *,
    num_workers: int | None = None,
    show_progress: bool = True,
) -> list[pathlib.Path]:
    """Runs `collect_run` for every config in parallel processes; returns the dataset folders."""
    from tqdm import tqdm

    if not configs:
        raise ValueError("nothing to collect")
    keys = [(c.game, c.run) for c in configs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"each game/run may appear once: {keys}")
    num_workers = num_workers or min(len(configs), os.cpu_count() or 1)
    total_steps = None
    if all(c.num_steps is not None for c in configs):
        total_steps = sum(c.num_steps for c in configs)
    context = multiprocessing.get_context("spawn")  # ALE and TF are not fork-safe
    manager = context.Manager()
    progress = manager.Queue()
    bar = tqdm(total=total_steps, unit="step", desc="collect", disable=not show_progress)
    try:
        # Workers ignore SIGINT (Ctrl-C reaches the whole process group): this process stops
        # them (`Pool.terminate`) and removes their unfinished datasets below.
        with context.Pool(num_workers, initializer=_ignore_sigint) as pool:
            results = [
                pool.apply_async(_worker, (c, os.fspath(data_dir), progress)) for c in configs
            ]
            while not all(r.ready() for r in results):
                try:
                    bar.update(progress.get(timeout=0.2))
                except queue.Empty:
                    pass
            paths = [pathlib.Path(r.get()) for r in results]  # re-raises a worker's error
        while not progress.empty():
            bar.update(progress.get())
    except BaseException:  # an error, Ctrl-C, SIGTERM: the pool's workers are gone now
        for c in configs:
            with contextlib.suppress(ValueError):  # a config the error was about
                rlds.remove_abandoned(rlds.dataset_dir(data_dir, c.game, c.run, c.layout))
        raise
    finally:
        bar.close()
        manager.shutdown()
    return paths
