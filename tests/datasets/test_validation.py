"""Broken datasets give errors that name game, run and file."""

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from scaled_ql.datasets import pipeline, rlds, rlu_atari, validation
from tests.datasets.helpers import random_episode


def _write(data_dir, episodes, game="Breakout", run=1):
    with rlds.RluAtariWriter(data_dir, game, run, max_episodes_per_shard=2) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return rlu_atari.open_run(game, run, data_dir=data_dir)


@pytest.fixture
def run(tmp_path):
    rng = np.random.default_rng(0)
    return _write(tmp_path, [random_episode(rng, 6, num_actions=4, episode_id=i) for i in range(5)])


def test_clean_dataset_passes_with_statistics(run):
    report = validation.inspect_run(run)
    assert report.checkpoints[0].episodes == 5 and report.checkpoints[0].steps == 30
    assert len(run.shard_paths()) == 3 and report.bytes_on_disk > sum(
        p.stat().st_size for p in run.shard_paths()
    )


def test_flipped_bytes_name_the_shard(run):
    shard = run.shard_paths()[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(
        validation.DatasetValidationError, match=f"Breakout run 1: shard {shard}.*corrupted"
    ):
        validation.inspect_run(run)


def test_truncated_shard_is_named(run):
    shard = run.shard_paths()[0]
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(validation.DatasetValidationError, match=f"shard {shard}.*corrupted"):
        validation.inspect_run(run)


def test_deleted_shard_is_named_by_validator_and_reader(run):
    shard = run.shard_paths()[2]
    shard.unlink()
    with pytest.raises(
        validation.DatasetValidationError, match=f"Breakout run 1: shard {shard} is missing"
    ):
        validation.inspect_run(run)
    with pytest.raises(rlu_atari.DatasetNotFoundError, match=f"missing shard {shard}"):
        run.episodes()


def test_corruption_while_streaming_names_the_shard(run):
    shard = run.shard_paths()[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    data_dir = shard.parents[3]  # <data_dir>/rlu_atari/Breakout_run_1/1.3.0/<shard>
    config = pipeline.PipelineConfig(
        games=("Breakout",), data_dir=str(data_dir), batch_size=4, shuffle_buffer=8
    )
    batches = pipeline.numpy_iterator(config)
    with pytest.raises(OSError, match=f"shard {shard}"):
        for _ in range(100):
            next(batches)


class _BrokenFlags(rlds.EpisodeArrays):
    def to_rlds(self):
        episode = super().to_rlds()
        episode["steps"]["is_first"] = np.ones_like(episode["steps"]["is_first"])
        return episode


def test_impossible_values_are_named(tmp_path):
    rng = np.random.default_rng(1)
    good = random_episode(rng, 5, num_actions=4)
    # Breakout has 4 minimal actions: action 9 is impossible.
    bad_action = dataclasses.replace(good, actions=np.array([0, 9, 1, 2, 0]))
    run = _write(tmp_path / "a", [good, bad_action])
    with pytest.raises(
        validation.DatasetValidationError,
        match=r"Breakout run 1: shard .*-00000, episode 1: action 9",
    ):
        validation.inspect_run(run)
    broken = _BrokenFlags(**{f.name: getattr(good, f.name) for f in dataclasses.fields(good)})
    run = _write(tmp_path / "b", [broken])
    with pytest.raises(
        validation.DatasetValidationError, match="is_first must be set on the first step only"
    ):
        validation.inspect_run(run)


def test_schema_mismatch_names_features_file(run):
    features_path = pathlib.Path(run.builder.data_dir) / "features.json"
    features = json.loads(features_path.read_text())
    text = json.dumps(features).replace('"84"', '"64"', 1)  # a 64-pixel-high frame
    features_path.write_text(text)
    with pytest.raises(validation.DatasetValidationError, match=f"{features_path} does not match"):
        validation.inspect_run(run)
