"""Human-normalized scores: `(score - random) / (human - random)`, per game.

0 is the score of a uniformly random agent, 1 that of the professional human tester of the
Atari-57 table.  The random and human scores come from the game catalogue
(`scaled_ql.environments.games`); nothing here keeps a table of its own.

Carnival and Pooyan have no standard human score.  The catalogue's convention: their
normalized score is NaN.  `split_scored` separates the games with a finite normalized score
(what the aggregates use) from those without (reported in raw returns only), so that a
report says which games its aggregates cover.
"""

from typing import Sequence

import numpy as np


def normalize(scores: np.ndarray, random_score: float, human_score: float) -> np.ndarray:
    """`(scores - random) / (human - random)` elementwise; the formula without the catalogue."""
    if not human_score > random_score:
        raise ValueError(f"human score {human_score} must exceed random score {random_score}")
    return (np.asarray(scores, dtype=np.float64) - random_score) / (human_score - random_score)


def human_normalized(game: str, scores: np.ndarray) -> np.ndarray:
    """Human-normalized `scores` (any shape) of one game, with the catalogue's random and
    human scores; NaN where the catalogue defines none (Carnival, Pooyan).  Raises ValueError
    for a game the catalogue does not know."""
    from scaled_ql.environments.games import human_normalized_score  # numpy-only data module

    return np.asarray(human_normalized_score(game, np.asarray(scores, dtype=np.float64)),
                      dtype=np.float64)


def normalize_games(games: Sequence[str], returns: np.ndarray, game_axis: int = 1) -> np.ndarray:
    """Human-normalizes an array of returns whose `game_axis` follows `games`, e.g.
    [runs, games] or [runs, games, steps]."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.shape[game_axis] != len(games):
        raise ValueError(f"returns have {returns.shape[game_axis]} games on axis {game_axis}, "
                         f"but {len(games)} game names were given")
    moved = np.moveaxis(returns, game_axis, 0)
    normalized = np.stack([human_normalized(g, moved[i]) for i, g in enumerate(games)])
    return np.moveaxis(normalized, 0, game_axis)


def split_scored(games: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(games with a human-normalized score, games without one), each in the given order."""
    probe = {g: float(human_normalized(g, np.float64(0.0))) for g in games}
    scored = tuple(g for g in games if np.isfinite(probe[g]))
    return scored, tuple(g for g in games if g not in scored)

