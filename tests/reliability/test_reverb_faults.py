"""Reverb faults with a real server: starved tables time the learner out instead of hanging,
and a Reverb checkpoint restores with a warning when the table settings changed."""

import time
import warnings

import jax
import pytest
import reverb

from scaled_ql.agents.scaled_ql.builder import ScaledQLBuilder
from scaled_ql.agents.scaled_ql.replay import ReplayConfig
from scaled_ql.datasets import pipeline
from scaled_ql.datasets import reverb_tables as rt
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.reliability import faults

TIMEOUT_MS = 1500


def _real_transitions(data_dir: str, game: str, count: int) -> list:
    config = pipeline.PipelineConfig(games=TRAINING_GAMES, data_dir=data_dir, batch_size=1,
                                     seed=0)
    stream = pipeline.game_transition_dataset(config, TRAINING_GAMES.index(game), repeat=False)
    return list(stream.take(count).as_numpy_iterator())


@pytest.mark.parametrize("row, fed", [
    ("reverb_empty_table", {}),
    ("reverb_starved_table", {"Pong": 40, "Breakout": 3}),
])
def test_starved_tables_time_the_learner_out_with_table_sizes(training_data, row, fed):
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES, replay=ReplayConfig(
        min_size=20, max_size=100, sampler_timeout_ms=TIMEOUT_MS))
    server = reverb.Server(builder.make_replay_tables(), port=None)
    try:
        client = reverb.Client(rt.address(server))
        for game, count in fed.items():
            assert rt.feed(rt.address(server), game,
                           _real_transitions(training_data, game, count)) == count
        learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(),
                                       builder.make_dataset_iterator(client))
        started = time.monotonic()
        with pytest.raises(rt.SamplerTimeoutError) as raised:
            learner.step()  # every batch mixes both games: the first already needs both
        assert time.monotonic() - started < 60  # the timeout, not a hang
        sizes = {game: fed.get(game, 0) for game in TRAINING_GAMES}
        faults.check(row, str(raised.value), address=rt.address(server), timeout_ms=TIMEOUT_MS,
                     sizes=sizes)
        assert learner.num_steps == 0
    finally:
        server.stop()


def _server_with_items(config, checkpoint_dir, items: int, data_dir: str):
    server = rt.start_server(config, checkpoint_dir=checkpoint_dir)
    assert rt.feed(rt.address(server), "Pong", _real_transitions(data_dir, "Pong", items)) == items
    return server


def test_reverb_checkpoint_restores_items_and_warns_about_changed_settings(training_data,
                                                                          tmp_path):
    checkpoints = tmp_path / "reverb"
    saved = rt.ReplayTablesConfig(games=("Pong",), max_size=100, min_size_to_sample=1)
    server = _server_with_items(saved, checkpoints, 7, training_data)
    try:
        path = rt.checkpoint_tables(rt.address(server), saved)
    finally:
        server.stop()
    assert rt.latest_checkpoint(checkpoints) == path and (path / rt.TABLES_FILE).exists()

    # The same settings: restored silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        server = rt.start_server(saved, checkpoint_dir=checkpoints)
    try:
        info = reverb.Client(rt.address(server)).server_info()["transitions/Pong"]
        assert info.current_size == 7
    finally:
        server.stop()

    # A bigger table requested: Reverb keeps the checkpointed size, and we say so.
    bigger = rt.ReplayTablesConfig(games=("Pong",), max_size=200, min_size_to_sample=1)
    with pytest.warns(rt.ReplayConfigChangedWarning) as caught:
        server = rt.start_server(bigger, checkpoint_dir=checkpoints)
    try:
        (warning,) = caught
        faults.check("reverb_restore_changed", str(warning.message), checkpoint=path,
                     table="transitions/Pong", old=100, new=200)
        info = reverb.Client(rt.address(server)).server_info()["transitions/Pong"]
        assert (info.current_size, info.max_size) == (7, 100)  # what Reverb silently keeps
    finally:
        server.stop()


def test_reverb_checkpoint_with_a_table_the_config_lacks_is_refused(training_data, tmp_path):
    checkpoints = tmp_path / "reverb"
    both = rt.ReplayTablesConfig(games=TRAINING_GAMES, max_size=100, min_size_to_sample=1)
    server = _server_with_items(both, checkpoints, 3, training_data)
    try:
        path = rt.checkpoint_tables(rt.address(server), both)
    finally:
        server.stop()
    pong_only = rt.ReplayTablesConfig(games=("Pong",), max_size=100, min_size_to_sample=1)
    with pytest.raises(ValueError) as raised:
        rt.start_server(pong_only, checkpoint_dir=checkpoints)
    faults.check("reverb_restore_removed_table", str(raised.value), checkpoint=path,
                 extra=["transitions/Breakout"], tables=["transitions/Pong"])
