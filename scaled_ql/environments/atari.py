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

`step` is the hot loop of evaluation and of the actors, so it works in preallocated buffers:
the two screens are read into fixed arrays, max-pooled in place, resized straight into the
oldest slot of a ring of four frames, and the observation is one `cv2.merge` of the ring
(the only per-step allocation, and the copy the caller owns).  See `docs/ENVIRONMENTS.md`
(Throughput) for what this costs next to raw ALE.
"""

import struct

import cv2
import dm_env
import numpy as np
from dm_env import specs

from scaled_ql import types
from scaled_ql.environments import games
from scaled_ql.environments.base import GameEnvironment, check_common_arguments

FRAME_SIZE = types.ATARI_OBSERVATION.frame_shape[0]  # 84: frames are square.
STACK_SIZE = types.ATARI_OBSERVATION.stack_size  # 4
DEFAULT_MAX_EPISODE_FRAMES = 108_000  # 30 minutes at 60 frames per second.
_MAX_SEED = 2**31 - 1  # ALE's `random_seed` is a signed 32-bit int.
_FRAME_SHAPE = (FRAME_SIZE, FRAME_SIZE)
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)  # Discounts (numpy scalars are immutable).
_FIRST, _MID, _LAST = dm_env.StepType.FIRST, dm_env.StepType.MID, dm_env.StepType.LAST


def _quiet_ale():
    """Imports ale_py with its per-instance banner silenced (errors still print)."""
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    return ale_py


class AtariEnvironment(GameEnvironment):
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

    `reseed(seed)` turns the environment into a new one with that seed, bit for bit, without
    ALE's ~0.1 s ROM load (batched evaluation does this between episodes of a game).
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
        self._mode, self._difficulty = mode, difficulty

        ale_py = _quiet_ale()
        self._ale = ale = ale_py.ALEInterface()
        self._rom_path = ale_py.roms.get_rom_path(self._info.rom_id)
        ale.setFloat("repeat_action_probability", float(sticky_action_prob))
        ale.setInt("frame_skip", 1)  # We skip frames ourselves, to max over the last two.
        # We apply the cap ourselves (truncation); with 0 here ALE's `game_over()` is the game's
        # own end, so the hot loop can call it without `with_truncation=False`.
        ale.setInt("max_num_frames_per_episode", 0)
        ale.setBool("color_averaging", False)
        self._load_rom(int(seed))
        action_set = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
        self._actions = tuple(action_set)
        # What `reseed` restores: the emulator right after loading, with its random generator.
        self._fresh_state = _state_bytes(ale.cloneState(include_rng=True))
        self._fresh_seed = int(seed)

        height, width = ale.getScreenDims()
        # Grayscale screens of the step's last two emulator frames, and their max.
        self._screen_old = np.zeros((height, width), dtype=np.uint8)
        self._screen_new = np.zeros((height, width), dtype=np.uint8)
        self._maxed = np.zeros((height, width), dtype=np.uint8)
        # The frame stack as a ring of four contiguous frames, oldest first: a step resizes
        # into the oldest one, moves it to the end, and merges the four into the observation.
        self._frames = [np.zeros(_FRAME_SHAPE, dtype=np.uint8) for _ in range(STACK_SIZE)]
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
        if info.suite != games.ATARI_SUITE:  # ALE would load the Atari ROM of the same name.
            raise ValueError(f"{info.name} is a {info.suite} game, not an ALE one (make it with "
                             "scaled_ql.environments.suites.make_environment)")
        info.check_variant(mode, difficulty)
        check_common_arguments(sticky_action_prob, max_episode_frames, seed, _MAX_SEED)
        if frame_skip < 2:
            raise ValueError(f"frame_skip must be >= 2 (max over two frames), got {frame_skip}")
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
        for frame in self._frames:
            frame.fill(0)
        self._ale.getScreenGrayscale(self._screen_new)
        return dm_env.TimeStep(_FIRST, None, None, self._push_frame(self._screen_new))

    def step(self, action) -> dm_env.TimeStep:
        """Plays `action` (index into the action set) for `frame_skip` emulator frames."""
        if self._needs_reset:
            return self.reset()
        index = self._action_index(action)
        ale = self._ale
        act, game_over, ale_action = ale.act, ale.game_over, self._actions[index]
        reward = 0
        ended = False
        num_frames = self._max_episode_frames - self._episode_frames
        if num_frames > self._frame_skip:
            num_frames = self._frame_skip
        first_kept = num_frames - 2  # Keep the screens of the step's last two frames.
        for frame in range(num_frames):
            reward += act(ale_action)
            if game_over():
                ended = True
                num_frames = frame + 1
                break
            if frame >= first_kept:
                ale.getScreenGrayscale(
                    self._screen_new if frame > first_kept else self._screen_old
                )
        self._episode_frames += num_frames
        if ended or num_frames < 2:
            # Ended early: the final screen alone (no max) is the last frame of the episode.
            ale.getScreenGrayscale(self._screen_new)
            observation = self._push_frame(self._screen_new)
        else:
            observation = self._push_frame(
                np.maximum(self._screen_old, self._screen_new, out=self._maxed)
            )
        reward = np.float32(reward)

        life_lost = False
        if self._terminal_on_life_loss:
            lives = ale.lives()
            life_lost = lives < self._lives
            self._lives = lives
        if ended or life_lost:
            self._needs_reset = True
            self._continue_game = not ended and self._episode_frames < self._max_episode_frames
            return dm_env.TimeStep(_LAST, reward, _ZERO, observation)
        if self._episode_frames >= self._max_episode_frames:
            self._needs_reset = True
            return dm_env.TimeStep(_LAST, reward, _ONE, observation)
        return dm_env.TimeStep(_MID, reward, _ONE, observation)

    def observation_spec(self):
        pixels = specs.BoundedArray(
            types.ATARI_OBSERVATION.shape, np.uint8, 0, types.ATARI_OBSERVATION.max_value,
            name="pixels"
        )
        if not self._render_rgb:
            return pixels
        rgb = specs.BoundedArray(self._rgb.shape, np.uint8, 0, 255, name="rgb")
        return {"pixels": pixels, "rgb": rgb}

    def close(self) -> None:
        self._ale = None

    def reseed(self, seed: int) -> None:
        """Turns this environment into what a new one with this `seed` (same game and options)
        would be: the next `step` or `reset` starts a new game, bit for bit as it would there.

        Instead of loading the ROM again (~0.1 s in ALE) this restores the emulator state saved
        right after loading, with ALE's random generator (the sticky actions) seeded by `seed`:
        about 1 ms.  Should the saved state not have the layout this expects (another ale-py),
        it falls back to reloading the ROM; tests check both against fresh environments.
        """
        self.validate_arguments(self._info.name, seed=seed)
        state = _reseeded_state(self._fresh_state, self._fresh_seed, int(seed))
        if state is None:
            self._load_rom(int(seed))
        else:
            self._ale.restoreState(state)
        self._episode_frames = 0
        self._lives = 0
        self._needs_reset = True
        self._continue_game = False

    # --- Extras -------------------------------------------------------------------------------

    @property
    def ale_actions(self) -> tuple:
        """The ALE actions that action indices 0..num_actions-1 stand for."""
        return self._actions

    @property
    def game_over(self) -> bool:
        """Whether the emulated game itself is over (not just a life lost or truncated)."""
        return self._ale.game_over(with_truncation=False)

    @property
    def ale(self):
        """The underlying `ale_py.ALEInterface` (for tests and tools; do not step it)."""
        return self._ale

    def render(self) -> np.ndarray:
        """The raw RGB screen of the latest emulator frame, uint8 [210, 160, 3]."""
        return self._ale.getScreenRGB()

    # --- Internals ----------------------------------------------------------------------------

    def _load_rom(self, seed: int) -> None:
        ale = self._ale
        ale.setInt("random_seed", seed)
        ale.loadROM(self._rom_path)
        if self._mode is not None:
            ale.setMode(int(self._mode))
        if self._difficulty is not None:
            ale.setDifficulty(int(self._difficulty))

    def _push_frame(self, screen: np.ndarray):
        """Resizes `screen` [210, 160] into the frame ring; returns the new observation."""
        frames = self._frames
        newest = frames.pop(0)  # The oldest frame's buffer becomes the newest frame.
        cv2.resize(screen, _FRAME_SHAPE, dst=newest, interpolation=cv2.INTER_AREA)
        frames.append(newest)
        pixels = cv2.merge(frames)  # [84, 84, 4], oldest first; a new array the caller owns.
        if not self._render_rgb:
            return pixels
        self._ale.getScreenRGB(self._rgb)
        return {"pixels": pixels, "rgb": self._rgb.copy()}


# --- Reseeding without reloading the ROM -----------------------------------------------------
#
# `ALEState.__getstate__()[0]` is ALE's `ALEState::serialize()`: six int32 (paddles, frame
# numbers, mode, difficulty), the emulator state as an int32-length-prefixed string, then two
# int32 (paddle limits).  With `include_rng=True` that emulator string ends with a bool and
# the random generator as a length-prefixed string: a `std::mt19937` written by `operator<<`
# (624 state words and the position, space separated).  Nothing else in the state depends on
# the seed, so swapping that text for the generator of another seed gives exactly the state
# a fresh `loadROM` with that seed would have.  Every assumption is checked; any mismatch
# returns None and the caller reloads the ROM instead.

_INT32 = struct.Struct("<i")


def _state_bytes(state) -> bytes:
    return state.__getstate__()[0]


def _mt19937_text(seed: int) -> bytes:
    """`std::mt19937(seed)` as libstdc++'s `operator<<` writes it (no numbers drawn yet)."""
    words = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        previous = words[-1]
        words.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
    return (" ".join(map(str, words)) + " 624").encode()


def _reseeded_state(fresh: bytes, fresh_seed: int, seed: int):
    """The ALEState `fresh` (saved right after loading with `fresh_seed`) with `seed` instead."""
    import ale_py

    old, new = _mt19937_text(fresh_seed), _mt19937_text(seed)
    if len(fresh) < 36:
        return None
    (inner_length,) = _INT32.unpack_from(fresh, 24)
    inner_end = 28 + inner_length
    rng_at = inner_end - len(old)
    if (
        inner_end + 8 != len(fresh)
        or fresh[rng_at:inner_end] != old
        or _INT32.unpack_from(fresh, rng_at - 4)[0] != len(old)
    ):
        return None
    inner = fresh[28 : rng_at - 4] + _INT32.pack(len(new)) + new
    data = fresh[:24] + _INT32.pack(len(inner)) + inner + fresh[inner_end:]
    state = ale_py.ALEState.__new__(ale_py.ALEState)
    state.__setstate__((data,))
    return state
