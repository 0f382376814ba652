"""An online single-game C51 agent that learns while it plays: a logging behaviour policy.

This is how the DQN Replay Dataset was made, at small scale: a DQN-family agent learns one game
online from its own replay, and everything it does is logged, episode by episode, stamped with
the snapshot (`checkpoint_id`) acting at the time.  `OnlineC51Policy` plugs into the collector's
policy seam (`scaled_ql.datasets.collect`: `__call__`, `checkpoint_id`, `observe`), so

    scaled-ql collect --games Breakout --policy online_c51 --steps 40000 \
        --layout rlu_atari_checkpoints_ordered --out data/

writes `rlu_atari_checkpoints_ordered/Breakout_run_1` with `checkpoint_id` 0..9, one per tenth
of the agent's training (its step budget is the collector's `--steps`).  The same works for
MinAtar games (`--games minatar/Breakout`), with the suite's default learner
(`default_online_agent("minatar")`).  The learner is this
package's own update step (`make_update_fn`) with the CQL weight at 0: plain C51.

The replay keeps each frame once (Atari 7,056 bytes per step, MinAtar 1,000, plus 24 bytes of
action, reward, discount, position and episode end), stacks frames on sampling with zeros before an
episode's start, exactly
as the RLDS-to-transition pipeline does, and builds n-step transitions with the same semantics
(`reward` the discounted clipped n-step sum, `discount` the full bootstrap multiplier, 0 after
a terminal).  It holds the whole run (no eviction): the run's step budget bounds its memory.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from scaled_ql import types
from scaled_ql.agents.scaled_ql.config import NetworkConfig, ScaledQLConfig
from scaled_ql.agents.scaled_ql.learning import init_training_state, make_update_fn
from scaled_ql.agents.scaled_ql.losses import masked_argmax
from scaled_ql.networks import make_networks

__all__ = ["FrameReplay", "OnlineAgentConfig", "OnlineC51Policy", "epsilon_at"]


def default_online_agent(suite: str = "atari") -> ScaledQLConfig:
    """Plain C51 (CQL 0) with data-efficient settings, sized for the suite.

    Atari: the demo-sized Nature-CNN network.  Learning rate 1e-4 and 3-step returns follow the
    data-efficient Rainbow line of work (van Hasselt et al. 2019) rather than Dopamine's
    50M-frame C51, because the study's agents get tens of thousands of steps, not millions.

    MinAtar: MinAtar's own DQN network (Young & Tian 2019: one 3x3 convolution with 16
    channels, a 128-unit hidden layer) as the `minatar_dqn` torso, without the recipe's
    feature norm (a plain online agent, not the method under test), 3-step returns, Adam at
    2.5e-4 (MinAtar's DQN step size), target refresh every 1,000 SGD steps.
    """
    if suite == "minatar":
        return ScaledQLConfig(
            network=NetworkConfig(torso="minatar_dqn", spatial_reduction="flatten",
                                  feed_forward_size=128, feature_norm=False),
            cql_alpha=0.0, batch_size=32, learning_rate=2.5e-4, adam_eps=3.125e-4,
            target_update_period=1_000, n_step=3)
    return ScaledQLConfig(
        network=NetworkConfig(torso="nature", feed_forward_size=256, num_groups=8),
        cql_alpha=0.0, batch_size=32, learning_rate=1e-4, adam_eps=3.125e-4,
        target_update_period=500, n_step=3)


@dataclasses.dataclass(frozen=True)
class OnlineAgentConfig:
    """The online agent's schedule.

    Attributes:
      total_steps: environment steps of the whole run (the collector's budget); sets the
        checkpoint boundaries and the exploration schedule.
      agent: the learner (None: `default_online_agent(suite)`).  Its `cql_alpha` should be 0.
      suite: the game suite ("atari" or "minatar"): sets the default learner.
      num_checkpoints: snapshots the run is divided into [default 10: each tenth of training
        gets its own checkpoint_id, as each 1M steps of the 50M-step DQN Replay runs do].
      min_replay_steps: steps logged before learning starts [default 1,600].
      update_period: environment steps per SGD step [default 4, DQN/Dopamine].
      epsilon_start, epsilon_end: linear exploration schedule [1.0 -> 0.05].
      epsilon_decay_fraction: fraction of total_steps over which epsilon decays [default 0.1].
    """

    total_steps: int
    agent: ScaledQLConfig | None = None
    suite: str = "atari"
    num_checkpoints: int = 10
    min_replay_steps: int = 1_600
    update_period: int = 4
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_fraction: float = 0.1

    def __post_init__(self):
        if self.total_steps < 1:
            raise ValueError(f"OnlineAgentConfig.total_steps must be >= 1, got {self.total_steps}")
        if self.num_checkpoints < 1:
            raise ValueError("OnlineAgentConfig.num_checkpoints must be >= 1")
        if self.update_period < 1 or self.min_replay_steps < 1:
            raise ValueError("OnlineAgentConfig.update_period and min_replay_steps must be >= 1")
        for name in ("epsilon_start", "epsilon_end", "epsilon_decay_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"OnlineAgentConfig.{name} must be in [0, 1], got {value}")

    @property
    def learner(self) -> ScaledQLConfig:
        return self.agent if self.agent is not None else default_online_agent(self.suite)


def epsilon_at(config: OnlineAgentConfig, step: int) -> float:
    """Linear decay from epsilon_start to epsilon_end over the first decay fraction of steps."""
    decay_steps = config.epsilon_decay_fraction * config.total_steps
    if decay_steps <= 0:
        return config.epsilon_end
    fraction = min(1.0, step / decay_steps)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


class FrameReplay:
    """All of a run's steps, each frame stored once; samples n-step transitions uniformly.

    Entry i holds the newest frame of observation o_i, and, once the agent has acted on it,
    the action a_i, the reward r_i and the environment discount d_i that followed (d_i = 0: the
    episode terminated after a_i).  The last observation of an episode has no action.
    """

    def __init__(self, capacity: int, *,
                 observation: types.ObservationSpec = types.ATARI_OBSERVATION, n_step: int = 1,
                 discount: float = 0.99, reward_clip: float = 1.0):
        self.capacity = capacity
        self.observation = observation
        self.stack_size = observation.stack_size
        self.n_step = n_step
        self.gamma = discount
        self.reward_clip = reward_clip
        self.frames = np.zeros((capacity, *observation.frame_shape), np.uint8)  # [N, H, W, C]
        self.actions = np.full(capacity, -1, np.int32)  # -1: no action taken (yet / last obs)
        self.rewards = np.zeros(capacity, np.float32)
        self.discounts = np.ones(capacity, np.float32)
        self.position = np.zeros(capacity, np.int32)  # index of the step within its episode
        self.size = 0
        self._episode_end = np.full(capacity, np.iinfo(np.int64).max, np.int64)
        self._episode_start = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.frames, self.actions, self.rewards, self.discounts,
                                      self.position, self._episode_end))

    def start_episode(self, frame: np.ndarray) -> None:
        self._append(frame, position=0)
        self._episode_start = self.size - 1

    def add(self, action: int, reward: float, discount: float, next_frame: np.ndarray,
            last: bool) -> None:
        """Records a_t, r_t, d_t on the newest entry and appends o_{t+1}'s frame."""
        if self.size == 0 or self.actions[self.size - 1] != -1:
            raise RuntimeError("FrameReplay.add before start_episode")
        index = self.size - 1
        self.actions[index] = action
        self.rewards[index] = reward
        self.discounts[index] = discount
        self._append(next_frame, position=int(self.position[index]) + 1)
        if last:
            self._episode_end[self._episode_start:self.size] = self.size - 1

    def _append(self, frame: np.ndarray, position: int) -> None:
        """`frame`: one frame [H, W, C] (for single-channel suites [H, W] is accepted too)."""
        if self.size >= self.capacity:
            raise RuntimeError(f"FrameReplay is full ({self.capacity} steps)")
        self.frames[self.size] = np.reshape(frame, self.observation.frame_shape)
        self.position[self.size] = position
        self.size += 1

    def _valid(self, indices: np.ndarray) -> np.ndarray:
        """Acted-on steps whose n-step window is complete (or ends with their episode)."""
        has_action = self.actions[indices] >= 0
        window_written = indices + self.n_step < self.size
        episode_done = self._episode_end[indices] < self.size
        return has_action & (window_written | episode_done)

    def num_sampleable(self) -> int:
        return int(self._valid(np.arange(self.size)).sum())

    def stack(self, indices: np.ndarray) -> np.ndarray:
        """Observations [B, H, W, stack * C]: frames i-stack+1..i concatenated on channels,
        oldest first, zeros before the episode (`types.ObservationSpec`)."""
        if self.stack_size == 1:
            return self.frames[indices]  # [B, H, W, C]: the frame is the observation
        offsets = np.arange(-self.stack_size + 1, 1)  # Atari: [-3, -2, -1, 0]
        window = indices[:, None] + offsets  # [B, stack]
        inside = self.position[indices][:, None] + offsets >= 0
        frames = self.frames[np.where(inside, window, 0)]  # [B, stack, H, W, C]
        frames = np.where(inside[:, :, None, None, None], frames, 0).astype(np.uint8)
        frames = np.moveaxis(frames, 1, 3)  # [B, H, W, stack, C]
        return frames.reshape(*frames.shape[:3], -1)

    def transitions(self, indices: np.ndarray, game_id: int = 0) -> types.Transition:
        """n-step transitions starting at `indices` (each must be valid)."""
        indices = np.asarray(indices, np.int64)
        returns = np.zeros(len(indices), np.float32)
        bootstrap = np.ones(len(indices), np.float32)
        current = indices.copy()
        running = np.ones(len(indices), bool)  # still accumulating
        for k in range(self.n_step):
            reward = np.clip(self.rewards[current], -self.reward_clip, self.reward_clip)
            returns += np.where(running, bootstrap * reward, 0.0).astype(np.float32)
            bootstrap = np.where(running, bootstrap * self.gamma * self.discounts[current],
                                 bootstrap)
            nxt = np.minimum(current + 1, self.size - 1)  # finished rows may sit at the end
            # Stop after a terminal (bootstrap now 0) or where the next observation is the
            # episode's last (no action to continue with).
            stop = running & ((self.discounts[current] == 0) | (self.actions[nxt] < 0))
            current = np.where(running, nxt, current)
            running &= ~stop
        return types.Transition(
            observation=self.stack(indices),
            action=self.actions[indices].astype(np.int32),
            reward=returns,
            discount=bootstrap.astype(np.float32),
            next_observation=self.stack(current),
            game_id=np.full(len(indices), game_id, np.int32),
        )

    def sample(self, rng: np.random.Generator, batch_size: int, game_id: int = 0):
        chosen = np.empty(0, np.int64)
        while len(chosen) < batch_size:
            candidates = rng.integers(0, self.size, 2 * batch_size)
            chosen = np.concatenate([chosen, candidates[self._valid(candidates)]])
        return self.transitions(chosen[:batch_size], game_id)


class OnlineC51Policy:
    """The collector's behaviour policy that is also an online C51 learner (module docstring).

    Args:
      num_actions: the game's minimal action count.
      seed: seeds the network, exploration and replay sampling.
      total_steps: the run's environment steps (the collector's `--steps`).
      observation: the suite's ObservationSpec (the collector passes it); its name is the
        config's `suite` unless that is given.
      Other keyword arguments: fields of `OnlineAgentConfig`.
    """

    def __init__(self, num_actions: int, seed: int, *, total_steps: int,
                 observation: types.ObservationSpec | None = None, **kwargs):
        if observation is None:
            observation = types.OBSERVATION_SPECS[kwargs.get("suite", "atari")]
        kwargs.setdefault("suite", observation.name)
        if kwargs["suite"] != observation.name:
            raise ValueError(f"OnlineC51Policy: suite {kwargs['suite']!r} but the observation "
                             f"spec is {observation.name!r}'s")
        self.config = OnlineAgentConfig(total_steps=total_steps, **kwargs)
        self.observation = observation
        self._frame_channels = observation.frame_shape[-1]
        learner = self.config.learner
        self.networks = make_networks(learner.network, [num_actions], observation=observation)
        self._learner = learner
        self._state = init_training_state(self.networks, learner, jax.random.PRNGKey(seed))
        self._update = make_update_fn(self.networks, learner)
        self._rng = np.random.default_rng(seed)
        self.replay = FrameReplay(total_steps + total_steps // 2 + 16, observation=observation,
                                  n_step=learner.n_step, discount=learner.discount,
                                  reward_clip=learner.reward_clip)
        self.steps = 0
        self.updates = 0
        self.last_metrics: dict[str, float] = {}
        self._episode_open = False
        self._can_sample = False
        networks = self.networks

        @jax.jit
        def greedy(params, observation):
            output = networks.apply(params, observation[None], jnp.zeros((1,), jnp.int32),
                                    learner.compute_dtype)
            return masked_argmax(output.q_values, output.action_mask)[0]

        self._greedy = greedy
        self.num_actions = num_actions

    @property
    def checkpoint_id(self) -> int:
        """Which tenth (by default) of training the agent is in."""
        tenth = self.steps * self.config.num_checkpoints // self.config.total_steps
        return min(self.config.num_checkpoints - 1, tenth)

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.config, self.steps)

    @property
    def params(self):
        return self._state.params

    def __call__(self, observation: np.ndarray) -> int:
        if not self._episode_open:
            self.replay.start_episode(observation[..., -self._frame_channels:])
            self._episode_open = True
        if self._rng.random() < self.epsilon:
            return int(self._rng.integers(self.num_actions))
        return int(self._greedy(self._state.params, observation))

    def observe(self, action: int, timestep) -> None:
        last = bool(timestep.last())
        self.replay.add(action, float(timestep.reward), float(timestep.discount),
                        timestep.observation[..., -self._frame_channels:], last)
        self._episode_open = not last
        self.steps += 1
        if self.steps < self.config.min_replay_steps or self.steps % self.config.update_period:
            return
        if not self._can_sample:  # checked until true: it stays true as the replay grows
            self._can_sample = self.replay.num_sampleable() >= self._learner.batch_size
        if self._can_sample:
            self._learn()

    def _learn(self) -> None:
        steps = self._learner.num_sgd_steps_per_step
        batches = [self.replay.sample(self._rng, self._learner.batch_size) for _ in range(steps)]
        batch = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *batches)
        self._state, metrics = self._update(self._state, batch)
        self.updates += steps
        if self.updates % 500 < steps:
            self.last_metrics = {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}
            if not math.isfinite(self.last_metrics.get("loss", 0.0)):
                raise FloatingPointError(f"online C51 loss is not finite: {self.last_metrics}")
