"""Checkpoints: round trip, keep-K, refusals, and clear errors for the wrong network or suite."""

import json

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig, init_training_state
from scaled_ql.agents.scaled_ql.checkpointing import (
    Checkpointer,
    CheckpointMismatchError,
    SuiteMismatchError,
    config_from_json,
    config_to_json,
)
from scaled_ql.networks import make_networks
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION

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


# -- suites --------------------------------------------------------------------------------

MINATAR_CONFIG = ScaledQLConfig(network=NetworkConfig(
    torso="minatar_resnet", width_multiplier=0.25, num_blocks=1, feed_forward_size=32,
    num_groups=4, num_atoms=11))
MINATAR_GAMES, MINATAR_ACTIONS = ("minatar/Breakout", "minatar/Asterix"), (3, 5)


def _minatar_state(seed=0):
    networks = make_networks(MINATAR_CONFIG.network, MINATAR_ACTIONS,
                             observation=MINATAR_OBSERVATION)
    return init_training_state(networks, MINATAR_CONFIG, jax.random.PRNGKey(seed))


def test_a_checkpoint_records_its_suite_and_round_trips_a_minatar_network(tmp_path):
    atari, minatar = Checkpointer(tmp_path / "atari"), Checkpointer(tmp_path / "minatar")
    _save(atari, _state(), step=1)
    saved = _minatar_state(seed=1)._replace(step=np.int32(4))
    minatar.save(saved, games=MINATAR_GAMES, num_actions=MINATAR_ACTIONS, config=MINATAR_CONFIG)
    assert atari.read_meta().suite == "atari"
    assert atari.read_meta().observation == ATARI_OBSERVATION
    meta = minatar.read_meta()
    assert (meta.suite, meta.observation, meta.games) == ("minatar", MINATAR_OBSERVATION,
                                                          MINATAR_GAMES)
    on_disk = json.loads((tmp_path / "minatar" / "4" / "meta" / "metadata").read_text())
    assert on_disk["suite"] == "minatar"
    restored, _ = minatar.restore(_minatar_state(seed=2), games=MINATAR_GAMES,
                                  num_actions=MINATAR_ACTIONS)
    assert _equal(restored.params, saved.params)
    in_channels = {np.shape(leaves["w"])[2] for module, leaves in restored.params.items()
                   if module.startswith("torso") and np.ndim(leaves.get("w")) == 4}
    assert 10 in in_channels  # the stem reads 10 MinAtar channels


def test_a_checkpoint_of_one_suite_is_refused_for_the_other_naming_both(tmp_path):
    atari, minatar = Checkpointer(tmp_path / "atari"), Checkpointer(tmp_path / "minatar")
    _save(atari, _state(), step=2)
    minatar.save(_minatar_state(), games=MINATAR_GAMES, num_actions=MINATAR_ACTIONS,
                 config=MINATAR_CONFIG)
    with pytest.raises(SuiteMismatchError) as raised:
        atari.restore(_minatar_state(), games=MINATAR_GAMES, num_actions=MINATAR_ACTIONS)
    assert str(raised.value) == (
        f"{atari.directory}/2 is a checkpoint of the atari suite (games ['Pong', 'Breakout'], "
        "observations uint8 [84, 84, 4]); ['minatar/Breakout', 'minatar/Asterix'] are minatar "
        "games (observations uint8 [10, 10, 10]): a network reads one suite's observations, so "
        "a checkpoint loads, resumes or fine-tunes only for games of its own suite")
    with pytest.raises(SuiteMismatchError, match=r"/0 is a checkpoint of the minatar suite \(games "
                       r"\['minatar/Breakout', 'minatar/Asterix'\].*\['Pong', 'Breakout'\] are "
                       r"atari games"):
        minatar.restore(_state(), games=GAMES, num_actions=NUM_ACTIONS)
    # A named error, and still the ValueError / CheckpointMismatchError callers catch.
    assert issubclass(SuiteMismatchError, CheckpointMismatchError)
    assert issubclass(SuiteMismatchError, ValueError)


def test_a_checkpoint_without_a_suite_field_is_an_atari_checkpoint(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    saved = _save(checkpointer, _state(seed=3), step=5)
    path = tmp_path / "5" / "meta" / "metadata"
    legacy = json.loads(path.read_text())
    del legacy["suite"]  # as written before suites existed
    path.write_text(json.dumps(legacy))
    checkpointer = Checkpointer(tmp_path)
    assert checkpointer.read_meta().suite == "atari"
    restored, _ = checkpointer.restore(_state(), games=GAMES, num_actions=NUM_ACTIONS)
    assert _equal(restored.params, saved.params)
    with pytest.raises(SuiteMismatchError, match="is a checkpoint of the atari suite"):
        checkpointer.restore(_minatar_state(), games=MINATAR_GAMES, num_actions=MINATAR_ACTIONS)
