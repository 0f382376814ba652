"""Reverb round trip with a real server: feeder -> per-game tables -> weighted sampling."""

import numpy as np
import pytest

from scaled_ql import types
from scaled_ql.datasets import pipeline, reverb_tables, rlds, transitions
from tests.datasets.helpers import random_episode

pytestmark = pytest.mark.slow


@pytest.fixture
def server_factory():
    servers = []

    def make(config):
        server = reverb_tables.start_server(config)
        servers.append(server)
        return reverb_tables.address(server)

    yield make
    for server in servers:
        server.stop()


def test_table_signature_is_derived_from_the_transition_spec():
    config = reverb_tables.ReplayTablesConfig(
        games=("Pong", "Breakout"), samples_per_insert=8.0, min_size_to_sample=100
    )
    tables = reverb_tables.make_tables(config)
    assert [t.name for t in tables] == ["transitions/Pong", "transitions/Breakout"]
    signature = tables[0].info.signature
    assert signature == transitions.transition_spec()
    assert signature.observation.shape == types.ATARI_OBSERVATION.shape


def test_feeder_to_weighted_sampler_round_trip(tmp_path, server_factory):
    games = ("Pong", "Breakout")
    rng = np.random.default_rng(0)
    for game, num_actions in zip(games, (6, 4)):
        with rlds.RluAtariWriter(tmp_path, game, 1) as writer:
            for i in range(6):
                writer.add_episode(random_episode(rng, 11, num_actions=num_actions, episode_id=i))
    address = server_factory(
        reverb_tables.ReplayTablesConfig(games=games, max_size=1000, min_size_to_sample=10)
    )
    config = pipeline.PipelineConfig(games=games, data_dir=str(tmp_path), batch_size=1, seed=0)
    fed = {}
    stored = {}
    for game_id, game in enumerate(games):
        stream = list(
            pipeline.game_transition_dataset(config, game_id, repeat=False).as_numpy_iterator()
        )
        fed[game] = reverb_tables.feed(address, game, stream)
        stored[game] = {(t.observation.tobytes(), float(t.reward)) for t in stream}
    assert fed == {"Pong": 60, "Breakout": 60}

    weights = (0.75, 0.25)
    sampler = reverb_tables.ReverbSampler(
        address, games, batch_size=250, weights=weights, rate_limiter_timeout_ms=5000, seed=0
    )
    batches = [next(sampler) for _ in range(16)]  # 4000 samples
    game_ids = np.concatenate([b.game_id for b in batches])
    share = np.mean(game_ids == 0)
    sigma = np.sqrt(0.75 * 0.25 / len(game_ids))
    assert abs(share - 0.75) < 4 * sigma, share
    # Every sample is a transition that was fed into its own game's table, intact.
    batch = batches[0]
    for i in range(len(batch.game_id)):
        game = games[batch.game_id[i]]
        assert (batch.observation[i].tobytes(), float(batch.reward[i])) in stored[game]


def test_empty_table_times_out_with_a_clear_message(server_factory):
    address = server_factory(
        reverb_tables.ReplayTablesConfig(games=("Pong", "Breakout"), min_size_to_sample=1)
    )
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, types.ATARI_OBSERVATION.shape, dtype=np.uint8)
    one = types.Transition(obs, np.int32(1), np.float32(0), np.float32(0.99), obs, np.int32(0))
    reverb_tables.feed(address, "Pong", [one] * 5)  # Breakout stays empty
    sampler = reverb_tables.ReverbSampler(
        address, ("Pong", "Breakout"), batch_size=4, rate_limiter_timeout_ms=300
    )
    with pytest.raises(reverb_tables.SamplerTimeoutError, match=r"'Breakout': 0"):
        for _ in range(50):
            next(sampler)


def test_online_tables_use_a_sample_to_insert_limiter():
    import reverb

    config = reverb_tables.ReplayTablesConfig(
        games=("Pong",), samples_per_insert=4.0, min_size_to_sample=50
    )
    limiter = reverb_tables._rate_limiter(config)
    assert isinstance(limiter, reverb.rate_limiters.SampleToInsertRatio)
    offline = reverb_tables._rate_limiter(reverb_tables.ReplayTablesConfig(games=("Pong",)))
    assert isinstance(offline, reverb.rate_limiters.MinSize)
    with pytest.raises(ValueError, match="infinite wait"):
        reverb_tables.make_sampler_dataset(
            "localhost:1", ("Pong",), batch_size=1, rate_limiter_timeout_ms=-1
        )
