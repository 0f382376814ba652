"""The evaluation results file: one `eval_results.json` per run directory.

Every runner (pre-training, offline and online fine-tuning, baselines) records what its
evaluators measured in this one format, so that `scaled-ql report` can compare any runs.
The file holds the run's identity and config, the games it is evaluated on, and one entry per
evaluation round: the learner step of the evaluated checkpoint, when the round finished, and
every episode played (game, return, length, frames, whether the frame cap cut it off).
Learning curves are the rounds in step order.  docs/EVALUATION.md documents the format field
by field; the record types and the JSON document are in
`scaled_ql.evaluation.results_format` (re-exported here).

Writes are atomic (a temporary file in the same directory, then `os.replace`), so a reader
never sees half a file, even if the runner dies mid-write; the file gets the permissions of
any file the user creates (0666 less the umask: 0644 usually).  `append_evaluation` also holds
an advisory lock on the file's directory (POSIX `flock`; no lock file is left behind) around
its read-modify-write, so that several evaluator processes of one run on one machine can
append to the same file.
"""

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from scaled_ql.evaluation import tensorboard
from scaled_ql.evaluation.results_format import (  # noqa: F401  (re-exported: the old import path)
    RESULTS_FILENAME,
    RESULTS_FORMAT,
    RESULTS_VERSION,
    Episode,
    EvalResults,
    Evaluation,
    ResultsFormatError,
    RunInfo,
    episodes_truncation_note,
    from_json_dict,
    to_json_dict,
    truncation_note,
)
from scaled_ql.evaluation.results_format import _check, _coerce_episode, _plain

try:
    import fcntl
except ImportError:  # Not POSIX: appends from several processes are not serialized.
    fcntl = None

# ------------------------------------------------------------------------------------------
# Files.


def results_path(run_dir_or_file: str | os.PathLike) -> Path:
    """The results file of a run directory (a path to a `.json` file is returned as is)."""
    path = Path(run_dir_or_file)
    return path if path.suffix == ".json" else path / RESULTS_FILENAME


def read_results(run_dir_or_file: str | os.PathLike) -> EvalResults:
    """Reads and validates a run's results; errors name the file and the field at fault."""
    path = results_path(run_dir_or_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation results file here (expected "
                                f"{RESULTS_FILENAME} in the run directory)")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsFormatError(f"{path}: not valid JSON: {err}") from None
    return from_json_dict(data, source=str(path))


def write_results(run_dir_or_file: str | os.PathLike, results: EvalResults) -> Path:
    """Validates and writes `results` atomically (temp file + rename); returns the path."""
    path = results_path(run_dir_or_file)
    text = json.dumps(to_json_dict(results, source=str(path)), indent=1, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 leaves the mode to the umask, as for any file the user creates
    # (tempfile.mkstemp would make it 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def append_evaluation(
    run_dir_or_file: str | os.PathLike,
    run: RunInfo,
    games: Sequence[str],
    step: int,
    episodes: Iterable[Any],
    wall_time: float | None = None,
) -> EvalResults:
    """Records one evaluation round of the checkpoint at learner `step`; returns the new content.

    Creates the file on the first call.  `episodes` may be `EpisodeResult`s of the batched
    evaluator (anything with `game`, `episode_return`, `length`, `frames` attributes, and
    optionally `truncated`), `Episode`s, or dicts with keys game, return (or episode_return),
    length, frames and optionally truncated.

    Rules, so that runners can call this without bookkeeping of their own:
      - a new, later step adds an evaluation;
      - the same step as an existing evaluation adds the episodes to it (more episodes of the
        same checkpoint, e.g. from another evaluator process or game group);
      - an earlier step drops the evaluations after it, then adds: a run that resumed from an
        older checkpoint discards the trajectory it resumed away from.
    The run's name, method and seed, and its games, must match the existing file (a results
    file belongs to one run); the stored config is the one of the first call.  In a run
    directory with TensorBoard logs the round's returns also go there (`tensorboard`).
    """
    path = results_path(run_dir_or_file)
    source = f"{path} (append_evaluation)"
    step = _plain(step)
    new_episodes = tuple(_coerce_episode(e, source, f"episodes[{i}]")
                         for i, e in enumerate(episodes))
    for i, episode in enumerate(new_episodes):
        _check(episode.game in games, source, f"episodes[{i}].game",
               f"not one of the run's games {list(games)}", episode.game)
    wall_time = time.time() if wall_time is None else float(wall_time)
    added = new_episodes  # (merged below with the step's earlier episodes, if any)
    with _locked(path):
        if path.exists():
            existing = read_results(path)
            for field in ("name", "method", "seed"):
                old, new = getattr(existing.run, field), getattr(run, field)
                _check(old == new, source, f"run.{field}",
                       f"the file belongs to another run ({field} {old!r} there)", new)
            _check(tuple(games) == existing.games, source, "games",
                   f"the file lists other games {list(existing.games)}", list(games))
            run, kept = existing.run, list(existing.evaluations)
        else:
            kept = []
        kept = [ev for ev in kept if ev.step <= step]
        if kept and kept[-1].step == step:
            merged = kept.pop()
            new_episodes = merged.episodes + new_episodes
            wall_time = max(wall_time, merged.wall_time)
        kept.append(Evaluation(step=step, wall_time=wall_time, episodes=new_episodes))
        results = EvalResults(run=run, games=tuple(games), evaluations=tuple(kept))
        write_results(path, results)
    log_dir = tensorboard.run_log_dir(path)
    if log_dir is not None and added:
        tensorboard.write_round(log_dir, step, added)
    return results


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive `flock` on `path`'s directory: the directory always exists and is
    never replaced, so, unlike a lock file, nothing is left behind and no writer can lock a
    file that another has just removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
