"""The training loop every single-process runner shares.

Step the learner with a progress bar; checkpoint every `checkpoint_every` steps; evaluate every
`eval_every` steps; on SIGINT/SIGTERM stop between steps.  A final checkpoint is always written;
the final evaluation only when the run was not stopped by a signal.
"""

from collections.abc import Callable, Sequence

import numpy as np

from scaled_ql.runners import run_dir as run_dir_lib


def train(learner, *, start_step: int, total_steps: int, log_every: int, checkpoint_every: int,
          eval_every: int, save: Callable[[int], None], evaluate: Callable[[int], list],
          progress: bool, desc: str, episodes: list | None = None
          ) -> tuple[int, int | None, list | None]:
    """Runs `learner` from `start_step` to `total_steps` SGD steps.

    Returns:
      (the step reached, the signal that stopped the run or None, the last evaluation's
      episodes or `episodes` if there was none).
    """
    from tqdm import tqdm

    steps_per_call = learner.steps_per_call
    step = start_step
    with run_dir_lib.StopRequested() as stop, tqdm(
            total=total_steps, initial=start_step, desc=desc, unit="step", disable=not progress,
            dynamic_ncols=True) as bar:
        while step < total_steps and not stop:
            learner.step()
            step += steps_per_call
            bar.update(steps_per_call)
            if step % log_every < steps_per_call:
                metrics = learner.last_metrics
                bar.set_postfix(loss=f"{metrics.get('loss', np.nan):.4f}",
                                q=f"{metrics.get('mean_q', np.nan):.3f}")
            if step % checkpoint_every < steps_per_call:
                save(step)
            if eval_every and step % eval_every < steps_per_call and step < total_steps:
                episodes = evaluate(step)
        stopped_by = stop.signal
    save(step)
    if stopped_by is None:
        episodes = evaluate(step)
    return step, stopped_by, episodes


def finish(run_dir, games: Sequence[str], step: int, stopped_by: int | None, episodes,
           seed: int):
    """The run's `PretrainSummary`; written to summary.json/.md unless it was interrupted."""
    import pathlib

    from scaled_ql.runners.pretrain import PretrainSummary, summarize, write_summary

    if stopped_by is not None:
        return PretrainSummary(str(run_dir), step, stopped_by, {}, {}, None, None)
    mean_returns, normalized, iqm, ci = summarize(games, episodes, seed=seed)
    summary = PretrainSummary(str(run_dir), step, None, mean_returns, normalized, iqm, ci)
    write_summary(pathlib.Path(run_dir), summary)
    return summary
