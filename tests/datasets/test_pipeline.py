"""The multi-game stream: mixing by weight, batching, numpy and JAX iterators."""

import numpy as np
import pytest

from scaled_ql import types
from scaled_ql.datasets import pipeline, rlds, rlu_atari
from tests.datasets.helpers import random_episode


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Two games (Pong: 6 actions, Breakout: 4), two runs of Pong, ten 8-step episodes each."""
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    for game, run, actions in (("Pong", 1, 6), ("Pong", 2, 6), ("Breakout", 1, 4)):
        with rlds.RluAtariWriter(root, game, run, max_episodes_per_shard=4) as writer:
            for i in range(10):
                writer.add_episode(
                    random_episode(rng, 8, num_actions=actions, episode_id=i, checkpoint_id=i // 5)
                )
    return root


def test_batches_have_transition_shapes_and_both_games(data_dir):
    config = pipeline.PipelineConfig(
        games=("Pong", "Breakout"),
        data_dir=str(data_dir),
        selection=rlu_atari.EpisodeSelection(runs=(1,)),
        batch_size=32,
        shuffle_buffer=64,
        seed=0,
    )
    batches = pipeline.numpy_iterator(config)
    batch = next(batches)
    assert isinstance(batch, types.Transition)
    assert batch.observation.shape == (32, 84, 84, 4) and batch.observation.dtype == np.uint8
    assert batch.next_observation.shape == (32, 84, 84, 4)
    assert batch.action.dtype == np.int32 and batch.game_id.dtype == np.int32
    assert batch.reward.dtype == np.float32 and np.all(np.abs(batch.reward) <= 1.0)  # clipped, n=1
    assert np.all(np.isin(batch.discount, [0.0, np.float32(0.99)]))
    game_ids = np.concatenate([next(batches).game_id for _ in range(20)])
    assert set(game_ids.tolist()) == {0, 1}
    assert np.all(batch.action[batch.game_id == 1] < 4)


def test_game_weights_set_the_mix(data_dir):
    config = pipeline.PipelineConfig(
        games=("Pong", "Breakout"),
        data_dir=str(data_dir),
        selection=rlu_atari.EpisodeSelection(runs=(1,)),
        game_weights=(0.8, 0.2),
        batch_size=100,
        shuffle_buffer=16,
        seed=1,
    )
    game_ids = np.concatenate(
        [b.game_id for b, _ in zip(pipeline.numpy_iterator(config), range(10))]
    )
    share = np.mean(game_ids == 1)
    sigma = np.sqrt(0.2 * 0.8 / len(game_ids))
    assert abs(share - 0.2) < 4 * sigma


def test_runs_and_checkpoints_select_data(data_dir):
    config = pipeline.PipelineConfig(
        games=("Pong",),
        data_dir=str(data_dir),
        selection=rlu_atari.EpisodeSelection(runs=(1, 2), checkpoints=(1, 1)),
        batch_size=7,
        shuffle_buffer=7,
    )
    # Only checkpoint 1 (5 episodes x 7 transitions per run, 2 runs) = 70 transitions per epoch.
    ds = pipeline.game_transition_dataset(config, 0, repeat=False)
    assert sum(1 for _ in ds) == 70


def test_device_prefetch_yields_jax_arrays(data_dir):
    import jax

    config = pipeline.PipelineConfig(
        games=("Breakout",), data_dir=str(data_dir), batch_size=8, shuffle_buffer=8
    )
    batches = pipeline.device_prefetch(pipeline.numpy_iterator(config), size=2)
    batch = next(batches)
    assert isinstance(batch.observation, jax.Array) and batch.observation.shape == (8, 84, 84, 4)


def test_config_validation():
    with pytest.raises(ValueError):
        pipeline.PipelineConfig(games=())
    with pytest.raises(ValueError, match="game_weights"):
        pipeline.PipelineConfig(games=("Pong", "Breakout"), game_weights=(1.0,))
    assert np.allclose(pipeline.PipelineConfig(games=("Pong", "Breakout")).weights, [0.5, 0.5])
