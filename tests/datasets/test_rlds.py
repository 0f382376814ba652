"""Schema, atomic writer, and the readers of both rlu_atari layouts."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.rl_unplugged import atari_utils

from scaled_ql.datasets import rlds, rlu_atari, validation
from tests.datasets.helpers import random_episode


def test_schema_matches_tfds_rlu_atari_builder():
    ours, theirs = rlds.episode_features(), atari_utils.features_dict()
    assert ours.get_serialized_info() == theirs.get_serialized_info()
    assert validation._features_json(ours.to_json()) == validation._features_json(theirs.to_json())
    # The one intended difference: our doc says the reward is raw (what 1.3.0 stores).
    assert ours["steps"]["reward"].doc.desc != theirs["steps"]["reward"].doc.desc


def _write(data_dir, layout, checkpoints, seed=0, game="Pong"):
    rng = np.random.default_rng(seed)
    episodes = [
        random_episode(rng, 3 + i, episode_id=i, checkpoint_id=c, terminal=i % 2 == 0)
        for i, c in enumerate(checkpoints)
    ]
    with rlds.RluAtariWriter(data_dir, game, 2, layout=layout, max_episodes_per_shard=2) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return episodes


@pytest.mark.parametrize("layout", [rlds.RLU_ATARI, rlds.RLU_ATARI_ORDERED])
def test_written_dataset_reads_back_through_registered_builder(tmp_path, layout):
    episodes = _write(tmp_path, layout, checkpoints=[0, 0, 1, 2, 2])
    builder = tfds.builder(f"{layout}/Pong_run_2", data_dir=str(tmp_path))
    expected_splits = (
        {"train"}
        if layout == rlds.RLU_ATARI
        else {"checkpoint_00", "checkpoint_01", "checkpoint_02"}
    )
    assert set(builder.info.splits.keys()) == expected_splits
    run = rlu_atari.open_run("Pong", 2, data_dir=tmp_path, layout=layout)
    read = sorted(tfds.as_numpy(run.episodes()), key=lambda e: e["episode_id"])
    assert len(read) == len(episodes)
    for got, want in zip(read, episodes):
        steps = list(got["steps"])
        np.testing.assert_array_equal(np.stack([s["observation"] for s in steps]), want.frames)
        np.testing.assert_array_equal([s["action"] for s in steps], want.actions)
        np.testing.assert_array_equal([s["reward"] for s in steps], want.rewards)
        assert steps[-1]["is_terminal"] == want.is_terminal
        assert got["checkpoint_id"] == want.checkpoint_id
        assert got["episode_return"] == pytest.approx(want.rewards[:-1].sum(), rel=1e-5)


@pytest.mark.parametrize("layout", [rlds.RLU_ATARI, rlds.RLU_ATARI_ORDERED])
def test_checkpoint_range_selects_episodes(tmp_path, layout):
    _write(tmp_path, layout, checkpoints=[0, 0, 1, 2, 2, 3])
    run = rlu_atari.open_run("Pong", 2, data_dir=tmp_path, layout=layout)
    selection = rlu_atari.EpisodeSelection(runs=(2,), checkpoints=(1, 2))
    ids = sorted(int(e["episode_id"]) for e in tfds.as_numpy(run.episodes(selection)))
    assert ids == [2, 3, 4]
    if layout == rlds.RLU_ATARI_ORDERED:
        assert run.split((1, 2)) == "checkpoint_01+checkpoint_02"  # only those splits are read


def test_episode_fraction_is_a_stable_subset(tmp_path):
    _write(tmp_path, rlds.RLU_ATARI, checkpoints=[0] * 40)
    run = rlu_atari.open_run("Pong", 2, data_dir=tmp_path)

    def ids(fraction, seed):
        selection = rlu_atari.EpisodeSelection(runs=(2,), episode_fraction=fraction)
        episodes = run.episodes(selection, shuffle_files=True, seed=seed)
        return {int(e["episode_id"]) for e in tfds.as_numpy(episodes)}

    half = ids(0.5, seed=1)
    assert half == ids(0.5, seed=2)  # independent of file order
    assert 8 <= len(half) <= 32  # Binomial(40, 0.5) within ~4 sigma
    assert ids(0.25, seed=1) <= half  # nested: a smaller fraction is a subset


def test_suboptimal_is_first_fifth_of_checkpoints():
    assert rlu_atari.EpisodeSelection.suboptimal().checkpoints == (0, 9)
    assert rlu_atari.EpisodeSelection.suboptimal(num_checkpoints=5).checkpoints == (0, 0)
    assert rlu_atari.EpisodeSelection.near_optimal().checkpoints is None
    with pytest.raises(ValueError):
        rlu_atari.EpisodeSelection(checkpoints=(3, 1))
    with pytest.raises(ValueError):
        rlu_atari.EpisodeSelection(episode_fraction=0.0)


def test_interrupted_write_is_never_read_as_complete(tmp_path):
    writer = rlds.RluAtariWriter(tmp_path, "Pong", 1)
    writer.add_episode(random_episode(np.random.default_rng(0), 4))
    # The process "dies" here: no close().  The episode is on disk in the temporary folder.
    assert writer.temp_dir.name.startswith("incomplete.")
    assert (writer.temp_dir / "dataset_info.json").exists()
    with pytest.raises(rlu_atari.DatasetNotFoundError, match="unfinished write"):
        rlu_atari.open_run("Pong", 1, data_dir=tmp_path)
    with pytest.raises(rlu_atari.DatasetNotFoundError, match="interrupted"):
        rlu_atari.open_directory(writer.temp_dir)
    complete, unfinished = rlu_atari.find_datasets(tmp_path)
    assert complete == [] and unfinished == [writer.temp_dir]


def test_writer_exception_removes_partial_data_and_refuses_overwrite(tmp_path):
    with pytest.raises(RuntimeError), rlds.RluAtariWriter(tmp_path, "Pong", 1) as writer:
        writer.add_episode(random_episode(np.random.default_rng(0), 4))
        raise RuntimeError("collector crashed")
    assert not writer.temp_dir.exists() and not writer.final_dir.exists()
    _write(tmp_path, rlds.RLU_ATARI, checkpoints=[0])
    with pytest.raises(FileExistsError, match="Pong run 2"):
        rlds.RluAtariWriter(tmp_path, "Pong", 2)


def test_missing_dataset_error_says_where_it_looked(tmp_path):
    with pytest.raises(
        rlu_atari.DatasetNotFoundError, match="Breakout run 3.*rlu_atari/Breakout_run_3"
    ):
        rlu_atari.open_run("Breakout", 3, data_dir=tmp_path)
    with pytest.raises(ValueError):
        rlu_atari.open_run("Pongg", 1, data_dir=tmp_path)


def test_episode_arrays_reject_bad_episodes():
    rng = np.random.default_rng(0)
    good = random_episode(rng, 3)
    with pytest.raises(ValueError, match="at least 2"):
        rlds.EpisodeArrays(
            good.frames[:1], good.actions[:1], good.rewards[:1], good.discounts[:1], True, 0, 0
        )
    bad_rewards = good.rewards.copy()
    bad_rewards[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        rlds.EpisodeArrays(good.frames, good.actions, bad_rewards, good.discounts, True, 0, 0)
    with pytest.raises(ValueError, match="uint8"):
        rlds.EpisodeArrays(
            good.frames.astype(np.int16), good.actions, good.rewards, good.discounts, True, 0, 0
        )


def test_ordered_layout_needs_non_decreasing_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="non-decreasing"):
        with rlds.RluAtariWriter(tmp_path, "Pong", 1, layout=rlds.RLU_ATARI_ORDERED) as writer:
            writer.add_episode(random_episode(rng, 3, checkpoint_id=2))
            writer.add_episode(random_episode(rng, 3, checkpoint_id=1))


def test_dataset_info_records_config_name(tmp_path):
    _write(tmp_path, rlds.RLU_ATARI, checkpoints=[0])
    info = json.loads((rlds.dataset_dir(tmp_path, "Pong", 2) / "dataset_info.json").read_text())
    assert info["name"] == "rlu_atari" and info["configName"] == "Pong_run_2"
    assert info["version"] == "1.3.0"
