"""Types shared by every layer (numpy only: importable by the pure-JAX core).

The learner consumes batches of `Transition`s.  The data pipeline (scaled_ql.datasets) builds
them; the losses (scaled_ql.agents.scaled_ql.losses) read them.  All reward clipping, n-step
accumulation and discounting happen in the data pipeline, so the loss sees a one-step
Bellman backup over an n-step transition:

    target = reward + discount * Z(next_observation)

Shapes below are per example; a batch adds a leading `[B]` axis to every field.
"""

import dataclasses
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """What one observation of a game suite looks like, for every layer that stores or reads it.

    An RLDS step stores one *frame* uint8 [H, W, C]; the agent sees the last `stack_size`
    frames concatenated along the channel axis, oldest first: uint8 [H, W, stack_size * C],
    with channels `k * C .. (k + 1) * C - 1` holding frame k.  Missing frames at the start of
    an episode are zeros.  The network divides by `max_value` to get inputs in [0, 1].

    Atari (`ATARI_OBSERVATION`): 84x84 grayscale frames, 4 stacked -> [84, 84, 4], max 255.
    MinAtar (`MINATAR_OBSERVATION`): one 10x10 boolean frame with a channel per object kind,
    padded with zero channels to the suite's 10 so that games share one input shape; MinAtar
    frames are (close to) Markov, so nothing is stacked -> [10, 10, 10], max 1.

    Attributes:
      name: the suite's name ("atari", "minatar"), recorded with datasets and checkpoints.
      frame_shape: (H, W, C) of one stored frame, uint8.
      stack_size: frames per observation.
      max_value: the largest value a frame holds (255 for pixels, 1 for object maps).
    """

    name: str
    frame_shape: tuple[int, int, int]
    stack_size: int
    max_value: int

    def __post_init__(self):
        if len(self.frame_shape) != 3 or min(self.frame_shape) < 1:
            raise ValueError(f"ObservationSpec.frame_shape must be (H, W, C) >= 1, "
                             f"got {self.frame_shape}")
        if self.stack_size < 1:
            raise ValueError(f"ObservationSpec.stack_size must be >= 1, got {self.stack_size}")
        if not 1 <= self.max_value <= 255:
            raise ValueError(f"ObservationSpec.max_value must be in [1, 255], "
                             f"got {self.max_value}")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def shape(self) -> tuple[int, int, int]:
        """One observation: (H, W, stack_size * C)."""
        height, width, channels = self.frame_shape
        return (height, width, self.stack_size * channels)

    def describe(self) -> str:
        """'uint8 [84, 84, 4]', for error messages."""
        return f"uint8 [{', '.join(map(str, self.shape))}]"


ATARI_OBSERVATION = ObservationSpec("atari", (84, 84, 1), 4, 255)
MINATAR_OBSERVATION = ObservationSpec("minatar", (10, 10, 10), 1, 1)
OBSERVATION_SPECS: dict[str, ObservationSpec] = {
    spec.name: spec for spec in (ATARI_OBSERVATION, MINATAR_OBSERVATION)}


class Transition(NamedTuple):
    """One (n-step) transition of one game.

    Attributes:
      observation: uint8 `ObservationSpec.shape` of the game's suite (Atari: [84, 84, 4], the
        last 4 preprocessed frames, oldest first; MinAtar: [10, 10, 10]).
      action: int32 [], index into the game's minimal action set.
      reward: float32 [], sum_{k<n} gamma^k r_{t+k} of (optionally clipped) rewards.
      discount: float32 [], the bootstrap multiplier: gamma^k for the number k of steps
        accumulated if the episode did not terminate within them, 0 if it terminated
        (is_terminal), gamma^k if it was only truncated (is_last without is_terminal).
      next_observation: the observation k steps later, same shape.
      game_id: int32 [], index of the game in the run's ordered game list.
    """

    observation: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_observation: np.ndarray
    game_id: np.ndarray
