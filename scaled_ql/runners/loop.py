"""The training loop every single-process runner shares, and how a run ends.

Step the learner with a progress bar; checkpoint every `checkpoint_every` steps; evaluate every
`eval_every` steps and at the end (unless `final_eval` is off).

Signals (SIGINT/SIGTERM, `run_dir.StopRequested`): during a training step or a checkpoint write
the first signal is deferred to the end of the step; during an evaluation it stops the
evaluation at its next environment step (the runner's `evaluate` polls `stop`).  Either way the
loop then writes a checkpoint of the step reached and returns.  An interrupted evaluation round
is dropped whole (eval_results.json only ever holds complete rounds of one protocol); `--resume`
plays it again: a resumed run first evaluates its checkpoint's step when an evaluation was due
there and is not recorded.  A second signal stops
at once, leaving the newest complete checkpoint the latest (orbax writes are atomic).
"""

import dataclasses
from collections.abc import Callable, Collection, Sequence

import numpy as np

from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.runners.summary import PretrainSummary, scored, write_summary


@dataclasses.dataclass(frozen=True)
class LoopEnd:
    """How the training loop ended.

    Attributes:
      step: the step reached.
      stopped_by: the signal that stopped the run, or None.
      stopped_during: what the signal interrupted ('training', 'the evaluation at step N',
        'the final evaluation'), or None.
      episodes: the last complete evaluation's episodes (None: none in this run).
      final_evaluated: whether the final evaluation was played (or found recorded).
    """

    step: int
    stopped_by: int | None
    stopped_during: str | None
    episodes: list | None
    final_evaluated: bool


def recorded_rounds(run_dir) -> dict:
    """step -> episodes of the evaluation rounds in `run_dir`'s eval_results.json ({} if none)."""
    from scaled_ql.evaluation import read_results, results_path

    if not results_path(run_dir).exists():
        return {}
    return {ev.step: list(ev.episodes) for ev in read_results(run_dir).evaluations}


def train(learner, *, start_step: int, total_steps: int, log_every: int, checkpoint_every: int,
          eval_every: int, save: Callable[[int], None], evaluate: Callable[[int], list],
          progress: bool, desc: str, stop: run_dir_lib.StopRequested,
          episodes: list | None = None, final_eval: bool = True,
          recorded: Collection[int] = (), start: "RunStart | None" = None) -> LoopEnd:
    """Runs `learner` from `start_step` to `total_steps` SGD steps.

    `recorded` holds the steps whose evaluation is already in the results (a resumed run):
    they are not played again.  `stop` is entered by the caller.  `start.phase` follows what
    the loop is doing ('training', 'the evaluation at step N', 'the final evaluation') from
    the moment it changes, so a second signal that lands anywhere after the first one (even
    before this function returns) is reported as a stop during what the first one stopped.
    """
    from tqdm import tqdm

    steps_per_call = learner.steps_per_call
    step = start_step
    during, final_evaluated = "training", False

    def doing(what: str) -> None:
        nonlocal during
        during = what
        if start is not None:
            start.phase = what

    def evaluate_at(at: int, what: str) -> list:
        doing(what)
        stop.raise_if_stopped()
        result = evaluate(at)
        doing("training")
        return result

    try:
        if (eval_every and 0 < step < total_steps and step % eval_every < steps_per_call
                and step not in recorded):
            episodes = evaluate_at(step, f"the evaluation at step {step}")  # interrupted before
        with tqdm(total=total_steps, initial=start_step, desc=desc, unit="step",
                  disable=not progress, dynamic_ncols=True) as bar:
            while step < total_steps and not stop:
                with stop.deferred():
                    learner.step()
                    step += steps_per_call
                    bar.update(steps_per_call)
                    if step % log_every < steps_per_call:
                        metrics = learner.last_metrics
                        bar.set_postfix(loss=f"{metrics.get('loss', np.nan):.4f}",
                                        q=f"{metrics.get('mean_q', np.nan):.3f}")
                    if step % checkpoint_every < steps_per_call:
                        save(step)
                if (eval_every and step % eval_every < steps_per_call and step < total_steps
                        and not stop):
                    episodes = evaluate_at(step, f"the evaluation at step {step}")
        if not stop:
            with stop.deferred():
                save(step)
            if final_eval and step in recorded:
                final_evaluated = True  # a resumed run whose final round is recorded already
            elif final_eval:
                episodes = evaluate_at(step, "the final evaluation")
                final_evaluated = True
    except run_dir_lib.Stopped:
        pass
    if stop.signal is None:
        return LoopEnd(step, None, None, episodes, final_evaluated)
    if not stop.repeated:
        try:
            with stop.deferred():
                save(step)
        except run_dir_lib.Stopped:  # a second signal mid-write: the previous one stays
            pass
    return LoopEnd(step, stop.signal, during, None, False)


def finish(run_dir, games: Sequence[str], end: LoopEnd, seed: int,
           checkpoint_step: int | None = None):
    """The run's `PretrainSummary`; written to summary.json/.md unless it was interrupted.

    A run without a final evaluation (`--no-final-eval`) summarizes its last recorded round,
    and says so; with none at all its summary has no scores.
    """
    import pathlib

    if end.stopped_by is not None:
        return PretrainSummary(str(run_dir), end.step, end.stopped_by, {}, {}, None, None,
                               stopped_during=end.stopped_during,
                               checkpoint_step=checkpoint_step)
    episodes, evaluated_step = end.episodes, end.step if end.final_evaluated else None
    if episodes is None or not end.final_evaluated:
        recorded = recorded_rounds(run_dir)  # a resumed run's final round, or the last one
        evaluated_step = end.step if end.final_evaluated else max(recorded, default=None)
        episodes = recorded.get(evaluated_step)
    summary = scored(str(run_dir), end.step, games, episodes, seed,
                     checkpoint_step=checkpoint_step, evaluated_step=evaluated_step)
    write_summary(pathlib.Path(run_dir), summary)
    return summary


class RunStart:
    """What a runner's body reports to `run_guarded`: whether it prepared the run directory
    (only then is a failed start cleaned up) and which phase it is in.

    After a stopped training loop the phase stays what the first signal interrupted: a second
    signal that lands while the runner winds down is reported as a stop during that phase."""

    def __init__(self, out_dir, resume: bool):
        import pathlib

        self.run_dir = pathlib.Path(out_dir).absolute()
        self.existed = self.run_dir.exists()
        self.resume = resume
        self.prepared = False
        self.phase = "startup"

    def prepare(self, config) -> "pathlib.Path":  # noqa: F821
        """`run_dir.prepare` of the run directory; returns it."""
        self.run_dir = run_dir_lib.prepare(self.run_dir, config, self.resume)
        self.prepared = True
        return self.run_dir


def run_guarded(out_dir, resume: bool, body: Callable):
    """`body(stop, start) -> PretrainSummary` with signals handled from the first moment.

    A signal before the training loop (imports, data pipeline, JIT, restoring) ends the run
    with a summary that says so (`stopped_during='startup'`); any failure or signal before a
    fresh run's first checkpoint removes what `start.prepare` made (`discard_unstarted`), so
    no half-made run is left behind.  Errors propagate.
    """

    start = RunStart(out_dir, resume)
    with run_dir_lib.StopRequested() as stop:
        try:
            return body(stop, start)
        except BaseException as error:
            if start.prepared and not resume:
                run_dir_lib.discard_unstarted(start.run_dir, start.existed)
            if not isinstance(error, run_dir_lib.Stopped):
                raise
            latest = run_dir_lib.latest_checkpoint_step(start.run_dir)
            return PretrainSummary(str(start.run_dir), latest or 0, error.signal, {}, {}, None,
                                   None, stopped_during=start.phase, checkpoint_step=latest)
