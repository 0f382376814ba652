"""Crash-safe checkpoints of a Scaled QL training state (orbax; no pickle).

A run directory holds `checkpoints/<step>/` folders.  Orbax writes each into a temporary folder
(`<step>.orbax-checkpoint-tmp-<n>`) and renames it when complete, so a process killed mid-write
leaves no half-written checkpoint that could be taken for the latest: "latest" is the newest
complete folder, and only a finished rename makes one.  The next `Checkpointer` on the same
directory deletes such leftovers.  The oldest checkpoints are deleted past `max_to_keep`.

Each checkpoint stores the whole `TrainingState` (parameters, target parameters, optimizer
state, step, RNG key, skip counter) as arrays, and a JSON `meta` item:

    {"format": "scaled-ql/checkpoint", "version": 1, "step": int,
     "suite": "atari" | "minatar",                  # the games' suite (absent before: atari)
     "games": [...], "num_actions": [...],          # the heads, in order
     "config": {...},                               # dataclasses.asdict(ScaledQLConfig)
     "rng_key": [...],                              # the state's PRNG key (also in the arrays)
     "extra": {...}}                                # e.g. data-stream position, run info

Nothing is unpickled: arrays are read by tensorstore from orbax's array format, metadata is
JSON, so restoring a checkpoint that came from elsewhere cannot run code.

`restore` checks the suite, games and head sizes against the caller's before touching arrays,
so a checkpoint of another suite, game set or architecture fails with a message that says what
differs.  A network takes the observations of one suite only (`types.ObservationSpec`), so a
checkpoint is never loaded for games of another suite (`SuiteMismatchError`), not even to
fine-tune: an Atari torso cannot read MinAtar frames.
"""

import dataclasses
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from scaled_ql import types
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.learning import TrainingState, init_training_state
from scaled_ql.environments import suites
from scaled_ql.networks import ScaledQLNetworks, make_networks

FORMAT = "scaled-ql/checkpoint"
VERSION = 1
# Checkpoints written before suites existed have no "suite" field: they are all Atari.
LEGACY_SUITE = suites.ATARI.name


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the network it is being loaded into."""


class SuiteMismatchError(CheckpointMismatchError):
    """A checkpoint of one game suite loaded for games of another (a ValueError)."""


def config_to_json(config: ScaledQLConfig) -> dict[str, Any]:
    """A JSON-safe dict of a (nested) config dataclass (inf becomes the string 'inf')."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(dataclasses.asdict(config))


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about itself (its JSON item)."""

    step: int
    games: tuple[str, ...]
    num_actions: tuple[int, ...]
    config: dict
    extra: dict
    rng_key: tuple[int, ...] | None = None
    suite: str = LEGACY_SUITE

    @property
    def observation(self) -> types.ObservationSpec:
        """What the checkpoint's network reads: its suite's observation spec."""
        return suites.get_suite(self.suite).observation

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> "CheckpointMeta":
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise CheckpointMismatchError(
                f"{where}: not a {FORMAT} v{VERSION} checkpoint "
                f"(format={data.get('format')!r}, version={data.get('version')!r})")
        return cls(step=int(data["step"]), games=tuple(data["games"]),
                   num_actions=tuple(int(a) for a in data["num_actions"]),
                   config=dict(data["config"]), extra=dict(data.get("extra", {})),
                   rng_key=(None if data.get("rng_key") is None
                            else tuple(int(k) for k in data["rng_key"])),
                   suite=str(data.get("suite", LEGACY_SUITE)))


def check_suite(meta: CheckpointMeta, games: Sequence[str], where: str) -> suites.Suite:
    """The suite of `games`, which must be the checkpoint's; raises `SuiteMismatchError`
    naming both suites and both game lists otherwise (before any array is read)."""
    suite = suites.suite_of(games)
    if suite.name != meta.suite:
        theirs = suites.get_suite(meta.suite)
        raise SuiteMismatchError(
            f"{where} is a checkpoint of the {theirs.name} suite (games {list(meta.games)}, "
            f"observations {theirs.observation.describe()}); {list(games)} are {suite.name} "
            f"games (observations {suite.observation.describe()}): a network reads one "
            "suite's observations, so a checkpoint loads, resumes or fine-tunes only for games "
            "of its own suite")
    return suite


class Checkpointer:
    """Saves and restores `TrainingState`s under `directory`, keeping the last `max_to_keep`."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        import orbax.checkpoint as ocp

        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self._directory = os.path.abspath(os.fspath(directory))
        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(
            self._directory, options=options, item_names=("state", "meta"))

    @property
    def directory(self) -> str:
        return self._directory

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def save(self, state: TrainingState, *, games: Sequence[str], num_actions: Sequence[int],
             config: ScaledQLConfig, extra: Mapping[str, Any] | None = None) -> int:
        """Writes `state` as the checkpoint of its step; returns that step."""
        step = int(jax.device_get(state.step))
        host_state = jax.device_get(state)
        leaves = jax.tree_util.tree_leaves(host_state.params)
        if not all(np.all(np.isfinite(x)) for x in leaves):
            raise FloatingPointError(
                f"refusing to checkpoint non-finite parameters at step {step} into "
                f"{self._directory}")
        meta = {"format": FORMAT, "version": VERSION, "step": step,
                "suite": suites.suite_of(games).name, "games": list(games),
                "num_actions": [int(a) for a in num_actions], "config": config_to_json(config),
                "rng_key": np.asarray(host_state.rng_key).ravel().tolist(),
                "extra": dict(extra or {})}
        ocp = self._ocp
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta)), force=True)
        self._manager.wait_until_finished()
        return step

    def read_meta(self, step: int | None = None) -> CheckpointMeta:
        """The JSON item of checkpoint `step` (default: the latest)."""
        step = self._resolve(step)
        ocp = self._ocp
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return CheckpointMeta.from_json(restored.meta, f"{self._directory}/{step}")

    def restore(self, template: TrainingState, *, games: Sequence[str],
                num_actions: Sequence[int], step: int | None = None
                ) -> tuple[TrainingState, CheckpointMeta]:
        """Restores checkpoint `step` (default: the latest) into the structure of `template`.

        Raises:
          FileNotFoundError: there is no complete checkpoint.
          SuiteMismatchError: `games` belong to another suite than the checkpoint's.
          CheckpointMismatchError: the games, head sizes or parameter shapes differ.
        """
        step = self._resolve(step)
        meta = self.read_meta(step)
        where = f"{self._directory}/{step}"
        check_suite(meta, games, where)
        if tuple(meta.games) != tuple(games) or tuple(meta.num_actions) != tuple(num_actions):
            raise CheckpointMismatchError(
                f"{where} has heads for games {list(meta.games)} with action counts "
                f"{list(meta.num_actions)}; this run has {list(games)} with "
                f"{[int(a) for a in num_actions]}. Fine-tuning adds heads deliberately: "
                "see `scaled-ql finetune-offline`.")
        ocp = self._ocp
        host_template = jax.device_get(template)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(host_template)))
        except (ValueError, KeyError) as error:
            raise CheckpointMismatchError(
                f"{where} does not fit this network (another torso, width or atom count?): "
                f"{error}") from None
        state = restored.state
        mismatched = [
            f"{jax.tree_util.keystr(path)}: checkpoint {np.shape(a)} vs network {np.shape(b)}"
            for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(state),
                                    jax.tree_util.tree_leaves(host_template))
            if np.shape(a) != np.shape(b)
        ]
        if mismatched:
            raise CheckpointMismatchError(
                f"{where} does not fit this network (another torso, width or atom count?): "
                + "; ".join(mismatched[:5]))
        return TrainingState(*state), meta

    def _resolve(self, step: int | None) -> int:
        steps = self.all_steps()
        if not steps:
            raise FileNotFoundError(f"no complete checkpoint in {self._directory}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise FileNotFoundError(f"no checkpoint for step {step} in {self._directory}; "
                                    f"available: {steps}")
        return step

    def close(self) -> None:
        self._manager.close()


def run_and_step(path: str | os.PathLike, step: int | None = None
                 ) -> tuple[pathlib.Path, int | None]:
    """(run directory, checkpoint step) from what a user may point at: a run directory (its
    `step`, None: the latest), its `checkpoints/` folder, or one checkpoint `RUN/checkpoints/
    STEP` (that step).

    Raises:
      FileNotFoundError: `path` is none of these (the message says what to pass).
      ValueError: a checkpoint folder of one step with another `step`.
    """
    path = pathlib.Path(path)
    if path.name.isdigit() and path.parent.name == "checkpoints" and path.is_dir():
        if step is not None and step != int(path.name):
            raise ValueError(f"{path} is the checkpoint of step {path.name}, but checkpoint_step "
                             f"{step} was given: pass the run directory {path.parent.parent} "
                             f"with the step, or the checkpoint folder alone")
        return path.parent.parent, int(path.name)
    if path.name == "checkpoints" and path.is_dir():
        path = path.parent
    if not (path / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{path} has no checkpoints/ folder: is it a run directory? Pass the folder of a "
            f"run (the one holding checkpoints/ and config.json) or one of its checkpoints "
            f"(RUN/checkpoints/STEP)")
    return path, step


def read_run_meta(run_dir: str | os.PathLike, step: int | None = None
                  ) -> tuple[CheckpointMeta, str]:
    """(metadata, 'DIR/checkpoints/STEP' for messages) of a run directory's latest (or `step`)
    checkpoint, without reading its arrays.

    `run_dir` may also be one checkpoint (`RUN/checkpoints/STEP`, see `run_and_step`).

    Raises:
      FileNotFoundError: `run_dir` has no checkpoints/ folder, or no such checkpoint.
    """
    run_dir, step = run_and_step(run_dir, step)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        meta = checkpointer.read_meta(step)
    finally:
        checkpointer.close()
    return meta, f"{checkpointer.directory}/{meta.step}"


def config_from_json(data: Mapping[str, Any]) -> ScaledQLConfig:
    """Inverse of `config_to_json` (unknown keys are an error: a newer checkpoint format)."""
    from scaled_ql.networks import NetworkConfig

    def number(value):
        return float(value) if isinstance(value, str) and value in ("inf", "-inf") else value

    fields = {k: number(v) for k, v in data.items() if k != "network"}
    network = NetworkConfig(**{k: number(v) for k, v in data.get("network", {}).items()})
    try:
        return ScaledQLConfig(network=network, **fields)
    except TypeError as error:
        raise CheckpointMismatchError(f"checkpoint config does not match this version: {error}") \
            from None


@dataclasses.dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint ready to act: its networks, online parameters and metadata, and where it
    was read from (for messages)."""

    networks: ScaledQLNetworks
    params: dict
    config: ScaledQLConfig
    meta: CheckpointMeta
    where: str = ""


def load_checkpoint(run_dir: str | os.PathLike, step: int | None = None) -> LoadedCheckpoint:
    """Loads the latest (or `step`) checkpoint of a run directory, networks rebuilt from it
    (for the observations of its suite: `meta.observation`)."""
    run_dir, step = run_and_step(run_dir, step)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        meta = checkpointer.read_meta(step)
        config = config_from_json(meta.config)
        networks = make_networks(config.network, meta.num_actions,
                                 observation=meta.observation)
        template = init_training_state(networks, config, jax.random.PRNGKey(0))
        state, meta = checkpointer.restore(template, games=meta.games,
                                           num_actions=meta.num_actions, step=meta.step)
    finally:
        checkpointer.close()
    return LoadedCheckpoint(networks=networks, params=jax.device_get(state.params), config=config,
                            meta=meta, where=f"{checkpointer.directory}/{meta.step}")
