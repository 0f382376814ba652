"""Shapes, masking, parameter counts and gradient isolation of the Scaled QL network."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaled_ql.networks import (
    MASKED_Q_VALUE,
    NetworkConfig,
    SpatialEmbedding,
    Torso,
    feature_norm,
    make_networks,
)

NUM_ACTIONS = (3, 6, 4)
TINY = NetworkConfig(torso="nature", width_multiplier=0.25, feed_forward_size=32,
                     num_atoms=11, v_min=-1.0, v_max=1.0)


def _batch(batch_size=6, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, size=(batch_size, 84, 84, 4), dtype=np.uint8)
    game_id = np.arange(batch_size, dtype=np.int32) % len(NUM_ACTIONS)
    return jnp.asarray(obs), jnp.asarray(game_id)


@pytest.mark.parametrize("torso,map_shape", [
    ("nature", (7, 7, 64)), ("impala", (11, 11, 32)), ("resnet18", (3, 3, 512)),
    ("resnet34", (3, 3, 512)), ("resnet50", (3, 3, 2048)), ("resnet101", (3, 3, 2048)),
])
def test_output_shapes_for_every_torso(torso, map_shape):
    """Shape inference only (jax.eval_shape): no ResNet-101 FLOPs are spent."""
    k = 2
    config = NetworkConfig(torso=torso, spatial_embedding_features=k, num_atoms=51)
    net = make_networks(config, NUM_ACTIONS)
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0))
    assert params["torso/spatial_embedding"]["embedding"].shape == (*map_shape, k)
    assert params["torso/feed_forward"]["w"].shape == (map_shape[-1] * k, 512)
    assert params["heads"]["w"].shape == (3, 512, 6 * 51)
    out = jax.eval_shape(net.apply, params, *_batch(5))
    assert out.q_values.shape == (5, 6) and out.q_values.dtype == jnp.float32
    assert out.logits.shape == (5, 6, 51) and out.logits.dtype == jnp.float32
    assert out.atoms.shape == (51,)
    assert out.action_mask.shape == (5, 6) and out.action_mask.dtype == jnp.bool_


def test_mask_and_q_values():
    net = make_networks(TINY, NUM_ACTIONS)
    params = net.init(jax.random.PRNGKey(1))
    obs, game_id = _batch()
    out = net.apply(params, obs, game_id)
    expected_mask = np.arange(6)[None] < np.asarray(NUM_ACTIONS)[np.asarray(game_id)][:, None]
    np.testing.assert_array_equal(out.action_mask, expected_mask)
    np.testing.assert_allclose(out.atoms, np.linspace(-1, 1, 11), rtol=1e-6)
    logits = np.asarray(out.logits, np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected_q = (probs * np.linspace(-1, 1, 11)).sum(-1)
    q = np.asarray(out.q_values)
    np.testing.assert_allclose(q[expected_mask], expected_q[expected_mask], rtol=1e-5, atol=1e-6)
    assert np.all(q[~expected_mask] == MASKED_Q_VALUE)
    assert np.all(np.asarray(out.q_values).argmax(-1) < np.asarray(NUM_ACTIONS)[game_id])


def test_each_example_uses_its_own_games_head():
    """An example's logits do not depend on the other examples' games."""
    net = make_networks(TINY, NUM_ACTIONS)
    params = net.init(jax.random.PRNGKey(2))
    obs, game_id = _batch()
    mixed = net.apply(params, obs, game_id).logits
    for b in range(obs.shape[0]):
        alone = net.apply(params, obs[b:b + 1], game_id[b:b + 1]).logits
        np.testing.assert_allclose(mixed[b], alone[0], rtol=1e-5, atol=1e-5)
    # And the head is really per game: the same image read by another game's head differs.
    other = net.apply(params, obs[:1], jnp.array([1], jnp.int32)).logits
    assert not np.allclose(mixed[0, :3], other[0, :3])


def test_gradient_of_one_game_does_not_touch_another_games_head():
    net = make_networks(TINY, NUM_ACTIONS)
    params = net.init(jax.random.PRNGKey(3))
    obs, game_id = _batch(6)  # games 0, 1, 2, 0, 1, 2

    def game_0_loss(p):
        out = net.apply(p, obs, game_id)
        q = jnp.where(out.action_mask, out.q_values, 0.0)
        return jnp.sum(jnp.where(game_id[:, None] == 0, q, 0.0) ** 2) + jnp.sum(
            jnp.where(game_id[:, None, None] == 0, out.logits, 0.0)[:, :3])

    grads = jax.grad(game_0_loss)(params)
    w = np.asarray(grads["heads"]["w"]).reshape(3, -1, 6, 11)  # [G, D, A_max, N]
    assert np.all(w[1:] == 0.0), "game 0's loss moved the heads of games 1 and 2"
    assert np.all(w[0, :, 3:] == 0.0), "padded actions of game 0 received gradient"
    assert np.any(w[0, :, :3] != 0.0)
    assert np.any(np.asarray(grads["torso/feed_forward"]["w"]) != 0.0)  # the torso is shared


def test_spatial_embedding_matches_numpy():
    f = hk.without_apply_rng(hk.transform(lambda x: SpatialEmbedding(num_features=3)(x)))
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 6)).astype(np.float32)
    params = f.init(jax.random.PRNGKey(0), x)
    emb = np.asarray(params["spatial_embedding"]["embedding"])
    assert emb.shape == (4, 5, 6, 3)
    out = f.apply(params, x)
    assert out.shape == (2, 18)
    expected = (x[..., None] * emb[None]).sum(axis=(1, 2)).reshape(2, 18)  # [B, C * K]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_feature_norm_gives_unit_rows_and_keeps_zero_rows():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 9)) * [[1], [10], [1e-3], [0]])
    y = np.asarray(feature_norm(x))
    np.testing.assert_allclose(np.linalg.norm(y[:3], axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(y[3], 0.0)


@pytest.mark.parametrize("torso,use_norm", [("resnet18", True), ("nature", False)])
def test_torso_features_are_normalized_when_switched_on(torso, use_norm):
    """Also the one real (not shape-only) forward pass through a GroupNorm ResNet."""
    f = hk.without_apply_rng(hk.transform(lambda x: Torso(
        torso, 0.125, 32, "spatial_embedding", 1, 16, use_norm)(x)))
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 84, 84, 4)), jnp.float32)
    params = f.init(jax.random.PRNGKey(0), x)
    features = np.asarray(f.apply(params, x))
    assert features.shape == (3, 16)
    norms = np.linalg.norm(features, axis=-1)
    if use_norm:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    else:
        assert not np.allclose(norms, 1.0, rtol=1e-3)


def test_parameter_counts_match_published_resnets():
    """Trunk counts equal torchvision's (He et al.) minus the fc layer, plus the 4th input
    channel of the stem (7*7*64 = 3136); GroupNorm has as many parameters as BatchNorm."""
    published_without_fc = {"resnet18": 11_689_512 - 513_000,
                            "resnet50": 25_557_032 - 2_049_000,
                            "resnet101": 44_549_160 - 2_049_000}
    for torso, expected in published_without_fc.items():
        net = make_networks(NetworkConfig(torso=torso), NUM_ACTIONS)
        counts = net.parameter_counts(jax.eval_shape(net.init, jax.random.PRNGKey(0)))
        assert counts["trunk"] == expected + 3136, torso
        c = 2048 if torso != "resnet18" else 512
        assert counts["spatial_embedding"] == 3 * 3 * c
        assert counts["feed_forward"] == c * 512 + 512
        assert counts["heads"] == 3 * (512 * 6 * 51 + 6 * 51)
        assert counts["heads_used"] == sum(a * 51 * 513 for a in NUM_ACTIONS)
        assert counts["total"] == counts["torso"] + counts["heads"]


def test_nature_trunk_count():
    net = make_networks(NetworkConfig(torso="nature"), NUM_ACTIONS)
    counts = net.parameter_counts(jax.eval_shape(net.init, jax.random.PRNGKey(0)))
    conv_0, conv_1, conv_2 = 8 * 8 * 4 * 32 + 32, 4 * 4 * 32 * 64 + 64, 3 * 3 * 64 * 64 + 64
    assert counts["trunk"] == conv_0 + conv_1 + conv_2


def test_bfloat16_compute_is_close_and_keeps_float32_outputs():
    net = make_networks(TINY, NUM_ACTIONS)
    params = net.init(jax.random.PRNGKey(4))
    obs, game_id = _batch()
    f32 = net.apply(params, obs, game_id)
    bf16 = net.apply(params, obs, game_id, "bfloat16")
    assert bf16.logits.dtype == jnp.float32 and bf16.q_values.dtype == jnp.float32
    np.testing.assert_allclose(bf16.logits, f32.logits, atol=0.05)
    with pytest.raises(ValueError, match="compute_dtype"):
        net.apply(params, obs, game_id, "float16")


def test_bad_inputs_raise_clear_errors():
    net = make_networks(TINY, NUM_ACTIONS)
    params = net.init(jax.random.PRNGKey(5))
    obs, game_id = _batch()
    with pytest.raises(AssertionError, match="uint8|dtype|type"):
        net.apply(params, obs.astype(jnp.float32), game_id)
    with pytest.raises(AssertionError, match="game_id"):
        net.apply(params, obs, game_id[:2])
    with pytest.raises(ValueError, match="num_actions"):
        make_networks(TINY, [])
    with pytest.raises(ValueError, match="num_actions"):
        make_networks(TINY, [3, 0])
    # An out-of-range game id yields NaN logits (caught by the update's non-finite check).
    out = net.apply(params, obs[:1], jnp.array([7], jnp.int32))
    assert np.all(np.isnan(out.logits))


@pytest.mark.parametrize("field,value", [
    ("torso", "resnet152"), ("width_multiplier", 0.0), ("spatial_reduction", "max"),
    ("num_atoms", 1), ("v_max", -20.0), ("feed_forward_size", 0), ("num_groups", 0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        NetworkConfig(**{field: value})
