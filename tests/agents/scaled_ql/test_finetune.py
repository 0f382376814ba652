"""Re-heading pre-trained parameters and freezing the torso (pure JAX, the real update step)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scaled_ql.agents.scaled_ql.finetune import (
    HeadMismatchError,
    freeze_torso,
    head_params,
    is_torso_module,
    make_partitioned_optimizer,
    rehead_params,
    trainable_mask,
)
from scaled_ql.agents.scaled_ql.learning import (
    init_training_state,
    make_optimizer,
    make_update_fn,
    starting_after,
)
from scaled_ql.networks import NetworkConfig, make_networks
from scaled_ql.types import Transition
from tests.conftest import tiny_agent_config

SOURCE_GAMES, SOURCE_ACTIONS = ("Pong", "Breakout"), (6, 4)


def _pretrained():
    config = tiny_agent_config()
    networks = make_networks(config.network, SOURCE_ACTIONS)
    return config, jax.device_get(networks.init(jax.random.PRNGKey(0)))


def _batch(game_id: int, num_actions: int, size: int = 16, seed: int = 0) -> Transition:
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, (size, 84, 84, 4), dtype=np.uint8)
    return Transition(
        observation=obs, action=rng.integers(0, num_actions, size).astype(np.int32),
        reward=rng.choice([-1.0, 0.0, 1.0], size).astype(np.float32),
        discount=np.full(size, 0.99, np.float32),
        next_observation=np.roll(obs, 1, axis=0), game_id=np.full(size, game_id, np.int32))


def _torso_leaves(params):
    return {f"{m}/{n}": np.asarray(v) for m, leaves in params.items() if is_torso_module(m)
            for n, v in leaves.items()}


def _to_alien(config, params):
    """`rehead_params` onto Alien (18 actions): the torso copied, a fresh head."""
    return rehead_params(params, network=config.network, source_games=SOURCE_GAMES,
                         source_num_actions=SOURCE_ACTIONS, games=("Alien",), num_actions=(18,),
                         key=jax.random.PRNGKey(1))


def test_rehead_copies_torso_and_adds_a_fresh_head_of_the_new_action_count():
    config, params = _pretrained()
    networks, new, reused = _to_alien(config, params)
    assert reused == ()
    assert networks.num_actions == (18,)
    for name, value in _torso_leaves(params).items():
        np.testing.assert_array_equal(_torso_leaves(new)[name], value, err_msg=name)
    n = config.network.num_atoms
    assert new["heads"]["w"].shape == (1, params["heads"]["w"].shape[1], 18 * n)
    assert new["heads"]["b"].shape == (1, 18 * n)
    # The new network runs and yields 18 valid actions.
    out = networks.apply(new, jnp.zeros((2, 84, 84, 4), jnp.uint8), jnp.zeros((2,), jnp.int32))
    assert out.q_values.shape == (2, 18) and bool(jnp.all(jnp.isfinite(out.q_values)))


def test_rehead_reuses_an_existing_head_exactly_in_a_wider_layout():
    config, params = _pretrained()
    n = config.network.num_atoms
    # Breakout (4 actions, head 1 of an A_max=6 layout) moves next to Alien (A_max=18).
    networks, new, reused = rehead_params(
        params, network=config.network, source_games=SOURCE_GAMES,
        source_num_actions=SOURCE_ACTIONS, games=("Alien", "Breakout"), num_actions=(18, 4),
        key=jax.random.PRNGKey(1))
    assert reused == ("Breakout",)
    old = head_params(params, SOURCE_GAMES, SOURCE_ACTIONS, n, "Breakout")
    moved = head_params(new, ("Alien", "Breakout"), (18, 4), n, "Breakout")
    np.testing.assert_array_equal(moved["w"], old["w"])
    np.testing.assert_array_equal(moved["b"], old["b"])
    # Same Q-values for Breakout before and after the move (torso and head identical).
    obs = jnp.asarray(_batch(0, 4, size=3).observation)
    before = make_networks(config.network, SOURCE_ACTIONS).apply(
        params, obs, jnp.ones((3,), jnp.int32)).q_values[:, :4]
    after = networks.apply(new, obs, jnp.ones((3,), jnp.int32)).q_values[:, :4]
    np.testing.assert_allclose(after, before, rtol=1e-6)
    # reuse_heads=False: the torso moves, the head starts fresh.
    _, fresh, reused = rehead_params(
        params, network=config.network, source_games=SOURCE_GAMES,
        source_num_actions=SOURCE_ACTIONS, games=("Breakout",), num_actions=(4,),
        key=jax.random.PRNGKey(1), reuse_heads=False)
    assert reused == ()
    assert not np.array_equal(head_params(fresh, ("Breakout",), (4,), n, "Breakout")["w"],
                              old["w"])


def test_rehead_rejects_another_architecture_and_another_action_count():
    config, params = _pretrained()
    wider = NetworkConfig(torso="nature", feed_forward_size=32, num_groups=8)
    with pytest.raises(HeadMismatchError, match="torso parameter .*feed_forward"):
        rehead_params(params, network=wider, source_games=SOURCE_GAMES,
                      source_num_actions=SOURCE_ACTIONS, games=("Alien",), num_actions=(18,),
                      key=jax.random.PRNGKey(1))
    with pytest.raises(HeadMismatchError, match="Breakout: the checkpoint's head has 4 actions"):
        rehead_params(params, network=config.network, source_games=SOURCE_GAMES,
                      source_num_actions=SOURCE_ACTIONS, games=("Breakout",), num_actions=(18,),
                      key=jax.random.PRNGKey(1))
    with pytest.raises(HeadMismatchError, match="no head for Alien"):
        head_params(params, SOURCE_GAMES, SOURCE_ACTIONS, config.network.num_atoms, "Alien")


def _train(networks, config, params, steps: int):
    update = make_update_fn(networks, config)
    state = init_training_state(networks, config, jax.random.PRNGKey(2))
    state = state._replace(params=jax.tree_util.tree_map(jnp.asarray, params),
                           target_params=jax.tree_util.tree_map(jnp.array, params))
    for i in range(steps):
        state, metrics = update(state, _batch(0, 18, seed=i))
        assert np.isfinite(float(metrics["loss"]))
    return jax.device_get(state)


def test_frozen_torso_is_bit_for_bit_unchanged_while_the_new_head_learns():
    config, params = _pretrained()
    networks, start, _ = _to_alien(config, params)
    frozen = _train(freeze_torso(networks), config, start, steps=3)
    for name, value in _torso_leaves(start).items():
        np.testing.assert_array_equal(_torso_leaves(frozen.params)[name], value, err_msg=name)
        np.testing.assert_array_equal(_torso_leaves(frozen.target_params)[name], value)
    assert not np.array_equal(frozen.params["heads"]["w"], start["heads"]["w"])
    assert int(frozen.num_skipped_updates) == 0
    # The same steps without freezing move the torso: the test above is not vacuous.
    trained = _train(networks, config, start, steps=3)
    assert any(not np.array_equal(_torso_leaves(trained.params)[k], v)
               for k, v in _torso_leaves(start).items())
    # Freezing changes gradients only: the forward pass (Q-values) is the same function.
    obs, ids = jnp.asarray(_batch(0, 18, size=2).observation), jnp.zeros((2,), jnp.int32)
    np.testing.assert_array_equal(freeze_torso(networks).apply(start, obs, ids).q_values,
                                  networks.apply(start, obs, ids).q_values)


def test_frozen_torso_steps_are_frozen_steps_then_the_torso_trains_from_there():
    config, params = _pretrained()
    networks, start, _ = _to_alien(config, params)
    lp_ft = dataclasses.replace(config, frozen_torso_steps=2)
    probed = _train(networks, lp_ft, start, steps=2)
    frozen = _train(freeze_torso(networks), config, start, steps=2)
    # The first 2 steps are a frozen torso's: the same heads, the torso bit-for-bit the start.
    for name, value in _torso_leaves(start).items():
        np.testing.assert_array_equal(_torso_leaves(probed.params)[name], value, err_msg=name)
    for key in ("w", "b"):
        np.testing.assert_allclose(probed.params["heads"][key], frozen.params["heads"][key],
                                   rtol=1e-6, atol=1e-8)
    assert not np.array_equal(probed.params["heads"]["w"], start["heads"]["w"])
    # The third step moves the torso.
    third = _train(networks, lp_ft, start, steps=3)
    assert any(not np.array_equal(_torso_leaves(third.params)[k], v)
               for k, v in _torso_leaves(start).items())


def test_starting_after_passes_zeros_then_runs_its_optimizer_as_if_created_then():
    # Adam's first step is -lr * g / (|g| + eps) whatever its count would have been: here
    # g = 2, lr = 0.1, eps = 1e-8 -> -0.1 (by hand).  Had Adam counted the two waiting steps,
    # its bias correction would make that step -0.1 * (0.1 / (1 - 0.9**3)) /
    # sqrt(0.001 / (1 - 0.999**3)) = -0.0640 instead.
    transformation = starting_after(2, optax.adam(0.1, eps=1e-8))
    params = {"w": jnp.zeros(3)}
    state = transformation.init(params)
    grads = {"w": jnp.full(3, 2.0)}
    steps = []
    for _ in range(4):
        updates, state = transformation.update(grads, state, params)
        steps.append(np.asarray(updates["w"]))
    np.testing.assert_array_equal(steps[0], 0.0)
    np.testing.assert_array_equal(steps[1], 0.0)
    np.testing.assert_allclose(steps[2], -0.1, rtol=1e-4)
    np.testing.assert_allclose(steps[3], -0.1, rtol=1e-4)  # constant gradient: still -lr
    assert int(state.count) == 4
    assert int(state.inner[0].count) == 2  # Adam's own count: the two steps it ran


def test_frozen_torso_steps_zero_the_torso_gradient_before_the_clipping():
    # max_grad_norm 1: a torso gradient in the norm would shrink the heads' step.
    config, params = _pretrained()
    clipped = dataclasses.replace(config, max_grad_norm=1.0, learning_rate=1.0)
    lp_ft = make_optimizer(dataclasses.replace(clipped, frozen_torso_steps=1))
    grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 1e3), params)
    updates, _ = lp_ft.update(grads, lp_ft.init(params), params)
    frozen_grads = {m: jax.tree_util.tree_map(
        jnp.zeros_like if is_torso_module(m) else (lambda x: x), leaves)
        for m, leaves in grads.items()}
    plain = make_optimizer(clipped)
    expected, _ = plain.update(frozen_grads, plain.init(params), params)
    for module, leaves in updates.items():
        for name, value in leaves.items():
            np.testing.assert_allclose(value, expected[module][name], rtol=1e-6,
                                       err_msg=f"{module}/{name}")
    with pytest.raises(ValueError, match="frozen_torso_steps"):
        dataclasses.replace(config, frozen_torso_steps=-1)


def test_torso_learning_rate_scale_scales_the_torsos_adam_steps_only():
    config, params = _pretrained()
    plain = dataclasses.replace(config, learning_rate=0.1, adam_eps=1e-8, max_grad_norm=1.0)
    slow = dataclasses.replace(plain, torso_learning_rate_scale=0.25)
    # Adam's first step is -lr * g / (|g| + eps), -lr to 1e-4 here (by hand; float32's
    # 1 - 0.999 in the bias correction is off by about 6e-5): the torso moves by
    # -0.1 * 0.25 = -0.025 per parameter, the heads by -0.1.
    grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 3.0), params)
    optimizer = make_optimizer(slow)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for module, leaves in updates.items():
        for name, value in leaves.items():
            np.testing.assert_allclose(value, -0.025 if is_torso_module(module) else -0.1,
                                       rtol=1e-4, err_msg=f"{module}/{name}")
    # Over several steps of changing, clipped gradients (the norm over every module, as with
    # one step size), each torso update is 0.25 times the one-step-size optimizer's (Adam is
    # linear in its step size) and each head update the same.
    reference, scaled = make_optimizer(plain), optimizer
    ref_state, scaled_state = reference.init(params), scaled.init(params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = jax.tree_util.tree_map(
            lambda x: jnp.asarray(rng.normal(0, 5, x.shape), jnp.float32), params)
        expected, ref_state = reference.update(grads, ref_state, params)
        got, scaled_state = scaled.update(grads, scaled_state, params)
        for module, leaves in got.items():
            factor = 0.25 if is_torso_module(module) else 1.0
            for name, value in leaves.items():
                np.testing.assert_allclose(value, factor * expected[module][name], rtol=1e-5,
                                           atol=1e-7, err_msg=f"{module}/{name}")
    # One step size keeps one Adam over every parameter: the optimizer state of the runs (and
    # checkpoints) made before the setting existed.
    one_adam = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.1, eps=1e-8))
    assert (jax.tree_util.tree_structure(make_optimizer(plain).init(params))
            == jax.tree_util.tree_structure(one_adam.init(params)))
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="torso_learning_rate_scale"):
            dataclasses.replace(config, torso_learning_rate_scale=bad)


def test_torso_learning_rate_scale_with_frozen_steps_starts_the_slower_torso_after_them():
    config, params = _pretrained()
    both = dataclasses.replace(config, learning_rate=0.1, adam_eps=1e-8,
                               max_grad_norm=float("inf"), frozen_torso_steps=1,
                               torso_learning_rate_scale=0.5)
    optimizer = make_optimizer(both)
    state = optimizer.init(params)
    grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 2.0), params)
    first, state = optimizer.update(grads, state, params)
    second, _ = optimizer.update(grads, state, params)
    for module, leaves in first.items():
        torso = is_torso_module(module)
        for name, value in leaves.items():
            # Step 1: the torso waits; step 2: its fresh Adam's first step, -0.1 * 0.5.
            # (rtol 1e-4: float32 Adam's bias correction, 1 - 0.999 to about 6e-5.)
            np.testing.assert_allclose(value, 0.0 if torso else -0.1, rtol=1e-4, atol=0)
            np.testing.assert_allclose(second[module][name], -0.05 if torso else -0.1,
                                       rtol=1e-4, err_msg=f"{module}/{name}")


def test_partitioned_optimizer_zeroes_frozen_updates():
    _, params = _pretrained()
    mask = trainable_mask(params, freeze_torso=True)
    assert mask["heads"] == {"w": True, "b": True}
    assert all(not v for m, leaves in mask.items() if is_torso_module(m) for v in leaves.values())
    optimizer = make_partitioned_optimizer(optax.adam(1e-2), params, freeze_torso=True)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for module, leaves in updates.items():
        for name, value in leaves.items():
            assert bool(jnp.all(value == 0)) == is_torso_module(module), f"{module}/{name}"


def test_rehead_builds_the_new_network_for_the_checkpoints_observation_spec():
    from scaled_ql.types import MINATAR_OBSERVATION

    network = NetworkConfig(torso="minatar_resnet", width_multiplier=0.25, num_blocks=1,
                            feed_forward_size=32, num_groups=4, num_atoms=11)
    source = make_networks(network, (3, 5), observation=MINATAR_OBSERVATION)
    params = jax.device_get(source.init(jax.random.PRNGKey(0)))
    networks, new, reused = rehead_params(
        params, network=network, source_games=("minatar/Breakout", "minatar/Asterix"),
        source_num_actions=(3, 5), games=("minatar/Seaquest",), num_actions=(6,),
        key=jax.random.PRNGKey(1), observation=MINATAR_OBSERVATION)
    assert reused == () and networks.observation == MINATAR_OBSERVATION
    for name, value in _torso_leaves(params).items():
        np.testing.assert_array_equal(_torso_leaves(new)[name], value, err_msg=name)
    observation = np.random.default_rng(0).integers(0, 2, (2, 10, 10, 10), dtype=np.uint8)
    output = networks.apply(new, observation, np.zeros(2, np.int32))
    assert output.q_values.shape == (2, 6)
    assert np.array_equal(np.asarray(output.action_mask), np.ones((2, 6), bool))
    # The torso of a MinAtar network does not fit an Atari one built from the same config.
    with pytest.raises(HeadMismatchError, match="torso parameter"):
        rehead_params(params, network=network, source_games=("minatar/Breakout",
                                                              "minatar/Asterix"),
                      source_num_actions=(3, 5), games=("Alien",), num_actions=(18,),
                      key=jax.random.PRNGKey(1))
