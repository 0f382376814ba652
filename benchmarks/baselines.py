"""The network's previous formulation, kept to measure the performance fixes side by side.

Issue 9 changed how two parts of the network are *computed*, not what they compute (same
parameters, same outputs to float rounding):

* Nature CNN strided convolutions: `hk.Conv2D` with stride 4 and 2 (before) -> stride-1
  convolutions over space-to-depth blocks (`torsos.space_to_depth_conv`);
* per-game heads: every game's head for every example, `einsum('bd,gdk->bgk')`, then a gather
  of the example's own game (before) -> one matmul of the features spread into their game's
  slot with the heads stacked as [G * D, K] (`heads.MultiGameHeads`).

Issue 15 changed a third, for the MinAtar ResNet (and the GroupNorm ResNets of Atari):

* GroupNorm: `hk.GroupNorm` on a [B, H * W, G, C / G] view (before) -> statistics per channel
  over space first, then per group, and one `x * a + b` pass (`torsos.GroupNorm`; same
  parameters).

`previous_network()` swaps the old modules in while an update is traced, so
`measure_fixes` can time the update before and after in alternating blocks of one process.
"""

import contextlib
import math

import haiku as hk
import jax
import jax.numpy as jnp

from benchmarks import common


class StridedNatureCNN(hk.Module):
    """The Nature CNN as it was: three `hk.Conv2D` with strides 4, 2, 1."""

    def __init__(self, width_multiplier: float = 1.0, name: str = "nature_cnn"):
        super().__init__(name=name)
        self._width = width_multiplier

    def __call__(self, x):
        from scaled_ql.networks.torsos import scale_width

        for i, (channels, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            conv = hk.Conv2D(scale_width(channels, self._width), kernel, stride, padding="VALID",
                             name=f"conv_{i}")
            x = jax.nn.relu(conv(x))
        return x


class GatherMultiGameHeads(hk.Module):
    """The heads as they were: all games' logits [B, G, K], then each example's own game."""

    def __init__(self, num_actions, num_atoms: int, name: str = "heads"):
        super().__init__(name=name)
        self._num_games = len(num_actions)
        self._max_actions = int(max(num_actions))
        self._num_atoms = num_atoms

    def __call__(self, features, game_id):
        g, d = self._num_games, features.shape[-1]
        k = self._max_actions * self._num_atoms
        w = hk.get_parameter("w", (g, d, k), features.dtype,
                             init=hk.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(d)))
        b = hk.get_parameter("b", (g, k), features.dtype, init=jnp.zeros)
        all_games = jnp.einsum("bd,gdk->bgk", features, w) + b  # [B, G, K]
        own_game = jnp.take_along_axis(
            all_games, game_id[:, None, None], axis=1, mode="fill", fill_value=jnp.nan)[:, 0]
        return own_game.reshape(-1, self._max_actions, self._num_atoms)


class HaikuGroupNorm(hk.GroupNorm):
    """GroupNorm as it was: `hk.GroupNorm` on float32 (the signature of `torsos.GroupNorm`)."""

    def __init__(self, groups: int, zero_init: bool = False, epsilon: float = 1e-5,
                 name: str | None = None):
        super().__init__(groups=groups, eps=epsilon,
                         scale_init=jnp.zeros if zero_init else jnp.ones, name=name)

    def __call__(self, x):
        return super().__call__(x.astype(jnp.float32)).astype(x.dtype)


@contextlib.contextmanager
def previous_network():
    """Within the block, networks traced by `make_networks` use the previous formulation."""
    from scaled_ql.networks import factory, torsos

    saved = torsos.NatureCNN, factory.MultiGameHeads, torsos.GroupNorm
    torsos.NatureCNN, factory.MultiGameHeads = StridedNatureCNN, GatherMultiGameHeads
    torsos.GroupNorm = HaikuGroupNorm
    try:
        yield
    finally:
        torsos.NatureCNN, factory.MultiGameHeads, torsos.GroupNorm = saved


def measure_fixes(batch_size: int = 32, num_actions=None, blocks: int = 7,
                  calls_per_block: int = 6, torso: str = "nature", progress=None,
                  minatar_size: str | None = None) -> dict:
    """Our update (demo config, any torso; or `MINATAR_NETWORKS[minatar_size]` on MinAtar
    batches) with the previous and the current network, alternating.  `num_actions` defaults
    to the demo's games (MinAtar: `common.MINATAR_NUM_ACTIONS`)."""
    import numpy as np

    from scaled_ql.networks import make_networks
    from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION

    if minatar_size is None:
        config, observation = common.demo_config(torso, batch_size), ATARI_OBSERVATION
        num_actions = num_actions or common.DEMO_NUM_ACTIONS
    else:
        config = common.minatar_config(minatar_size, batch_size)
        observation, torso = MINATAR_OBSERVATION, f"minatar_{minatar_size}"
        num_actions = num_actions or common.MINATAR_NUM_ACTIONS
    networks = make_networks(config.network, num_actions, observation)
    batch = common.random_batch(np.random.default_rng(0), (batch_size,), num_actions,
                                observation)

    def runner():
        run = common.update_runner(networks, config, batch)
        run(1)  # traces (and compiles) now, inside or outside the patch
        return run

    with previous_network():
        before = runner()
    after = runner()
    seconds = common.interleaved({"before": before, "after": after}, blocks, calls_per_block,
                                 progress)
    row = {"torso": torso, "batch_size": batch_size, "num_games": len(num_actions),
           "blocks": blocks, "calls_per_block": calls_per_block,
           "speedup": common.paired_ratio(seconds, "before", "after"),
           "seconds_per_call": seconds}
    for name in ("before", "after"):
        row[f"{name}_samples_per_s"] = batch_size / common.median(seconds["wall"][name])
        row[f"{name}_samples_per_cpu_s"] = batch_size / common.median(seconds["cpu"][name])
    return row
