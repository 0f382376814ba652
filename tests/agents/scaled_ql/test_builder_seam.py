"""`ScaledQLBuilder` as the only seam: the initial state from a checkpoint, torso freezing in
`make_learner`, the online replay tables, the adder and the learner's sampler (real Reverb,
real MinAtar, a tiny MinAtar network, a checkpoint written by our `Checkpointer`)."""

import jax
import numpy as np
import pytest
import reverb
from acme import specs

from scaled_ql.agents.scaled_ql.adder import TransitionAdder
from scaled_ql.agents.scaled_ql.builder import FinetuneConfig, ScaledQLBuilder
from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer, SuiteMismatchError
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.agents.scaled_ql.replay import DataEnded, ReplayConfig
from scaled_ql.datasets import SamplerTimeoutError, table_name
from scaled_ql.types import MINATAR_OBSERVATION
from tests.runners.minatar import PRETRAIN_GAMES, tiny_minatar_agent

SOURCE_KEY = jax.random.PRNGKey(3)


def write_minatar_checkpoint(run_dir) -> str:
    """Makes `run_dir` a run directory with one checkpoint of the tiny MinAtar network with
    heads for minatar/Breakout (3 actions) and minatar/Asterix (5), written by our
    `Checkpointer` as runs write it; returns it as a string."""
    builder = ScaledQLBuilder(tiny_minatar_agent(), PRETRAIN_GAMES)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        checkpointer.save(builder.make_initial_state(SOURCE_KEY), games=builder.games,
                          num_actions=builder.num_actions, config=builder.config)
    finally:
        checkpointer.close()
    return str(run_dir)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return write_minatar_checkpoint(tmp_path_factory.mktemp("source"))


def _source_params():
    builder = ScaledQLBuilder(tiny_minatar_agent(), PRETRAIN_GAMES)
    return jax.device_get(builder.make_initial_state(SOURCE_KEY).params)


def torso_leaves(params) -> dict:
    """{'module/name': array} of the torso parameters."""
    return {f"{m}/{n}": np.asarray(v) for m, leaves in params.items() if m.startswith("torso")
            for n, v in leaves.items()}


def _head(params, game_index: int, num_actions: int, max_actions: int) -> np.ndarray:
    n = tiny_minatar_agent().network.num_atoms
    return np.asarray(params["heads"]["w"][game_index]).reshape(-1, max_actions, n)[
        :, :num_actions]


def _batch(size: int, num_actions: int, seed: int = 0):
    from scaled_ql.types import Transition

    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 2, (size, *MINATAR_OBSERVATION.shape), dtype=np.uint8)
    return Transition(observation=obs, action=rng.integers(0, num_actions, size).astype(np.int32),
                      reward=rng.choice([-1.0, 0.0, 1.0], size).astype(np.float32),
                      discount=np.full(size, 0.99, np.float32),
                      next_observation=np.roll(obs, 1, axis=0),
                      game_id=np.zeros(size, np.int32))


def test_initial_state_from_a_checkpoint_with_and_without_its_heads(checkpoint):
    source = _source_params()
    key = jax.random.PRNGKey(7)
    # minatar/Asterix is the checkpoint's second head: copied; the torso always is.
    reused = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                             finetune=FinetuneConfig(checkpoint=checkpoint))
    state = reused.make_initial_state(key)
    assert reused.reused_heads() == ("minatar/Asterix",)
    assert int(state.step) == 0
    for name, value in torso_leaves(source).items():
        np.testing.assert_array_equal(torso_leaves(state.params)[name], value, err_msg=name)
    np.testing.assert_array_equal(_head(state.params, 0, 5, 5), _head(source, 1, 5, 5))
    for online, target in zip(jax.tree_util.tree_leaves(state.params),
                              jax.tree_util.tree_leaves(state.target_params)):
        np.testing.assert_array_equal(online, target)

    # Without its heads: same torso, a fresh head.
    fresh_head = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                                 finetune=FinetuneConfig(checkpoint=checkpoint,
                                                         reuse_heads=False))
    state = fresh_head.make_initial_state(key)
    assert fresh_head.reused_heads() == ()
    for name, value in torso_leaves(source).items():
        np.testing.assert_array_equal(torso_leaves(state.params)[name], value, err_msg=name)
    assert not np.array_equal(_head(state.params, 0, 5, 5), _head(source, 1, 5, 5))

    # A new game (6 actions) gets the torso and a fresh head of its own size.
    new_game = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Seaquest",),
                               finetune=FinetuneConfig(checkpoint=checkpoint))
    state = new_game.make_initial_state(key)
    assert new_game.reused_heads() == ()
    assert _head(state.params, 0, 6, 6).shape[1] == 6

    # From scratch: exactly a fresh network from the same key (the checkpoint fixes the suite).
    scratch = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                              finetune=FinetuneConfig(checkpoint=checkpoint, from_scratch=True))
    expected = init_training_state(scratch.make_networks(), scratch.config, key)
    for a, b in zip(jax.tree_util.tree_leaves(scratch.make_initial_state(key)),
                    jax.tree_util.tree_leaves(expected)):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_of_another_suite_or_a_missing_checkpoint_fails(checkpoint, tmp_path):
    atari = ScaledQLBuilder(tiny_minatar_agent(), ("Breakout",),
                            finetune=FinetuneConfig(checkpoint=checkpoint))
    with pytest.raises(SuiteMismatchError, match="checkpoint of the minatar suite"):
        atari.make_initial_state(jax.random.PRNGKey(0))
    with pytest.raises(SuiteMismatchError):  # also from scratch: the suite is the checkpoint's
        ScaledQLBuilder(tiny_minatar_agent(), ("Breakout",), finetune=FinetuneConfig(
            checkpoint=checkpoint, from_scratch=True)).make_initial_state(jax.random.PRNGKey(0))
    missing = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                              finetune=FinetuneConfig(checkpoint=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="no checkpoints/ folder"):
        missing.make_learner(jax.random.PRNGKey(0), missing.make_networks(), iter(()))


def test_make_learner_starts_from_the_checkpoint_and_freezes_the_torso(checkpoint):
    source = _source_params()
    builder = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                              finetune=FinetuneConfig(checkpoint=checkpoint, freeze_torso=True))
    batches = iter([_batch(16, 5, seed) for seed in range(3)])
    learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(), batches)
    start = learner.get_variables(["policy"])[0]
    np.testing.assert_array_equal(_head(start, 0, 5, 5), _head(source, 1, 5, 5))
    for _ in range(3):
        learner.step()
    trained = learner.get_variables(["policy"])[0]
    for name, value in torso_leaves(source).items():  # bit for bit
        np.testing.assert_array_equal(torso_leaves(trained)[name], value, err_msg=name)
    assert not np.array_equal(trained["heads"]["w"], start["heads"]["w"])

    # Without freeze_torso the torso learns too.
    unfrozen = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",),
                               finetune=FinetuneConfig(checkpoint=checkpoint))
    learner = unfrozen.make_learner(jax.random.PRNGKey(0), unfrozen.make_networks(),
                                    iter([_batch(16, 5, seed) for seed in range(3)]))
    for _ in range(3):
        learner.step()
    trained = torso_leaves(learner.get_variables(["policy"])[0])
    assert any(not np.array_equal(trained[name], value)
               for name, value in torso_leaves(source).items())


def test_from_scratch_with_a_frozen_torso_keeps_the_random_torso(checkpoint):
    # The random-features control: the fresh network of the same key, only its head trains.
    key = jax.random.PRNGKey(0)
    builder = ScaledQLBuilder(tiny_minatar_agent(), ("minatar/Asterix",), finetune=FinetuneConfig(
        checkpoint=checkpoint, from_scratch=True, freeze_torso=True))
    fresh = init_training_state(builder.make_networks(), builder.config, key).params
    learner = builder.make_learner(key, builder.make_networks(),
                                   iter([_batch(16, 5, seed) for seed in range(3)]))
    for _ in range(3):
        learner.step()
    trained = learner.get_variables(["policy"])[0]
    source = torso_leaves(_source_params())
    for name, value in torso_leaves(fresh).items():  # bit for bit the random one
        np.testing.assert_array_equal(torso_leaves(trained)[name], value, err_msg=name)
    assert any(not np.array_equal(value, source[name])  # not the checkpoint's
               for name, value in torso_leaves(fresh).items())
    assert not np.array_equal(trained["heads"]["w"], fresh["heads"]["w"])


def test_replay_config_layouts_and_weights():
    offline = ReplayConfig()
    assert not offline.online
    assert offline.sampled_tables(("Pong", "Breakout")) == (("Pong", "Breakout"), (1.0, 1.0))
    mixed = ReplayConfig(samples_per_insert=8.0, offline_ratio=0.25)
    assert [c.games for c in mixed.tables_configs(("Pong",))] == [("Pong/online",), ("Pong",)]
    assert mixed.sampled_tables(("Pong", "Breakout"), (1.0, 3.0)) == (
        ("Pong/online", "Breakout/online", "Pong", "Breakout"), (0.75, 2.25, 0.25, 0.75))
    with pytest.raises(ValueError, match="offline_ratio mixes offline tables into online"):
        ReplayConfig(offline_ratio=0.5)
    with pytest.raises(ValueError, match=r"min_size \(10\) must be <= max_size \(5\)"):
        ReplayConfig(min_size=10, max_size=5)
    with pytest.raises(ValueError, match="offline_ratio must be in"):
        ReplayConfig(samples_per_insert=1.0, offline_ratio=1.0)


def _online_builder(**replay):
    return ScaledQLBuilder(tiny_minatar_agent(batch_size=4), ("minatar/Asterix",),
                           replay=ReplayConfig(samples_per_insert=2.0, **replay))


def test_online_tables_adder_and_mixed_sampler_through_reverb():
    from scaled_ql.datasets import feed

    builder = _online_builder(max_size=100, min_size=4, samples_per_insert_tolerance=5.0,
                              offline_ratio=0.5, offline_max_size=50, offline_min_size=2,
                              sampler_timeout_ms=10_000)
    environment = builder.make_environment("minatar/Asterix", 5)  # seed second: Acme factory
    tables = {t.name: t for t in builder.make_replay_tables(
        specs.make_environment_spec(environment))}
    online, offline = table_name("minatar/Asterix/online"), table_name("minatar/Asterix")
    assert sorted(tables) == [offline, online]
    limiter = tables[online].info.rate_limiter_info
    assert (limiter.samples_per_insert, limiter.min_size_to_sample) == (2.0, 4)
    assert tables[offline].info.rate_limiter_info.min_size_to_sample == 2
    assert (tables[online].info.max_size, tables[offline].info.max_size) == (100, 50)
    server = reverb.Server(list(tables.values()), port=None)
    try:
        address = f"localhost:{server.port}"
        client = reverb.Client(address)
        adder = builder.make_adder(client)  # the builder's only game
        assert isinstance(adder, TransitionAdder)
        timestep = environment.reset()
        adder.add_first(timestep)
        played = 0
        while played < 8 and not timestep.last():
            timestep = environment.step(played % 5)
            adder.add(played % 5, timestep)
            played += 1
        adder.flush()
        info = client.server_info()
        assert (info[online].current_size, info[offline].current_size) == (played, 0)

        # The offline table, fed from "RLDS" (marked by reward 0.5); each batch mixes both.
        marked = _batch(8, 5)._replace(reward=np.full(8, 0.5, np.float32))
        assert feed(address, "minatar/Asterix",
                    [jax.tree_util.tree_map(lambda x, i=i: x[i], marked) for i in range(8)]) == 8
        iterator = builder.make_dataset_iterator(client)
        rewards = []
        for _ in range(5):
            batch = next(iterator)
            assert batch.observation.shape == (4, *MINATAR_OBSERVATION.shape)
            assert np.asarray(batch.game_id).tolist() == [0] * 4
            rewards += np.asarray(batch.reward).tolist()
        # 20 draws at weights 0.5 / 0.5: both tables appear (all from one: p = 2e-6).
        assert 0.5 in rewards and any(r != 0.5 for r in rewards)
        assert all(r in (-1.0, 0.0, 1.0, 0.5) for r in rewards)  # adder: clipped rewards
    finally:
        server.stop()


def test_blocked_sampler_ends_with_data_ended_or_times_out_naming_the_tables():
    builder = _online_builder(min_size=4, sampler_poll_ms=200, sampler_timeout_ms=1_000)
    server = reverb.Server(builder.make_replay_tables(), port=None)
    try:
        client = reverb.Client(f"localhost:{server.port}")
        calls = []
        ended = builder.make_dataset_iterator(client, should_end=lambda: calls.append(1) or
                                              len(calls) >= 2)
        with pytest.raises(DataEnded):
            next(ended)
        assert len(calls) == 2  # polled once per 200 ms slice
        with pytest.raises(SamplerTimeoutError, match="minatar/Asterix/online"):
            next(builder.make_dataset_iterator(client))
    finally:
        server.stop()


def test_adder_needs_online_tables_and_a_game_and_spec_checks():
    assert ScaledQLBuilder(tiny_minatar_agent(), PRETRAIN_GAMES).make_adder(None) is None
    online = ScaledQLBuilder(tiny_minatar_agent(), PRETRAIN_GAMES,
                             replay=ReplayConfig(samples_per_insert=1.0))
    with pytest.raises(ValueError, match="name the game the actor plays"):
        online.make_adder(None)
    atari_spec = specs.EnvironmentSpec(
        observations=specs.Array((84, 84, 4), np.uint8), actions=specs.DiscreteArray(4),
        rewards=specs.Array((), np.float32), discounts=specs.BoundedArray((), np.float32, 0, 1))
    with pytest.raises(ValueError, match=r"uint8 \(84, 84, 4\); this builder's games"):
        online.make_networks(atari_spec)
    with pytest.raises(ValueError, match="minatar games"):
        online.make_replay_tables(atari_spec)
