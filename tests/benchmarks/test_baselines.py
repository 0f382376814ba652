"""The network's previous formulation (benchmarks/baselines.py) and the current one compute the
same function: same parameters, same outputs and gradients to float rounding.  This is what lets
`measure_fixes` call the difference a pure speed-up (Nature CNN and heads; GroupNorm in the
MinAtar ResNet)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import baselines
from scaled_ql.agents.scaled_ql import NetworkConfig
from scaled_ql.networks import MINATAR_NETWORKS, make_networks
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION

NUM_ACTIONS = (6, 4, 18)


def _apply_both(config, game_id, observation=ATARI_OBSERVATION):
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.integers(0, observation.max_value + 1,
                                   (len(game_id), *observation.shape), dtype=np.uint8))
    game_id = jnp.asarray(game_id, jnp.int32)
    current = make_networks(config, NUM_ACTIONS, observation)
    with baselines.previous_network():
        previous = make_networks(config, NUM_ACTIONS, observation)
        params_previous = previous.init(jax.random.PRNGKey(1))
        out_previous = jax.jit(previous.apply)(params_previous, obs, game_id)

        def loss_previous(p):
            return jnp.sum(jnp.nan_to_num(previous.apply(p, obs, game_id).logits) ** 2)

        grads_previous = jax.jit(jax.grad(loss_previous))(params_previous)
    params = current.init(jax.random.PRNGKey(1))

    def loss(p):
        return jnp.sum(jnp.nan_to_num(current.apply(p, obs, game_id).logits) ** 2)

    return (params_previous, out_previous, grads_previous,
            params, jax.jit(current.apply)(params, obs, game_id), jax.jit(jax.grad(loss))(params))


@pytest.mark.parametrize("width", [1.0, 0.25])
def test_previous_and_current_network_agree(width):
    config = NetworkConfig(torso="nature", width_multiplier=width, feed_forward_size=32)
    p0, out0, g0, p1, out1, g1 = _apply_both(config, [0, 1, 2, 2, -1])
    jax.tree_util.tree_map(np.testing.assert_array_equal, p0, p1)  # same names, shapes, values
    np.testing.assert_allclose(out1.logits, out0.logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out1.action_mask, out0.action_mask)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), g1, g0)


def test_out_of_range_game_ids_give_nan_logits_in_both():
    config = NetworkConfig(torso="nature", width_multiplier=0.25, feed_forward_size=16)
    _, out0, _, _, out1, _ = _apply_both(config, [3, -4, 0])
    for out in (out0, out1):
        assert np.all(np.isnan(out.logits[:2])) and np.all(np.isfinite(out.logits[2]))


def test_previous_and_current_group_norm_agree_in_the_minatar_resnet():
    p0, out0, g0, p1, out1, g1 = _apply_both(MINATAR_NETWORKS["S"], [0, 1, 2, 2],
                                             MINATAR_OBSERVATION)
    jax.tree_util.tree_map(np.testing.assert_array_equal, p0, p1)
    np.testing.assert_allclose(out1.logits, out0.logits, rtol=1e-4, atol=1e-5)
    # A block's last norm starts at scale 0; its normalised values still reach the test
    # through the gradient of that scale.
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), g1, g0)
