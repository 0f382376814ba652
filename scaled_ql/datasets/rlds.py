"""The `rlu_atari` RLDS schema and an atomic writer for datasets in exactly that schema.

One definition of the episode/step features (`episode_features`) is shared by the writer, the
readers (`scaled_ql.datasets.rlu_atari`) and the validator (`scaled_ql.datasets.validation`).
For Atari it matches TFDS 4.9.0's `rlu_atari` builder
(`tensorflow_datasets/rl_unplugged/atari_utils.py`, version 1.3.0) feature for feature;
`tests/datasets/test_rlds.py` compares the two.  Other game suites (MinAtar) keep every episode
and step field and change only the observation: one frame of the suite's
`types.ObservationSpec.frame_shape` per step (`episode_features(observation)`).

Step semantics (RLDS, `rlds.rlds_types.build_step`): step t holds the observation o_t, the
action a_t taken at o_t, and the reward r_t and discount d_t that FOLLOW a_t.  The last step of
an episode (`is_last`) holds the final observation only; its action, reward and discount are
meaningless.  `is_terminal` on the last step says the episode ended in a terminal state (game
over) rather than being truncated (frame cap).  Rewards are stored raw (unclipped), as in
`rlu_atari` 1.3.0 whose `reward` holds the source's `unclipped_rewards` (the TFDS feature doc
string still says "Clipped reward"; the data is not clipped).

Layout on disk: a TFDS data_dir (`scaled_ql.datasets.layouts`: `rlu_atari`, `rlu_minatar` and
their checkpoint-ordered names).  The writer fills a sibling folder named
`incomplete.<version>.<pid>` and renames it to `<version>` only when closed, so a write that is
interrupted never looks complete.

Observation encoding.  Atari frames are PNG images, as in `rlu_atari`.  A MinAtar frame is
uint8 [10, 10, 10] of 0/1 object maps, which PNG cannot hold (at most 4 channels); it is a
`tfds.features.Tensor` with zlib encoding: 48-68 bytes per RLDS step on disk, all fields
included (5,000 random-policy steps per game), vs about 1,020 unencoded and 145-160
bit-packed without zlib; bit-packing before zlib saves under 2 bytes, so frames stay plain
arrays that TFDS decodes exactly (docs/DATA.md has the measurements and commands).
"""

import dataclasses
import json
import os
import pathlib
import shutil

import numpy as np

from scaled_ql import types
from scaled_ql.datasets.layouts import (  # noqa: F401  (re-exported: the old import path)
    AUTO_LAYOUT,
    INCOMPLETE_PREFIX,
    LAYOUT_VERSIONS,
    LAYOUTS,
    PROVENANCE_FILE,
    RLU_ATARI,
    RLU_ATARI_ORDERED,
    RLU_MINATAR,
    RLU_MINATAR_ORDERED,
    Layout,
    _game_info,
    checkpoint_split,
    config_name,
    dataset_dir,
    parse_config_name,
    resolve_layout,
)


def observation_feature(observation: types.ObservationSpec = types.ATARI_OBSERVATION):
    """The step feature holding one frame uint8 `observation.frame_shape`.

    Atari: `rlu_atari`'s PNG `Image`.  Other suites: a zlib-encoded `Tensor` (module docstring).
    """
    import tensorflow_datasets as tfds

    if observation.name == types.ATARI_OBSERVATION.name:
        return tfds.features.Image(
            shape=observation.frame_shape, dtype=np.uint8, encoding_format="png"
        )
    return tfds.features.Tensor(
        shape=observation.frame_shape,
        dtype=np.uint8,
        encoding=tfds.features.Encoding.ZLIB,
        doc=tfds.features.Documentation(
            desc=f"One {observation.name} frame, values 0..{observation.max_value}."
        ),
    )


def episode_features(observation: types.ObservationSpec = types.ATARI_OBSERVATION):
    """The `rlu_atari` features for frames of `observation` (a game suite's spec): a
    `tfds.features.FeaturesDict` of one episode."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": observation_feature(observation),
                    "action": np.int64,
                    "reward": tfds.features.Scalar(
                        dtype=np.float32,
                        doc=tfds.features.Documentation(desc="Raw (unclipped) reward."),
                    ),
                    "is_terminal": np.bool_,
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                    "discount": np.float32,
                }
            ),
            "checkpoint_id": np.int64,
            "episode_id": np.int64,
            "episode_return": tfds.features.Scalar(
                dtype=np.float32,
                doc=tfds.features.Documentation(desc="Sum of the raw rewards."),
            ),
        }
    )


def _dataset_config(name: str, observation: types.ObservationSpec):
    """The `EpisodeWriter` config whose `build_info` reproduces `episode_features(observation)`."""
    import tensorflow_datasets as tfds

    episode = episode_features(observation)
    steps = episode["steps"].feature
    return tfds.rlds.rlds_base.DatasetConfig(
        name=name,
        observation_info=steps["observation"],
        action_info=steps["action"],
        reward_info=steps["reward"],
        discount_info=steps["discount"],
        episode_metadata_info={
            k: episode[k] for k in ("checkpoint_id", "episode_id", "episode_return")
        },
    )


@dataclasses.dataclass(frozen=True)
class EpisodeArrays:
    """One episode as arrays, in RLDS step alignment (see the module docstring).

    Attributes:
      frames: uint8 [T, *observation.frame_shape] (Atari [T, 84, 84, 1], MinAtar
        [T, 10, 10, 10]), o_0 .. o_{T-1}; T >= 2 (at least one action).
      actions: int64 [T], a_t taken at o_t; the last entry is a placeholder (0).
      rewards: float32 [T], raw r_t following a_t; the last entry is a placeholder (0).
      discounts: float32 [T], d_t following a_t (0 for the action that ended the game);
        the last entry is a placeholder.
      is_terminal: whether o_{T-1} is a terminal state (game over), not a truncation.
      episode_id: index of the episode within its run.
      checkpoint_id: the policy snapshot that generated the episode.
      observation: the game suite's spec the frames follow (Atari by default).
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray
    is_terminal: bool
    episode_id: int
    checkpoint_id: int
    observation: types.ObservationSpec = types.ATARI_OBSERVATION

    def __post_init__(self):
        num_steps = len(self.frames)
        frame_shape = tuple(self.observation.frame_shape)
        if self.frames.dtype != np.uint8 or self.frames.shape[1:] != frame_shape:
            others = [
                spec.name
                for spec in types.OBSERVATION_SPECS.values()
                if spec.name != self.observation.name and spec.frame_shape == self.frames.shape[1:]
            ]
            hint = f" ({others[0]} frames? pass its spec as observation=)" if others else ""
            raise ValueError(
                f"frames must be uint8 [T, {', '.join(map(str, frame_shape))}], "
                f"got {self.frames.dtype} {self.frames.shape}{hint}"
            )
        if num_steps < 2:
            raise ValueError(f"an episode needs at least 2 steps (one action), got {num_steps}")
        if self.observation.max_value < 255 and self.frames.max() > self.observation.max_value:
            raise ValueError(
                f"frames hold values up to {self.frames.max()}; {self.observation.name} frames "
                f"hold 0..{self.observation.max_value}"
            )
        for name in ("actions", "rewards", "discounts"):
            if getattr(self, name).shape != (num_steps,):
                raise ValueError(f"{name} must have shape [{num_steps}]")
        if not np.all(np.isfinite(self.rewards)):
            raise ValueError(f"episode {self.episode_id}: non-finite reward")
        if self.checkpoint_id < 0 or self.episode_id < 0:
            raise ValueError("episode_id and checkpoint_id must be >= 0")

    @property
    def episode_return(self) -> float:
        """Sum of the raw rewards that follow the episode's actions."""
        return float(np.sum(self.rewards[:-1], dtype=np.float64))

    def to_rlds(self) -> dict:
        """The episode as the nested dict `episode_features()` encodes."""
        num_steps = len(self.frames)
        index = np.arange(num_steps)
        steps = {
            "observation": self.frames,
            "action": self.actions.astype(np.int64),
            "reward": self.rewards.astype(np.float32),
            "discount": self.discounts.astype(np.float32),
            "is_first": index == 0,
            "is_last": index == num_steps - 1,
            "is_terminal": (index == num_steps - 1) & bool(self.is_terminal),
        }
        return {
            "steps": steps,
            "episode_id": np.int64(self.episode_id),
            "checkpoint_id": np.int64(self.checkpoint_id),
            "episode_return": np.float32(self.episode_return),
        }


def remove_abandoned(final_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Deletes the `incomplete.<version>.<pid>` siblings of `final_dir` whose writing process
    is gone (killed, interrupted); returns them.  A live process's folder is left alone."""
    final_dir = pathlib.Path(final_dir)
    removed = []
    for path in final_dir.parent.glob(f"{INCOMPLETE_PREFIX}{final_dir.name}.*"):
        pid = path.name.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class RluAtariWriter:
    """Writes one game/run as an `rlu_atari`-schema dataset in a TFDS data_dir, atomically.

    Episodes go through `rlds.tfds.episode_writer.EpisodeWriter` into
    `<layout>/<Game>_run_<k>/incomplete.<version>.<pid>/`; `close()` renames that folder to
    `<version>/`.  Used as a context manager, an exception deletes the unfinished folder; a
    killed process leaves it behind, and the readers refuse it with a clear message.

    The game decides the suite: its frames (`observation`, the suite's `ObservationSpec`), and
    the dataset name (`layout`, resolved by `resolve_layout`: `rlu_atari` for "minatar/Breakout"
    writes `rlu_minatar/Breakout_run_<k>`).  With a checkpoint-ordered layout each checkpoint
    gets its own split (`checkpoint_NN`), as in `rlu_atari_checkpoints_ordered`; episodes must
    then arrive in non-decreasing `checkpoint_id` order.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        game: str,
        run: int,
        *,
        layout: str = RLU_ATARI,
        max_episodes_per_shard: int = 100,
        provenance: dict | None = None,
        overwrite: bool = False,
    ):
        info = _game_info(game)
        self._layout = resolve_layout(layout, info.name)
        self.game, self.run, self.layout = info.name, run, self._layout.name
        self.observation = types.OBSERVATION_SPECS[info.suite]
        self.final_dir = dataset_dir(data_dir, self.game, run, self.layout)
        if self.final_dir.exists():
            if not overwrite:
                raise FileExistsError(
                    f"{self.game} run {run}: {self.final_dir} already exists "
                    "(pass overwrite=True)"
                )
            shutil.rmtree(self.final_dir)
        version = self.final_dir.name
        self.temp_dir = self.final_dir.with_name(f"{INCOMPLETE_PREFIX}{version}.{os.getpid()}")
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        remove_abandoned(self.final_dir)  # left by a killed or interrupted collect
        self.temp_dir.mkdir(parents=True)
        self._max_per_shard = max_episodes_per_shard
        self._provenance = dict(provenance or {})
        self._writer = None
        self._split = None
        self._last_checkpoint = -1
        self.num_episodes = 0
        self.num_steps = 0

    def _open_split(self, split: str):
        from rlds.tfds import episode_writer

        if self._writer is not None:
            self._writer.close()
        self._writer = episode_writer.EpisodeWriter(
            str(self.temp_dir),
            _dataset_config(self.layout, self.observation),
            max_episodes_per_file=self._max_per_shard,
            split_name=split,
            version=self._layout.version,
            overwrite=self._split is None,  # later splits append to the same dataset
        )
        self._split = split

    def add_episode(self, episode: EpisodeArrays) -> None:
        """Appends one episode (validated by `EpisodeArrays`; its frames must be this game's)."""
        if episode.observation != self.observation:
            raise ValueError(
                f"{self.game} run {self.run}: the episode's frames follow the "
                f"{episode.observation.name} spec {episode.observation}, the game's suite "
                f"{self.observation.name} has {self.observation}"
            )
        if not self._layout.ordered:
            if self._writer is None:
                self._open_split("train")
        else:
            if episode.checkpoint_id < self._last_checkpoint:
                raise ValueError(
                    f"{self.game} run {self.run}: checkpoint {episode.checkpoint_id} after "
                    f"{self._last_checkpoint}; the ordered layout needs non-decreasing checkpoints"
                )
            if episode.checkpoint_id != self._last_checkpoint:
                self._open_split(checkpoint_split(episode.checkpoint_id))
        self._last_checkpoint = episode.checkpoint_id
        self._writer.add_episode(episode.to_rlds())
        self.num_episodes += 1
        self.num_steps += len(episode.frames)

    def close(self) -> pathlib.Path:
        """Finishes the shards, records provenance, and publishes the dataset; returns its dir."""
        if self._writer is None:
            raise ValueError(f"{self.game} run {self.run}: no episode was written")
        self._writer.close()
        info_path = self.temp_dir / "dataset_info.json"
        info = json.loads(info_path.read_text())
        info["configName"] = config_name(self.game, self.run)  # as TFDS's own builder writes
        info_path.write_text(json.dumps(info, indent=2))
        provenance = {
            "game": self.game,
            "run": self.run,
            "layout": self.layout,
            "num_episodes": self.num_episodes,
            "num_steps": self.num_steps,
            **self._provenance,
            # What the frames are; readers check it against the game they are asked for.
            "suite": self.observation.name,
            "frame_shape": list(self.observation.frame_shape),
            "max_value": self.observation.max_value,
        }
        (self.temp_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
        os.replace(self.temp_dir, self.final_dir)
        self._writer = None
        return self.final_dir

    def abort(self) -> None:
        """Deletes the unfinished dataset."""
        self._writer = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "RluAtariWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
