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

import _weakrefset
import contextlib
import csv
import json
import os
import pathlib
import signal
import threading
import weakref
from collections.abc import Mapping
from typing import Any

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
LEARNER_LOG = "learner.csv"


def prepare(run_dir: str | os.PathLike, config: Mapping[str, Any], resume: bool) -> pathlib.Path:
    """Creates (or, with `resume`, re-opens) a run directory for `config`.

    Without `resume` the folder must be new, hold none of the files a run writes
    (`RUN_OUTPUTS`: other files, such as a job script's record and log, are left alone), or be
    a run of the same kind that never reached a checkpoint (started over: its files are removed
    first); a folder holding checkpoints, another kind of run or a run's file names otherwise
    (a report's summary.json) is refused and nothing in it is touched.  With `resume` the folder
    must hold a run (its config.json) of the same configuration apart from
    `RESUMABLE_CHANGES`, with `steps` not below its newest checkpoint, so a typo in a command
    line cannot silently continue (or rewrite the history of) someone else's run.  Paths are
    compared by what they point to, and the run's own folder not at all: a moved run resumes.
    Paths are written absolute, so a run resumes from any working directory.

    Raises:
      FileExistsError: the folder is not empty and not a run this command may write into.
      FileNotFoundError: `resume` of a folder that holds no run.
      ValueError: `resume` with settings that differ from the run's.
    """
    run_dir = pathlib.Path(run_dir).absolute()
    config = absolute_paths(json.loads(json.dumps(config, default=str)))
    config_path = run_dir / CONFIG_FILE
    previous = json.loads(config_path.read_text()) if config_path.is_file() else None
    latest = latest_checkpoint_step(run_dir)
    if resume:
        if previous is None:
            problem = ("no such folder" if not run_dir.exists()
                       else "the folder holds no run (no config.json)")
            raise FileNotFoundError(
                f"--resume of {run_dir}: {problem}; give the run directory of an earlier run, "
                "or leave out --resume to start one")
        check_resume(run_dir, previous, config, latest)
    else:
        if latest is not None:
            raise FileExistsError(
                f"{run_dir} already holds checkpoints: pass --resume to continue that run, or "
                "choose another --out")
        if run_dir.exists() and not run_dir.is_dir():
            raise FileExistsError(f"--out {run_dir} is a file, not a folder: choose another --out")
        found = sorted(p.name for p in run_dir.iterdir() if p.name in RUN_OUTPUTS
                       ) if run_dir.is_dir() else []
        if found and (previous is None or run_kind(previous) != run_kind(config)):
            what = ("another kind of run (a " + run_kind(previous) + " run)" if previous
                    else "no run of this command")
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise FileExistsError(
                f"--out {run_dir} is not empty and holds {what} (found {shown}); nothing was "
                "written: choose a new or empty folder")
        if found:  # a run of this command that never reached a checkpoint: start it over
            discard_unstarted(run_dir, existed=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_DIR).mkdir(exist_ok=True)
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(tmp, config_path)
    return run_dir


# Settings a resumed run may change: how long to train (never below the newest checkpoint),
# when to evaluate, checkpoint and log, how many checkpoints to keep, on how many processes, and
# when to give up on non-finite updates.  How an evaluation is played (episodes, epsilon, sticky
# actions, episode cap) is part of the run: a resumed run with another protocol would mix
# rounds that cannot be compared.
RESUMABLE_CHANGES = frozenset({
    "steps", "eval_every", "eval_workers", "checkpoint_every", "keep_checkpoints", "log_every",
    "progress", "max_consecutive_skips", "final_eval", "out_dir",
})
# Settings that name files or folders: compared by what they point to.
PATH_SETTINGS = ("data_dir", "checkpoint", "offline_data")


# What a run writes into its folder: a folder holding any of these is a run (or a report)
# that a fresh run would overwrite.
RUN_OUTPUTS = frozenset({CONFIG_FILE, CHECKPOINT_DIR, LOG_DIR, "eval_results.json",
                         "summary.json", "summary.md", "learning_curve.csv",
                         "learning_curve.png"})


def run_kind(config: Mapping[str, Any]) -> str:
    """Which command made a run, from its config.json: 'pretrain', 'finetune-offline' or
    'finetune-online'."""
    if "games" in config:
        return "pretrain"
    return "finetune-offline" if "data_dir" in config else "finetune-online"


def absolute_paths(config: dict) -> dict:
    """`config` with its path settings (`PATH_SETTINGS`, `out_dir`) made absolute."""
    for key in (*PATH_SETTINGS, "out_dir"):
        if isinstance(config.get(key), str) and config[key]:
            config[key] = os.path.abspath(config[key])
    return config


def same_path(a: Any, b: Any) -> bool:
    """Whether two path settings point to the same file or folder (realpath, or samefile)."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return a == b
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def latest_checkpoint_step(run_dir: str | os.PathLike) -> int | None:
    """The step of the newest complete checkpoint folder (`checkpoints/<step>/`), or None."""
    steps = [int(p.name) for p in (pathlib.Path(run_dir) / CHECKPOINT_DIR).glob("[0-9]*")
             if p.name.isdigit() and p.is_dir()]
    return max(steps, default=None)


def check_resume(run_dir: pathlib.Path, previous: Mapping[str, Any],
                 current: Mapping[str, Any], latest: int | None) -> None:
    """Raises ValueError listing every setting of `current` that would change the history of
    the run `previous` (its config.json) whose newest checkpoint is at step `latest`."""
    from scaled_ql.evaluation.runs import with_added_settings

    previous = with_added_settings(previous)  # a run made before a setting existed resumes
    changed = [(key, old, new) for key, old, new in config_differences(
        {k: v for k, v in previous.items() if k not in RESUMABLE_CHANGES},
        {k: v for k, v in current.items() if k not in RESUMABLE_CHANGES})
        if not (key in PATH_SETTINGS and same_path(old, new))]
    steps = current.get("steps")
    if latest is not None and isinstance(steps, int) and steps < latest:
        changed.insert(0, ("steps", f"at least {latest} (its newest checkpoint)", steps))
    if changed:
        shown = "; ".join(f"{key}: was {old!r}, now {new!r}" if key != "steps" else
                          f"steps: must be {old}, now {new!r}" for key, old, new in changed[:6])
        more = f" (and {len(changed) - 6} more)" if len(changed) > 6 else ""
        raise ValueError(
            f"--resume of {run_dir} with a different configuration: {shown}{more}. "
            "Resume with the original settings, or choose another --out")


def discard_unstarted(run_dir: pathlib.Path, existed: bool) -> None:
    """Removes what `prepare` made for a fresh run that ended before its first checkpoint
    (config.json, logs/, an empty checkpoints/, evaluation results), and the folder itself when
    it made it, so a failed or interrupted start leaves no half-made run behind."""
    import shutil

    if latest_checkpoint_step(run_dir) is not None:
        return
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if not existed:
        try:
            run_dir.rmdir()
        except OSError:  # something else was written there meanwhile: keep it
            pass


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


SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Stopped(BaseException):
    """A SIGINT/SIGTERM that ended a phase which cannot pause between steps (startup, an
    evaluation), or a second signal.  A BaseException, like KeyboardInterrupt: `except
    Exception` clean-up code does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(SIGNAL_NAMES.get(signum, f"signal {signum}"))
        self.signal = signum


# Where the weakref machinery runs its callbacks (WeakKeyDictionary/WeakSet entry removal,
# weakref.finalize): like `__del__`, they run when an object dies, and Python prints and drops
# an exception raised there ("Exception ignored in: <function WeakKeyDictionary...remove>").
_WEAKREF_FILES = frozenset({weakref.__file__, _weakrefset.__file__})


def _in_finalizer(frame, depth: int = 16) -> bool:
    """Whether `frame` (where a signal arrived) runs inside an object finalizer (`__del__`, or
    a callback of the weakref module, or a garbage-collector callback such as JAX's
    `_xla_gc_callback`), where an exception cannot propagate."""
    import gc

    gc_callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None and depth > 0:
        if (frame.f_code.co_name == "__del__" or frame.f_code.co_filename in _WEAKREF_FILES
                or frame.f_code in gc_callbacks):
            return True
        frame, depth = frame.f_back, depth - 1
    return False


class StopRequested:
    """SIGINT/SIGTERM handling for a whole command.

    By default a signal raises `Stopped` at once (startup: nothing there is worth finishing).
    Inside `deferred()` (a training step, a checkpoint write, an evaluation) the first signal
    only sets the flag, which the code inside checks where stopping is clean
    (`raise_if_stopped`: the training loop between steps, an evaluation before every policy
    call); the loop then saves a checkpoint and returns.  A second signal raises `Stopped`
    wherever the command is (orbax checkpoints are atomic: an interrupted write leaves the
    previous one the latest), and restores the previous handlers, so a third one acts as if
    none were installed.
    """

    def __init__(self):
        self.signal: int | None = None
        self.repeated = False
        self._previous = {}
        self._deferred = 0

    def __enter__(self) -> "StopRequested":
        for signum in SIGNAL_NAMES:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if _in_finalizer(frame):
            # An exception raised inside a finalizer is printed and dropped by Python: deliver
            # the signal again in a moment, outside the finalizer.
            threading.Timer(0.01, self._deliver_again, (signum,)).start()
            return
        if self.signal is not None:
            self.repeated = True
            self._restore()
            raise Stopped(self.signal)
        self.signal = signum
        if not self._deferred:
            raise Stopped(signum)

    def _deliver_again(self, signum: int) -> None:
        """Sends `signum` again while these handlers are installed; once the command has
        left them (it is ending: a stop already unwound it), the signal has done its work."""
        if self._previous:
            os.kill(os.getpid(), signum)

    @contextlib.contextmanager
    def deferred(self):
        """A first signal inside only sets the flag."""
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1

    def raise_if_stopped(self) -> None:
        if self.signal is not None:
            raise Stopped(self.signal)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()

    def __bool__(self) -> bool:
        return self.signal is not None
