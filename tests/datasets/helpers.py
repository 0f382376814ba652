"""Hand-made episodes and an independent numpy reference of the transition conventions."""

import numpy as np

from scaled_ql import types
from scaled_ql.datasets import rlds


def random_episode(rng, num_steps, *, num_actions=6, terminal=True, episode_id=0, checkpoint_id=0,
                   observation=types.ATARI_OBSERVATION):
    """An `EpisodeArrays` with random frames (values 0..observation.max_value), actions in range
    and rewards in [-3, 3]."""
    return rlds.EpisodeArrays(
        frames=rng.integers(0, observation.max_value + 1, (num_steps, *observation.frame_shape),
                            dtype=np.uint8),
        actions=rng.integers(0, num_actions, num_steps).astype(np.int64),
        rewards=rng.uniform(-3, 3, num_steps).astype(np.float32),
        discounts=np.ones(num_steps, np.float32),
        is_terminal=terminal,
        episode_id=episode_id,
        checkpoint_id=checkpoint_id,
        observation=observation,
    )


def reference_transitions(frames, actions, rewards, is_terminal, *, n, gamma, stack, clip):
    """Loops, written from the convention in docs/DATA.md, not from the tf.data code.

    frames [T, 84, 84] (one grayscale channel) or [T, H, W, C] (e.g. MinAtar [T, 10, 10, 10]);
    returns a list of dicts, one per transition t = 0..T-2, with observations
    [H, W, stack * C]: channels j*C .. (j+1)*C-1 hold frame t - (stack - 1) + j, zeros before
    the episode's start.
    """
    num_steps = len(frames)
    frames = frames[..., None] if frames.ndim == 3 else frames  # [T, H, W, C]
    height, width, channels = frames.shape[1:]

    def stacked(t):
        out = np.zeros((height, width, stack * channels), np.uint8)
        for j in range(stack):  # slot j holds frame t - (stack - 1) + j
            source = t - (stack - 1) + j
            if source >= 0:
                out[..., j * channels : (j + 1) * channels] = frames[source]
        return out

    result = []
    for t in range(num_steps - 1):
        total, k = 0.0, 0
        while k < n and t + k < num_steps - 1:
            r = float(rewards[t + k])
            total += gamma**k * (np.clip(r, -1, 1) if clip else r)
            k += 1
        ended = t + k == num_steps - 1 and is_terminal
        result.append(
            {
                "observation": stacked(t),
                "action": int(actions[t]),
                "reward": total,
                "discount": 0.0 if ended else gamma**k,
                "next_observation": stacked(t + k),
            }
        )
    return result
