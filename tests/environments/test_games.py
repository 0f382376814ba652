"""The game catalogue: contents, lookups, scores, and agreement with the real ROMs."""

import json
import math

import ale_py
import numpy as np
import pytest

from scaled_ql.cli import main as cli_main
from scaled_ql.environments import games

# The 46 games of TFDS `rlu_atari`, copied from its builder (tensorflow_datasets
# rl_unplugged/atari_utils.py) as an independent reference.
_RLU_ATARI = [
    "Alien",
    "Amidar",
    "Assault",
    "Asterix",
    "Atlantis",
    "BankHeist",
    "BattleZone",
    "BeamRider",
    "Boxing",
    "Breakout",
    "Carnival",
    "Centipede",
    "ChopperCommand",
    "CrazyClimber",
    "DemonAttack",
    "DoubleDunk",
    "Enduro",
    "FishingDerby",
    "Freeway",
    "Frostbite",
    "Gopher",
    "Gravitar",
    "Hero",
    "IceHockey",
    "Jamesbond",
    "Kangaroo",
    "Krull",
    "KungFuMaster",
    "MsPacman",
    "NameThisGame",
    "Phoenix",
    "Pong",
    "Pooyan",
    "Qbert",
    "Riverraid",
    "RoadRunner",
    "Robotank",
    "Seaquest",
    "SpaceInvaders",
    "StarGunner",
    "TimePilot",
    "UpNDown",
    "VideoPinball",
    "WizardOfWor",
    "YarsRevenge",
    "Zaxxon",
]


def test_pools_partition_the_rlu_atari_games():
    assert games.ALL_GAMES == tuple(sorted(_RLU_ATARI))
    assert len(games.ALL_GAMES) == 46
    assert games.HELD_OUT_GAMES == ("Alien", "MsPacman", "Pong", "SpaceInvaders", "StarGunner")
    assert len(games.TRAIN_GAMES) == 41
    assert set(games.TRAIN_GAMES) | set(games.HELD_OUT_GAMES) == set(games.ALL_GAMES)
    assert not set(games.TRAIN_GAMES) & set(games.HELD_OUT_GAMES)
    assert all(games.get_game(g).pool == "held_out" for g in games.HELD_OUT_GAMES)


def test_tfds_rlu_atari_lists_the_same_games():
    from tensorflow_datasets.rl_unplugged import atari_utils

    assert set(atari_utils._GAMES) == set(games.ALL_GAMES)


def test_catalogue_matches_ale_for_every_rom():
    """Loads all 46 ROMs (about 5 s) and compares the hard-coded data with ALE's answers."""
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    mismatches = []
    for name in games.ALL_GAMES:
        info = games.get_game(name)
        ale = ale_py.ALEInterface()
        ale.loadROM(ale_py.roms.get_rom_path(info.rom_id))
        actual = (
            len(ale.getMinimalActionSet()),
            tuple(ale.getAvailableModes()),
            tuple(ale.getAvailableDifficulties()),
        )
        if actual != (info.num_actions, info.modes, info.difficulties):
            mismatches.append((name, actual))
    assert not mismatches


def test_get_game_accepts_rom_ids_and_other_spellings():
    assert games.get_game("MsPacman").rom_id == "ms_pacman"
    assert games.get_game("ms_pacman").name == "MsPacman"
    assert games.get_game("mspacman").name == "MsPacman"
    assert games.get_game("up_n_down").name == "UpNDown"


@pytest.mark.parametrize(
    "typo, suggestion",
    [("Pongg", "Pong"), ("Breakot", "Breakout"), ("SpaceInvader", "SpaceInvaders")],
)
def test_unknown_game_suggests_close_matches(typo, suggestion):
    with pytest.raises(ValueError, match=f"Unknown game '{typo}'.*Did you mean.*'{suggestion}'"):
        games.get_game(typo)


def test_unknown_game_without_close_match_lists_the_games():
    with pytest.raises(ValueError, match="Unknown game 'Tetris'.* Alien, Amidar"):
        games.get_game("Tetris")


def test_human_normalized_score_golden_values():
    # Pong: random -20.7, human 14.6 -> (0 + 20.7) / 35.3.
    assert games.human_normalized_score("Pong", 14.6) == pytest.approx(1.0)
    assert games.human_normalized_score("Pong", -20.7) == pytest.approx(0.0)
    assert games.human_normalized_score("Pong", 0.0) == pytest.approx(20.7 / 35.3)
    # Breakout: random 1.7, human 30.5; an array keeps its shape.
    scores = np.array([[1.7, 30.5], [16.1, 59.3]])
    expected = np.array([[0.0, 1.0], [0.5, 2.0]])
    np.testing.assert_allclose(games.human_normalized_score("Breakout", scores), expected)
    assert isinstance(games.human_normalized_score("Breakout", 3), float)


def test_carnival_and_pooyan_convention():
    assert set(games.ALL_GAMES) - set(games.SCORED_GAMES) == {"Carnival", "Pooyan"}
    assert len(games.SCORED_GAMES) == 44
    for name in ("Carnival", "Pooyan"):
        info = games.get_game(name)
        assert info.human_score is None and math.isnan(info.random_score)
        assert not info.has_human_score
        assert math.isnan(games.human_normalized_score(name, 1000.0))
        assert np.isnan(games.human_normalized_score(name, np.ones(3))).all()
        with pytest.raises(ValueError, match=f"{name} has no standard human score"):
            games.human_normalized_score(name, 1000.0, missing="raise")


def test_check_variant_lists_valid_values():
    breakout = games.get_game("Breakout")
    breakout.check_variant(mode=4, difficulty=1)
    breakout.check_variant()
    with pytest.raises(ValueError, match="Breakout has no mode 3; valid mode values.*0, 4, 8"):
        breakout.check_variant(mode=3)
    with pytest.raises(ValueError, match="Breakout has no difficulty 2; .*: 0, 1"):
        breakout.check_variant(difficulty=2)


def test_cli_json_lists_the_catalogue(capsys):
    assert cli_main(["games", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(games.ALL_GAMES)
    pong = next(r for r in records if r["name"] == "Pong")
    assert pong == {
        "name": "Pong",
        "rom_id": "pong",
        "num_actions": 6,
        "random_score": -20.7,
        "human_score": 14.6,
        "pool": "held_out",
        "modes": [0, 1],
        "difficulties": [0, 1, 2, 3],
    }
    carnival = next(r for r in records if r["name"] == "Carnival")
    assert carnival["random_score"] is None and carnival["human_score"] is None


def test_cli_table_has_one_row_per_game(capsys):
    assert cli_main(["games", "--pool", "held_out"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["game", "rom", "id"]
    rows = lines[2:-1]
    assert [row.split()[0] for row in rows] == list(games.HELD_OUT_GAMES)
    mspacman = rows[1].split()
    assert mspacman[:5] == ["MsPacman", "ms_pacman", "9", "307.3", "6,951.6"]
    assert lines[-1].startswith("5 games.")


def test_cli_lists_the_minatar_games(capsys):
    assert cli_main(["games", "--suite", "minatar", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(games.MINATAR_GAMES)
    seaquest = next(r for r in records if r["name"] == "minatar/Seaquest")
    assert seaquest == {
        "name": "minatar/Seaquest",
        "minatar_name": "seaquest",
        "num_actions": 6,
        "num_channels": 10,
        "random_score": 0.11,
        "reference_score": 20.1,
        "score_name": "DQN-normalized score",
        "pool": "train",
        "difficulties": [0, 1],
        "ramping": True,
    }
    assert cli_main(["games", "--suite", "minatar"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["game", "minatar", "id", "actions", "channels", "random"]
    breakout = lines[2 + games.MINATAR_GAMES.index("minatar/Breakout")].split()
    assert breakout == ["minatar/Breakout", "breakout", "3", "4", "0.376", "10.1", "train", "0"]
    assert lines[-1].startswith("5 MinAtar games; observations [10, 10, 10]")


def test_cli_suite_all_prints_both_sections(capsys):
    assert cli_main(["games", "--suite", "all", "--json", "--pool", "held_out"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in document["atari"]] == list(games.HELD_OUT_GAMES)
    assert [r["name"] for r in document["minatar"]] == ["minatar/SpaceInvaders"]
    assert cli_main(["games", "--suite", "all"]) == 0
    text = capsys.readouterr().out
    atari, minatar = text.split("\n\n")
    assert atari.splitlines()[-1].startswith("46 games.")
    assert "MinAtar games: --suite" not in atari  # The hint is for the Atari-only listing.
    assert minatar.splitlines()[-1].startswith("5 MinAtar games;")
    assert cli_main(["games"]) == 0  # Default: the ALE catalogue, as before, with the hint.
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "MinAtar games: --suite minatar (or all).")
