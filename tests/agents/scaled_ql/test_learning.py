"""The pure update step: loss composition, target refresh, scan, non-finite skips, bfloat16,
and data parallelism over 2 host devices (in a subprocess, which needs its own XLA flags)."""

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql import (
    NetworkConfig,
    ScaledQLConfig,
    init_training_state,
    make_loss_fn,
    make_sgd_step,
    make_update_fn,
)
from scaled_ql.networks import MINATAR_NETWORKS, make_networks
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION, Transition

NUM_ACTIONS = (3, 5)
CONFIG = ScaledQLConfig(
    network=NetworkConfig(torso="nature", width_multiplier=0.125, feed_forward_size=16,
                          num_atoms=11, v_min=-2.0, v_max=2.0),
    learning_rate=1e-3, target_update_period=3, batch_size=4, num_sgd_steps_per_step=2)


def make_batch(leading=(4,), seed=0, observation=ATARI_OBSERVATION) -> Transition:
    rng = np.random.default_rng(seed)
    game_id = rng.integers(0, 2, size=leading).astype(np.int32)
    shape, top = (*leading, *observation.shape), observation.max_value + 1
    return Transition(
        observation=rng.integers(0, top, size=shape, dtype=np.uint8),
        action=(rng.integers(0, 3, size=leading)).astype(np.int32),
        reward=rng.uniform(-1, 1, size=leading).astype(np.float32),
        discount=np.full(leading, 0.99, np.float32),
        next_observation=rng.integers(0, top, size=shape, dtype=np.uint8),
        game_id=game_id,
    )


@pytest.fixture(scope="module")
def networks():
    return make_networks(CONFIG.network, NUM_ACTIONS)


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_loss_is_the_weighted_sum_of_its_terms(networks):
    state = init_training_state(networks, CONFIG, jax.random.PRNGKey(0))
    batch = make_batch()
    loss, m = jax.jit(make_loss_fn(networks, CONFIG))(state.params, state.target_params, batch)
    np.testing.assert_allclose(loss, m["td_loss"] + CONFIG.cql_alpha * m["cql_loss"], rtol=1e-6)
    heavy = dataclasses.replace(CONFIG, td_weight=2.0, cql_alpha=3.0)
    loss2, _ = jax.jit(make_loss_fn(networks, heavy))(state.params, state.target_params, batch)
    np.testing.assert_allclose(loss2, 2 * m["td_loss"] + 3 * m["cql_loss"], rtol=1e-6)
    bc = dataclasses.replace(CONFIG, td_weight=0.0, cql_alpha=0.0, bc_weight=1.0)
    loss3, m3 = jax.jit(make_loss_fn(networks, bc))(state.params, state.target_params, batch)
    assert "td_loss" not in m3 and "cql_loss" not in m3
    np.testing.assert_allclose(loss3, m["cql_loss"], rtol=1e-6)  # same cross-entropy on Q
    per_game = np.asarray(m["td_loss_sum_per_game"]) / np.asarray(m["count_per_game"])
    assert np.asarray(m["count_per_game"]).sum() == 4
    np.testing.assert_allclose(np.nansum(per_game * m["count_per_game"]) / 4, m["td_loss"],
                               rtol=1e-5)


@pytest.mark.parametrize("td_loss", ["hl_gauss", "mse", "huber"])
def test_alternative_td_losses_run_and_are_finite(networks, td_loss):
    config = dataclasses.replace(CONFIG, td_loss=td_loss, double_q=True)
    state = init_training_state(networks, config, jax.random.PRNGKey(0))
    loss_fn = jax.jit(make_loss_fn(networks, config))
    loss, m = loss_fn(state.params, state.target_params, make_batch())
    assert np.isfinite(loss) and m["td_loss"] > 0


def test_scan_equals_sequential_steps_and_target_refreshes_on_period(networks):
    state0 = init_training_state(networks, CONFIG, jax.random.PRNGKey(1))
    assert _leaves_equal(state0.params, state0.target_params)
    batch = make_batch((2, 4), seed=1)
    sgd_step = jax.jit(make_sgd_step(networks, CONFIG))
    s1, _ = sgd_step(state0, jax.tree_util.tree_map(lambda x: x[0], batch))
    s2, _ = sgd_step(s1, jax.tree_util.tree_map(lambda x: x[1], batch))
    assert not _leaves_equal(s2.params, state0.params)
    assert _leaves_equal(s2.target_params, state0.params)  # period 3: not yet refreshed
    update = make_update_fn(networks, CONFIG)
    scanned, metrics = update(init_training_state(networks, CONFIG, jax.random.PRNGKey(1)), batch)
    assert int(scanned.step) == 2 and int(metrics["step"]) == 2
    leaves = zip(jax.tree_util.tree_leaves(scanned.params), jax.tree_util.tree_leaves(s2.params))
    for x, y in leaves:
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    s3, _ = sgd_step(s2, jax.tree_util.tree_map(lambda x: x[0], batch))
    assert _leaves_equal(s3.target_params, s3.params)  # step 3: refreshed
    assert metrics["td_loss_per_game"].shape == (2,)
    assert float(metrics["count_per_game"].sum()) == 8


def test_non_finite_update_is_skipped_and_counted(networks):
    state = init_training_state(networks, CONFIG, jax.random.PRNGKey(2))
    params_before = jax.tree_util.tree_map(np.asarray, state.params)
    batch = make_batch((2, 4), seed=2)
    batch = batch._replace(reward=batch.reward.copy())
    batch.reward[0, 1] = np.nan  # the first of the two steps is poisoned
    state, metrics = make_update_fn(networks, CONFIG)(state, batch)
    assert int(state.num_skipped_updates) == 1 and int(metrics["num_skipped_in_call"]) == 1
    assert int(state.step) == 2
    assert not _leaves_equal(state.params, params_before)  # the clean second step applied
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state.params))


def test_bfloat16_compute_keeps_float32_state(networks):
    config = dataclasses.replace(CONFIG, compute_dtype="bfloat16")
    state = init_training_state(networks, config, jax.random.PRNGKey(3))
    batch = make_batch((2, 4), seed=3)
    first = jax.tree_util.tree_map(lambda x: x[0], batch)
    f32_loss, _ = jax.jit(make_loss_fn(networks, CONFIG))(state.params, state.target_params, first)
    bf16_loss, _ = jax.jit(make_loss_fn(networks, config))(state.params, state.target_params, first)
    np.testing.assert_allclose(bf16_loss, f32_loss, rtol=0.02)
    state, metrics = make_update_fn(networks, config)(state, batch)
    leaves = jax.tree_util.tree_leaves((state.params, state.opt_state))
    assert all(x.dtype != jnp.bfloat16 for x in leaves)
    assert np.isfinite(metrics["loss"]) and int(state.num_skipped_updates) == 0


def test_bad_batch_shapes_raise(networks):
    update = make_update_fn(networks, CONFIG)
    state = init_training_state(networks, CONFIG, jax.random.PRNGKey(4))
    with pytest.raises(ValueError, match="num_sgd_steps_per_step=2"):
        update(state, make_batch((3, 4)))
    with pytest.raises(ValueError, match="num_sgd_steps_per_step=2"):
        update(state, make_batch((4,)))


@pytest.mark.slow
def test_update_takes_the_networks_suite_and_names_its_shape():
    """A MinAtar network updates on [S, B, 10, 10, 10] batches and refuses Atari frames with
    the shape it expects; the loss's own trace-time check names the spec too."""
    config = dataclasses.replace(CONFIG, network=MINATAR_NETWORKS["S"])
    net = make_networks(config.network, NUM_ACTIONS, MINATAR_OBSERVATION)
    update = make_update_fn(net, config)
    state = init_training_state(net, config, jax.random.PRNGKey(6))
    with pytest.raises(ValueError, match=re.escape(
            "expected [num_sgd_steps_per_step=2, B, 10, 10, 10] (minatar observations)")):
        update(state, make_batch((2, 4)))
    state, metrics = update(state, make_batch((2, 4), observation=MINATAR_OBSERVATION))
    assert int(state.step) == 2 and np.isfinite(metrics["loss"])
    loss_fn = make_loss_fn(net, config)
    with pytest.raises(AssertionError, match=re.escape("minatar observation must be "
                                                       "[B, 10, 10, 10]")):
        loss_fn(state.params, state.target_params, make_batch((4,)))


def test_config_validation_names_the_field():
    for field, value in [("td_loss", "c52"), ("cql_alpha", -1.0), ("compute_dtype", "fp16"),
                         ("target_update_period", 0), ("discount", 1.5), ("network", {})]:
        with pytest.raises(ValueError, match=field):
            ScaledQLConfig(**{field: value})
    with pytest.raises(ValueError, match="at least one loss weight"):
        ScaledQLConfig(td_weight=0.0, cql_alpha=0.0, bc_weight=0.0)


def test_the_update_donates_its_input_state_without_a_persistent_cache(networks):
    state = init_training_state(networks, CONFIG, jax.random.PRNGKey(3))
    leaf = jax.tree_util.tree_leaves(state.params)[0]
    assert not jax.config.jax_compilation_cache_dir
    make_update_fn(networks, CONFIG)(state, make_batch((2, 4), seed=3))
    assert leaf.is_deleted()  # its buffer became the output's


_CACHED_UPDATE_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from tests.agents.scaled_ql.test_learning import CONFIG, NUM_ACTIONS, make_batch
    from scaled_ql.agents.scaled_ql import init_training_state, make_update_fn
    from scaled_ql.networks import make_networks
    net = make_networks(CONFIG.network, NUM_ACTIONS)
    state = init_training_state(net, CONFIG, jax.random.PRNGKey(4))
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.params)]
    leaf = jax.tree_util.tree_leaves(state.params)[0]
    state, _ = make_update_fn(net, CONFIG)(state, make_batch((2, 4), seed=4))
    after = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.params)]
    changed = sum(not np.array_equal(x, y) for x, y in zip(before, after))
    print("RESULT", int(state.step), changed, len(after), leaf.is_deleted(),
          float(sum(np.abs(x).sum() for x in after)))
""")


@pytest.mark.slow
def test_an_update_loaded_from_the_persistent_compilation_cache_still_trains(tmp_path):
    """jax 0.4.30 on CPU: a donated executable loaded back from the persistent cache leaves the
    parameters unchanged (`learning.donation_is_safe`).  The second process loads the update
    that the first compiled, and must train exactly as the first did."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp_path),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    root = pathlib.Path(__file__).resolve().parents[3]  # the repository
    results = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", _CACHED_UPDATE_SCRIPT], env=env,
                                cwd=root, check=False, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        (line,) = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")]
        results.append(line.split()[1:])
        assert any(p.name.startswith("jit__update") for p in tmp_path.iterdir())  # cached
    for step, changed, leaves, donated, _ in results:
        assert (step, donated) == ("2", "False")  # two SGD steps; the input state kept
        assert changed == leaves  # every parameter moved
    assert results[0] == results[1]  # the cache-loaded update computes what the compiled one did


_DATA_PARALLEL_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    assert jax.local_device_count() == 2, jax.local_devices()
    from tests.agents.scaled_ql.test_learning import CONFIG, NUM_ACTIONS, make_batch
    from scaled_ql.agents.scaled_ql import init_training_state, make_update_fn
    from scaled_ql.networks import make_networks
    net = make_networks(CONFIG.network, NUM_ACTIONS)
    batch = make_batch((2, 4), seed=5)
    out = {}
    for name, devices in [("one", jax.local_devices()[:1]), ("two", None)]:
        state = init_training_state(net, CONFIG, jax.random.PRNGKey(5))
        state, metrics = make_update_fn(net, CONFIG, devices)(state, batch)
        out[name] = (state, metrics)
    (s1, m1), (s2, m2) = out["one"], out["two"]
    assert len(jax.tree_util.tree_leaves(s2.params)[0].sharding.device_set) == 2
    for x, y in zip(jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s2.params)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)
    try:
        make_update_fn(net, CONFIG)(state, make_batch((2, 3)))
    except ValueError as e:
        assert "not divisible by the 2 devices" in str(e), e
    else:
        raise AssertionError("odd batch accepted")
    print("DATA PARALLEL OK")
""")


@pytest.mark.slow
def test_data_parallel_over_two_host_devices_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    root = pathlib.Path(__file__).resolve().parents[3]  # the repository
    result = subprocess.run([sys.executable, "-c", _DATA_PARALLEL_SCRIPT], env=env, cwd=root,
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DATA PARALLEL OK" in result.stdout
