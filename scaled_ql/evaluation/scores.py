"""Normalized scores: `(score - random) / (reference - random)`, per game.

0 is the score of a uniformly random agent.  The reference (score 1) is the game's suite's
(`scaled_ql.environments.suites`):

* ALE games: the professional human tester of the Atari-57 table -- the human-normalized
  score;
* MinAtar games: the DQN of the MinAtar paper (Young & Tian 2019), which has no human scores --
  the DQN-normalized score (`games.MINATAR_SCORE_CONVENTION`).

The random and reference scores come from the game catalogue
(`scaled_ql.environments.games`); nothing here keeps a table of its own.  `score_scale`
names the score of a list of games, so that reports and plots label it by its suite.

Carnival and Pooyan have no standard human score.  The catalogue's convention: their
normalized score is NaN.  `split_scored` separates the games with a finite normalized score
(what the aggregates use) from those without (reported in raw returns only), so that a
report says which games its aggregates cover.
"""

import dataclasses
from typing import Sequence

import numpy as np


def normalize(scores: np.ndarray, random_score: float, human_score: float) -> np.ndarray:
    """`(scores - random) / (human - random)` elementwise; the formula without the catalogue."""
    if not human_score > random_score:
        raise ValueError(f"human score {human_score} must exceed random score {random_score}")
    return (np.asarray(scores, dtype=np.float64) - random_score) / (human_score - random_score)


def normalized(game: str, scores: np.ndarray) -> np.ndarray:
    """Normalized `scores` (any shape) of one game, with the catalogue's random and reference
    scores (human for ALE games, DQN for MinAtar games); NaN where the catalogue defines none
    (Carnival, Pooyan).  Raises ValueError for a game the catalogue does not know."""
    from scaled_ql.environments.games import normalized_score  # numpy-only data module

    return np.asarray(normalized_score(game, np.asarray(scores, dtype=np.float64)),
                      dtype=np.float64)


# The Atari name of `normalized`, kept for its callers (MinAtar games come out DQN-normalized).
human_normalized = normalized


@dataclasses.dataclass(frozen=True)
class ScoreScale:
    """What the normalized score of a set of games is called.

    Attributes:
      name: "human-normalized score" (ALE), "DQN-normalized score" (MinAtar), or
        "normalized score" when games of both suites are mixed.
      reference: what a score of 1 is: "human", "DQN", or "reference" when mixed.
      formula: "(score - random) / (human - random)" and so on.
    """

    name: str
    reference: str
    formula: str

    @property
    def adjective(self) -> str:
        """"human-normalized", for "... returns, human-normalized as ..."."""
        return self.name.removesuffix(" score")


def score_scale(games: Sequence[str]) -> ScoreScale:
    """The `ScoreScale` of `games`: their suite's (`Suite.score_name`, `reference_name`,
    `normalization`), or a neutral one when they belong to more than one suite.  Raises
    ValueError for a game the catalogue does not know."""
    from scaled_ql.environments import suites  # plain data, like the catalogue

    try:
        suite = suites.suite_of(games)
    except ValueError:
        if len({suites.suite_of(g).name for g in games}) < 2:  # Unknown game or no games.
            raise
        return ScoreScale("normalized score", "reference",
                          "(score - random) / (reference - random)")
    return ScoreScale(suite.score_name, suite.reference_name, suite.normalization)


def normalize_games(games: Sequence[str], returns: np.ndarray, game_axis: int = 1) -> np.ndarray:
    """Normalizes (`normalized`) an array of returns whose `game_axis` follows `games`, e.g.
    [runs, games] or [runs, games, steps]."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.shape[game_axis] != len(games):
        raise ValueError(f"returns have {returns.shape[game_axis]} games on axis {game_axis}, "
                         f"but {len(games)} game names were given")
    moved = np.moveaxis(returns, game_axis, 0)
    scores = np.stack([normalized(g, moved[i]) for i, g in enumerate(games)])
    return np.moveaxis(scores, 0, game_axis)


def split_scored(games: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(games with a normalized score, games without one), each in the given order."""
    probe = {g: float(normalized(g, np.float64(0.0))) for g in games}
    scored = tuple(g for g in games if np.isfinite(probe[g]))
    return scored, tuple(g for g in games if g not in scored)

