"""One linear C51 head per game, stored padded so that a mixed-game batch is one computation.

Games have different minimal action sets (Atari: 3 to 18 actions).  The heads of G games are
one parameter `w: [G, D, A_max * N]` (and `b: [G, A_max * N]`), where A_max is the largest
action count and N the number of atoms.  Actions a >= num_actions[g] of game g are *padding*:

- `action_mask[b, a]` is False for them;
- `q_values` there are `MASKED_Q_VALUE` (-inf), so they never win an argmax and add exactly 0
  to a logsumexp or a softmax;
- the losses read `action_mask` explicitly and never touch their logits, so their weights get
  exactly zero gradient and stay at initialisation (Adam then leaves them unchanged too).

Each example's features are placed in its own game's slot of a [B, G * D] matrix (zeros
elsewhere) and multiplied by the heads stacked as [G * D, A_max * N]: one matmul yields every
example's own-game logits.  The heads cost 2 * D * A_max * N * G FLOPs per example (about 40
MFLOPs for D=512, 18 actions, 51 atoms, 41 games): small next to a ResNet torso (GFLOPs), and far
less memory than gathering a [B, D, A_max * N] weight per example.  The gradient of a game's
head is zero for every example of another game (its slot holds zeros), so one game's loss never
moves another game's head.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

MASKED_Q_VALUE = -jnp.inf


class NetworkOutput(NamedTuple):
    """Output of the Scaled QL network for a batch, each example read with its own game's head.

    Attributes:
      q_values: float32 [B, A_max], expected return under the predicted distribution,
        `sum_i softmax(logits)_i * atoms_i`; MASKED_Q_VALUE (-inf) at padded actions.
        Differentiable (the CQL term needs its gradient).
      logits: float32 [B, A_max, N], per-action categorical logits; meaningless at padded
        actions (read `action_mask`).
      atoms: float32 [N], the support (v_min ... v_max, evenly spaced).
      action_mask: bool [B, A_max], True where the action exists in the example's game.
    """

    q_values: jax.Array
    logits: jax.Array
    atoms: jax.Array
    action_mask: jax.Array


def make_action_mask(game_id: jax.Array, num_actions: Sequence[int]) -> jax.Array:
    """bool [B, A_max]: True for the actions of each example's game."""
    counts = jnp.asarray(np.asarray(num_actions, dtype=np.int32))  # [G]
    max_actions = int(max(num_actions))
    return jnp.arange(max_actions)[None, :] < counts[game_id][:, None]  # [B, A_max]


def masked_expected_q(logits: jax.Array, atoms: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Expected value of each action's distribution, MASKED_Q_VALUE at padded actions.

    Args:
      logits: [..., A, N] categorical logits.
      atoms: [N] support.
      action_mask: bool [..., A].

    Returns:
      float32 [..., A].
    """
    q = jnp.sum(jax.nn.softmax(logits, axis=-1) * atoms, axis=-1)  # [..., A]
    return jnp.where(action_mask, q, MASKED_Q_VALUE)


class MultiGameHeads(hk.Module):
    """Per-game linear heads: features [B, D], game_id [B] -> logits [B, A_max, N]."""

    def __init__(self, num_actions: Sequence[int], num_atoms: int, name: str = "heads"):
        super().__init__(name=name)
        if not num_actions or min(num_actions) < 1:
            raise ValueError(f"num_actions must list >= 1 action per game, got {num_actions}")
        self._num_games = len(num_actions)
        self._max_actions = int(max(num_actions))
        self._num_atoms = num_atoms

    def __call__(self, features: jax.Array, game_id: jax.Array) -> jax.Array:
        chex.assert_rank(features, 2, custom_message="heads want features [B, D]")
        chex.assert_shape(game_id, (features.shape[0],), custom_message="game_id must be [B]")
        g, d = self._num_games, features.shape[-1]
        k = self._max_actions * self._num_atoms
        # Each game's head is a Linear(D -> A_max * N) with Haiku's default fan-in init.
        w = hk.get_parameter("w", (g, d, k), features.dtype,
                             init=hk.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(d)))
        b = hk.get_parameter("b", (g, k), features.dtype, init=jnp.zeros)
        # Negative ids count from the end, as in numpy indexing; ids outside [-G, G) are invalid.
        index = jnp.where(game_id < 0, game_id + g, game_id)  # [B]
        one_hot = jax.nn.one_hot(index, g, dtype=features.dtype)  # [B, G], all 0 if invalid
        # Each example's features in its own game's slot, zeros elsewhere; one matmul with the
        # heads stacked as [G * D, K] (a free reshape of w) then gives each example its own
        # game's logits.  Same FLOPs as evaluating every head, but no [B, G, K] gather and no
        # transposed copy of the [G, D, K] weight gradient (which cost XLA:CPU more than the
        # matmuls themselves).
        spread = (one_hot[:, :, None] * features[:, None, :]).reshape(-1, g * d)  # [B, G * D]
        own_game = spread @ w.reshape(g * d, k) + one_hot @ b  # [B, A_max * N]
        # An out-of-range game_id yields NaN logits: the update step then skips the update and
        # counts it as non-finite instead of silently using another game's head (or none).
        valid = (index >= 0) & (index < g)  # [B]
        own_game = jnp.where(valid[:, None], own_game, jnp.nan)
        return own_game.reshape(-1, self._max_actions, self._num_atoms)  # [B, A_max, N]
