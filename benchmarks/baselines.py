"""The network's previous formulation, kept to measure the performance fixes side by side.

Issue 9 changed how two parts of the network are *computed*, not what they compute (same
parameters, same outputs to float rounding):

* Nature CNN strided convolutions: `hk.Conv2D` with stride 4 and 2 (before) -> stride-1
  convolutions over space-to-depth blocks (`torsos.space_to_depth_conv`);
* per-game heads: every game's head for every example, `einsum('bd,gdk->bgk')`, then a gather
  of the example's own game (before) -> one matmul of the features spread into their game's
  slot with the heads stacked as [G * D, K] (`heads.MultiGameHeads`).

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


@contextlib.contextmanager
def previous_network():
    """Within the block, networks traced by `make_networks` use the previous formulation."""
    from scaled_ql.networks import factory, torsos

    saved = torsos.NatureCNN, factory.MultiGameHeads
    torsos.NatureCNN, factory.MultiGameHeads = StridedNatureCNN, GatherMultiGameHeads
    try:
        yield
    finally:
        torsos.NatureCNN, factory.MultiGameHeads = saved


def measure_fixes(batch_size: int = 32, num_actions=common.DEMO_NUM_ACTIONS, blocks: int = 7,
                  calls_per_block: int = 6, torso: str = "nature", progress=None) -> dict:
    """Our update (demo config, any torso) with the previous and the current network,
    alternating."""
    import numpy as np

    from scaled_ql.networks import make_networks

    config = common.demo_config(torso, batch_size)
    networks = make_networks(config.network, num_actions)
    batch = common.random_batch(np.random.default_rng(0), (batch_size,), num_actions)

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
