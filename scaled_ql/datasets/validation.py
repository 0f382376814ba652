"""Checks of `rlu_atari`-schema datasets, shard by shard, with errors naming game, run and file.

`inspect_run` reads every shard of one game/run, one file at a time, and checks:
the feature schema against `rlds.episode_features(observation)` of the dataset's suite
(Atari PNG frames, MinAtar zlib frames); that every shard listed in
`dataset_info.json` exists, is readable (TFRecord CRCs: truncation and flipped bytes fail
here) and holds as many episodes as listed; and, per episode, the RLDS flags (`is_first` on
the first step only, `is_last` on the last step only, `is_terminal` on the last step at most),
actions inside the game's minimal action set, finite rewards and discounts in [0, 1], and,
when frames are decoded, frame values within the suite's `max_value` (0/1 for MinAtar).  It
returns per-checkpoint statistics, which `scaled-ql data info` prints.
"""

import collections
import dataclasses
import json
import pathlib

import numpy as np

from scaled_ql.datasets import rlds
from scaled_ql.datasets.rlu_atari import RunDataset
from scaled_ql.datasets.transitions import stack_steps


class DatasetValidationError(ValueError):
    """A dataset breaks the rlu_atari schema or its invariants; the message names the file."""


@dataclasses.dataclass
class CheckpointStats:
    """Statistics of one checkpoint of one run.

    Attributes:
      episodes: number of episodes.
      steps: number of RLDS steps (transitions + one final observation per episode).
      returns: each episode's stored `episode_return`.
      lengths: each episode's number of actions (its RLDS steps minus the final observation).
    """

    episodes: int = 0
    steps: int = 0
    returns: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunReport:
    """What `inspect_run` found.

    Attributes:
      game, run, layout: which dataset.
      path: its folder.
      bytes_on_disk: total size of its files.
      checkpoints: `CheckpointStats` per checkpoint_id.
    """

    game: str
    run: int
    layout: str
    path: pathlib.Path
    bytes_on_disk: int
    checkpoints: dict[int, CheckpointStats]

    @property
    def suite(self) -> str:
        """The game suite of the dataset ("atari", "minatar")."""
        return rlds.LAYOUTS[self.layout].suite

    @property
    def num_steps(self) -> int:
        """RLDS steps over all checkpoints."""
        return sum(stats.steps for stats in self.checkpoints.values())

    @property
    def bytes_per_step(self) -> float:
        """Bytes on disk per RLDS step (all files of the folder)."""
        return self.bytes_on_disk / max(self.num_steps, 1)


_DOC_KEYS = ("doc", "description", "valueRange")


def _features_json(features_json: dict) -> str:
    """Features JSON without documentation fields (which do not change the data)."""

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _DOC_KEYS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json.dumps(strip(features_json), sort_keys=True)


def check_schema(run: RunDataset) -> None:
    """Raises unless the dataset's `features.json` holds exactly the schema's features for the
    frames of its suite (`rlds.episode_features(run.observation)`)."""
    path = pathlib.Path(run.builder.data_dir) / "features.json"
    where = f"{run.game} run {run.run}: {path}"
    import tensorflow_datasets as tfds

    try:
        found = tfds.features.FeatureConnector.from_config(str(path.parent)).to_json()
    except Exception as error:  # noqa: BLE001 -- any parse failure means a broken schema file
        raise DatasetValidationError(f"{where} is unreadable: {error}") from None
    expected = rlds.episode_features(run.observation).to_json()
    if _features_json(found) != _features_json(expected):
        raise DatasetValidationError(
            f"{where} does not match the rlu_atari schema with {run.suite} frames "
            f"({run.observation.name}: uint8 {list(run.observation.frame_shape)} per step)"
        )


def check_episode(steps: dict, num_actions: int, where: str) -> None:
    """Raises `DatasetValidationError` (prefixed by `where`) unless one episode's steps (numpy
    arrays [T] of action, reward, discount, is_first, is_last, is_terminal) keep the RLDS
    invariants listed in the module docstring."""
    num_steps = len(steps["action"])
    if num_steps < 2:
        raise DatasetValidationError(f"{where}: {num_steps} step(s); an episode needs >= 2")
    expected_first = np.arange(num_steps) == 0
    expected_last = np.arange(num_steps) == num_steps - 1
    if not np.array_equal(steps["is_first"], expected_first):
        raise DatasetValidationError(f"{where}: is_first must be set on the first step only")
    if not np.array_equal(steps["is_last"], expected_last):
        raise DatasetValidationError(f"{where}: is_last must be set on the last step only")
    if np.any(steps["is_terminal"][:-1]):
        raise DatasetValidationError(f"{where}: is_terminal set before the last step")
    actions = steps["action"][:-1]  # the last step's action is a placeholder
    bad = (actions < 0) | (actions >= num_actions)
    if np.any(bad):
        raise DatasetValidationError(
            f"{where}: action {actions[bad][0]} at step {np.flatnonzero(bad)[0]} is outside the "
            f"minimal action set [0, {num_actions})"
        )
    if not np.all(np.isfinite(steps["reward"][:-1])):
        raise DatasetValidationError(f"{where}: non-finite reward")
    discounts = steps["discount"][:-1]
    if not np.all(np.isfinite(discounts) & (discounts >= 0) & (discounts <= 1)):
        raise DatasetValidationError(f"{where}: discount outside [0, 1]")


def _check_frame_values(frame_max, observation, where: str) -> None:
    """Raises unless every frame's values lie in [0, observation.max_value]."""
    bad = np.flatnonzero(frame_max > observation.max_value)
    if bad.size:
        raise DatasetValidationError(
            f"{where}: frame at step {bad[0]} holds the value {frame_max[bad[0]]}; "
            f"{observation.name} frames hold 0..{observation.max_value}"
        )


def _read_shard(run: RunDataset, path: pathlib.Path, decode_frames: bool):
    """Yields (checkpoint_id, episode_return, steps as numpy) for each episode of one shard;
    with `decode_frames`, steps also hold `frame_max` [T], each frame's largest value."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    decoders = None if decode_frames else {"steps": {"observation": tfds.decode.SkipDecoding()}}
    features = run.builder.info.features

    def decode(serialized):
        episode = features.deserialize_example(serialized, decoders=decoders)
        batched = stack_steps(episode["steps"])
        fields = ("action", "reward", "discount", "is_first", "is_last", "is_terminal")
        steps = {k: batched[k] for k in fields}
        if decode_frames:
            frames = batched["observation"]  # [T, H, W, C]
            steps["frame_max"] = tf.reduce_max(tf.reshape(frames, [tf.shape(frames)[0], -1]), 1)
        return episode["checkpoint_id"], episode["episode_return"], steps

    records = tf.data.TFRecordDataset(str(path)).map(decode)
    yield from records.as_numpy_iterator()


def inspect_run(run: RunDataset, *, decode_frames: bool = True) -> RunReport:
    """Checks one game/run shard by shard and returns its statistics; raises on any defect."""
    import tensorflow as tf

    from scaled_ql.environments.games import get_game

    check_schema(run)
    num_actions = get_game(run.game).num_actions
    folder = pathlib.Path(run.builder.data_dir)
    checkpoints: dict[int, CheckpointStats] = collections.defaultdict(CheckpointStats)
    for split_info in run.builder.info.splits.values():
        for path, expected in zip(split_info.filepaths, split_info.shard_lengths):
            path = pathlib.Path(path)
            prefix = f"{run.game} run {run.run}: shard {path}"
            if not path.exists():
                raise DatasetValidationError(f"{prefix} is missing")
            count = 0
            try:
                for checkpoint_id, episode_return, steps in _read_shard(run, path, decode_frames):
                    where = f"{prefix}, episode {count}"
                    check_episode(steps, num_actions, where)
                    if decode_frames:
                        _check_frame_values(steps["frame_max"], run.observation, where)
                    stats = checkpoints[int(checkpoint_id)]
                    stats.episodes += 1
                    stats.steps += len(steps["action"])
                    stats.returns.append(float(episode_return))
                    stats.lengths.append(len(steps["action"]) - 1)
                    count += 1
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
                raise DatasetValidationError(
                    f"{prefix} is corrupted after {count} readable episode(s): "
                    f"{error.message.splitlines()[0]}"
                ) from None
            if count != expected:
                raise DatasetValidationError(
                    f"{prefix} holds {count} episodes, dataset_info.json lists {expected}"
                )
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return RunReport(run.game, run.run, run.layout, folder, size, dict(sorted(checkpoints.items())))


def locate_corruption(runs: list[RunDataset]) -> str | None:
    """The first defect found in `runs` (a message naming the file), or None; reads every shard."""
    for run in runs:
        try:
            inspect_run(run, decode_frames=False)
        except DatasetValidationError as error:
            return str(error)
    return None
