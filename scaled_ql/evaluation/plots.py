"""PNG plots of evaluation statistics.

Each function takes numbers already computed by `stats` (estimates with confidence
intervals), draws one figure and writes it to `path` as PNG; it returns the path.  Figures are
drawn on matplotlib's Agg canvas directly (no pyplot state, no display needed, nothing
changed in the caller's matplotlib setup).  Sizes are fixed (see each docstring, at `DPI`
dots per inch), so reports look alike from run to run.

Performance profiles, aggregate learning curves and probability of improvement use rliable's
plotting functions on our axes, so they look like the figures of Agarwal et al. (2021).
Every label keeps its color across all the figures of a report (`colors_for`).  Figures of
normalized scores take the score's name (`score_name`, default "human-normalized score"; for
MinAtar games "DQN-normalized score", `scores.score_scale`) and what a score of 1 is
(`reference`, default "human") for their labels.
"""

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rliable import plot_utils

from scaled_ql.evaluation.stats import Curve, Interval

DPI = 100
GRID_COLUMNS = 4  # Per-game learning curves: games per row.
# The figure-wide legend above the per-game grid: at most this many columns, each as wide as
# its longest label (about LEGEND_CHAR_INCHES per character at fontsize "large", DejaVu Sans)
# plus the line handle and padding, one LEGEND_ROW_INCHES per row.
LEGEND_COLUMNS, LEGEND_CHAR_INCHES, LEGEND_HANDLE_INCHES, LEGEND_ROW_INCHES = 4, 0.1, 0.8, 0.3
SCORE_NAME = "human-normalized score"  # The Atari suite's; reports pass the games' own.


def _title(score_name: str) -> str:
    """"human-normalized score" -> "Human-normalized score", for axis labels."""
    return score_name[:1].upper() + score_name[1:]


def colors_for(labels: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A distinct color per label (matplotlib's tab10, then tab20), in the given order."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _figure(width: float, height: float) -> Figure:
    """A figure of round(width x DPI) x round(height x DPI) pixels (matplotlib truncates the
    product, so 2.3 in would otherwise come out 229 px)."""
    pixels = (round(width * DPI) + 0.25, round(height * DPI) + 0.25)
    fig = Figure(figsize=(pixels[0] / DPI, pixels[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)  # No bbox "tight": keeps the stated size.
    return path


def legend_shape(labels: Sequence[str], width: float) -> tuple[int, int]:
    """(rows, columns) of a legend of `labels` across a figure `width` inches wide: as many
    columns (up to LEGEND_COLUMNS) as fit the longest label, at least one."""
    column = LEGEND_HANDLE_INCHES + LEGEND_CHAR_INCHES * max((len(l) for l in labels), default=0)
    columns = max(1, min(LEGEND_COLUMNS, len(labels), int(width // column)))
    return math.ceil(len(labels) / columns), columns


def game_grid_shape(num_games: int) -> tuple[int, int]:
    """(rows, columns) of the per-game learning-curve grid."""
    columns = min(GRID_COLUMNS, max(num_games, 1))
    return math.ceil(num_games / columns), columns


def plot_game_curves(
    path: Path,
    curves: Mapping[str, Mapping[str, Curve]],
    colors: Mapping[str, tuple] | None = None,
    ylabel: str = "Mean episode return",
) -> Path:
    """One panel per game: each label's curve (mean over its runs) with its CI band.

    `curves` maps label -> game -> Curve over learner steps.  Size: 4.0 x columns by 3.0 x
    rows + 0.5 + 0.3 x legend rows inches, with `game_grid_shape(number of games)` panels and
    the legend above them in `legend_shape(labels, width)` (one row of short labels: 0.8)."""
    games = list(dict.fromkeys(g for per_game in curves.values() for g in per_game))
    colors = colors or colors_for(list(curves))
    rows, columns = game_grid_shape(len(games))
    width = 4.0 * columns
    legend_rows, legend_columns = legend_shape(list(curves), width)
    header = 0.5 + LEGEND_ROW_INCHES * legend_rows
    height = 3.0 * rows + header
    fig = _figure(width, height)
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(games):
            ax.set_visible(False)
            continue
        for label, per_game in curves.items():
            if games[i] in per_game:
                _draw_band(ax, per_game[games[i]], colors[label], label)
        ax.set_title(games[i])
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        if i % columns == 0:
            ax.set_ylabel(ylabel)
        if i >= len(games) - columns:
            ax.set_xlabel("Learner step")
    _legend(fig, curves, colors, legend_columns)
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - header / height - 0.03,
                        bottom=0.45 / height + 0.04, hspace=0.45, wspace=0.3)
    return _save(fig, path)


def _draw_band(ax, curve: Curve, color, label: str) -> None:
    ax.plot(curve.x, curve.estimate, color=color, marker="o", markersize=3, label=label)
    ax.fill_between(curve.x, curve.lower, curve.upper, color=color, alpha=0.2, linewidth=0)


def _legend(fig: Figure, labels: Sequence[str], colors: Mapping[str, tuple],
            columns: int) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[label], linewidth=3) for label in labels]
    fig.legend(handles, list(labels), loc="upper center", ncol=columns, frameon=False,
               fontsize="large")


def plot_aggregate_curves(
    path: Path,
    curves: Mapping[str, Curve],
    colors: Mapping[str, tuple] | None = None,
    metric: str = "IQM",
    *,
    score_name: str = SCORE_NAME,
) -> Path:
    """Aggregate normalized score over learner steps, one line per label with its 95%
    stratified-bootstrap band.  Size: 8 x 5.5 inches."""
    colors = colors or colors_for(list(curves))
    fig = _figure(8.0, 5.5)
    ax = fig.add_subplot()
    for label, curve in curves.items():
        plot_utils.plot_sample_efficiency_curve(
            curve.x, {label: curve.estimate}, {label: np.stack([curve.lower, curve.upper])},
            algorithms=[label], colors=colors, ax=ax, xlabel="Learner step",
            ylabel=f"{metric} {score_name}", labelsize="large",
            ticklabelsize="medium", marker="o", linewidth=2)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.legend(fontsize="large", frameon=False)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.95, bottom=0.14)
    return _save(fig, path)


def plot_game_bars(
    path: Path,
    scores: Mapping[str, Mapping[str, Interval]],
    colors: Mapping[str, tuple] | None = None,
    *,
    score_name: str = SCORE_NAME,
    reference: str = "human",
) -> Path:
    """Per-game normalized score (mean over runs, 95% CI as error bars), one bar per label,
    with the random (0) and reference (1, labelled `reference`) levels marked.  Size: max(8,
    0.6 x games x labels^0.5 + 2) x 5.5 inches."""
    labels = list(scores)
    games = list(dict.fromkeys(g for per_game in scores.values() for g in per_game))
    colors = colors or colors_for(labels)
    width = max(8.0, 0.6 * len(games) * math.sqrt(len(labels)) + 2.0)
    fig = _figure(width, 5.5)
    ax = fig.add_subplot()
    bar = 0.8 / len(labels)
    x = np.arange(len(games))
    for i, label in enumerate(labels):
        est = np.array([scores[label][g].estimate if g in scores[label] else np.nan
                        for g in games])
        low = np.array([scores[label][g].lower if g in scores[label] else np.nan for g in games])
        high = np.array([scores[label][g].upper if g in scores[label] else np.nan
                         for g in games])
        ax.bar(x + (i - (len(labels) - 1) / 2) * bar, est, bar, color=colors[label],
               label=label, yerr=np.stack([est - low, high - est]), capsize=2,
               error_kw={"elinewidth": 1, "ecolor": "0.2"})
    ax.axhline(0.0, color="0.4", linewidth=1)
    ax.axhline(1.0, color="0.4", linewidth=1, linestyle="--", label=reference)
    ax.set_xticks(x)
    ax.set_xticklabels(games, rotation=45, ha="right")
    ax.set_xlim(-0.6, len(games) - 0.4)
    ax.set_ylabel(_title(score_name))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(frameon=False, ncol=min(len(labels) + 1, 5), loc="lower left",
              bbox_to_anchor=(0.0, 1.0))
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.3 / width, top=0.88, bottom=0.22)
    return _save(fig, path)


def plot_aggregate_metrics(
    path: Path,
    estimates: Mapping[str, Mapping[str, Interval]],
    colors: Mapping[str, tuple] | None = None,
    *,
    score_name: str = SCORE_NAME,
) -> Path:
    """One panel per aggregate metric (IQM, median, mean, optimality gap): each label's 95% CI
    as a bar and its point estimate as a black tick, as in Agarwal et al. (2021).  Size: 3.2
    per metric + 1.6 x (0.5 per label + 1.3) inches."""
    labels = list(estimates)
    metric_names = list(next(iter(estimates.values())))
    colors = colors or colors_for(labels)
    width, height = 3.2 * len(metric_names) + 1.6, 0.5 * len(labels) + 1.3
    fig = _figure(width, height)
    axes = fig.subplots(1, len(metric_names), squeeze=False)[0]
    for ax, metric in zip(axes, metric_names):
        for row, label in enumerate(labels):
            interval = estimates[label][metric]
            ax.barh(row, max(interval.upper - interval.lower, 1e-9), left=interval.lower,
                    height=0.6, color=colors[label], alpha=0.75)
            ax.vlines(interval.estimate, row - 0.3, row + 0.3, color="k")
        lows = [estimates[label][metric].lower for label in labels]
        highs = [estimates[label][metric].upper for label in labels]
        pad = 0.08 * max(max(highs) - min(lows), 0.05)
        ax.set_xlim(min(lows) - pad, max(highs) + pad)
        ax.set_title(metric)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels if ax is axes[0] else [])
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.grid(True, axis="x", alpha=0.3)
        ax.locator_params(axis="x", nbins=4)
    fig.supxlabel(_title(score_name), y=0.02, fontsize="medium")
    fig.subplots_adjust(left=1.5 / width, right=1 - 0.2 / width, top=1 - 0.4 / height,
                        bottom=0.75 / height, wspace=0.15)
    return _save(fig, path)


def plot_performance_profiles(
    path: Path,
    profiles: Mapping[str, Curve],
    colors: Mapping[str, tuple] | None = None,
    *,
    score_name: str = SCORE_NAME,
) -> Path:
    """Fraction of run x game scores above each threshold tau, per label, with 95% bands
    (rliable's score distributions).  Size: 8 x 5.5 inches."""
    colors = colors or colors_for(list(profiles))
    fig = _figure(8.0, 5.5)
    ax = fig.add_subplot()
    taus = next(iter(profiles.values())).x
    plot_utils.plot_performance_profiles(
        {label: p.estimate for label, p in profiles.items()}, taus,
        performance_profile_cis={label: (p.lower, p.upper) for label, p in profiles.items()},
        colors=colors, ax=ax, xlabel=_title(score_name) + r" ($\tau$)",
        ylabel=r"Fraction of runs x games with score > $\tau$", labelsize="large",
        ticklabelsize="medium", legend=True, legendsize="large")
    ax.axvline(1.0, color="0.4", linewidth=1, linestyle="--")
    fig.subplots_adjust(left=0.13, right=0.97, top=0.95, bottom=0.14)
    return _save(fig, path)


def plot_probability_of_improvement(
    path: Path,
    probabilities: Mapping[tuple[str, str], Interval],
) -> Path:
    """P(X > Y) with its 95% CI for each pair (X, Y), X named on the left and Y on the right;
    0.5 means neither is better.  Size: 8 x (0.6 per pair + 1.6) inches."""
    pairs = list(probabilities)
    height = 0.6 * len(pairs) + 1.6
    fig = _figure(8.0, height)
    ax = fig.add_subplot()
    sep = "\x1f"  # rliable splits "X<sep>Y"; a separator no label contains.
    plot_utils.plot_probability_of_improvement(
        {f"{x}{sep}{y}": probabilities[(x, y)].estimate for x, y in pairs},
        {f"{x}{sep}{y}": np.array([probabilities[(x, y)].lower, probabilities[(x, y)].upper])
         for x, y in pairs},
        pair_separator=sep, ax=ax, colors=list(colors_for([f"{x} {y}" for x, y in pairs])
                                                .values()),
        xticks=[0.0, 0.25, 0.5, 0.75, 1.0], ticklabelsize="medium", labelsize="large",
        ylabel_x_coordinate=0.08)
    ax.set_xlim(0.0, 1.0)
    ax.axvline(0.5, color="0.4", linewidth=1, linestyle="--")
    fig.subplots_adjust(left=0.25, right=0.75, top=1 - 0.55 / height, bottom=0.8 / height)
    return _save(fig, path)


def plot_scaling(
    path: Path,
    points: Mapping[str, Sequence[tuple[int, Interval]]],
    colors: Mapping[str, tuple] | None = None,
    metric: str = "IQM",
    *,
    score_name: str = SCORE_NAME,
) -> Path:
    """Aggregate score against the number of parameters (log axis), one line per method
    through its model sizes, with 95% CIs as error bars.  Size: 8 x 5.5 inches."""
    colors = colors or colors_for(list(points))
    fig = _figure(8.0, 5.5)
    ax = fig.add_subplot()
    for method, method_points in points.items():
        ordered = sorted(method_points, key=lambda p: p[0])
        n = np.array([p[0] for p in ordered], dtype=np.float64)
        est = np.array([p[1].estimate for p in ordered])
        err = np.array([[p[1].estimate - p[1].lower for p in ordered],
                        [p[1].upper - p[1].estimate for p in ordered]])
        ax.errorbar(n, est, yerr=err, color=colors[method], marker="o", capsize=4,
                    linewidth=2, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("Parameters")
    ax.set_ylabel(f"{metric} {score_name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False, fontsize="large")
    fig.subplots_adjust(left=0.13, right=0.97, top=0.95, bottom=0.12)
    return _save(fig, path)
