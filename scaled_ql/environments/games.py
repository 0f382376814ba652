"""The game catalogue: the 46 `rlu_atari` games, their ALE ROMs, pools, variants and scores,
and the five MinAtar games (`minatar/<Game>`, see "MinAtar" below).

Everything here is plain data so that `scaled-ql games`, configs and the data pipeline can
use it without loading a ROM.  The per-game minimal action counts, modes and difficulties
were read from ale-py 0.11.2 (`getMinimalActionSet`, `getAvailableModes`,
`getAvailableDifficulties`); `tests/environments/test_games.py` loads every ROM and checks.

Pools.  Multi-Game Decision Transformer (Lee et al., 2022, "Multi-Game Decision
Transformers", arXiv 2205.15241) trains on 41 of the 46 `rlu_atari` games and holds out
Alien, MsPacman, Pong, SpaceInvaders and StarGunner; Scaled QL uses the same split.

Scores.  Random and human scores are the standard Atari-57 table (professional human
tester; uniformly random agent; 108,000-frame episodes with up to 30 no-op starts) as
tabulated in Badia et al., 2020 ("Agent57", arXiv 2003.13350, Appendix H) and DeepMind's DQN
Zoo (`dqn_zoo/atari_data.py`), and used by MGDT, Dopamine and rliable (Agarwal et al., 2021).
The numbers go back to Mnih et al., 2015 (Nature 518, "Human-level control through deep
reinforcement learning") and its 57-game extension in van Hasselt et al., 2016 and Wang et
al., 2016.  Human-normalized score = (score - random) / (human - random).

Carnival and Pooyan convention.  These two games are not in Atari-57, so no standard random
or human score exists, and we do not invent one: their `human_score` is None and their
`random_score` is NaN.  `human_normalized_score` returns NaN for them (or raises, with
`missing="raise"`).  Aggregates of human-normalized scores (IQM, profiles) are taken over
`SCORED_GAMES`, the 44 games with both scores (39 of the 41 training games, all 5 held-out
games), and must say so; Carnival and Pooyan are reported as raw returns.  MGDT's public
scoring code (built on DQN Zoo's table) likewise yields NaN for these two.

MinAtar.  The five games of MinAtar (Young & Tian 2019, arXiv 1903.03176; the `minatar`
package) share their names with ALE games, so they are always named with the suite
prefix: "minatar/Breakout" (any spelling of the game after the prefix works, e.g.
"minatar/space_invaders").  Unprefixed names, and "atari/<Game>", are ALE games, exactly as
before.  Their entries use the same fields: `rom_id` is the `minatar.Environment` game name,
`num_actions` the minimal action set, `num_channels` the game's object channels (the
observation pads them to 10), `difficulties` (0,) or (0, 1) where 1 turns on MinAtar's
difficulty ramping (the variant for online fine-tuning; only Asterix, Seaquest and
SpaceInvaders ramp).

MinAtar scores.  MinAtar has no human scores, so its normalized score is DQN-normalized
(`MINATAR_SCORE_CONVENTION`): (score - random) / (DQN - random), 0 = a uniformly random
agent, 1 = the DQN of the MinAtar paper.  `human_score` (alias `reference_score`) holds that
DQN score, so `normalized_score` / `human_normalized_score` serve both suites.
* DQN: Young & Tian 2019 (arXiv 1903.03176v2), DQN learning curves (mean of 30 runs; moving
  average of the training returns over 100 episodes, at 5M frames; sticky actions 0.1,
  difficulty ramping on, as `minatar.Environment` defaults).  The paper prints no table, so
  the numbers were read off its figure as published in the MinAtar repository
  (kenjyoung/MinAtar, README "Results", img/learning_curves.gif, commit 4241f24): the DQN
  curve's pixels between 4.9M and 5M frames, mapped through the axis ticks (precision about
  +-0.3, +-1 for SpaceInvaders).  The paper's step-size sensitivity figure (DQN's mean return
  over the final 100 episodes at its best step size) agrees within 1.6: 16.7, 10.3, 49.9, 19.4,
  45.4.  The README notes that its Seaquest results predate minatar 1.0.11 (an oxygen-bar
  bug fixed since).
* random: measured here, uniform over the minimal action set, sticky actions 0.1, no ramping,
  1,000 episodes per game, seed 0: `python -m benchmarks.minatar_random_scores`
  (benchmarks/results/minatar_random_scores.json; with ramping on, `--difficulty 1`, the
  three ramping games score the same within one standard error).
"""

import dataclasses
import difflib
import math
import re

import numpy as np

ATARI_SUITE = "atari"
MINATAR_SUITE = "minatar"
TRAIN_POOL = "train"
HELD_OUT_POOL = "held_out"


@dataclasses.dataclass(frozen=True)
class GameInfo:
    """One game of the catalogue: an `rlu_atari` ALE game, or a MinAtar game.

    Attributes:
      name: the `rlu_atari` spelling, e.g. "MsPacman"; the key everywhere in scaled-ql.
      rom_id: the ale-py ROM id, e.g. "ms_pacman" (`ale_py.roms.get_rom_path(rom_id)`).
      num_actions: size of the game's minimal action set; `rlu_atari` actions index it.
      random_score: Atari-57 score of a uniformly random agent; NaN for Carnival and Pooyan.
        MinAtar: a uniformly random agent's mean return, measured here (module docstring).
      human_score: Atari-57 professional human score; None for Carnival and Pooyan.
        MinAtar: the DQN reference score of the suite's convention (`reference_score`).
      pool: "train" (the 41 MGDT training games) or "held_out" (the 5 held-out games).
      modes: the ALE game modes the ROM accepts (`setMode`); the first is the ROM's default.
      difficulties: the ALE difficulties the ROM accepts (`setDifficulty`); default 0.
        For MinAtar: (0,), or (0, 1) with 1 = difficulty ramping on.
      suite: "atari" (an ALE ROM) or "minatar" (a MinAtar game).
      num_channels: channels of one frame before padding: 1 (grayscale) for Atari, the number
        of object channels for MinAtar.
    """

    name: str
    rom_id: str
    num_actions: int
    random_score: float
    human_score: float | None
    pool: str
    modes: tuple[int, ...]
    difficulties: tuple[int, ...]
    suite: str = ATARI_SUITE
    num_channels: int = 1

    def __post_init__(self):
        if self.suite not in (ATARI_SUITE, MINATAR_SUITE):
            raise ValueError(f"{self.name}: suite must be 'atari' or 'minatar', got {self.suite!r}")
        if self.pool not in (TRAIN_POOL, HELD_OUT_POOL):
            raise ValueError(f"{self.name}: pool must be 'train' or 'held_out', got {self.pool!r}")
        if not 1 <= self.num_actions <= 18:
            raise ValueError(f"{self.name}: num_actions must be in [1, 18], got {self.num_actions}")
        if not self.modes or not self.difficulties:
            raise ValueError(f"{self.name}: modes and difficulties must not be empty")
        if self.human_score is not None and not self.human_score > self.random_score:
            raise ValueError(f"{self.name}: the human score must exceed the random score")

    @property
    def has_human_score(self) -> bool:
        """Whether a normalized score is defined (False for Carnival and Pooyan)."""
        return self.human_score is not None

    @property
    def reference_score(self) -> float | None:
        """The score a normalized score of 1 stands for: the Atari-57 human score for ALE
        games, the MinAtar paper's DQN for MinAtar games (`MINATAR_SCORE_CONVENTION`)."""
        return self.human_score

    def check_variant(self, mode: int | None = None, difficulty: int | None = None) -> None:
        """Raises ValueError listing the valid values unless mode/difficulty exist for the game.

        None means the ROM's default and is always valid.  Runs without ALE, which does not
        raise a helpful error on a bad mode.
        """
        for field, value, valid in (
            ("mode", mode, self.modes),
            ("difficulty", difficulty, self.difficulties),
        ):
            if value is not None and (isinstance(value, bool) or value not in valid):
                raise ValueError(
                    f"{self.name} has no {field} {value!r}; valid {field} values for "
                    f"{self.name}: {', '.join(map(str, valid))} (or None for the default)"
                )


_HELD_OUT = ("Alien", "MsPacman", "Pong", "SpaceInvaders", "StarGunner")
_NAN = math.nan

# name: (rom_id, minimal actions, random, human, modes, difficulties)
# Scores: the Atari-57 table (module docstring).  Actions/modes/difficulties: ale-py 0.11.2.
_CATALOGUE: dict[str, tuple] = {
    "Alien": ("alien", 18, 227.8, 7127.7, (0, 1, 2, 3), (0, 1, 2, 3)),
    "Amidar": ("amidar", 10, 5.8, 1719.5, (0,), (0, 3)),
    "Assault": ("assault", 7, 222.4, 742.0, (0,), (0,)),
    "Asterix": ("asterix", 9, 210.0, 8503.3, (0,), (0,)),
    "Atlantis": ("atlantis", 4, 12850.0, 29028.1, (0, 1, 2, 3), (0,)),
    "BankHeist": ("bank_heist", 18, 14.2, 753.1, (0, 4, 8, 12, 16, 20, 24, 28), (0, 1, 2, 3)),
    "BattleZone": ("battle_zone", 18, 2360.0, 37187.5, (1, 2, 3), (0,)),
    "BeamRider": ("beam_rider", 9, 363.9, 16926.5, (0,), (0, 1)),
    "Boxing": ("boxing", 18, 0.1, 12.1, (0,), (0, 1, 2, 3)),
    "Breakout": ("breakout", 4, 1.7, 30.5, tuple(range(0, 48, 4)), (0, 1)),
    "Carnival": ("carnival", 6, _NAN, None, (0,), (0,)),
    "Centipede": ("centipede", 18, 2090.9, 12017.0, (22, 86), (0,)),
    "ChopperCommand": ("chopper_command", 18, 811.0, 7387.8, (0, 2), (0, 1)),
    "CrazyClimber": ("crazy_climber", 9, 10780.5, 35829.4, (0, 1, 2, 3), (0, 1)),
    "DemonAttack": ("demon_attack", 6, 152.1, 1971.0, (1, 3, 5, 7), (0, 1)),
    "DoubleDunk": ("double_dunk", 18, -18.6, -16.4, tuple(range(16)), (0,)),
    "Enduro": ("enduro", 9, 0.0, 860.5, (0,), (0,)),
    "FishingDerby": ("fishing_derby", 18, -91.7, -38.7, (0,), (0, 1, 2, 3)),
    "Freeway": ("freeway", 3, 0.0, 29.6, tuple(range(8)), (0, 1)),
    "Frostbite": ("frostbite", 18, 65.2, 4334.7, (0, 2), (0,)),
    "Gopher": ("gopher", 8, 257.6, 2412.5, (0, 2), (0, 1)),
    "Gravitar": ("gravitar", 18, 173.0, 3351.4, (0, 1, 2, 3, 4), (0,)),
    "Hero": ("hero", 18, 1027.0, 30826.4, (0, 1, 2, 3, 4), (0,)),
    "IceHockey": ("ice_hockey", 18, -11.2, 0.9, (0, 2), (0, 1, 2, 3)),
    "Jamesbond": ("jamesbond", 18, 29.0, 302.8, (0, 1), (0,)),
    "Kangaroo": ("kangaroo", 18, 52.0, 3035.0, (0, 1), (0,)),
    "Krull": ("krull", 18, 1598.0, 2665.5, (0,), (0,)),
    "KungFuMaster": ("kung_fu_master", 14, 258.5, 22736.3, (0,), (0,)),
    "MsPacman": ("ms_pacman", 9, 307.3, 6951.6, (0, 1, 2, 3), (0,)),
    "NameThisGame": ("name_this_game", 6, 2292.3, 8049.0, (8, 24, 40), (0, 1)),
    "Phoenix": ("phoenix", 8, 761.4, 7242.6, (0,), (0,)),
    "Pong": ("pong", 6, -20.7, 14.6, (0, 1), (0, 1, 2, 3)),
    "Pooyan": ("pooyan", 6, _NAN, None, (10, 30, 50, 70), (0,)),
    "Qbert": ("qbert", 6, 163.9, 13455.0, (0,), (0, 1)),
    "Riverraid": ("riverraid", 18, 1338.5, 17118.0, (0,), (0, 1)),
    "RoadRunner": ("road_runner", 18, 11.5, 7845.0, (0,), (0,)),
    "Robotank": ("robotank", 18, 2.2, 11.9, (0,), (0,)),
    "Seaquest": ("seaquest", 18, 68.4, 42054.7, (0,), (0, 1)),
    "SpaceInvaders": ("space_invaders", 6, 148.0, 1668.7, tuple(range(16)), (0, 1)),
    "StarGunner": ("star_gunner", 18, 664.0, 10250.0, (0, 1, 2, 3), (0,)),
    "TimePilot": ("time_pilot", 10, 3568.0, 5229.2, (0,), (0, 1, 2)),
    "UpNDown": ("up_n_down", 6, 533.4, 11693.2, (0,), (0, 1, 2, 3)),
    # Video Pinball's random score is close to its human score, so its normalized scores are
    # large; that is the standard table, kept as is.
    "VideoPinball": ("video_pinball", 9, 16256.9, 17667.9, (0, 2), (0, 1)),
    "WizardOfWor": ("wizard_of_wor", 10, 563.5, 4756.5, (0,), (0, 1)),
    "YarsRevenge": ("yars_revenge", 18, 3092.9, 54576.9, (0, 32, 64, 96), (0, 1)),
    "Zaxxon": ("zaxxon", 18, 32.5, 9173.3, (0, 8, 16, 24), (0,)),
}

GAMES: dict[str, GameInfo] = {
    name: GameInfo(
        name=name,
        rom_id=rom_id,
        num_actions=num_actions,
        random_score=float(random_score),
        human_score=None if human_score is None else float(human_score),
        pool=HELD_OUT_POOL if name in _HELD_OUT else TRAIN_POOL,
        modes=modes,
        difficulties=difficulties,
    )
    for name, (rom_id, num_actions, random_score, human_score, modes, difficulties) in sorted(
        _CATALOGUE.items()
    )
}

MINATAR_PREFIX = MINATAR_SUITE + "/"

# name: (minatar.Environment game, minimal actions, channels, random score, DQN score,
#        difficulties).  Minimal action sets and channels: minatar 1.0.15
#        (`minimal_action_set()`, `state_shape()`; tests/environments/test_suites.py checks
#        them).  Scores: see "MinAtar scores" in the module docstring.
_MINATAR_CATALOGUE: dict[str, tuple] = {
    "Asterix": ("asterix", 5, 4, 0.482, 16.9, (0, 1)),
    "Breakout": ("breakout", 3, 4, 0.376, 10.1, (0,)),
    "Freeway": ("freeway", 3, 7, 0.362, 50.2, (0,)),
    "Seaquest": ("seaquest", 6, 10, 0.110, 20.1, (0, 1)),
    "SpaceInvaders": ("space_invaders", 4, 6, 4.019, 43.7, (0, 1)),
}
MINATAR_SCORE_CONVENTION = (
    "DQN-normalized score = (score - random) / (DQN - random). DQN: final return (moving "
    "average over 100 training episodes at 5M frames, mean of 30 runs, sticky actions 0.1, "
    "difficulty ramping on) of the DQN of Young & Tian 2019 (MinAtar, arXiv 1903.03176v2), "
    "read off its learning-curve figure (kenjyoung/MinAtar README, img/learning_curves.gif). "
    "Random: uniform over the minimal action set, sticky actions 0.1, no ramping, 1,000 "
    "episodes per game, measured by `python -m benchmarks.minatar_random_scores`."
)
# Held out of MinAtar pre-training for offline fine-tuning (the analogue of MGDT's split).
_MINATAR_HELD_OUT = ("SpaceInvaders",)

MINATAR_GAMES_INFO: dict[str, GameInfo] = {
    MINATAR_PREFIX + name: GameInfo(
        name=MINATAR_PREFIX + name,
        rom_id=env_name,
        num_actions=num_actions,
        random_score=float(random_score),
        human_score=float(reference),
        pool=HELD_OUT_POOL if name in _MINATAR_HELD_OUT else TRAIN_POOL,
        modes=(0,),
        difficulties=difficulties,
        suite=MINATAR_SUITE,
        num_channels=channels,
    )
    for name, (env_name, num_actions, channels, random_score, reference, difficulties)
    in sorted(_MINATAR_CATALOGUE.items())
}

ALL_GAMES: tuple[str, ...] = tuple(GAMES)  # 46, alphabetical
MINATAR_GAMES: tuple[str, ...] = tuple(MINATAR_GAMES_INFO)  # 5, "minatar/Asterix", ...
TRAIN_GAMES: tuple[str, ...] = tuple(n for n in ALL_GAMES if GAMES[n].pool == TRAIN_POOL)  # 41
HELD_OUT_GAMES: tuple[str, ...] = tuple(n for n in ALL_GAMES if GAMES[n].pool == HELD_OUT_POOL)
SCORED_GAMES: tuple[str, ...] = tuple(n for n in ALL_GAMES if GAMES[n].has_human_score)  # 44


def _key(name: str) -> str:
    """Spelling-insensitive key: "MsPacman", "ms_pacman", "ms-pacman" and "mspacman" agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY: dict[str, str] = {_key(name): name for name in ALL_GAMES}
_MINATAR_BY_KEY: dict[str, str] = {}
for _name, _info in MINATAR_GAMES_INFO.items():
    _MINATAR_BY_KEY[_key(_name[len(MINATAR_PREFIX):])] = _name
    _MINATAR_BY_KEY[_key(_info.rom_id)] = _name


def get_game(name: str) -> GameInfo:
    """Looks a game up by name, e.g. "MsPacman", "ms_pacman", "minatar/Breakout".

    Unprefixed names (or "atari/<Game>") are ALE games: the `rlu_atari` name or ALE ROM id,
    case and `_` insensitive.  "minatar/<Game>" names a MinAtar game (same spelling rules
    after the prefix).  `GameInfo.name` is the canonical spelling.

    Raises:
      ValueError: unknown name; the message lists the closest known names.  Callers rely on
        this happening before ALE sees the name: ALE exits the process on a bad ROM.
    """
    if not isinstance(name, str):
        raise TypeError(f"game name must be a string, got {type(name).__name__}: {name!r}")
    suite, _, rest = name.partition("/")
    if rest and suite.strip().lower() == MINATAR_SUITE:
        canonical = _MINATAR_BY_KEY.get(_key(rest))
        if canonical is not None:
            return MINATAR_GAMES_INFO[canonical]
        raise ValueError(
            f"Unknown game {name!r}: MinAtar has {', '.join(map(repr, MINATAR_GAMES))}.")
    if rest and suite.strip().lower() == ATARI_SUITE:
        name = rest
    elif rest:
        raise ValueError(f"Unknown game {name!r}: the suite prefix must be 'atari/' or "
                         f"'minatar/', got {suite!r}.")
    canonical = _BY_KEY.get(_key(name))
    if canonical is not None:
        return GAMES[canonical]
    close = difflib.get_close_matches(_key(name), list(_BY_KEY), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(_BY_KEY[c]) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown game {name!r}.{hint} scaled-ql knows the {len(ALL_GAMES)} rlu_atari games "
        f"(`scaled-ql games` lists them): {', '.join(ALL_GAMES)}; and the MinAtar games "
        f"{', '.join(MINATAR_GAMES)}."
    )


def normalized_score(
    game: str, score: float | np.ndarray, *, missing: str = "nan"
) -> float | np.ndarray:
    """(score - random) / (reference - random), with the game's suite's reference: 0 is the
    random agent, 1 the Atari-57 human (ALE games) or the MinAtar paper's DQN (MinAtar games).

    Args:
      game: a catalogue name (see `get_game`).
      score: one return (gives a float) or an array of returns of this game (same shape back).
      missing: for Carnival and Pooyan, which have no standard human score: "nan" (default)
        gives NaN, "raise" raises ValueError.  See the module docstring for the convention.
    """
    if missing not in ("nan", "raise"):
        raise ValueError(f"missing must be 'nan' or 'raise', got {missing!r}")
    info = get_game(game)
    if info.reference_score is None and missing == "raise":
        raise ValueError(
            f"{info.name} has no standard human score (it is not an Atari-57 game); aggregate "
            "over SCORED_GAMES and report it as a raw return"
        )
    reference = math.nan if info.reference_score is None else info.reference_score
    if np.ndim(score) == 0:
        return (float(score) - info.random_score) / (reference - info.random_score)
    return (np.asarray(score, dtype=np.float64) - info.random_score) / (
        reference - info.random_score)


# The Atari name of `normalized_score` (for MinAtar games it is DQN-normalized).
human_normalized_score = normalized_score
