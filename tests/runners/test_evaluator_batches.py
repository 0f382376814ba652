"""The evaluator pads a group's shrinking batch to a power of two: the network is compiled for
a handful of batch sizes, and every running episode still gets its own greedy action."""

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.agents.scaled_ql.losses import masked_argmax
from scaled_ql.environments import vector
from scaled_ql.networks import make_networks
from scaled_ql.runners import evaluate as evaluate_lib
from scaled_ql.types import MINATAR_OBSERVATION
from tests.runners.minatar import PRETRAIN_GAMES, tiny_minatar_agent

SIZES = (16, 15, 9, 8, 5, 3, 2, 1, 16, 7, 12)


@pytest.mark.parametrize("size, padded", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (9, 16),
                                          (16, 16), (17, 32)])
def test_padded_batch_size_is_the_next_power_of_two(size, padded):
    assert evaluate_lib.padded_batch_size(size) == padded


def test_padded_batch_size_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        evaluate_lib.padded_batch_size(0)


def test_one_compilation_per_power_of_two_and_each_row_its_own_greedy_action(monkeypatch):
    traced = []  # the batch size of every trace of the jitted policy (= every compilation)
    make_policy = evaluate_lib.make_multi_game_policy

    def recording(networks, epsilon, compute_dtype):
        policy = make_policy(networks, epsilon, compute_dtype)

        def traced_policy(params, key, observations, heads):
            traced.append(observations.shape[0])
            return policy(params, key, observations, heads)

        return traced_policy

    calls = {}

    def play(act, games, num_episodes, **_):
        # Stands in for the environments: hands `act` the batch sizes a group goes through
        # when its episodes end one by one (and a new round starting at full size).
        rng = np.random.default_rng(0)
        for i, size in enumerate(SIZES):
            observations = rng.integers(0, 2, (size, *MINATAR_OBSERVATION.shape), np.uint8)
            game_ids = rng.integers(0, len(games), size).astype(np.int32)
            calls[i] = (observations.copy(), game_ids.copy(), act(observations, game_ids))
        return []

    monkeypatch.setattr(evaluate_lib, "make_multi_game_policy", recording)
    monkeypatch.setattr(vector, "evaluate_policy", play)
    config = tiny_minatar_agent()
    networks = make_networks(config.network, (3, 5), MINATAR_OBSERVATION)
    params = init_training_state(networks, config, jax.random.PRNGKey(0)).params
    evaluate = evaluate_lib.make_evaluator(networks, PRETRAIN_GAMES, evaluate_lib.EvalProtocol(
        episodes=1, epsilon=0.0, workers=0, progress=False))
    evaluate(params, 0)

    assert sorted(traced) == [1, 2, 4, 8, 16]
    for observations, game_ids, actions in calls.values():
        output = networks.apply(params, observations, game_ids)
        greedy = np.asarray(masked_argmax(output.q_values, output.action_mask))
        assert actions.shape == game_ids.shape
        np.testing.assert_array_equal(actions, greedy)
