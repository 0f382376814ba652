"""Run directories -> a markdown report with PNG plots, comparing the runs.

`write_report(run_dirs, out_dir)` reads each run's `eval_results.json`, groups seeds by
`run.name` and settings (`scaled_ql.evaluation.runs`), normalizes the mean returns with the game
catalogue (`scores`: human-normalized for ALE games, DQN-normalized for MinAtar games; the
report and its plots name the score by the games' suite, `scores.score_scale`), computes the
aggregates of Agarwal et al. (2021) with stratified
bootstrap CIs (`stats`), draws the plots (`plots`) and writes `report.md` (plus the same
numbers as `summary.json`) into `out_dir`.  Scores that include episodes cut off by the
episode cap (before game over) are marked with a dagger and a footnote.  Used by
`scaled-ql report` and at the end of `make demo`.
"""

import dataclasses
import itertools
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from scaled_ql.evaluation import plots
from scaled_ql.evaluation import scores as scores_lib
from scaled_ql.evaluation import stats
from scaled_ql.evaluation.results import ResultsFormatError, truncation_note
from scaled_ql.evaluation.runs import RunGroup, group_runs, load_runs

REPORT_NAME = "report.md"
SUMMARY_NAME = "summary.json"
TRUNCATED_MARK = "†"  # after a score that includes episodes cut off by the episode cap


@dataclasses.dataclass(frozen=True)
class GroupAnalysis:
    """Everything the report says about one group.

    Attributes:
      group: the runs and their aligned mean returns.
      scored_games: the group's games with a normalized score (aggregates use these).
      unscored_games: games without one (Carnival, Pooyan): raw returns only.
      normalized: [R, len(scored_games), S] normalized scores (`scores.normalized`).
      aggregates: metric name -> Interval at the final step (empty if no scored game).
      curve: IQM over steps (None if no scored game).
      game_returns: game -> mean return over runs, over steps, with CI band.
      game_scores: scored game -> final normalized score (mean over runs) with CI.
    """

    group: RunGroup
    scored_games: tuple[str, ...]
    unscored_games: tuple[str, ...]
    normalized: np.ndarray
    aggregates: dict[str, stats.Interval]
    curve: stats.Curve | None
    game_returns: dict[str, stats.Curve]
    game_scores: dict[str, stats.Interval]


def analyze_group(group: RunGroup, *, reps: int, seed: int) -> GroupAnalysis:
    """Normalizes and aggregates one group that has at least one complete evaluation."""
    try:
        scored, unscored = scores_lib.split_scored(group.games)
    except ValueError as err:  # A game the catalogue does not know.
        raise ResultsFormatError(f"{group.runs[0].path}: games: {err}") from None
    index = [group.games.index(g) for g in scored]
    normalized = scores_lib.normalize_games(scored, group.returns[:, index, :])
    mean, low, high = stats.per_game_means(group.returns, reps=reps, seed=seed)
    game_returns = {
        game: stats.Curve(group.steps, mean[g], low[g], high[g])
        for g, game in enumerate(group.games)
    }
    if not scored:
        return GroupAnalysis(group, scored, unscored, normalized, {}, None, game_returns, {})
    final = normalized[:, :, -1]
    est, low, high = stats.per_game_means(final, reps=reps, seed=seed)
    return GroupAnalysis(
        group=group,
        scored_games=scored,
        unscored_games=unscored,
        normalized=normalized,
        aggregates=stats.aggregate_scores(final, reps=reps, seed=seed),
        curve=stats.aggregate_curve(normalized, group.steps, reps=reps, seed=seed),
        game_returns=game_returns,
        game_scores={g: stats.Interval(est[i], low[i], high[i]) for i, g in enumerate(scored)},
    )


def _fmt(interval: stats.Interval) -> str:
    return f"{interval.estimate:.3f} [{interval.lower:.3f}, {interval.upper:.3f}]"


def _params(num_params: int | None) -> str:
    return "?" if num_params is None else f"{num_params:,}"


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def write_report(
    run_dirs: Sequence[Path],
    out_dir: Path,
    *,
    reps: int = stats.DEFAULT_REPS,
    seed: int = 0,
) -> Path:
    """Writes `out_dir/report.md`, its PNG plots and `summary.json`; returns the markdown path.

    Args:
      run_dirs: run directories holding `eval_results.json` (or paths of such files).  Runs
        with the same `run.name` and settings (`runs.settings`) are seeds of one configuration
        and are aggregated together.
      out_dir: where the report goes (created if missing; existing files are overwritten).
      reps: bootstrap repetitions for every confidence interval.
      seed: seeds the bootstrap, so the same inputs give the same report.

    Raises:
      FileNotFoundError / ResultsFormatError: a run directory has no, or a malformed, results
        file (the message names the file and field).
      ValueError: no group has a step at which all its runs evaluated all its games.
    """
    out_dir = Path(out_dir)
    groups = group_runs(load_runs(run_dirs))
    ready = [g for g in groups if g.final_step is not None]
    waiting = [g for g in groups if g.final_step is None]
    if not ready:
        raise ValueError(
            "no run has a complete evaluation yet (a step at which every run of its group "
            f"evaluated every game): {[str(r.path) for g in groups for r in g.runs]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    analyses = [analyze_group(g, reps=reps, seed=seed) for g in ready]
    scale = scores_lib.score_scale(list(dict.fromkeys(g for a in analyses for g in a.group.games)))
    colors = plots.colors_for([a.group.label for a in analyses])
    scored = [a for a in analyses if a.scored_games]
    figures: list[tuple[str, Path, str]] = []

    def figure(title: str, name: str, caption: str) -> Path:
        path = out_dir / name
        figures.append((title, path, caption))
        return path

    if scored:
        plots.plot_aggregate_metrics(
            figure("Aggregate metrics", "aggregate_metrics.png",
                   f"Final {scale.name} over runs x games: point estimate (black) and "
                   "95% stratified-bootstrap CI (bar). Lower is better for the optimality gap."),
            {a.group.label: a.aggregates for a in scored}, colors, score_name=scale.name)
        plots.plot_aggregate_curves(
            figure("Learning curves (aggregate)", "learning_curves_iqm.png",
                   f"IQM {scale.name} at each evaluated learner step, 95% CI band."),
            {a.group.label: a.curve for a in scored}, colors, score_name=scale.name)
        all_final = np.concatenate([a.normalized[:, :, -1].ravel() for a in scored])
        taus = np.linspace(min(0.0, all_final.min()), max(1.0, all_final.max()), 81)
        profiles = stats.performance_profiles(
            {a.group.label: a.normalized[:, :, -1] for a in scored}, taus, reps=reps, seed=seed)
        plots.plot_performance_profiles(
            figure("Performance profiles", "performance_profiles.png",
                   "Fraction of run x game final scores above each threshold, 95% CI band; "
                   f"a curve above another is better everywhere. Dashed: {scale.reference} "
                   "level."),
            profiles, colors, score_name=scale.name)
    improvements = _improvements(scored, reps=reps, seed=seed)
    if improvements:
        plots.plot_probability_of_improvement(
            figure("Probability of improvement", "probability_of_improvement.png",
                   "P(X > Y): probability that a run of X beats a run of Y on a random game "
                   "(common scored games), 95% CI. Dashed: 0.5."),
            {pair: value for pair, (value, _) in improvements.items()})
    scaling = _scaling_points(scored)
    if scaling:
        plots.plot_scaling(
            figure("Scaling", "scaling.png",
                   f"Final IQM {scale.name} against parameter count (log axis), 95% CI."),
            scaling, plots.colors_for(list(scaling)), score_name=scale.name)
    if scored:
        plots.plot_game_bars(
            figure("Per-game scores", "game_scores.png",
                   f"Final {scale.name} per game: mean over runs, 95% CI. "
                   f"0 = random, dashed 1 = {scale.reference}."),
            {a.group.label: a.game_scores for a in scored}, colors, score_name=scale.name,
            reference=scale.reference)
    plots.plot_game_curves(
        figure("Learning curves per game", "learning_curves_games.png",
               "Mean episode return over learner steps (mean over runs, 95% CI band)."),
        {a.group.label: a.game_returns for a in analyses}, colors)

    markdown = _markdown(analyses, waiting, improvements, figures, out_dir, reps, seed, scale)
    report_path = out_dir / REPORT_NAME
    report_path.write_text(markdown, encoding="utf-8")
    (out_dir / SUMMARY_NAME).write_text(
        json.dumps(_summary(analyses, improvements, reps, seed, scale), indent=1) + "\n",
        encoding="utf-8")
    return report_path


def _improvements(scored: list[GroupAnalysis], *, reps: int, seed: int):
    """(label X, label Y) -> (P(X > Y), common games), for each pair of groups."""
    out = {}
    for a, b in itertools.combinations(scored, 2):
        common = [g for g in a.scored_games if g in b.scored_games]
        if not common:
            continue
        x = a.normalized[:, [a.scored_games.index(g) for g in common], -1]
        y = b.normalized[:, [b.scored_games.index(g) for g in common], -1]
        value = stats.probability_of_improvement(x, y, reps=reps, seed=seed)
        out[(a.group.label, b.group.label)] = (value, tuple(common))
    return out


def _scaling_points(scored: list[GroupAnalysis]) -> dict[str, list]:
    """method -> [(num_params, IQM)], when the groups have at least two parameter counts."""
    sized = [a for a in scored if a.group.num_params is not None]
    if len({a.group.num_params for a in sized}) < 2:
        return {}
    points: dict[str, list] = {}
    for a in sized:
        points.setdefault(a.group.method, []).append(
            (a.group.num_params, a.aggregates[stats.IQM]))
    return points


def _markdown(analyses, waiting, improvements, figures, out_dir, reps, seed, scale) -> str:
    lines = ["# Evaluation report", ""]
    lines += [
        f"{sum(len(a.group.runs) for a in analyses)} run(s) in {len(analyses)} group(s). "
        "Runs with the same `run.name` and the same settings (their config less seed, paths "
        "and execution options) are seeds of one configuration and are aggregated together; "
        "a name with several configurations is followed by the settings that differ. "
        "Scores are taken at each group's final step (the last step that every run "
        "of the group evaluated on every game); a run's score on a game is the mean return of "
        f"its episodes there, {scale.adjective} as {scale.formula}.",
        "",
        f"Confidence intervals: 95% percentile stratified bootstrap over runs (rliable), "
        f"{reps} repetitions, seed {seed}. IQM = mean of the middle 50% of run x game scores.",
        "",
        "## Runs",
        "",
        "| group | method | parameters | seeds | games | final step | run files |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in analyses:
        g = a.group
        files = ", ".join(f"`{r.path}`" for r in g.runs)
        lines.append(f"| {g.label} | {g.method} | {_params(g.num_params)} | "
                     f"{', '.join(map(str, g.seeds))} | {len(g.games)} | {g.final_step} | "
                     f"{files} |")
    notes = []
    for a in analyses:
        if a.group.dropped_steps:
            notes.append(f"- {a.group.label}: {a.group.dropped_steps} evaluation step(s) left "
                         "out, not evaluated by every run on every game.")
        if a.group.final_steps:
            first, last = a.group.final_steps
            notes.append(f"- {a.group.label}: each run's last round is its final score (steps "
                         f"{first}-{last}; its runs end by an environment-step budget).")
        if a.unscored_games:
            notes.append(f"- {a.group.label}: no standard human score for "
                         f"{', '.join(a.unscored_games)} (game catalogue), so the normalized "
                         "aggregates leave them out; the per-game table gives their returns.")
        cut = _truncated_note(a.group)
        if cut:
            notes.append(f"- {TRUNCATED_MARK} {a.group.label}: {cut}")
    for g in waiting:
        notes.append(f"- {g.label}: left out, no step yet at which every run evaluated every "
                     f"game ({', '.join(str(r.path) for r in g.runs)}).")
    if notes:
        lines += ["", *notes]
    scored = [a for a in analyses if a.aggregates]
    if scored:
        names = list(stats.METRICS)
        lines += ["", f"## Aggregate {scale.name}s (95% CI)", "",
                  "| group | runs | scored games | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for a in scored:
            cells = " | ".join(_fmt(a.aggregates[n]) for n in names)
            mark = TRUNCATED_MARK if _final_truncated(a.group, a.scored_games).any() else ""
            lines.append(f"| {a.group.label}{mark} | {len(a.group.runs)} | {len(a.scored_games)} | "
                         f"{cells} |")
    if improvements:
        lines += ["", "## Probability of improvement (95% CI)", "",
                  "| X | Y | P(X > Y) | common games |", "|---|---|---|---|"]
        for (x, y), (value, common) in improvements.items():
            lines.append(f"| {x} | {y} | {_fmt(value)} | {len(common)} |")
    lines += ["", "## Per-game results at the final step", "",
              f"Mean return over runs ({scale.name} in parentheses; n/a: the game "
              f"has no standard human score; {TRUNCATED_MARK}: includes episodes cut off by "
              "the episode cap, see the notes under Runs).", ""]
    labels = [a.group.label for a in analyses]
    lines += ["| game | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    games = list(dict.fromkeys(g for a in analyses for g in a.group.games))
    for game in games:
        cells = []
        for a in analyses:
            if game not in a.group.games:
                cells.append("")
                continue
            ret = a.game_returns[game].estimate[-1]
            norm = a.game_scores.get(game)
            mark = TRUNCATED_MARK if _final_truncated(a.group, [game]).any() else ""
            cells.append(f"{ret:.1f} ({norm.estimate:.3f}){mark}" if norm
                         else f"{ret:.1f} (n/a){mark}")
        lines.append(f"| {game} | " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""]
    for title, path, caption in figures:
        lines += [f"### {title}", "", f"![{title}]({_relative(path, out_dir)})", "",
                  caption, ""]
    return "\n".join(lines)


def _final_truncated(group: RunGroup, games: Sequence[str]) -> np.ndarray:
    """[R, len(games)] episodes cut off by the episode cap at the group's final step."""
    return group.num_truncated[:, [group.games.index(g) for g in games], -1]


def _truncated_note(group: RunGroup) -> str:
    """"n of m episodes at the final step cut at F frames ...", or "" if none was cut."""
    final = group.num_truncated[:, :, -1]
    return truncation_note(
        int(final.sum()), int(group.num_episodes[:, :, -1].sum()), group.truncated_frames,
        [g for i, g in enumerate(group.games) if final[:, i].any()], " at the final step")


def _summary(analyses, improvements, reps, seed, scale) -> dict:
    def interval(i: stats.Interval) -> dict:
        return {"estimate": i.estimate, "lower": i.lower, "upper": i.upper}

    return {
        "score_name": scale.name,
        "normalization": scale.formula,
        "confidence": stats.CONFIDENCE,
        "bootstrap_reps": reps,
        "seed": seed,
        "groups": [
            {
                "label": a.group.label,
                "method": a.group.method,
                "num_params": a.group.num_params,
                "seeds": list(a.group.seeds),
                "runs": [str(r.path) for r in a.group.runs],
                "final_step": a.group.final_step,
                "scored_games": list(a.scored_games),
                "unscored_games": list(a.unscored_games),
                "aggregates": {k: interval(v) for k, v in a.aggregates.items()},
                "game_scores": {k: interval(v) for k, v in a.game_scores.items()},
                "game_returns": {g: float(c.estimate[-1]) for g, c in a.game_returns.items()},
                "episodes": {g: int(a.group.num_episodes[:, i, -1].sum())
                             for i, g in enumerate(a.group.games)},
                "truncated_episodes": {g: int(a.group.num_truncated[:, i, -1].sum())
                                       for i, g in enumerate(a.group.games)},
                "truncated_frames": a.group.truncated_frames,
            }
            for a in analyses
        ],
        "probability_of_improvement": [
            {"x": x, "y": y, "common_games": list(common), **interval(value)}
            for (x, y), (value, common) in improvements.items()
        ],
    }
