"""Game suites as dm_env environments: ALE Atari games and MinAtar games, the game catalogue,
and batched evaluation.

`games` and `suites` are plain data (no ROM or game is loaded to use them); `atari` drives
ale-py, `minatar_env` the `minatar` package, and `vector` batches either suite.
"""

from scaled_ql.environments.atari import AtariEnvironment
from scaled_ql.environments.games import (
    ALL_GAMES,
    GAMES,
    HELD_OUT_GAMES,
    MINATAR_GAMES,
    SCORED_GAMES,
    TRAIN_GAMES,
    GameInfo,
    get_game,
    human_normalized_score,
    normalized_score,
)
from scaled_ql.environments.minatar_env import MinAtarEnvironment
from scaled_ql.environments.suites import (
    ATARI,
    MINATAR,
    Suite,
    get_suite,
    make_environment,
    suite_of,
)
from scaled_ql.environments.vector import EpisodeResult, episode_seed, evaluate_policy

__all__ = [
    "ALL_GAMES",
    "ATARI",
    "GAMES",
    "HELD_OUT_GAMES",
    "MINATAR",
    "MINATAR_GAMES",
    "SCORED_GAMES",
    "TRAIN_GAMES",
    "AtariEnvironment",
    "EpisodeResult",
    "GameInfo",
    "MinAtarEnvironment",
    "Suite",
    "episode_seed",
    "evaluate_policy",
    "get_game",
    "get_suite",
    "human_normalized_score",
    "make_environment",
    "normalized_score",
    "suite_of",
]
