"""The run directory: where a run's config, logs, checkpoints and results live.

    RUN_DIR/
      config.json          the run's full configuration (written once, checked on --resume)
      checkpoints/<step>/  orbax checkpoints (atomic; the newest complete one is resumed)
      logs/learner.csv     learner metrics, one row per step (Acme CSVLogger, flushed every row;
                           on --resume, rows after the resumed checkpoint are dropped)
      logs/tensorboard/    the same metrics for TensorBoard
      eval_results.json    every evaluation round (scaled_ql.evaluation format)
      summary.json / .md   the final per-game table and aggregate scores
"""

import csv
import json
import os
import pathlib
import signal
from collections.abc import Mapping
from typing import Any

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
LEARNER_LOG = "learner.csv"


def prepare(run_dir: str | os.PathLike, config: Mapping[str, Any], resume: bool) -> pathlib.Path:
    """Creates (or, with `resume`, re-opens) a run directory for `config`.

    A directory that already holds checkpoints is only reused with `resume`, and then only for
    the same configuration apart from the step budget and evaluation settings, so a typo in a
    command line cannot silently continue someone else's run.
    """
    run_dir = pathlib.Path(run_dir).absolute()
    config_path = run_dir / CONFIG_FILE
    has_checkpoints = any((run_dir / CHECKPOINT_DIR).glob("[0-9]*"))
    if has_checkpoints and not resume:
        raise FileExistsError(
            f"{run_dir} already holds checkpoints: pass --resume to continue that run, or choose "
            "another --out")
    if resume and config_path.exists():
        previous = json.loads(config_path.read_text())
        changed = config_differences(
            {k: v for k, v in previous.items() if k not in RESUMABLE_CHANGES},
            {k: v for k, v in json.loads(json.dumps(config, default=str)).items()
             if k not in RESUMABLE_CHANGES})
        if changed:
            shown = "; ".join(f"{key}: was {old!r}, now {new!r}" for key, old, new in changed[:6])
            more = f" (and {len(changed) - 6} more)" if len(changed) > 6 else ""
            raise ValueError(
                f"--resume of {run_dir} with a different configuration: {shown}{more}. "
                "Resume with the original settings, or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_DIR).mkdir(exist_ok=True)
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(tmp, config_path)
    return run_dir


# Settings a resumed run may change: how long to train, how to evaluate and log, and when to
# give up on non-finite updates.
RESUMABLE_CHANGES = frozenset({
    "steps", "eval_every", "eval_episodes", "eval_workers", "checkpoint_every", "log_every",
    "progress", "eval_max_episode_frames", "max_consecutive_skips",
})


def config_differences(previous: Mapping[str, Any], current: Mapping[str, Any],
                       prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, previous value, current value) for every setting that differs.

    Nested dicts (the agent's config and its network) are compared key by key, so a changed
    width shows as `agent.network.width_multiplier`, not as two whole dicts.
    """
    found = []
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += config_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append((f"{prefix}{key}", old, new))
    return found


def truncate_learner_log(run_dir: str | os.PathLike, step: int) -> int:
    """Drops the rows of `logs/learner.csv` after `step` (and a torn last line); returns how
    many rows were dropped.

    A run killed after its last checkpoint has logged steps that the resumed run will train
    (and log) again; cutting them keeps the log's step column strictly increasing.  The file is
    replaced atomically, so a kill during this leaves either the old or the new log.
    """
    path = pathlib.Path(run_dir) / LOG_DIR / LEARNER_LOG
    if not path.exists():
        return 0
    text = path.read_text()
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or a torn row
    if not complete:
        dropped = int(bool(lines[-1]))
        if dropped:
            _replace_text(path, "")
        return dropped
    header = next(csv.reader([complete[0]]))
    if "step" not in header:
        return 0
    column = header.index("step")
    kept, dropped = [complete[0]], int(bool(lines[-1]))
    for line in complete[1:]:
        row = next(csv.reader([line]), [])
        try:
            keep = len(row) == len(header) and float(row[column]) <= step
        except ValueError:
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        _replace_text(path, "".join(f"{line}\n" for line in kept))
    return dropped


def _replace_text(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the training loop checks between steps.

    The loop then saves a checkpoint and returns instead of dying mid-update.  A second signal
    of the same kind restores the default behaviour (so a second Ctrl-C still kills).
    """

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self) -> "StopRequested":
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        del frame
        self.signal = signum
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __bool__(self) -> bool:
        return self.signal is not None
