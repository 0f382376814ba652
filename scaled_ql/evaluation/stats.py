"""Aggregate statistics over runs x games, the way Agarwal et al. (2021) recommend.

"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021) shows
that with the handful of runs an Atari study can afford, point estimates of the mean or median
normalized score mislead.  It recommends the interquartile mean (IQM: the mean of the middle
50% of all run x game scores, robust to outlier games yet using half the data, unlike the
median), percentile confidence intervals from a *stratified* bootstrap (runs are resampled
with replacement within each game, so every game keeps its weight), performance profiles
(the fraction of run x game scores above each threshold) and the probability that one method
beats another on a random game.  All of it comes from `rliable` (its `library` and `metrics`
modules); this module fixes the array layouts, seeds the bootstrap, and returns plain numbers.

Seeding.  rliable 1.2.0's stratified bootstraps draw their indices from NumPy's global
random state (`np.random.choice`), not from the `random_state` they accept.  Every function
here therefore takes a `seed`, seeds the global state for the duration of the call and
restores it afterwards, so results are reproducible and the caller's own random stream is
left as it was.

Shapes: `scores` are normalized (`scores.normalized`: human-normalized for ALE games,
DQN-normalized for MinAtar games), `[R, G]` (runs x games) or `[R, G, S]` (x steps).
"""

import contextlib
import dataclasses
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
from rliable import library as rly
from rliable import metrics

DEFAULT_REPS = 2000  # Bootstrap repetitions; Agarwal et al. use 50,000 for final numbers.
CONFIDENCE = 0.95

IQM = "IQM"
MEDIAN = "Median"
MEAN = "Mean"
OPTIMALITY_GAP = "Optimality gap"
METRICS: tuple[str, ...] = (IQM, MEDIAN, MEAN, OPTIMALITY_GAP)

_METRIC_FNS: dict[str, Callable[[np.ndarray], float]] = {
    IQM: metrics.aggregate_iqm,
    MEDIAN: metrics.aggregate_median,
    MEAN: metrics.aggregate_mean,
    OPTIMALITY_GAP: metrics.aggregate_optimality_gap,  # gamma = 1: the reference level.
}


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval [lower, upper]."""

    estimate: float
    lower: float
    upper: float


@dataclasses.dataclass(frozen=True)
class Curve:
    """A statistic at each of several x values, with pointwise confidence bands.

    Attributes:
      x: [N] where the statistic is evaluated (learner steps, or thresholds tau).
      estimate, lower, upper: [N] each.
    """

    x: np.ndarray
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@contextlib.contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seeds NumPy's global random state inside the block and restores it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _check_scores(scores: np.ndarray, ndim: int, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    layout = "[runs, games]" if ndim == 2 else "[runs, games, steps]"
    if scores.ndim != ndim:
        raise ValueError(f"{name} must be {layout}, got shape {scores.shape}")
    if 0 in scores.shape:
        raise ValueError(f"{name} must have at least one run and one game, got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} must be finite (leave out games without a normalized score, "
                         f"e.g. Carnival and Pooyan), got {np.sum(~np.isfinite(scores))} "
                         f"non-finite values")
    return scores


def _bootstrap(scores, fn, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(point estimate [K], interval [2, K]) of `fn(scores) -> [K]` by stratified bootstrap."""
    with seeded_global_numpy(seed):
        points, intervals = rly.get_interval_estimates(
            {"x": scores}, fn, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return np.asarray(points["x"], dtype=np.float64), np.asarray(intervals["x"], np.float64)


def aggregate_scores(
    scores: np.ndarray, *, reps: int = DEFAULT_REPS, seed: int = 0
) -> dict[str, Interval]:
    """IQM, median, mean and optimality gap of `scores` [R, G], with 95% stratified-bootstrap
    CIs.  Median and mean are of the per-game means over runs (rliable's definitions); IQM and
    the optimality gap (1 - mean of min(score, 1)) are over all run x game scores."""
    scores = _check_scores(scores, 2)
    fns = [_METRIC_FNS[name] for name in METRICS]
    points, intervals = _bootstrap(scores, lambda s: np.array([f(s) for f in fns]), reps, seed)
    return {
        name: Interval(float(points[i]), float(intervals[0, i]), float(intervals[1, i]))
        for i, name in enumerate(METRICS)
    }


def run_iqm_with_episode_interval(
    episode_scores: Sequence[np.ndarray], *, reps: int = DEFAULT_REPS, seed: int = 0
) -> Interval:
    """The IQM of ONE run, with an evaluation-uncertainty interval (not a CI over runs).

    `episode_scores[g]` holds the run's normalized episode scores on game g.  The estimate is
    exactly what `aggregate_scores` gives for this run as a [1, G] table of per-game means
    (the IQM that reports use); the interval resamples episodes within each game and recomputes
    it: how sure the evaluation is, not how reproducible training is.  Label it so.
    """
    games = [np.asarray(x, dtype=np.float64) for x in episode_scores]
    if not games or any(x.ndim != 1 or x.size == 0 for x in games):
        raise ValueError("episode_scores must be one non-empty 1-D array per game")
    iqm = _METRIC_FNS[IQM]
    estimate = float(iqm(np.array([[x.mean() for x in games]])))
    rng = np.random.default_rng(seed)
    samples = np.array([
        iqm(np.array([[rng.choice(x, x.size).mean() for x in games]])) for _ in range(reps)])
    tail = (1.0 - CONFIDENCE) / 2 * 100
    lower, upper = np.percentile(samples, [tail, 100 - tail])
    return Interval(estimate, float(lower), float(upper))


def aggregate_curve(
    scores: np.ndarray,
    steps: Sequence[int],
    *,
    metric: str = IQM,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Curve:
    """`metric` over runs x games at each step of `scores` [R, G, S], with 95% CIs.  Runs are
    resampled whole (all their steps together), so the band is that of a learning curve."""
    scores = _check_scores(scores, 3)
    if len(steps) != scores.shape[2]:
        raise ValueError(f"{len(steps)} steps for scores with {scores.shape[2]} steps")
    fn = _METRIC_FNS[metric]
    points, intervals = _bootstrap(
        scores, lambda s: np.array([fn(s[:, :, t]) for t in range(s.shape[2])]), reps, seed
    )
    return Curve(np.asarray(steps), points, intervals[0], intervals[1])


def per_game_means(
    scores: np.ndarray, *, reps: int = DEFAULT_REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs of each game (and step) of `scores` [R, G, ...], with 95% bootstrap CIs
    over runs.  Returns (estimate, lower, upper), each of shape `scores.shape[1:]`.  Works on
    raw returns as well as normalized scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 2 or 0 in scores.shape or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be finite [runs, games, ...], got shape {scores.shape}")
    shape = scores.shape[1:]
    points, intervals = _bootstrap(scores, lambda s: s.mean(axis=0).reshape(-1), reps, seed)
    return points.reshape(shape), intervals[0].reshape(shape), intervals[1].reshape(shape)


def performance_profiles(
    scores: Mapping[str, np.ndarray],
    taus: np.ndarray,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> dict[str, Curve]:
    """Run-score distributions: for each label's scores [R, G], the fraction of run x game
    scores above each threshold in `taus`, with 95% bootstrap bands."""
    checked = {label: _check_scores(s, 2, f"scores[{label!r}]") for label, s in scores.items()}
    taus = np.asarray(taus, dtype=np.float64)
    with seeded_global_numpy(seed):
        profiles, cis = rly.create_performance_profile(
            checked, taus, custom_profile_func=score_distribution, reps=reps,
            confidence_interval_size=CONFIDENCE,
        )
    return {
        label: Curve(taus, np.asarray(profiles[label], np.float64), cis[label][0], cis[label][1])
        for label in checked
    }


def probability_of_improvement(
    scores_x: np.ndarray, scores_y: np.ndarray, *, reps: int = DEFAULT_REPS, seed: int = 0
) -> Interval:
    """P(X > Y): the probability that a run of X beats a run of Y on a game, averaged over
    games (Mann-Whitney U per game), with a 95% CI from independent stratified bootstraps of
    X's and Y's runs.  Both are [runs, games] over the same games in the same order; the
    numbers of runs may differ."""
    scores_x = _check_scores(scores_x, 2, "scores_x")
    scores_y = _check_scores(scores_y, 2, "scores_y")
    if scores_x.shape[1] != scores_y.shape[1]:
        raise ValueError(f"X and Y must cover the same games, got {scores_x.shape[1]} and "
                         f"{scores_y.shape[1]} games")
    with seeded_global_numpy(seed):
        _, intervals = rly.get_interval_estimates(
            {"x,y": [scores_x, scores_y]},
            lambda x, y: np.array([improvement_probability(x, y)]),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
        )
    lower, upper = np.asarray(intervals["x,y"], np.float64)[:, 0]
    estimate = metrics.probability_of_improvement(scores_x, scores_y)
    return Interval(float(estimate), float(lower), float(upper))


# Vectorized forms of two rliable statistics, for the bootstrap replications only.  rliable
# computes them with a Python loop per game (a SciPy Mann-Whitney test each) and per threshold
# (np.vectorize), which made a 40-game report take minutes; the point estimates still come
# from rliable itself, and tests check that both forms agree.


def improvement_probability(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's `metrics.probability_of_improvement`: per game, the fraction of (run of X, run
    of Y) pairs where X scores higher, ties counting one half (Mann-Whitney U / (n m)),
    averaged over games."""
    x = scores_x[:, None, :]  # [Rx, 1, G]
    y = scores_y[None, :, :]  # [1, Ry, G]
    wins = (x > y).mean(axis=(0, 1)) + 0.5 * (x == y).mean(axis=(0, 1))  # [G]
    return float(wins.mean())


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's run-score distribution: the fraction of all run x game scores above each
    tau ([T])."""
    return (scores.reshape(-1, 1) > np.asarray(taus).reshape(1, -1)).mean(axis=0)
