"""What every suite's environment shares: the action check, the specs of actions, rewards and
discounts, the argument checks, and the game/episode properties.

A suite's environment (`AtariEnvironment`, `MinAtarEnvironment`) subclasses `GameEnvironment`
and sets, in its constructor, `self._info` (the game's `games.GameInfo`), `self._actions` (the
minimal action set, indexed by the agent's actions), `self._max_episode_frames` and
`self._episode_frames`; it implements `reset`, `step`, `observation_spec`, `close`, `reseed`
and `game_over`.
"""

import operator

import dm_env
import numpy as np
from dm_env import specs

from scaled_ql.environments import games


def check_common_arguments(sticky_action_prob: float, max_episode_frames: int, seed: int,
                           max_seed: int) -> None:
    """The constructor arguments every suite takes; ValueError naming the one at fault."""
    if not 0.0 <= sticky_action_prob <= 1.0:
        raise ValueError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
    if max_episode_frames < 1:
        raise ValueError(f"max_episode_frames must be >= 1, got {max_episode_frames}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= max_seed:
        raise ValueError(f"seed must be an int in [0, {max_seed}], got {seed!r}")


class GameEnvironment(dm_env.Environment):
    """The shared part of a suite's game environment (module docstring)."""

    _info: games.GameInfo
    _actions: tuple
    _max_episode_frames: int
    _episode_frames: int

    def _action_index(self, action) -> int:
        """`action` as an index into the minimal action set; ValueError naming the game."""
        try:
            index = operator.index(action)  # ints, numpy ints and 0-d integer arrays.
        except TypeError:
            index = -1
        if not 0 <= index < len(self._actions):
            raise ValueError(
                f"{self._info.name}: action must be an int in [0, {len(self._actions)}), "
                f"got {action!r}")
        return index

    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(len(self._actions), dtype=np.int32, name="action")

    def reward_spec(self) -> specs.Array:
        return specs.Array((), np.float32, name="reward")

    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount")

    @property
    def game(self) -> games.GameInfo:
        """The catalogue entry of this environment's game."""
        return self._info

    @property
    def num_actions(self) -> int:
        """The size of the game's minimal action set."""
        return len(self._actions)

    @property
    def max_episode_frames(self) -> int:
        """The frame cap after which an episode is truncated (discount 1)."""
        return self._max_episode_frames

    @property
    def episode_frames(self) -> int:
        """Frames played since the game was last reset."""
        return self._episode_frames
