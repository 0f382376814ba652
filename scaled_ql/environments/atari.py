"""One Atari game as a `dm_env.Environment`, driving `ale_py.ALEInterface` directly.

Preprocessing is the one the DQN Replay Dataset (and so `rlu_atari`) was recorded with
(Dopamine's Atari setup), so a policy trained on that data sees the same pixels here:

* each agent step repeats the action for `frame_skip` (4) emulator frames, summing rewards;
* the step's frame is the pixel-wise max of the grayscale screens of its last two emulator
  frames (removes Atari sprite flicker), resized to 84x84 with `cv2.INTER_AREA`;
* the observation is the last 4 such frames, uint8 [84, 84, 4], oldest first, newest last
  (`obs[..., -1]` is what an RLDS step stores); at the start of an episode the missing older
  frames are zeros, as in Dopamine's and Acme's frame stacking;
* sticky actions: with probability `sticky_action_prob` (0.25) ALE repeats the previous
  emulator action instead of the new one, on every emulator frame (Machado et al., 2018);
* episodes end with discount 0 on game over, and are truncated with discount 1 after
  `max_episode_frames` (108,000, i.e. 30 minutes) emulator frames;
* actions index the game's minimal action set (what `rlu_atari` actions index) unless
  `full_action_space=True` (all 18).

Game names are checked against the catalogue before ALE sees them: ALE ends the whole
process on a ROM it cannot load instead of raising.
"""

import operator

import cv2
import dm_env
import numpy as np
from dm_env import specs

from scaled_ql.environments import games

FRAME_SIZE = 84
STACK_SIZE = 4
DEFAULT_MAX_EPISODE_FRAMES = 108_000  # 30 minutes at 60 frames per second.
_MAX_SEED = 2**31 - 1  # ALE's `random_seed` is a signed 32-bit int.


def _quiet_ale():
    """Imports ale_py with its per-instance banner silenced (errors still print)."""
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    return ale_py


class AtariEnvironment(dm_env.Environment):
    """An ALE Atari game with DQN-style preprocessing as a dm_env environment.

    Timesteps: reward is the raw (unclipped) game score change of the step, float32; discount
    is 0.0 on game over (or life loss with `terminal_on_life_loss`) and 1.0 otherwise,
    including the truncation step at the frame cap.  Calling `step` after a LAST timestep
    starts a new episode, as dm_env prescribes.

    With `terminal_on_life_loss=True` (for training actors), losing a life ends the episode
    with discount 0 but not the game: the next episode continues the same game from that
    point, and only a game over (or the frame cap) resets the emulator.  `game_over` tells
    the two apart.  Evaluation must keep the default False.

    With `render_rgb=True` the observation is a dict {"pixels": uint8 [84, 84, 4],
    "rgb": uint8 [210, 160, 3]} where "rgb" is the raw screen of the step's last frame (for
    videos).  `render()` returns that raw screen in either setting.
    """

    def __init__(
        self,
        game: str,
        *,
        mode: int | None = None,
        difficulty: int | None = None,
        sticky_action_prob: float = 0.25,
        max_episode_frames: int = DEFAULT_MAX_EPISODE_FRAMES,
        frame_skip: int = 4,
        terminal_on_life_loss: bool = False,
        full_action_space: bool = False,
        seed: int = 0,
        render_rgb: bool = False,
    ):
        """Creates the environment; loads the ROM.

        Args:
          game: `rlu_atari` name ("MsPacman") or ROM id ("ms_pacman"); see `games.ALL_GAMES`.
          mode: ALE game mode (`GameInfo.modes`); None keeps the ROM's default.
          difficulty: ALE difficulty (`GameInfo.difficulties`); None keeps the default (0).
          sticky_action_prob: ALE `repeat_action_probability`, in [0, 1].
          max_episode_frames: emulator frames after which the episode is truncated.
          frame_skip: emulator frames per agent step (>= 2: the max needs two frames).
          terminal_on_life_loss: end the episode (discount 0) when a life is lost.
          full_action_space: use all 18 actions instead of the game's minimal set.
          seed: seeds ALE's random generator, which draws the sticky actions (with
            `sticky_action_prob=0` ALE is deterministic and the seed has no effect).
          render_rgb: add the raw RGB screen to each observation (see class docstring).

        Raises:
          ValueError: unknown game, invalid mode/difficulty for the game, or a bad argument.
        """
        self._info = self.validate_arguments(
            game,
            mode=mode,
            difficulty=difficulty,
            sticky_action_prob=sticky_action_prob,
            max_episode_frames=max_episode_frames,
            frame_skip=frame_skip,
            seed=seed,
        )
        self._max_episode_frames = int(max_episode_frames)
        self._frame_skip = int(frame_skip)
        self._terminal_on_life_loss = terminal_on_life_loss
        self._render_rgb = render_rgb

        ale_py = _quiet_ale()
        self._ale = ale = ale_py.ALEInterface()
        ale.setInt("random_seed", int(seed))
        ale.setFloat("repeat_action_probability", float(sticky_action_prob))
        ale.setInt("frame_skip", 1)  # We skip frames ourselves, to max over the last two.
        ale.setInt("max_num_frames_per_episode", 0)  # We apply the cap ourselves (truncation).
        ale.setBool("color_averaging", False)
        ale.loadROM(ale_py.roms.get_rom_path(self._info.rom_id))
        if mode is not None:
            ale.setMode(int(mode))
        if difficulty is not None:
            ale.setDifficulty(int(difficulty))
        action_set = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
        self._actions = tuple(action_set)

        height, width = ale.getScreenDims()
        # Grayscale screens of the two most recent emulator frames; [0] older, [1] newer.
        self._screens = np.zeros((2, height, width), dtype=np.uint8)
        self._maxed = np.zeros((height, width), dtype=np.uint8)
        self._stack = np.zeros((FRAME_SIZE, FRAME_SIZE, STACK_SIZE), dtype=np.uint8)
        # The same memory seen as one little-endian uint32 per pixel (byte k = frame k), so
        # dropping the oldest frame is one shift instead of a strided copy (~15x faster).
        self._stack_u32 = self._stack.view("<u4")  # [84, 84, 1]
        self._rgb = np.zeros((height, width, 3), dtype=np.uint8)
        self._episode_frames = 0
        self._lives = 0
        self._needs_reset = True
        self._continue_game = False  # True after a life-loss termination of a running game.

    @staticmethod
    def validate_arguments(
        game: str = "Pong",
        *,
        mode: int | None = None,
        difficulty: int | None = None,
        sticky_action_prob: float = 0.25,
        max_episode_frames: int = DEFAULT_MAX_EPISODE_FRAMES,
        frame_skip: int = 4,
        seed: int = 0,
    ) -> games.GameInfo:
        """Checks constructor arguments without touching ALE; returns the game's entry.

        Raises:
          ValueError: naming the game and the argument at fault.
        """
        info = games.get_game(game)
        info.check_variant(mode, difficulty)
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
        if max_episode_frames < 1:
            raise ValueError(f"max_episode_frames must be >= 1, got {max_episode_frames}")
        if frame_skip < 2:
            raise ValueError(f"frame_skip must be >= 2 (max over two frames), got {frame_skip}")
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _MAX_SEED:
            raise ValueError(f"seed must be an int in [0, {_MAX_SEED}], got {seed!r}")
        return info

    # --- dm_env.Environment -----------------------------------------------------------------

    def reset(self) -> dm_env.TimeStep:
        """Starts an episode: a new game, or the same game after a life loss (see class)."""
        if not self._continue_game:
            self._ale.reset_game()
            self._episode_frames = 0
        self._lives = self._ale.lives()
        self._needs_reset = False
        self._continue_game = False
        self._stack[:] = 0
        self._grab_screen(1)
        self._screens[0] = self._screens[1]
        self._push_frame()
        return dm_env.restart(self._observation())

    def step(self, action) -> dm_env.TimeStep:
        """Plays `action` (index into the action set) for `frame_skip` emulator frames."""
        if self._needs_reset:
            return self.reset()
        ale, ale_action = self._ale, self._actions[self._check_action(action)]
        reward = 0.0
        game_over = False
        frames_left = self._max_episode_frames - self._episode_frames
        num_frames = min(self._frame_skip, frames_left)
        for frame in range(num_frames):
            reward += ale.act(ale_action)
            game_over = ale.game_over(with_truncation=False)
            if game_over:
                num_frames = frame + 1
                break
            # Keep the screens of the step's last two frames for the max.
            if frame >= num_frames - 2:
                self._grab_screen(frame - num_frames + 2)
        self._episode_frames += num_frames
        if game_over or num_frames < 2:
            # Ended early: the final screen alone (no max) is the last frame of the episode.
            self._grab_screen(1)
            self._screens[0] = self._screens[1]
        self._push_frame()
        observation = self._observation()
        reward = np.float32(reward)

        lives = ale.lives()
        life_lost = lives < self._lives
        self._lives = lives
        truncated = self._episode_frames >= self._max_episode_frames
        if game_over or (self._terminal_on_life_loss and life_lost):
            self._needs_reset = True
            self._continue_game = not game_over and not truncated
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(0.0), observation)
        if truncated:
            self._needs_reset = True
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(1.0), observation)
        return dm_env.TimeStep(dm_env.StepType.MID, reward, np.float32(1.0), observation)

    def observation_spec(self):
        pixels = specs.BoundedArray(
            (FRAME_SIZE, FRAME_SIZE, STACK_SIZE), np.uint8, 0, 255, name="pixels"
        )
        if not self._render_rgb:
            return pixels
        rgb = specs.BoundedArray(self._rgb.shape, np.uint8, 0, 255, name="rgb")
        return {"pixels": pixels, "rgb": rgb}

    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(len(self._actions), dtype=np.int32, name="action")

    def reward_spec(self) -> specs.Array:
        return specs.Array((), np.float32, name="reward")

    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount")

    def close(self) -> None:
        self._ale = None

    # --- Extras -------------------------------------------------------------------------------

    @property
    def game(self) -> games.GameInfo:
        """The catalogue entry of this environment's game."""
        return self._info

    @property
    def num_actions(self) -> int:
        return len(self._actions)

    @property
    def ale_actions(self) -> tuple:
        """The ALE actions that action indices 0..num_actions-1 stand for."""
        return self._actions

    @property
    def game_over(self) -> bool:
        """Whether the emulated game itself is over (not just a life lost or truncated)."""
        return self._ale.game_over(with_truncation=False)

    @property
    def max_episode_frames(self) -> int:
        """The emulator-frame cap after which an episode is truncated (discount 1)."""
        return self._max_episode_frames

    @property
    def episode_frames(self) -> int:
        """Emulator frames played since the game was last reset."""
        return self._episode_frames

    @property
    def ale(self):
        """The underlying `ale_py.ALEInterface` (for tests and tools; do not step it)."""
        return self._ale

    def render(self) -> np.ndarray:
        """The raw RGB screen of the latest emulator frame, uint8 [210, 160, 3]."""
        return self._ale.getScreenRGB()

    # --- Internals ----------------------------------------------------------------------------

    def _check_action(self, action) -> int:
        try:
            index = operator.index(action)  # ints, numpy ints and 0-d integer arrays.
        except TypeError:
            index = None
        if index is None or not 0 <= index < len(self._actions):
            raise ValueError(
                f"{self._info.name}: action must be an int in [0, {len(self._actions)}), "
                f"got {action!r}"
            )
        return index

    def _grab_screen(self, index: int) -> None:
        self._ale.getScreenGrayscale(self._screens[index])

    def _push_frame(self) -> None:
        np.maximum(self._screens[0], self._screens[1], out=self._maxed)
        frame = cv2.resize(self._maxed, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)
        np.right_shift(self._stack_u32, 8, out=self._stack_u32)  # Frames 1..3 -> 0..2.
        self._stack[..., -1] = frame  # [84, 84]
        if self._render_rgb:
            self._ale.getScreenRGB(self._rgb)

    def _observation(self):
        pixels = self._stack.copy()  # [84, 84, 4]; a copy: the stack is updated in place.
        if not self._render_rgb:
            return pixels
        return {"pixels": pixels, "rgb": self._rgb.copy()}
