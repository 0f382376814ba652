"""The run directory: where a run's config, logs, checkpoints and results live.

    RUN_DIR/
      config.json          the run's full configuration (written once, checked on --resume)
      checkpoints/<step>/  orbax checkpoints (atomic; the newest complete one is resumed)
      logs/learner.csv     learner metrics, one row per logged step (Acme CSVLogger)
      logs/tensorboard/    the same metrics for TensorBoard
      eval_results.json    every evaluation round (scaled_ql.evaluation format)
      summary.json / .md   the final per-game table and aggregate scores
"""

import json
import os
import pathlib
import signal
from collections.abc import Mapping
from typing import Any

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


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
        changed = sorted(
            key for key in set(previous) | set(config)
            if key not in RESUMABLE_CHANGES and previous.get(key) != config.get(key))
        if changed:
            raise ValueError(
                f"--resume of {run_dir} with a different configuration ({', '.join(changed)}); "
                f"was {[previous.get(k) for k in changed]}, now {[config.get(k) for k in changed]}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_DIR).mkdir(exist_ok=True)
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(tmp, config_path)
    return run_dir


# Settings a resumed run may change: how long to train, how to evaluate and log.
RESUMABLE_CHANGES = frozenset({
    "steps", "eval_every", "eval_episodes", "eval_workers", "checkpoint_every", "log_every",
    "progress", "eval_max_episode_frames",
})


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
