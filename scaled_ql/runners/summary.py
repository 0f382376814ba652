"""How a single-process run ends: its `PretrainSummary`, summary.json / summary.md and the
closing table (pretraining, offline fine-tuning, `scaled-ql evaluate`)."""

import dataclasses
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np

@dataclasses.dataclass(frozen=True)
class PretrainSummary:
    """How a run ended and what its final evaluation scored.

    `stopped_during` says what a signal interrupted ('startup', 'training', 'the evaluation at
    step N', 'the final evaluation'); `checkpoint_step` is the newest complete checkpoint when
    the run ended (None: none); `evaluated_step` the step whose evaluation the scores are of
    (None: the run's `step`, or no evaluation when the scores are empty); `truncation` the
    sentence that says how many of those episodes the episode cap cut off ("" if none; the one
    `scaled-ql report` prints) and `truncated_games` the games they are of (their rows are
    marked).
    """

    run_dir: str
    step: int
    stopped_by_signal: int | None
    mean_returns: dict[str, float]
    human_normalized: dict[str, float]
    iqm: float | None  # the IQM every report uses (runs x games; here one run)
    episode_interval: tuple[float, float] | None  # evaluation uncertainty, not a CI over runs
    stopped_during: str | None = None
    checkpoint_step: int | None = None
    evaluated_step: int | None = None
    truncation: str = ""
    truncated_games: tuple[str, ...] = ()


def summarize(games: Sequence[str], episodes: Sequence, *, reps: int = 2000, seed: int = 0
              ) -> tuple[dict, dict, float | None, tuple[float, float] | None]:
    """Per-game mean return and normalized score, the run's IQM, and its evaluation interval.

    The IQM is the one every report uses (rliable's, over runs x games of per-game mean
    scores; one run here), so a run's closing line and `scaled-ql report` agree.  A single run
    has no run-to-run spread: the interval resamples episodes within each game
    (`stats.run_iqm_with_episode_interval`) and says how sure the evaluation is, not how
    reproducible training is; it is printed as such, never as the IQM's CI.  Games without a
    reference score (Carnival, Pooyan) are left out of the IQM.
    """
    from scaled_ql.evaluation import normalized as normalize
    from scaled_ql.evaluation.stats import run_iqm_with_episode_interval

    returns = {g: [e.episode_return for e in episodes if e.game == g] for g in games}
    mean_returns = {g: float(np.mean(r)) for g, r in returns.items()}
    scores = {g: normalize(g, np.asarray(r)) for g, r in returns.items()}
    normalized = {g: float(np.mean(s)) for g, s in scores.items()}
    scored = [g for g in games if np.isfinite(normalized[g])]
    if not scored:
        return mean_returns, normalized, None, None
    iqm = run_iqm_with_episode_interval([scores[g] for g in scored], reps=reps, seed=seed)
    return mean_returns, normalized, iqm.estimate, (iqm.lower, iqm.upper)


def score_column(games: Sequence[str]) -> str:
    """What the games' normalized score is called: 'human-normalized' (Atari), or
    'reference-normalized' (MinAtar, which has no human scores)."""
    if not games:
        return "human-normalized"
    from scaled_ql.environments import suites

    return suites.suite_of(list(games)).score_name.removesuffix(" score")


def scored(run_dir: str, step: int, games: Sequence[str], episodes: Sequence | None,
           seed: int, **fields) -> PretrainSummary:
    """The summary of a run that ended at `step` (not stopped) whose evaluation played
    `episodes` (None or empty: no scores); `fields` are the other `PretrainSummary` fields."""
    if not episodes:
        return PretrainSummary(run_dir, step, None, {}, {}, None, None, **fields)
    from scaled_ql.evaluation.results import episodes_truncation_note

    mean_returns, normalized, iqm, interval = summarize(games, episodes, seed=seed)
    cut = tuple(dict.fromkeys(e.game for e in episodes if getattr(e, "truncated", False)))
    return PretrainSummary(run_dir, step, None, mean_returns, normalized, iqm, interval,
                           truncation=episodes_truncation_note(episodes), truncated_games=cut,
                           **fields)


def format_table(summary: PretrainSummary, cap_flag: str = "--eval-max-frames",
                 mark_games: bool = False) -> str:
    """The per-game table printed at the end of a run (markdown).

    Scores that include episodes cut off by the episode cap are marked as `scaled-ql report`
    marks them (`TRUNCATED_MARK` after the game's score and after the IQM), followed by the
    note that says how many were cut and which flag (`cap_flag`) raises the cap.
    `mark_games` puts the game's mark after its name instead (`scaled-ql evaluate`'s table).
    """
    if not summary.mean_returns:
        return (f"no evaluation: --eval-every 0 and --no-final-eval (step {summary.step}; "
                "`scaled-ql evaluate --checkpoint RUN_DIR` evaluates it)")
    at = summary.step if summary.evaluated_step is None else summary.evaluated_step
    note = ("" if at == summary.step else
            f"\n\nno final evaluation (--no-final-eval): the scores are of the last evaluation, "
            f"at step {at} of {summary.step}")
    normalized = score_column(summary.mean_returns)
    from scaled_ql.evaluation.report import TRUNCATED_MARK

    # As `scaled-ql report` marks its aggregates: the IQM includes a cut-off episode.
    mark = TRUNCATED_MARK if any(np.isfinite(summary.human_normalized[g])
                                 for g in summary.truncated_games) else ""
    lines = [f"| game | mean return | {normalized} |", "|---|---:|---:|"]
    for game, value in summary.mean_returns.items():
        norm = summary.human_normalized[game]
        cut = TRUNCATED_MARK if game in summary.truncated_games else ""
        name, score = (f"{game}{cut}", "") if mark_games else (game, cut)
        lines.append(f"| {name} | {value:.1f} | "
                     f"{'n/a' if not np.isfinite(norm) else f'{norm:.3f}'}{score} |")
    if summary.iqm is not None:
        lo, hi = summary.episode_interval
        lines.append(f"\nIQM {normalized} at step {at}: {summary.iqm:.3f}{mark} (one run; "
                     f"evaluation uncertainty, episodes resampled: {lo:.3f} to {hi:.3f})")
    cut = (f"\n\n{TRUNCATED_MARK} {summary.truncation} Raise {cap_flag} (or leave it out: "
           "the suite's cap) to score whole games." if summary.truncation else "")
    return "\n".join(lines) + cut + note


def write_summary(run_dir: pathlib.Path, summary: PretrainSummary) -> None:
    """summary.json (atomic) and summary.md in the run directory."""
    data = dataclasses.asdict(summary)
    data["human_normalized"] = {k: (v if np.isfinite(v) else None)
                                for k, v in summary.human_normalized.items()}
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, run_dir / "summary.json")
    (run_dir / "summary.md").write_text(format_table(summary) + "\n")
