"""ALE Atari games as dm_env environments, the game catalogue, and batched evaluation.

`games` is plain data (no ROM is loaded to use it); `atari` and `vector` drive ale-py.
"""

from scaled_ql.environments.atari import AtariEnvironment
from scaled_ql.environments.games import (
    ALL_GAMES,
    GAMES,
    HELD_OUT_GAMES,
    SCORED_GAMES,
    TRAIN_GAMES,
    GameInfo,
    get_game,
    human_normalized_score,
)
from scaled_ql.environments.vector import EpisodeResult, episode_seed, evaluate_policy

__all__ = [
    "ALL_GAMES",
    "GAMES",
    "HELD_OUT_GAMES",
    "SCORED_GAMES",
    "TRAIN_GAMES",
    "AtariEnvironment",
    "EpisodeResult",
    "GameInfo",
    "episode_seed",
    "evaluate_policy",
    "get_game",
    "human_normalized_score",
]
