"""One MinAtar game as a `dm_env.Environment`, over `minatar.Environment`.

MinAtar (Young & Tian 2019, arXiv 1903.03176) plays five Atari analogues on a 10x10 grid; a
state is one boolean channel per object kind (4 to 10 channels).  This wrapper gives it the
interface `AtariEnvironment` has, so the rest of scaled-ql treats both suites alike:

* the observation is uint8 [10, 10, 10]: the game's channels first, then zero channels up to
  the suite's maximum of 10 (Seaquest's count), so that every MinAtar game has one input shape
  and games mix in one batch (`types.MINATAR_OBSERVATION`); nothing is stacked;
* actions index the game's minimal action set (3 to 6 actions);
* sticky actions with probability `sticky_action_prob` (0.1, MinAtar's own default), drawn by
  MinAtar from the seeded generator that also drives the game;
* `difficulty=1` turns on MinAtar's difficulty ramping (Asterix, Seaquest, SpaceInvaders
  speed up over an episode) -- the variant online fine-tuning adapts to; 0 (default) is off;
* episodes end with discount 0 when the game ends, and are truncated with discount 1 after
  `max_episode_frames` steps (MinAtar has no frame skip: one frame is one step);
* rewards are the game's own (+1 per brick, treasure, enemy, crossing; Seaquest's surfacing
  bonus can be larger).
"""

import dm_env
import numpy as np
from dm_env import specs

from scaled_ql import types
from scaled_ql.environments import games
from scaled_ql.environments.base import GameEnvironment, check_common_arguments

DEFAULT_STICKY_ACTION_PROB = 0.1  # MinAtar's default (minatar.Environment).
DEFAULT_MAX_EPISODE_FRAMES = 10_000
_MAX_SEED = 2**32 - 1  # numpy RandomState seeds.
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)
_FIRST, _MID, _LAST = dm_env.StepType.FIRST, dm_env.StepType.MID, dm_env.StepType.LAST


def _minatar():
    """Imports minatar with its optional-plotting warning silenced (we never render)."""
    import logging

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import minatar
    finally:
        logger.setLevel(level)
    return minatar


class MinAtarEnvironment(GameEnvironment):
    """A MinAtar game as a dm_env environment with scaled-ql's conventions (module docstring).

    Timesteps: reward float32 (raw); discount 0.0 when the game ends, 1.0 otherwise (also on
    the truncation step).  Calling `step` after a LAST timestep starts a new episode.
    `reseed(seed)` makes this environment play exactly what a new one with that seed plays.
    """

    def __init__(
        self,
        game: str,
        *,
        mode: int | None = None,
        difficulty: int | None = None,
        sticky_action_prob: float = DEFAULT_STICKY_ACTION_PROB,
        max_episode_frames: int = DEFAULT_MAX_EPISODE_FRAMES,
        seed: int = 0,
    ):
        """Creates the environment.

        Args:
          game: "minatar/<Game>" (see `games.MINATAR_GAMES`).
          mode: only None or 0 (MinAtar games have one mode); accepted for a uniform interface.
          difficulty: None or 0 (no ramping), 1 (difficulty ramping; `GameInfo.difficulties`).
          sticky_action_prob: probability of repeating the previous action, in [0, 1].
          max_episode_frames: steps after which an episode is truncated (discount 1).
          seed: seeds MinAtar's generator (game randomness and sticky actions).

        Raises:
          ValueError: unknown game, an ALE game, invalid variant or bad argument, naming it.
        """
        self._info = self.validate_arguments(
            game, mode=mode, difficulty=difficulty, sticky_action_prob=sticky_action_prob,
            max_episode_frames=max_episode_frames, seed=seed)
        self._max_episode_frames = int(max_episode_frames)
        self._difficulty = int(difficulty or 0)
        self._env = _minatar().Environment(
            self._info.rom_id, sticky_action_prob=float(sticky_action_prob),
            difficulty_ramping=self._difficulty == 1)
        self._actions = tuple(self._env.minimal_action_set())
        self._channels = self._info.num_channels
        self._observation = np.zeros(types.MINATAR_OBSERVATION.shape, np.uint8)
        self._episode_frames = 0
        self._needs_reset = True
        self.reseed(seed)

    @staticmethod
    def validate_arguments(
        game: str,
        *,
        mode: int | None = None,
        difficulty: int | None = None,
        sticky_action_prob: float = DEFAULT_STICKY_ACTION_PROB,
        max_episode_frames: int = DEFAULT_MAX_EPISODE_FRAMES,
        seed: int = 0,
    ) -> games.GameInfo:
        """Checks constructor arguments without creating a game; returns the game's entry."""
        info = games.get_game(game)
        if info.suite != games.MINATAR_SUITE:
            raise ValueError(f"{info.name} is an ALE game, not a MinAtar one (MinAtar games are "
                             f"named {', '.join(games.MINATAR_GAMES)})")
        info.check_variant(mode, difficulty)
        check_common_arguments(sticky_action_prob, max_episode_frames, seed, _MAX_SEED)
        return info

    # --- dm_env.Environment -----------------------------------------------------------------

    def reset(self) -> dm_env.TimeStep:
        self._env.reset()
        self._env.last_action = 0  # MinAtar keeps it across episodes; episodes start alike.
        self._episode_frames = 0
        self._needs_reset = False
        return dm_env.TimeStep(_FIRST, None, None, self._observe())

    def step(self, action) -> dm_env.TimeStep:
        if self._needs_reset:
            return self.reset()
        index = self._action_index(action)
        reward, terminal = self._env.act(self._actions[index])
        self._episode_frames += 1
        observation = self._observe()
        reward = np.float32(reward)
        if terminal:
            self._needs_reset = True
            return dm_env.TimeStep(_LAST, reward, _ZERO, observation)
        if self._episode_frames >= self._max_episode_frames:
            self._needs_reset = True
            return dm_env.TimeStep(_LAST, reward, _ONE, observation)
        return dm_env.TimeStep(_MID, reward, _ONE, observation)

    def observation_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray(types.MINATAR_OBSERVATION.shape, np.uint8, 0, 1,
                                  name="objects")

    def close(self) -> None:
        self._env = None

    def reseed(self, seed: int) -> None:
        """Turns this environment into a new one with this `seed`: the next step or reset
        starts a new episode exactly as a fresh environment with `seed` would."""
        self.validate_arguments(self._info.name, seed=seed)
        self._env.seed(int(seed))
        self._env.last_action = 0
        self._episode_frames = 0
        self._needs_reset = True

    # --- Extras -------------------------------------------------------------------------------

    @property
    def game_over(self) -> bool:
        return bool(self._env.env.terminal)

    def render(self) -> np.ndarray:
        """The state as an RGB image uint8 [10, 10, 3] (one colour per channel, for videos)."""
        state = self._env.state()  # bool [10, 10, C]
        palette = _palette(state.shape[-1])  # [C + 1, 3]
        index = np.where(state.any(-1), np.argmax(state, -1) + 1, 0)
        return palette[index]

    # --- Internals ----------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        self._observation[..., : self._channels] = self._env.state()
        return self._observation.copy()


def _palette(channels: int) -> np.ndarray:
    """Black for empty cells, then evenly spaced hues (no plotting library needed)."""
    import colorsys

    colours = [(0, 0, 0)] + [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / channels, 0.8, 1.0))
        for i in range(channels)]
    return np.asarray(colours, np.uint8)
