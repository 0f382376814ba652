"""Types shared by every layer (numpy only: importable by the pure-JAX core).

The learner consumes batches of `Transition`s.  The data pipeline (scaled_ql.datasets) builds
them; the losses (scaled_ql.agents.scaled_ql.losses) read them.  All reward clipping, n-step
accumulation and discounting happen in the data pipeline, so the loss sees a one-step
Bellman backup over an n-step transition:

    target = reward + discount * Z(next_observation)

Shapes below are per example; a batch adds a leading `[B]` axis to every field.
"""

from typing import NamedTuple

import numpy as np

FRAME_SHAPE = (84, 84)
STACK_SIZE = 4
OBSERVATION_SHAPE = (*FRAME_SHAPE, STACK_SIZE)  # uint8 [84, 84, 4], oldest frame first


class Transition(NamedTuple):
    """One (n-step) transition of one game.

    Attributes:
      observation: uint8 [84, 84, 4], the last 4 preprocessed frames, oldest first.
      action: int32 [], index into the game's minimal action set.
      reward: float32 [], sum_{k<n} gamma^k r_{t+k} of (optionally clipped) rewards.
      discount: float32 [], the bootstrap multiplier: gamma^k for the number k of steps
        accumulated if the episode did not terminate within them, 0 if it terminated
        (is_terminal), gamma^k if it was only truncated (is_last without is_terminal).
      next_observation: uint8 [84, 84, 4], the stack k steps later.
      game_id: int32 [], index of the game in the run's ordered game list.
    """

    observation: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_observation: np.ndarray
    game_id: np.ndarray
