"""The Acme learner over the pure update: steps on real RLDS data, skips non-finite updates,
aborts after too many, and serves its parameters as a VariableSource."""

import itertools
import re

import jax
import numpy as np
import pytest
from acme.utils import counting

from scaled_ql.agents.scaled_ql.builder import ScaledQLBuilder
from scaled_ql.agents.scaled_ql.learner import NonFiniteLossError, ScaledQLLearner
from scaled_ql.networks import MINATAR_NETWORKS, make_networks
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION, Transition
from tests.conftest import TRAINING_GAMES, tiny_agent_config

MINATAR_GAMES = ("minatar/Breakout", "minatar/Seaquest")
MINATAR_ACTIONS = (3, 6)


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                    jax.tree_util.tree_leaves(b)))


def test_learner_trains_on_real_rlds_data(training_data):
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    networks = builder.make_networks()
    counter = counting.Counter()
    learner = builder.make_learner(
        jax.random.PRNGKey(0), networks,
        builder.make_offline_dataset_iterator(training_data, shuffle_buffer=200, seed=0),
        counter=counting.Counter(counter, "learner", time_delta=0.0))  # as Acme's layouts do
    before = learner.get_variables(["policy"])[0]
    for _ in range(3):
        learner.step()
    after = learner.get_variables(["policy"])[0]
    assert not _leaves_equal(before, after)
    assert counter.get_counts()["learner_steps"] == 3 and learner.num_steps == 3
    metrics = learner.last_metrics
    assert np.isfinite(metrics["loss"]) and metrics["num_skipped_updates"] == 0
    # Per-game metrics are named by game, and every example was counted for its own game.
    assert sum(metrics[f"count_per_game/{g}"] for g in TRAINING_GAMES) == 16


def _random_batches(batch_size, num_actions, nan_reward_at=(), observation=ATARI_OBSERVATION):
    rng = np.random.default_rng(0)
    shape, top = (batch_size, *observation.shape), observation.max_value + 1
    for i in itertools.count():
        reward = rng.normal(size=batch_size).astype(np.float32)
        if i in nan_reward_at:
            reward[0] = np.nan
        game_id = rng.integers(0, len(num_actions), batch_size).astype(np.int32)
        yield Transition(
            observation=rng.integers(0, top, shape, dtype=np.uint8),
            action=(rng.integers(0, 100, batch_size) % np.asarray(num_actions)[game_id]).astype(
                np.int32),
            reward=reward, discount=np.full(batch_size, 0.99, np.float32),
            next_observation=rng.integers(0, top, shape, dtype=np.uint8),
            game_id=game_id)


def _minatar_learner(batches):
    config = tiny_agent_config(network=MINATAR_NETWORKS["S"])
    networks = make_networks(config.network, MINATAR_ACTIONS, MINATAR_OBSERVATION)
    return ScaledQLLearner(networks, config, batches, jax.random.PRNGKey(0),
                           games=MINATAR_GAMES, counter=counting.Counter())


def test_learner_steps_on_minatar_batches():
    learner = _minatar_learner(_random_batches(16, MINATAR_ACTIONS,
                                               observation=MINATAR_OBSERVATION))
    before = learner.get_variables(["policy"])[0]
    learner.step()
    assert learner.num_steps == 1
    assert not _leaves_equal(before, learner.get_variables(["policy"])[0])
    metrics = learner.last_metrics
    assert np.isfinite(metrics["loss"]) and metrics["num_skipped_updates"] == 0
    assert sum(metrics[f"count_per_game/{g}"] for g in MINATAR_GAMES) == 16


def test_learner_refuses_a_batch_of_the_other_suite():
    minatar = _minatar_learner(_random_batches(16, MINATAR_ACTIONS))  # Atari frames
    with pytest.raises(ValueError, match=re.escape(
            "batch observation is uint8 (16, 84, 84, 4); the network takes uint8 "
            "[B, 10, 10, 10] (one 10x10x10 frame)")):
        minatar.step()
    assert minatar.num_steps == 0
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    atari = builder.make_learner(
        jax.random.PRNGKey(0), builder.make_networks(),
        _random_batches(16, builder.num_actions, observation=MINATAR_OBSERVATION))
    with pytest.raises(ValueError, match=re.escape(
            "batch observation is uint8 (16, 10, 10, 10); the network takes uint8 "
            "[B, 84, 84, 4] (4 stacked 84x84 grayscale frames)")):
        atari.step()


def test_non_finite_batches_are_skipped_then_abort():
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    networks = builder.make_networks()
    learner = builder.make_learner(
        jax.random.PRNGKey(0), networks,
        _random_batches(16, builder.num_actions, nan_reward_at={1, 3, 4, 5}))
    learner._max_consecutive_skips = 3  # noqa: SLF001 (a small threshold for the test)
    learner.step()  # finite
    good = learner.get_variables(["policy"])[0]
    learner.step()  # NaN: skipped, parameters untouched
    assert _leaves_equal(good, learner.get_variables(["policy"])[0])
    assert learner.last_metrics["num_skipped_updates"] == 1
    learner.step()  # finite again: the consecutive count resets
    learner.step()
    learner.step()
    with pytest.raises(NonFiniteLossError, match="3 consecutive updates"):
        learner.step()
    params = learner.get_variables(["policy"])[0]
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(params))


def test_wrong_batch_size_names_the_expected_size():
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(),
                                   _random_batches(8, builder.num_actions))
    with pytest.raises(ValueError, match="batch_size x num_sgd_steps_per_step = 16 x 1 = 16"):
        learner.step()


def test_several_sgd_steps_per_call_count_every_step():
    config = tiny_agent_config(num_sgd_steps_per_step=3)
    builder = ScaledQLBuilder(config, TRAINING_GAMES)
    learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(),
                                   _random_batches(48, builder.num_actions))
    learner.step()
    assert learner.num_steps == 3
