"""Evaluation of a network on its real games (ALE or MinAtar): the evaluator of the runners
and `scaled-ql evaluate`.

The protocol defaults are the games' suite's (`environments.suites`): for Atari, PAPER.md's
sticky actions p=0.25 and episodes capped at 108,000 frames; for MinAtar, its own sticky
actions p=0.1 and 10,000 steps (a MinAtar frame is a step).  Epsilon 0.001.  All of them
configurable.
"""

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.actor import EVAL_EPSILON, make_multi_game_policy
# Re-exported: a run's checkpoint ready to act (it lives with the checkpointer).
from scaled_ql.agents.scaled_ql.checkpointing import (  # noqa: F401
    LoadedCheckpoint,
    load_checkpoint,
)
from scaled_ql.environments import suites
from scaled_ql.networks import ScaledQLNetworks


def episode_settings(games: Sequence[str], sticky_action_prob: float | None = None,
                     max_episode_frames: int | None = None) -> tuple[float, int]:
    """(sticky-action probability, episode cap) for `games`: the values given, or their
    suite's defaults where None (Atari 0.25 and 108,000 frames; MinAtar 0.1 and 10,000 steps)."""
    suite = suites.suite_of(games)
    return (suite.default_sticky_action_prob if sticky_action_prob is None
            else float(sticky_action_prob),
            suite.default_max_episode_frames if max_episode_frames is None
            else int(max_episode_frames))


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
    """How evaluation episodes are played.

    Attributes:
      episodes: episodes per game.
      epsilon: probability of a uniformly random action [0.001, Dopamine evaluation].
      sticky_action_prob: repeat-action probability [None: the suite's; Atari 0.25, as the
        DQN Replay data; MinAtar 0.1].
      max_episode_frames: episode cap in frames [None: the suite's; Atari 108,000 = 30
        minutes of play; MinAtar 10,000 steps].
      workers: worker processes (None: one per core; 0: in this process).
      seed: base seed of the episodes.
      progress: show a progress bar.
      mode, difficulty: the game variant played (None: the default game; ALE modes and
        difficulties, MinAtar difficulty ramping `difficulty=1`).
    """

    episodes: int = 10
    epsilon: float = EVAL_EPSILON
    sticky_action_prob: float | None = None
    max_episode_frames: int | None = None
    workers: int | None = None
    seed: int = 0
    progress: bool = True
    mode: int | None = None
    difficulty: int | None = None

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f"EvalProtocol.episodes must be >= 1, got {self.episodes}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"EvalProtocol.epsilon must be in [0, 1], got {self.epsilon}")


def padded_batch_size(size: int) -> int:
    """The batch the evaluation policy is compiled for when `size` episodes are running: the
    next power of two.  A group's running episodes drop one by one at the end of every round, so
    without padding each new count would compile the network again (16 slots: up to 16
    compilations, a third of a MinAtar round's time); with it, at most log2(slots) + 1."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return 1 << (size - 1).bit_length()


def make_evaluator(networks: ScaledQLNetworks, head_games: Sequence[str],
                   protocol: EvalProtocol, compute_dtype: str = "float32"
                   ) -> Callable[..., list]:
    """`evaluate(params, step, games=head_games, poll=None) -> [EpisodeResult]` on the real
    games.

    `head_games[g]` is the game of head g; `games` may be any subset of them.  Unset episode
    settings of `protocol` take the suite's defaults.  `poll()`, when given, is called before
    every policy call (every environment step of a group) and ends the evaluation by raising:
    how a command stops an evaluation at a signal (`run_dir.StopRequested.raise_if_stopped`)
    without raising from the signal handler, wherever the signal landed.
    """
    from scaled_ql.environments.vector import evaluate_policy

    multi_game_policy = make_multi_game_policy(networks, protocol.epsilon, compute_dtype)

    @jax.jit
    def policy(params, base_key, call, observations, heads):
        return multi_game_policy(params, jax.random.fold_in(base_key, call), observations, heads)

    head_of = {game: g for g, game in enumerate(head_games)}
    sticky_action_prob, max_episode_frames = episode_settings(
        head_games, protocol.sticky_action_prob, protocol.max_episode_frames)

    def evaluate(params, step: int, games: Sequence[str] | None = None,
                 poll: Callable[[], None] | None = None) -> list:
        games = tuple(head_games if games is None else games)
        unknown = [g for g in games if g not in head_of]
        if unknown:
            raise ValueError(
                f"no head for {unknown}; this network has heads for {list(head_games)}")
        heads = np.asarray([head_of[g] for g in games], np.int32)
        base_key = jax.random.PRNGKey(protocol.seed + 7919 * step)
        calls = itertools.count()

        def act(observations: np.ndarray, game_ids: np.ndarray) -> np.ndarray:
            if poll is not None:
                poll()
            size = len(game_ids)
            padded = padded_batch_size(size)
            if padded != size:  # Extra rows repeat row 0; the network treats rows apart.
                rows = np.zeros(padded, np.intp)
                rows[:size] = np.arange(size)
                observations, game_ids = observations[rows], game_ids[rows]
            return np.asarray(policy(params, base_key, next(calls), observations,
                                     heads[game_ids]))[:size]

        return evaluate_policy(
            act, games, protocol.episodes, seed=protocol.seed + step,
            sticky_action_prob=sticky_action_prob,
            max_episode_frames=max_episode_frames, num_workers=protocol.workers,
            mode=protocol.mode, difficulty=protocol.difficulty, progress=protocol.progress)

    return evaluate
