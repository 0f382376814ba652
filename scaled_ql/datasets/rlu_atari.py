"""Reading `rlu_atari` (the DQN Replay Dataset in RLDS) and datasets written in its schema.

One reader, `RunDataset.episodes`, serves three ways of opening a game/run:

- `open_run(game, run, data_dir=..., layout=RLU_ATARI)`: the registered TFDS builder
  `tfds.builder("rlu_atari/{Game}_run_{k}", data_dir=...)`, i.e. the real dataset once it has
  been prepared into `data_dir` (it cannot be downloaded on machines without network), or a
  dataset that `scaled-ql collect` wrote into the same layout;
- `open_run(..., layout=RLU_ATARI_ORDERED)`: `rlu_atari_checkpoints_ordered`, whose splits
  `checkpoint_00`..`checkpoint_49` are the 1M-step policy snapshots in time order, so a
  checkpoint range reads only those splits;
- `open_directory(path)`: any dataset folder through `tfds.builder_from_directory`.

Selection (`EpisodeSelection`): runs, an inclusive checkpoint range (the paper's sub-optimal
data is the first 20% of each run's checkpoints: 0..9 of 50; near-optimal is all of them) and
a fraction of episodes.  The fraction keeps an episode when a hash of (checkpoint_id,
episode_id) falls below it, so the subset does not depend on file order or shuffling.
"""

import dataclasses
import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

from scaled_ql.datasets import rlds

DQN_REPLAY_NUM_CHECKPOINTS = 50  # 50 x 1M-step snapshots per run in the DQN Replay Dataset
_HASH_BUCKETS = 1 << 20


class DatasetNotFoundError(FileNotFoundError):
    """A game/run was asked for that is not (completely) present."""


@dataclasses.dataclass(frozen=True)
class EpisodeSelection:
    """Which episodes of a game to read.

    Attributes:
      runs: run numbers (1..5 in rlu_atari) to read; each must exist.
      checkpoints: inclusive (first, last) range of `checkpoint_id`s, or None for all.
      episode_fraction: fraction in (0, 1] of the selected episodes to keep.
    """

    runs: tuple[int, ...] = (1,)
    checkpoints: tuple[int, int] | None = None
    episode_fraction: float = 1.0

    def __post_init__(self):
        if not self.runs or any(r < 1 for r in self.runs) or len(set(self.runs)) != len(self.runs):
            raise ValueError(f"runs must be distinct integers >= 1, got {self.runs}")
        if self.checkpoints is not None:
            first, last = self.checkpoints
            if not 0 <= first <= last:
                raise ValueError(
                    f"checkpoints must be (first, last), 0 <= first <= last: got {self.checkpoints}"
                )
        if not 0.0 < self.episode_fraction <= 1.0:
            raise ValueError(f"episode_fraction must be in (0, 1], got {self.episode_fraction}")

    @classmethod
    def suboptimal(
        cls,
        runs: Sequence[int] = (1, 2, 3, 4, 5),
        num_checkpoints: int = DQN_REPLAY_NUM_CHECKPOINTS,
    ) -> "EpisodeSelection":
        """The paper's sub-optimal data: the first 20% of each run's checkpoints."""
        last = max(1, math.ceil(0.2 * num_checkpoints)) - 1
        return cls(runs=tuple(runs), checkpoints=(0, last))

    @classmethod
    def near_optimal(cls, runs: Sequence[int] = (1, 2, 3, 4, 5)) -> "EpisodeSelection":
        """The paper's near-optimal data: every checkpoint of each run."""
        return cls(runs=tuple(runs), checkpoints=None)


@dataclasses.dataclass(frozen=True)
class RunDataset:
    """One game/run opened for reading.

    Attributes:
      game: the game's rlu_atari name, e.g. "Pong".
      run: the run number.
      layout: `rlds.RLU_ATARI` (one `train` split) or `rlds.RLU_ATARI_ORDERED` (per checkpoint).
      builder: the `tfds.core.DatasetBuilder` that reads it.
    """

    game: str
    run: int
    layout: str
    builder: Any

    @property
    def name(self) -> str:
        return f"{self.game} run {self.run} ({self.builder.data_dir})"

    def split(self, checkpoints: tuple[int, int] | None) -> str:
        """The TFDS split expression that holds the wanted checkpoints."""
        available = list(self.builder.info.splits.keys())
        if self.layout == rlds.RLU_ATARI:
            return "train"
        if checkpoints is None:
            wanted = available
        else:
            wanted = [
                s
                for s in available
                if checkpoints[0] <= int(s.removeprefix("checkpoint_")) <= checkpoints[1]
            ]
        if not wanted:
            raise DatasetNotFoundError(
                f"{self.name}: no checkpoint split in {checkpoints}; available: {sorted(available)}"
            )
        return "+".join(sorted(wanted))

    def shard_paths(self) -> list[pathlib.Path]:
        """Every shard file of the dataset's splits."""
        paths = []
        for split_info in self.builder.info.splits.values():
            paths.extend(pathlib.Path(p) for p in split_info.filepaths)
        return paths

    def check_shards(self) -> None:
        """Raises naming the file when a shard listed in dataset_info.json is missing or empty."""
        for path in self.shard_paths():
            if not path.exists():
                raise DatasetNotFoundError(f"{self.game} run {self.run}: missing shard {path}")
            if path.stat().st_size == 0:
                raise DatasetNotFoundError(f"{self.game} run {self.run}: empty shard {path}")

    def episodes(
        self,
        selection: EpisodeSelection = EpisodeSelection(),
        *,
        shuffle_files: bool = False,
        seed: int | None = None,
        decode_frames: bool = True,
    ):
        """A `tf.data.Dataset` of RLDS episodes (each with a nested `steps` dataset)."""
        import tensorflow as tf
        import tensorflow_datasets as tfds

        self.check_shards()
        decoders = None
        if not decode_frames:
            decoders = {"steps": {"observation": tfds.decode.SkipDecoding()}}
        # Training does not need the ordered layout's in-order reads: files are interleaved.
        read_config = tfds.ReadConfig(
            shuffle_seed=seed, interleave_cycle_length=4, enable_ordering_guard=False
        )
        ds = self.builder.as_dataset(
            split=self.split(selection.checkpoints),
            shuffle_files=shuffle_files,
            decoders=decoders,
            read_config=read_config,
        )
        if selection.checkpoints is not None and self.layout == rlds.RLU_ATARI:
            first, last = selection.checkpoints
            ds = ds.filter(
                lambda ep: (ep["checkpoint_id"] >= first) & (ep["checkpoint_id"] <= last)
            )
        if selection.episode_fraction < 1.0:
            threshold = int(selection.episode_fraction * _HASH_BUCKETS)

            def keep(ep):
                key = tf.strings.join(
                    [
                        tf.strings.as_string(ep["checkpoint_id"]),
                        tf.strings.as_string(ep["episode_id"]),
                    ],
                    separator="/",
                )
                return tf.strings.to_hash_bucket_fast(key, _HASH_BUCKETS) < threshold

            ds = ds.filter(keep)
        return ds


def _check_game(game: str) -> str:
    from scaled_ql.environments.games import get_game

    return get_game(game).name  # ValueError with suggestions on unknown names


def open_run(
    game: str, run: int, *, data_dir: str | os.PathLike | None = None, layout: str = rlds.RLU_ATARI
) -> RunDataset:
    """Opens one game/run through the registered TFDS builder (`rlu_atari/{Game}_run_{k}`).

    `data_dir=None` is TFDS's default (`~/tensorflow_datasets`).  Nothing is downloaded: a
    missing dataset raises `DatasetNotFoundError` saying where it was looked for.
    `layout="auto"` opens the `rlu_atari` layout when it exists, else the checkpoint-ordered one.
    """
    import tensorflow_datasets as tfds

    game = _check_game(game)
    if layout == rlds.AUTO_LAYOUT:
        try:
            return open_run(game, run, data_dir=data_dir, layout=rlds.RLU_ATARI)
        except DatasetNotFoundError as error:
            try:
                return open_run(game, run, data_dir=data_dir, layout=rlds.RLU_ATARI_ORDERED)
            except DatasetNotFoundError:
                raise DatasetNotFoundError(
                    f"{error} (nor a {rlds.RLU_ATARI_ORDERED} dataset)") from None
    if layout not in rlds.LAYOUT_VERSIONS:
        raise ValueError(f"layout must be one of {sorted(rlds.LAYOUT_VERSIONS)}, got {layout!r}")
    name = f"{layout}/{rlds.config_name(game, run)}"
    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    expected = pathlib.Path(builder.data_dir)
    if not (expected / "dataset_info.json").exists():
        partial = sorted(expected.parent.glob(f"{rlds.INCOMPLETE_PREFIX}*"))
        hint = (
            f"; found an unfinished write at {partial[0]} (was collection interrupted?)"
            if partial
            else "; the real rlu_atari must be prepared into data_dir beforehand (docs/DATA.md)"
        )
        raise DatasetNotFoundError(f"{game} run {run}: no complete {name} at {expected}{hint}")
    return RunDataset(game=game, run=run, layout=layout, builder=builder)


def open_directory(path: str | os.PathLike) -> RunDataset:
    """Opens one dataset folder (`.../<layout>/<Game>_run_<k>/<version>`) directly."""
    import tensorflow_datasets as tfds

    path = pathlib.Path(path)
    if path.name.startswith(rlds.INCOMPLETE_PREFIX):
        raise DatasetNotFoundError(
            f"{path} is an unfinished write (its name starts with {rlds.INCOMPLETE_PREFIX!r}): "
            "the collection that wrote it was interrupted; collect it again"
        )
    if not (path / "dataset_info.json").exists():
        raise DatasetNotFoundError(f"{path}: no dataset_info.json, not a TFDS dataset folder")
    builder = tfds.builder_from_directory(os.fspath(path))
    layout = builder.info.name
    config = builder.info.config_name or path.parent.name
    game, sep, run = config.rpartition("_run_")
    if layout not in rlds.LAYOUT_VERSIONS or not sep or not run.isdigit():
        raise DatasetNotFoundError(
            f"{path}: expected a {sorted(rlds.LAYOUT_VERSIONS)} dataset of config "
            f"'<Game>_run_<k>', found {layout!r} / {config!r}"
        )
    return RunDataset(game=_check_game(game), run=int(run), layout=layout, builder=builder)


def find_datasets(data_dir: str | os.PathLike) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """Complete and unfinished dataset folders under a data_dir, in sorted order."""
    complete, unfinished = [], []
    for layout, version in rlds.LAYOUT_VERSIONS.items():
        for config_dir in sorted((pathlib.Path(data_dir) / layout).glob("*_run_*")):
            if (config_dir / version / "dataset_info.json").exists():
                complete.append(config_dir / version)
            unfinished.extend(sorted(config_dir.glob(f"{rlds.INCOMPLETE_PREFIX}*")))
    return complete, unfinished


def game_episodes(
    game: str,
    selection: EpisodeSelection = EpisodeSelection(),
    *,
    data_dir: str | os.PathLike | None = None,
    layout: str = rlds.RLU_ATARI,
    shuffle_files: bool = True,
    repeat: bool = False,
    seed: int | None = None,
):
    """Episodes of one game from all selected runs, mixed uniformly over runs while streaming."""
    import tensorflow as tf

    runs = [open_run(game, run, data_dir=data_dir, layout=layout) for run in selection.runs]
    per_run = []
    for i, run in enumerate(runs):
        ds = run.episodes(
            selection, shuffle_files=shuffle_files, seed=None if seed is None else seed + i
        )
        per_run.append(ds.repeat() if repeat else ds)
    if len(per_run) == 1:
        return per_run[0]
    return tf.data.Dataset.sample_from_datasets(per_run, seed=seed, stop_on_empty_dataset=False)
