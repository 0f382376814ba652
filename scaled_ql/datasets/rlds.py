"""The `rlu_atari` RLDS schema and an atomic writer for datasets in exactly that schema.

One definition of the episode/step features (`episode_features`) is shared by the writer, the
readers (`scaled_ql.datasets.rlu_atari`) and the validator (`scaled_ql.datasets.validation`).
It matches TFDS 4.9.0's `rlu_atari` builder (`tensorflow_datasets/rl_unplugged/atari_utils.py`,
version 1.3.0) feature for feature; `tests/datasets/test_rlds.py` compares the two.

Step semantics (RLDS, `rlds.rlds_types.build_step`): step t holds the observation o_t, the
action a_t taken at o_t, and the reward r_t and discount d_t that FOLLOW a_t.  The last step of
an episode (`is_last`) holds the final observation only; its action, reward and discount are
meaningless.  `is_terminal` on the last step says the episode ended in a terminal state (game
over) rather than being truncated (frame cap).  Rewards are stored raw (unclipped), as in
`rlu_atari` 1.3.0 whose `reward` holds the source's `unclipped_rewards` (the TFDS feature doc
string still says "Clipped reward"; the data is not clipped).

Layout on disk: a TFDS data_dir, `DATA_DIR/rlu_atari/{Game}_run_{k}/1.3.0/` (one `train` split)
or `DATA_DIR/rlu_atari_checkpoints_ordered/{Game}_run_{k}/1.1.0/` (one `checkpoint_NN` split per
checkpoint), so `tfds.builder("rlu_atari/Pong_run_1", data_dir=DATA_DIR)` reads a locally written
dataset exactly as it would read the real one.  The writer fills a sibling folder named
`incomplete.<version>.<pid>` and renames it to `<version>` only when closed, so a write that is
interrupted never looks complete.
"""

import dataclasses
import json
import os
import pathlib
import shutil

import numpy as np

RLU_ATARI = "rlu_atari"
RLU_ATARI_ORDERED = "rlu_atari_checkpoints_ordered"
LAYOUT_VERSIONS = {RLU_ATARI: "1.3.0", RLU_ATARI_ORDERED: "1.1.0"}
# Readers accept AUTO: the `rlu_atari` layout of a game/run when present, else
# `rlu_atari_checkpoints_ordered` (what `scaled-ql collect --policy online_c51` usually writes).
AUTO_LAYOUT = "auto"
INCOMPLETE_PREFIX = "incomplete."
FRAME_SHAPE = (84, 84, 1)  # one grayscale frame per RLDS step
PROVENANCE_FILE = "scaled_ql_provenance.json"


def config_name(game: str, run: int) -> str:
    """The TFDS builder config name of one game and run, e.g. `Pong_run_1`."""
    return f"{game}_run_{run}"


def checkpoint_split(checkpoint_id: int) -> str:
    """The `rlu_atari_checkpoints_ordered` split holding one checkpoint, e.g. `checkpoint_03`."""
    return f"checkpoint_{checkpoint_id:02d}"


def dataset_dir(data_dir: str | os.PathLike, game: str, run: int, layout: str = RLU_ATARI):
    """Where TFDS looks for one game/run of `layout` inside `data_dir` (a `pathlib.Path`)."""
    if layout not in LAYOUT_VERSIONS:
        raise ValueError(f"layout must be one of {sorted(LAYOUT_VERSIONS)}, got {layout!r}")
    return pathlib.Path(data_dir) / layout / config_name(game, run) / LAYOUT_VERSIONS[layout]


def episode_features():
    """The `rlu_atari` features: a `tfds.features.FeaturesDict` of one episode."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": tfds.features.Image(
                        shape=FRAME_SHAPE, dtype=np.uint8, encoding_format="png"
                    ),
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


def _dataset_config(name: str):
    """The `EpisodeWriter` config whose `build_info` reproduces `episode_features()`."""
    import tensorflow_datasets as tfds

    steps = episode_features()["steps"].feature
    episode = episode_features()
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
      frames: uint8 [T, 84, 84, 1], o_0 .. o_{T-1}; T >= 2 (at least one action).
      actions: int64 [T], a_t taken at o_t; the last entry is a placeholder (0).
      rewards: float32 [T], raw r_t following a_t; the last entry is a placeholder (0).
      discounts: float32 [T], d_t following a_t (0 for the action that ended the game);
        the last entry is a placeholder.
      is_terminal: whether o_{T-1} is a terminal state (game over), not a truncation.
      episode_id: index of the episode within its run.
      checkpoint_id: the policy snapshot that generated the episode.
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray
    is_terminal: bool
    episode_id: int
    checkpoint_id: int

    def __post_init__(self):
        num_steps = len(self.frames)
        if self.frames.dtype != np.uint8 or self.frames.shape[1:] != FRAME_SHAPE:
            raise ValueError(
                f"frames must be uint8 [T, 84, 84, 1], got {self.frames.dtype} {self.frames.shape}"
            )
        if num_steps < 2:
            raise ValueError(f"an episode needs at least 2 steps (one action), got {num_steps}")
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


class RluAtariWriter:
    """Writes one game/run as an `rlu_atari` dataset in a TFDS data_dir, atomically.

    Episodes go through `rlds.tfds.episode_writer.EpisodeWriter` into
    `<layout>/<Game>_run_<k>/incomplete.<version>.<pid>/`; `close()` renames that folder to
    `<version>/`.  Used as a context manager, an exception deletes the unfinished folder; a
    killed process leaves it behind, and the readers refuse it with a clear message.

    With `layout=RLU_ATARI_ORDERED` each checkpoint gets its own split (`checkpoint_NN`), as
    in `rlu_atari_checkpoints_ordered`; episodes must then arrive in non-decreasing
    `checkpoint_id` order.
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
        self.game, self.run, self.layout = game, run, layout
        self.final_dir = dataset_dir(data_dir, game, run, layout)
        if self.final_dir.exists():
            if not overwrite:
                raise FileExistsError(
                    f"{game} run {run}: {self.final_dir} already exists (pass overwrite=True)"
                )
            shutil.rmtree(self.final_dir)
        version = self.final_dir.name
        self.temp_dir = self.final_dir.with_name(f"{INCOMPLETE_PREFIX}{version}.{os.getpid()}")
        shutil.rmtree(self.temp_dir, ignore_errors=True)
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
            _dataset_config(self.layout),
            max_episodes_per_file=self._max_per_shard,
            split_name=split,
            version=LAYOUT_VERSIONS[self.layout],
            overwrite=self._split is None,  # later splits append to the same dataset
        )
        self._split = split

    def add_episode(self, episode: EpisodeArrays) -> None:
        """Appends one episode (validated by `EpisodeArrays`)."""
        if self.layout == RLU_ATARI:
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
