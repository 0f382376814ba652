"""Shared fixtures: one small dataset collected from real ALE play, read by several tests."""

import pytest

COLLECTED_GAMES = ("Pong", "Breakout")
COLLECTED_STEPS = 150


@pytest.fixture(scope="session")
def collected(tmp_path_factory):
    """Pong and Breakout, 150 random-policy steps each, written by two collector processes."""
    from scaled_ql.datasets.collect import CollectConfig, collect_games

    data_dir = tmp_path_factory.mktemp("collected")
    configs = [
        CollectConfig(game, num_steps=COLLECTED_STEPS, seed=10 + i, max_episodes_per_shard=2)
        for i, game in enumerate(COLLECTED_GAMES)
    ]
    paths = collect_games(configs, data_dir, show_progress=False)
    return data_dir, configs, paths
