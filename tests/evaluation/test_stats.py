"""Aggregates and CIs against hand-computed values; CIs contain the estimate and shrink."""

import numpy as np
import pytest
from rliable import library as rly
from rliable import metrics

from scaled_ql.evaluation import stats

REPS = 300
# 2 runs x 4 games.  Sorted: 0, .25, .5, .75, 1.5, 2, 3, 10; the middle half .5, .75, 1.5, 2.
SCORES = np.array([[0.0, 0.5, 2.0, 0.25],
                   [0.75, 1.5, 3.0, 10.0]])


def test_aggregates_match_hand_computed_values():
    result = stats.aggregate_scores(SCORES, reps=REPS)
    assert result["IQM"].estimate == pytest.approx((0.5 + 0.75 + 1.5 + 2.0) / 4)  # 1.1875
    # Per-game means over runs: .375, 1, 2.5, 5.125.
    assert result["Mean"].estimate == pytest.approx((0.375 + 1.0 + 2.5 + 5.125) / 4)  # 2.25
    assert result["Median"].estimate == pytest.approx((1.0 + 2.5) / 2)
    # min(score, 1): 0, .5, 1, .25, .75, 1, 1, 1 -> mean 5.5 / 8; gap = 1 - 0.6875.
    assert result["Optimality gap"].estimate == pytest.approx(0.3125)


def test_intervals_contain_the_estimate_and_shrink_with_more_runs():
    rng = np.random.default_rng(0)
    population = rng.normal(1.0, 0.5, size=(40, 6))
    widths = {}
    for runs in (3, 40):
        result = stats.aggregate_scores(population[:runs], reps=REPS, seed=1)
        for name, interval in result.items():
            assert interval.lower <= interval.estimate <= interval.upper, (runs, name)
        widths[runs] = {name: i.upper - i.lower for name, i in result.items()}
    for name in stats.METRICS:
        assert 0 < widths[40][name] < 0.7 * widths[3][name], name


def test_bootstrap_is_seeded_and_leaves_the_global_random_state_alone():
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    a = stats.aggregate_scores(SCORES, reps=REPS, seed=7)
    assert np.random.rand() == expected_next
    b = stats.aggregate_scores(SCORES, reps=REPS, seed=7)
    c = stats.aggregate_scores(SCORES, reps=REPS, seed=8)
    assert a == b
    assert a != c


def test_single_run_gives_a_zero_width_interval():
    result = stats.aggregate_scores(SCORES[:1], reps=REPS)
    iqm = result["IQM"]
    assert iqm.estimate == pytest.approx((0.25 + 0.5) / 2)  # middle of 0, .25, .5, 2
    assert iqm.lower == pytest.approx(iqm.estimate) and iqm.upper == pytest.approx(iqm.estimate)


def test_aggregate_curve_is_the_metric_at_each_step():
    curve_scores = np.stack([SCORES, SCORES + 1.0, 2.0 * SCORES], axis=-1)  # [2, 4, 3]
    curve = stats.aggregate_curve(curve_scores, [0, 10, 20], reps=REPS)
    np.testing.assert_allclose(curve.estimate, [1.1875, 2.1875, 2.375])
    np.testing.assert_array_equal(curve.x, [0, 10, 20])
    assert np.all(curve.lower <= curve.estimate + 1e-12)
    assert np.all(curve.estimate <= curve.upper + 1e-12)
    with pytest.raises(ValueError, match="2 steps for scores with 3 steps"):
        stats.aggregate_curve(curve_scores, [0, 10], reps=REPS)


def test_per_game_means():
    est, low, high = stats.per_game_means(SCORES, reps=REPS)
    np.testing.assert_allclose(est, [0.375, 1.0, 2.5, 5.125])
    assert np.all((low <= est) & (est <= high))
    assert low[3] == pytest.approx(0.25) and high[3] == pytest.approx(10.0)  # 2 runs only


def test_probability_of_improvement_hand_computed():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 5.0], [3.0, 1.0]])
    # Game 0: x {1, 3} vs y {0, 3}: wins 1, 0, 1, tie .5 -> .625.  Game 1: {2, 4} vs {5, 1}:
    # 0, 1, 0, 1 -> .5.  Mean .5625.
    result = stats.probability_of_improvement(x, y, reps=REPS)
    assert result.estimate == pytest.approx(0.5625)
    assert 0.0 <= result.lower <= result.estimate <= result.upper <= 1.0
    with pytest.raises(ValueError, match="same games"):
        stats.probability_of_improvement(x, y[:, :1], reps=REPS)


def test_vectorized_statistics_equal_rliables():
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(0, 4, size=(3, 5)).astype(float)  # Integers: plenty of ties.
        y = rng.integers(0, 4, size=(4, 5)).astype(float)
        assert stats.improvement_probability(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y))
        taus = np.linspace(-1, 5, 13)
        np.testing.assert_allclose(stats.score_distribution(x, taus),
                                   rly.score_distributions(x, taus))


def test_performance_profile_hand_computed():
    profile = stats.performance_profiles({"a": np.array([[0.2, 0.6], [1.2, 0.9]])},
                                         [0.0, 0.5, 1.0], reps=REPS)["a"]
    np.testing.assert_allclose(profile.estimate, [1.0, 0.75, 0.25])
    assert np.all((profile.lower <= profile.estimate) & (profile.estimate <= profile.upper))


@pytest.mark.parametrize("bad, message", [
    (np.ones(3), r"\[runs, games\]"),
    (np.ones((0, 3)), "at least one run"),
    (np.array([[1.0, np.nan]]), "must be finite"),
])
def test_bad_score_arrays_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        stats.aggregate_scores(bad, reps=REPS)


def test_run_iqm_is_the_report_iqm_of_one_run_with_an_episode_interval():
    from scaled_ql.evaluation.stats import run_iqm_with_episode_interval

    # Per-game means 0, 1, 2, 3 (by hand): the IQM keeps the middle half, (1 + 2) / 2 = 1.5.
    episodes = [np.array([0.0, 0.0]), np.array([0.5, 1.5]), np.array([2.0]), np.array([1.0, 5.0])]
    interval = run_iqm_with_episode_interval(episodes, reps=300, seed=1)
    assert interval.estimate == pytest.approx(1.5)
    table = np.array([[x.mean() for x in episodes]])
    iqm = stats.aggregate_scores(table, reps=50)["IQM"]
    assert interval.estimate == pytest.approx(iqm.estimate)
    assert interval.lower <= interval.estimate <= interval.upper
    assert interval.upper > interval.lower  # games 1 and 3 have spread over episodes
    # One episode per game: nothing to resample, the interval is the point.
    single = run_iqm_with_episode_interval([np.array([0.2]), np.array([0.7])], reps=50)
    assert (single.lower, single.upper) == pytest.approx((single.estimate, single.estimate))
    with pytest.raises(ValueError, match="non-empty"):
        run_iqm_with_episode_interval([np.array([])])
