"""Game suites: one object per family of games that share an observation spec.

A suite declares its games, what one observation looks like (`types.ObservationSpec`), its
environment defaults and how its scores are normalized.  Everything that used to assume
84x84x4 Atari frames (RLDS features, transitions, Reverb signatures, the network input, batch
checks, actors, evaluators, the online agent's replay, checkpoints) asks the suite of its
games instead:

    suite = suite_of(["minatar/Breakout", "minatar/Asterix"])
    suite.observation.shape        # (10, 10, 10)
    env = suite.make_environment("minatar/Breakout", seed=3)

Runs mix games of one suite only (one input shape per batch); `suite_of` says so by name.
"""

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scaled_ql import types
from scaled_ql.environments import games as games_lib

if TYPE_CHECKING:  # Plain data at import time: the evaluation reads suites without dm_env.
    import dm_env


@dataclasses.dataclass(frozen=True)
class Suite:
    """One game suite.

    Attributes:
      name: "atari" or "minatar"; recorded in datasets and checkpoints.
      observation: the ObservationSpec every game of the suite produces.
      games: canonical game names (`games_lib.get_game(...).name`).
      default_sticky_action_prob: the suite's standard sticky-action probability (Atari 0.25,
        Machado et al. 2018; MinAtar 0.1, its own default).
      default_max_episode_frames: the standard episode cap (Atari 108,000 emulator frames;
        MinAtar 10,000 steps).
      frames_per_step: emulator frames per agent step (Atari 4, MinAtar 1).
      score_name: what a normalized score is called in reports ("human-normalized score",
        "DQN-normalized score").
      reference_name: what a normalized score of 1 is ("human": the Atari-57 human tester;
        "DQN": the MinAtar paper's DQN, `games.MINATAR_SCORE_CONVENTION`); the normalized
        score is (score - random) / (reference - random) with `GameInfo.reference_score`.
    """

    name: str
    observation: types.ObservationSpec
    games: tuple[str, ...]
    default_sticky_action_prob: float
    default_max_episode_frames: int
    frames_per_step: int
    score_name: str
    reference_name: str

    @property
    def normalization(self) -> str:
        """The formula, for reports: "(score - random) / (human - random)"."""
        return f"(score - random) / ({self.reference_name} - random)"

    def environment_class(self) -> type:
        """The dm_env class of this suite's games (`AtariEnvironment`, `MinAtarEnvironment`),
        imported on first use so that the suites stay plain data."""
        if self.name == games_lib.MINATAR_SUITE:
            from scaled_ql.environments.minatar_env import MinAtarEnvironment

            return MinAtarEnvironment
        from scaled_ql.environments.atari import AtariEnvironment

        return AtariEnvironment

    def validate_environment_arguments(self, game: str, **kwargs) -> games_lib.GameInfo:
        """Checks `make_environment(game, **kwargs)`'s arguments without creating a game.

        Raises:
          ValueError: unknown game, a game of another suite, or a bad argument, naming it.
        """
        return self.environment_class().validate_arguments(self._own(game).name, **kwargs)

    def make_environment(self, game: str, **kwargs) -> "dm_env.Environment":
        """A dm_env environment for `game` (a game of this suite); kwargs as the environment
        class takes them (mode, difficulty, sticky_action_prob, max_episode_frames, seed)."""
        return self.environment_class()(self._own(game).name, **kwargs)

    def _own(self, game: str) -> games_lib.GameInfo:
        info = games_lib.get_game(game)
        if info.suite != self.name:
            raise ValueError(f"{info.name} is not a game of the {self.name} suite")
        return info


ATARI = Suite(
    name=games_lib.ATARI_SUITE,
    observation=types.ATARI_OBSERVATION,
    games=games_lib.ALL_GAMES,
    default_sticky_action_prob=0.25,
    default_max_episode_frames=108_000,
    frames_per_step=4,
    score_name="human-normalized score",
    reference_name="human",
)
MINATAR = Suite(
    name=games_lib.MINATAR_SUITE,
    observation=types.MINATAR_OBSERVATION,
    games=games_lib.MINATAR_GAMES,
    default_sticky_action_prob=0.1,
    default_max_episode_frames=10_000,
    frames_per_step=1,
    score_name="DQN-normalized score",
    reference_name="DQN",
)
SUITES: dict[str, Suite] = {suite.name: suite for suite in (ATARI, MINATAR)}


def get_suite(name: str) -> Suite:
    """The suite called `name` ("atari" or "minatar")."""
    suite = SUITES.get(str(name).strip().lower())
    if suite is None:
        raise ValueError(f"unknown game suite {name!r}; scaled-ql has {', '.join(SUITES)}")
    return suite


def suite_of(games: Iterable[str] | str) -> Suite:
    """The suite of `games` (one name or several), which must all belong to one suite.

    Raises:
      ValueError: unknown game (with suggestions), no games, or games of different suites
        (naming which game is in which suite).
    """
    if isinstance(games, str):
        games = [games]
    infos = [games_lib.get_game(g) for g in games]
    if not infos:
        raise ValueError("no games given")
    names = {info.suite for info in infos}
    if len(names) > 1:
        listing = "; ".join(
            f"{suite}: {', '.join(i.name for i in infos if i.suite == suite)}"
            for suite in sorted(names))
        raise ValueError(
            "games of different suites cannot share a run (one input shape per batch): "
            f"{listing}")
    return SUITES[names.pop()]


def make_environment(game: str, **kwargs) -> "dm_env.Environment":
    """The environment of `game`, whichever suite it belongs to."""
    return suite_of(game).make_environment(game, **kwargs)
