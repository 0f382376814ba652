"""The MinAtar networks: shapes and masking on [10, 10, 10] maps, the size ladder's parameter
counts, scaling by the spec's max_value, GroupNorm against a numpy reference, config errors."""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaled_ql.environments.games import MINATAR_GAMES, get_game
from scaled_ql.networks import (
    MASKED_Q_VALUE,
    MINATAR_NETWORKS,
    GroupNorm,
    NetworkConfig,
    make_networks,
)
from scaled_ql.networks.torsos import make_trunk
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION, ObservationSpec

LADDER_ACTIONS = (6, 6, 6, 6)  # docs/NETWORKS.md counts the ladder for 4 games x 6 actions
MINATAR_ACTIONS = tuple(get_game(g).num_actions for g in MINATAR_GAMES)  # (5, 3, 3, 6, 4)


def _maps(batch_size, seed=0, density=0.1):
    """Random boolean object maps, uint8 [B, 10, 10, 10], as MinAtarEnvironment emits."""
    rng = np.random.default_rng(seed)
    return jnp.asarray((rng.uniform(size=(batch_size, 10, 10, 10)) < density).astype(np.uint8))


def _counts(config, num_actions=LADDER_ACTIONS):
    net = make_networks(config, num_actions, MINATAR_OBSERVATION)
    return net.parameter_counts(jax.eval_shape(net.init, jax.random.PRNGKey(0)))


@pytest.mark.parametrize("size", ["S", "M", "dqn"])
def test_minatar_networks_give_masked_q_values_for_every_game(size):
    net = make_networks(MINATAR_NETWORKS[size], MINATAR_ACTIONS, MINATAR_OBSERVATION)
    assert net.observation == MINATAR_OBSERVATION
    params = net.init(jax.random.PRNGKey(0))
    game_id = jnp.arange(10, dtype=jnp.int32) % len(MINATAR_ACTIONS)
    out = jax.jit(net.apply)(params, _maps(10), game_id)
    assert out.q_values.shape == (10, 6) and out.logits.shape == (10, 6, 51)
    valid = np.arange(6)[None] < np.asarray(MINATAR_ACTIONS)[np.asarray(game_id)][:, None]
    np.testing.assert_array_equal(out.action_mask, valid)
    q = np.asarray(out.q_values)
    assert np.all(q[~valid] == MASKED_Q_VALUE)
    assert np.all(np.isfinite(q[valid])) and np.all(np.abs(q[valid]) <= 10.0)
    assert np.all(q.argmax(-1) < np.asarray(MINATAR_ACTIONS)[np.asarray(game_id)])


@pytest.mark.parametrize("size,channels", [("S", 16), ("M", 32), ("L", 96), ("XL", 192)])
def test_minatar_resnet_keeps_the_10x10_resolution(size, channels):
    """No downsampling: the spatial embedding sees the full 10x10 map of the last block."""
    net = make_networks(MINATAR_NETWORKS[size], LADDER_ACTIONS, MINATAR_OBSERVATION)
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0))
    assert params["torso/spatial_embedding"]["embedding"].shape == (10, 10, channels, 1)
    assert params["torso/minatar_resnet/stem_conv"]["w"].shape == (3, 3, 10, channels)
    blocks = {k.split("/")[2] for k in params if "/block_" in k}
    assert len(blocks) == MINATAR_NETWORKS[size].num_blocks
    out = jax.eval_shape(net.apply, params, _maps(3), jnp.zeros(3, jnp.int32))
    assert out.q_values.shape == (3, 6)


def _resnet_count(channels, blocks, feed_forward, in_channels=10):
    """By hand: bias-free 3x3 convolutions, 2 GroupNorm parameters per channel."""
    stem = 9 * in_channels * channels + 2 * channels
    block = 2 * (9 * channels * channels + 2 * channels)
    trunk = stem + blocks * block
    embedding = 10 * 10 * channels
    shared = channels * feed_forward + feed_forward
    heads = 4 * (feed_forward * 6 * 51 + 6 * 51)
    return trunk, embedding, shared, heads


@pytest.mark.parametrize("size,channels", [("S", 16), ("M", 32), ("L", 96), ("XL", 192)])
def test_ladder_parameter_counts(size, channels):
    config = MINATAR_NETWORKS[size]
    trunk, embedding, shared, heads = _resnet_count(channels, config.num_blocks,
                                                    config.feed_forward_size)
    counts = _counts(config)
    assert (counts["trunk"], counts["spatial_embedding"], counts["feed_forward"],
            counts["heads"]) == (trunk, embedding, shared, heads)
    assert counts["total"] == trunk + embedding + shared + heads


def test_ladder_spans_0_1m_to_5m_parameters_and_grows():
    totals = [_counts(MINATAR_NETWORKS[size])["total"] for size in ("S", "M", "L", "XL")]
    assert totals == sorted(totals)
    assert 0.05e6 < totals[0] < 0.15e6 and 4e6 < totals[-1] < 6e6
    # docs/NETWORKS.md prints these
    assert totals == [93_064, 205_384, 1_022_920, 4_749_512]


def test_minatar_dqn_is_young_and_tians_network():
    """One 3x3 VALID conv with 16 channels -> 8x8x16 = 1024 -> 128 ReLU units -> heads."""
    config = MINATAR_NETWORKS["dqn"]
    net = make_networks(config, LADDER_ACTIONS, MINATAR_OBSERVATION)
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0))
    assert params["torso/minatar_dqn/conv"]["w"].shape == (3, 3, 10, 16)
    assert params["torso/feed_forward"]["w"].shape == (8 * 8 * 16, 128)
    counts = net.parameter_counts(params)
    assert counts["trunk"] == 9 * 10 * 16 + 16 and counts["spatial_embedding"] == 0
    assert counts["feed_forward"] == 1024 * 128 + 128


def test_observations_are_scaled_by_the_specs_max_value():
    """Ones of a max-1 spec (MinAtar) and 255s of a max-255 spec (Atari's scale) are the same
    input after scaling: same parameters, same outputs; unscaled they would differ."""
    pixels = ObservationSpec("minatar_as_pixels", MINATAR_OBSERVATION.frame_shape, 1,
                             ATARI_OBSERVATION.max_value)
    config = MINATAR_NETWORKS["S"]
    minatar = make_networks(config, LADDER_ACTIONS, MINATAR_OBSERVATION)
    as_pixels = make_networks(config, LADDER_ACTIONS, pixels)
    params = minatar.init(jax.random.PRNGKey(3))
    game_id = jnp.array([0, 1, 2, 3], jnp.int32)
    maps = _maps(4, seed=1, density=0.3)
    out = minatar.apply(params, maps, game_id)
    out_pixels = as_pixels.apply(params, maps * jnp.uint8(255), game_id)
    np.testing.assert_allclose(out_pixels.logits, out.logits, rtol=1e-5, atol=1e-6)
    ones = jnp.ones((4, 10, 10, 10), jnp.uint8)
    np.testing.assert_allclose(as_pixels.apply(params, ones * jnp.uint8(255), game_id).logits,
                               minatar.apply(params, ones, game_id).logits, rtol=1e-5, atol=1e-6)
    # The max-255 network reads the maps themselves as nearly black: a different output.
    assert not np.allclose(as_pixels.apply(params, maps, game_id).logits, out.logits, atol=1e-3)


def test_network_refuses_observations_of_another_suite():
    minatar = make_networks(MINATAR_NETWORKS["S"], LADDER_ACTIONS, MINATAR_OBSERVATION)
    params = minatar.init(jax.random.PRNGKey(0))
    atari_frames = jnp.zeros((2, 84, 84, 4), jnp.uint8)
    with pytest.raises(AssertionError, match=r"minatar observation must be \[B, 10, 10, 10\]"):
        minatar.apply(params, atari_frames, jnp.zeros(2, jnp.int32))


def _group_norm_reference(x, groups, scale, offset, eps=1e-5):
    """numpy, float64: normalise each example's groups of channels over space and channels."""
    b, h, w, c = x.shape
    xg = x.astype(np.float64).reshape(b, h * w, groups, c // groups)
    mean = xg.mean(axis=(1, 3), keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=(1, 3), keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(b, h, w, c)
    return y * scale + offset


@pytest.mark.parametrize("groups,channels", [(4, 8), (8, 8), (1, 6)])
def test_group_norm_matches_numpy_and_haiku(groups, channels):
    rng = np.random.default_rng(groups)
    x = (rng.normal(size=(3, 5, 4, channels)) * 3 + 1.5).astype(np.float32)
    ours = hk.without_apply_rng(hk.transform(lambda x: GroupNorm(groups, name="norm")(x)))
    haiku = hk.without_apply_rng(hk.transform(lambda x: hk.GroupNorm(groups, name="norm")(x)))
    params = ours.init(jax.random.PRNGKey(0), x)
    assert jax.tree_util.tree_map(np.shape, params) == jax.tree_util.tree_map(
        np.shape, haiku.init(jax.random.PRNGKey(0), x))  # same names and shapes: same checkpoints
    params = {"norm": {"scale": jnp.asarray(rng.normal(size=channels), jnp.float32),
                       "offset": jnp.asarray(rng.normal(size=channels), jnp.float32)}}
    expected = _group_norm_reference(x, groups, np.asarray(params["norm"]["scale"]),
                                     np.asarray(params["norm"]["offset"]))
    np.testing.assert_allclose(ours.apply(params, x), expected, rtol=1e-4, atol=1e-4)
    weights = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    grads = [jax.grad(lambda p, x, f=f: jnp.sum(f.apply(p, x) * weights), argnums=(0, 1))(
        params, jnp.asarray(x)) for f in (ours, haiku)]
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4),
                           grads[0], grads[1])


def test_group_norm_zero_init_and_bad_groups():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3, 4)), jnp.float32)
    zero = hk.without_apply_rng(hk.transform(lambda x: GroupNorm(2, zero_init=True)(x)))
    np.testing.assert_array_equal(zero.apply(zero.init(jax.random.PRNGKey(0), x), x), 0.0)
    bad = hk.without_apply_rng(hk.transform(lambda x: GroupNorm(3)(x)))
    with pytest.raises(ValueError, match="4 channels are not divisible into 3 groups"):
        bad.init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize("changes", [dict(num_blocks=0),
                                     dict(torso="resnet18", num_blocks=2),
                                     dict(torso="minatar_dqn", num_blocks=1)])
def test_num_blocks_is_validated(changes):
    with pytest.raises(ValueError, match="NetworkConfig.num_blocks"):
        dataclasses.replace(MINATAR_NETWORKS["M"], **changes)


def test_make_trunk_refuses_a_depth_for_fixed_torsos():
    with pytest.raises(ValueError, match="'nature' has a fixed depth"):
        make_trunk("nature", 1.0, 32, num_blocks=3)


def test_num_blocks_default_is_two_blocks():
    net = make_networks(NetworkConfig(torso="minatar_resnet"), (3,), MINATAR_OBSERVATION)
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0))
    assert {k.split("/")[2] for k in params if "/block_" in k} == {"block_0", "block_1"}
