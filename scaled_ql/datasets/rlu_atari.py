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

MinAtar games ("minatar/Breakout") are read the same way from their suite's dataset names
(`rlu_minatar/Breakout_run_<k>`, `rlds.LAYOUTS`): the game decides the suite, so a reader asked
for a game of one suite only ever opens that suite's folders, and a dataset whose recorded
suite or frame shape is not the game's raises `DatasetSuiteError`.

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


class DatasetSuiteError(ValueError):
    """A dataset holds frames of another game suite than the game it was opened for."""


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
      game: the game's catalogue name, e.g. "Pong" or "minatar/Breakout".
      run: the run number.
      layout: the TFDS dataset name (`rlds.LAYOUTS`): `rlu_atari` / `rlu_minatar` (one `train`
        split) or `rlu_atari_checkpoints_ordered` / `rlu_minatar_checkpoints_ordered` (one
        split per checkpoint).
      builder: the `tfds.core.DatasetBuilder` that reads it.
    """

    game: str
    run: int
    layout: str
    builder: Any

    @property
    def name(self) -> str:
        return f"{self.game} run {self.run} ({self.builder.data_dir})"

    @property
    def suite(self) -> str:
        """The game suite of the dataset's frames ("atari", "minatar")."""
        return rlds.LAYOUTS[self.layout].suite

    @property
    def observation(self):
        """The `types.ObservationSpec` of the suite; a step holds one `frame_shape` frame."""
        from scaled_ql import types

        return types.OBSERVATION_SPECS[self.suite]

    def check_suite(self) -> None:
        """Raises `DatasetSuiteError` unless the game, the stored frame shape and the recorded
        suite (`scaled_ql_provenance.json`, when present) all are the layout's suite."""
        import json

        from scaled_ql.environments.games import get_game

        folder = pathlib.Path(self.builder.data_dir)
        where = f"{self.game} run {self.run} ({folder})"
        if get_game(self.game).suite != self.suite:
            raise DatasetSuiteError(
                f"{where}: {self.game} is a {get_game(self.game).suite} game, the {self.layout} "
                f"layout holds {self.suite} games")
        stored = tuple(self.builder.info.features["steps"]["observation"].shape)
        if stored != tuple(self.observation.frame_shape):
            raise DatasetSuiteError(
                f"{where}: frames are {list(stored)}, {self.suite} frames are "
                f"{list(self.observation.frame_shape)}")
        provenance = folder / rlds.PROVENANCE_FILE
        if provenance.exists():
            recorded = json.loads(provenance.read_text()).get("suite", self.suite)
            if recorded != self.suite:
                raise DatasetSuiteError(
                    f"{where}: {provenance} records {recorded} frames, {self.game} is a "
                    f"{self.suite} game")

    def split(self, checkpoints: tuple[int, int] | None) -> str:
        """The TFDS split expression that holds the wanted checkpoints."""
        available = list(self.builder.info.splits.keys())
        if not rlds.LAYOUTS[self.layout].ordered:
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
        steps_as_tensors: bool = False,
    ):
        """A `tf.data.Dataset` of RLDS episodes, each with a nested `steps` dataset, or with
        `steps_as_tensors` a dict of whole-episode tensors ([T, ...] per step field, decoded in
        one batch: about 100x faster than TFDS's per-step nested dataset for short episodes)."""
        import tensorflow as tf
        import tensorflow_datasets as tfds

        self.check_shards()
        decoders = None
        if steps_as_tensors:
            if not decode_frames:
                raise ValueError("steps_as_tensors decodes the frames (decode_frames=True)")
            decoders = {"steps": _StepsAsTensors()}
        elif not decode_frames:
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
        if selection.checkpoints is not None and not rlds.LAYOUTS[self.layout].ordered:
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


def _StepsAsTensors():
    """A TFDS decoder for the RLDS `steps` feature: the episode's steps as one dict of [T, ...]
    tensors, each field decoded in one batch op, instead of TFDS's `from_tensor_slices(...)
    .map(decode one step)` nested dataset (whose per-episode setup costs ~10 ms)."""
    import tensorflow_datasets as tfds

    class StepsAsTensors(tfds.decode.Decoder):
        def decode_example(self, serialized):
            return self.feature.feature.decode_batch_example(serialized)

    return StepsAsTensors()


def _check_game(game: str) -> str:
    from scaled_ql.environments.games import get_game

    return get_game(game).name  # ValueError with suggestions on unknown names


def open_run(
    game: str, run: int, *, data_dir: str | os.PathLike | None = None, layout: str = rlds.RLU_ATARI
) -> RunDataset:
    """Opens one game/run through TFDS (`tfds.builder("<layout>/<Game>_run_<k>")`).

    `data_dir=None` is TFDS's default (`~/tensorflow_datasets`).  Nothing is downloaded: a
    missing dataset raises `DatasetNotFoundError` saying where it was looked for.
    `layout` is resolved for the game's suite (`rlds.resolve_layout`: `rlu_atari` opens
    `rlu_minatar/Breakout_run_<k>` for "minatar/Breakout"); `layout="auto"` opens the plain
    layout when it exists, else the checkpoint-ordered one.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import file_utils

    game = _check_game(game)
    if layout == rlds.AUTO_LAYOUT:
        try:
            return open_run(game, run, data_dir=data_dir, layout=rlds.RLU_ATARI)
        except DatasetNotFoundError as error:
            ordered = rlds.resolve_layout(rlds.RLU_ATARI_ORDERED, game).name
            try:
                return open_run(game, run, data_dir=data_dir, layout=ordered)
            except DatasetNotFoundError:
                raise DatasetNotFoundError(f"{error} (nor a {ordered} dataset)") from None
    resolved = rlds.resolve_layout(layout, game)
    name = f"{resolved.name}/{rlds.config_name(game, run)}"
    data_dir = None if data_dir is None else os.fspath(data_dir)
    builder = None
    if resolved.registered:  # TFDS's own builder code knows where the data_dir puts it
        builder = tfds.builder(name, data_dir=data_dir)
        expected = pathlib.Path(builder.data_dir)
    else:
        root = data_dir if data_dir is not None else file_utils.get_default_data_dir()
        expected = rlds.dataset_dir(root, game, run, resolved.name)
    if not (expected / "dataset_info.json").exists():
        partial = sorted(expected.parent.glob(f"{rlds.INCOMPLETE_PREFIX}*"))
        if partial:
            hint = f"; found an unfinished write at {partial[0]} (was collection interrupted?)"
        elif resolved.registered:
            hint = "; the real rlu_atari must be prepared into data_dir beforehand (docs/DATA.md)"
        else:
            hint = f"; {resolved.suite} datasets are written by `scaled-ql collect` (docs/DATA.md)"
        raise DatasetNotFoundError(f"{game} run {run}: no complete {name} at {expected}{hint}")
    if builder is None:  # no builder code: TFDS reads the prepared folder of that name
        builder = tfds.builder(name, data_dir=os.fspath(expected.parents[2]))
    dataset = RunDataset(game=game, run=run, layout=resolved.name, builder=builder)
    dataset.check_suite()
    return dataset


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
    parsed = rlds.parse_config_name(layout, config)
    if parsed is None:
        raise DatasetNotFoundError(
            f"{path}: expected a {sorted(rlds.LAYOUTS)} dataset of config "
            f"'<Game>_run_<k>' (a game of the layout's suite), found {layout!r} / {config!r}"
        )
    game, run = parsed
    dataset = RunDataset(game=game, run=run, layout=layout, builder=builder)
    dataset.check_suite()
    return dataset


def find_datasets(data_dir: str | os.PathLike) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """Complete and unfinished dataset folders of every layout (`rlds.LAYOUTS`) under a
    data_dir, in sorted order."""
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
    steps_as_tensors: bool = False,
):
    """Episodes of one game from all selected runs, mixed uniformly over runs while streaming
    (`steps_as_tensors`: as in `RunDataset.episodes`)."""
    import tensorflow as tf

    runs = [open_run(game, run, data_dir=data_dir, layout=layout) for run in selection.runs]
    per_run = []
    for i, run in enumerate(runs):
        ds = run.episodes(
            selection,
            shuffle_files=shuffle_files,
            seed=None if seed is None else seed + i,
            steps_as_tensors=steps_as_tensors,
        )
        per_run.append(ds.repeat() if repeat else ds)
    if len(per_run) == 1:
        return per_run[0]
    return tf.data.Dataset.sample_from_datasets(per_run, seed=seed, stop_on_empty_dataset=False)
