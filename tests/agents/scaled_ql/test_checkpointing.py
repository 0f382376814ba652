"""Checkpoints: round trip, keep-K, refusals, and clear errors for the wrong network."""

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig, init_training_state
from scaled_ql.agents.scaled_ql.checkpointing import (
    Checkpointer,
    CheckpointMismatchError,
    config_from_json,
    config_to_json,
)
from scaled_ql.networks import make_networks

CONFIG = ScaledQLConfig(network=NetworkConfig(torso="nature", feed_forward_size=32, num_groups=4,
                                              num_atoms=11))
GAMES, NUM_ACTIONS = ("Pong", "Breakout"), (6, 4)


def _state(seed=0, num_actions=NUM_ACTIONS, config=CONFIG):
    networks = make_networks(config.network, num_actions)
    return init_training_state(networks, config, jax.random.PRNGKey(seed))


def _save(checkpointer, state, step):
    state = state._replace(step=np.int32(step))
    checkpointer.save(state, games=GAMES, num_actions=NUM_ACTIONS, config=CONFIG,
                      extra={"note": "test"})
    return state


def _equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                    jax.tree_util.tree_leaves(b)))


def test_round_trip_restores_every_array_and_the_metadata(tmp_path):
    checkpointer = Checkpointer(tmp_path, max_to_keep=2)
    saved = _save(checkpointer, _state(seed=1), step=7)
    restored, meta = checkpointer.restore(_state(seed=2), games=GAMES, num_actions=NUM_ACTIONS)
    assert _equal(restored.params, saved.params)
    assert _equal(restored.target_params, saved.target_params)
    assert _equal(restored.opt_state, saved.opt_state)
    assert int(restored.step) == 7 and np.array_equal(restored.rng_key, saved.rng_key)
    assert not _equal(_state(seed=2).params, saved.params)  # the template's values were replaced
    assert (meta.step, meta.games, meta.num_actions) == (7, GAMES, NUM_ACTIONS)
    assert meta.extra == {"note": "test"} and config_from_json(meta.config) == CONFIG


def test_keeps_only_the_last_k_and_latest_is_the_newest(tmp_path):
    checkpointer = Checkpointer(tmp_path, max_to_keep=2)
    for step in (10, 20, 30):
        _save(checkpointer, _state(), step)
    assert checkpointer.all_steps() == [20, 30]
    assert checkpointer.latest_step() == 30
    assert not list(tmp_path.glob("*tmp*"))  # no temporary folders left


def test_refuses_non_finite_parameters_and_keeps_the_previous_latest(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    good = _save(checkpointer, _state(), step=5)
    bad = good._replace(params=jax.tree_util.tree_map(lambda x: x * np.nan, good.params))
    with pytest.raises(FloatingPointError, match="non-finite parameters at step 6"):
        _save(checkpointer, bad, step=6)
    assert checkpointer.latest_step() == 5


def test_another_game_set_is_refused_with_both_lists_named(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    _save(checkpointer, _state(), step=1)
    with pytest.raises(CheckpointMismatchError, match=r"'Pong', 'Breakout'.*'Pong', 'Seaquest'"):
        checkpointer.restore(_state(num_actions=(6, 18)), games=("Pong", "Seaquest"),
                             num_actions=(6, 18))


def test_another_architecture_is_refused(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    _save(checkpointer, _state(), step=1)
    wider = ScaledQLConfig(network=NetworkConfig(torso="nature", feed_forward_size=64,
                                                 num_groups=4, num_atoms=11))
    with pytest.raises(CheckpointMismatchError, match="does not fit this network"):
        checkpointer.restore(_state(config=wider), games=GAMES, num_actions=NUM_ACTIONS)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        Checkpointer(tmp_path).restore(_state(), games=GAMES, num_actions=NUM_ACTIONS)


def test_config_json_round_trip_keeps_infinities():
    config = ScaledQLConfig(max_grad_norm=float("inf"), reward_clip=float("inf"))
    assert config_from_json(config_to_json(config)) == config
