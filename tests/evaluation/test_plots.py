"""Every plot type renders a non-empty PNG of the stated size."""

import struct

import numpy as np
import pytest

from scaled_ql.evaluation import plots
from scaled_ql.evaluation.stats import Curve, Interval


def png_size(path):
    """(width, height) from the PNG header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _curve(offset):
    x = np.array([0, 1000, 2000])
    est = offset + np.array([0.1, 0.4, 0.8])
    return Curve(x, est, est - 0.05, est + 0.1)


def _interval(value):
    return Interval(value, value - 0.1, value + 0.2)


LABELS = ("small", "big")


def _check(path, size):
    assert path.stat().st_size > 5000, "suspiciously small PNG"
    assert png_size(path) == size


def test_game_curves(tmp_path):
    games = ["Breakout", "Pong", "Qbert", "Asterix", "Seaquest"]  # 5 games -> 2 rows x 4
    curves = {label: {g: _curve(i) for g in games} for i, label in enumerate(LABELS)}
    assert plots.game_grid_shape(5) == (2, 4)
    # 4.0 in x 4 columns, (3.0 x 2 rows + 0.8) in, at 100 dpi.
    _check(plots.plot_game_curves(tmp_path / "curves.png", curves), (1600, 680))


def test_game_curves_legend_of_many_long_labels_stays_above_the_panels(tmp_path, monkeypatch):
    # A report of 12 configurations with names a little longer than claim 3a's positive
    # control's (54 characters) on 2 games: the legend takes one column per row, and the figure grows by its
    # rows instead of drawing the legend over the panels' titles or cutting it at the edges.
    labels = [f"SpaceInvaders: frozen torso{k:2d}, game seen in pre-training" for k in range(12)]
    assert set(map(len, labels)) == {len("SpaceInvaders: frozen torso, game seen in pre-training")
                                      + 2} == {56}
    assert plots.legend_shape(labels, 8.0) == (12, 1)
    assert plots.legend_shape(["small", "big"], 16.0) == (1, 2)
    assert plots.legend_shape([f"label {k}" for k in range(10)], 16.0) == (3, 4)
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    curves = {label: {g: _curve(i) for g in ("Freeway", "SpaceInvaders")}
              for i, label in enumerate(labels)}
    plots.plot_game_curves(tmp_path / "many.png", curves)
    fig, = figures
    assert tuple(fig.get_size_inches() * plots.DPI) == pytest.approx((800, 300 + 50 + 360),
                                                                    abs=0.5)
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    assert 0 <= legend.x0 and legend.x1 <= width and 0 <= legend.y0 and legend.y1 <= height
    for ax in fig.axes:
        panel = ax.get_tightbbox(renderer)  # with its title and tick labels
        assert panel.y1 < legend.y0, "the legend overlaps a panel"


def test_aggregate_curves(tmp_path):
    curves = {label: _curve(i) for i, label in enumerate(LABELS)}
    _check(plots.plot_aggregate_curves(tmp_path / "iqm.png", curves), (800, 550))


def test_game_bars(tmp_path):
    scores = {label: {g: _interval(0.5 + i) for g in ("Pong", "Qbert")}
              for i, label in enumerate(LABELS)}
    _check(plots.plot_game_bars(tmp_path / "bars.png", scores), (800, 550))  # 8 in minimum
    many = {label: {f"Game{g}": _interval(0.5) for g in range(20)} for label in LABELS}
    # 0.6 x 20 games x sqrt(2 labels) + 2 = 18.97 in.
    _check(plots.plot_game_bars(tmp_path / "bars20.png", many), (1897, 550))


def test_aggregate_metrics(tmp_path):
    estimates = {label: {m: _interval(1.0 + i) for m in ("IQM", "Median", "Mean")}
                 for i, label in enumerate(LABELS)}
    # (3.2 x 3 metrics + 1.6) x (0.5 x 2 labels + 1.3) in.
    _check(plots.plot_aggregate_metrics(tmp_path / "metrics.png", estimates), (1120, 230))


def test_performance_profiles(tmp_path):
    taus = np.linspace(0, 2, 21)
    profiles = {label: Curve(taus, np.clip(1 - taus / (2 + i), 0, 1),
                             np.clip(0.9 - taus / (2 + i), 0, 1),
                             np.clip(1.1 - taus / (2 + i), 0, 1))
                for i, label in enumerate(LABELS)}
    _check(plots.plot_performance_profiles(tmp_path / "profiles.png", profiles), (800, 550))


def test_probability_of_improvement(tmp_path):
    probabilities = {("big", "small"): Interval(0.8, 0.7, 0.9),
                     ("big", "bc"): Interval(0.6, 0.4, 0.75)}
    # 8 x (0.6 x 2 pairs + 1.6) in.
    _check(plots.plot_probability_of_improvement(tmp_path / "poi.png", probabilities),
           (800, 280))


def test_scaling(tmp_path):
    points = {"scaled_ql": [(1_000_000, _interval(0.4)), (20_000_000, _interval(0.9))],
              "bc": [(1_000_000, _interval(0.2))]}
    _check(plots.plot_scaling(tmp_path / "scaling.png", points), (800, 550))


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (4, (1, 4)), (9, (3, 4))])
def test_grid_shape(n, shape):
    assert plots.game_grid_shape(n) == shape


def test_normalized_score_labels_follow_the_suite(tmp_path, monkeypatch):
    """The axis labels and the reference line name the score given (MinAtar: DQN)."""
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    scores = {label: {g: _interval(0.5) for g in ("minatar/Breakout", "minatar/Asterix")}
              for label in LABELS}
    name = "DQN-normalized score"
    plots.plot_game_bars(tmp_path / "bars.png", scores, score_name=name, reference="DQN")
    plots.plot_aggregate_curves(tmp_path / "iqm.png", {"small": _curve(0)}, score_name=name)
    plots.plot_aggregate_metrics(tmp_path / "m.png", {"small": {"IQM": _interval(1.0)}},
                                 score_name=name)
    bars, iqm, metrics = figures
    assert bars.axes[0].get_ylabel() == "DQN-normalized score"
    assert "DQN" in [t.get_text() for t in bars.axes[0].get_legend().get_texts()]
    assert iqm.axes[0].get_ylabel() == "IQM DQN-normalized score"
    assert metrics._supxlabel.get_text() == "DQN-normalized score"
    figures.clear()
    plots.plot_game_bars(tmp_path / "bars_atari.png", scores)  # Atari's labels by default.
    assert figures[0].axes[0].get_ylabel() == "Human-normalized score"
    assert "human" in [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
