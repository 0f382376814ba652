"""Game suites: the MinAtar catalogue against the real package, qualified names, suite_of,
make_environment, and the MinAtar normalized-score convention."""

import json
import pathlib

import numpy as np
import pytest
from minatar import Environment

from scaled_ql import types
from scaled_ql.environments import games, suites
from scaled_ql.environments.atari import AtariEnvironment
from scaled_ql.environments.minatar_env import MinAtarEnvironment

RANDOM_SCORES = pathlib.Path(__file__).parents[2] / "benchmarks/results/minatar_random_scores.json"


def test_minatar_catalogue_matches_the_minatar_package():
    assert games.MINATAR_GAMES == ("minatar/Asterix", "minatar/Breakout", "minatar/Freeway",
                                   "minatar/Seaquest", "minatar/SpaceInvaders")
    for name in games.MINATAR_GAMES:
        info = games.get_game(name)
        env = Environment(info.rom_id, difficulty_ramping=True)
        assert info.num_actions == len(env.minimal_action_set()), name
        assert info.num_channels == env.state_shape()[2], name
        assert env.state_shape()[:2] == [10, 10]
        ramps = getattr(env.env, "ramping", None) is True  # Games without ramping ignore it.
        assert info.difficulties == ((0, 1) if ramps else (0,)), name
        assert info.modes == (0,) and info.suite == "minatar"
    ramping = [g for g in games.MINATAR_GAMES if 1 in games.get_game(g).difficulties]
    assert ramping == ["minatar/Asterix", "minatar/Seaquest", "minatar/SpaceInvaders"]
    # The suite pads to the largest channel count, Seaquest's 10.
    assert max(games.get_game(g).num_channels for g in games.MINATAR_GAMES) == 10
    assert types.MINATAR_OBSERVATION.shape == (10, 10, 10)


def test_qualified_and_unqualified_names():
    assert games.get_game("minatar/Breakout").name == "minatar/Breakout"
    assert games.get_game("minatar/Breakout").suite == "minatar"
    assert games.get_game("minatar/Breakout").rom_id == "breakout"
    assert games.get_game("Breakout").name == "Breakout"
    assert games.get_game("Breakout").suite == "atari"
    assert games.get_game("atari/Breakout") is games.get_game("Breakout")
    assert games.get_game("ATARI/breakout") is games.get_game("Breakout")
    for spelling in ("minatar/space_invaders", "MinAtar/SpaceInvaders", "minatar/space-invaders"):
        assert games.get_game(spelling).name == "minatar/SpaceInvaders"
    with pytest.raises(ValueError, match="Unknown game 'minatar/Pong': MinAtar has "
                                         "'minatar/Asterix'"):
        games.get_game("minatar/Pong")
    with pytest.raises(ValueError, match="suite prefix must be 'atari/' or 'minatar/'"):
        games.get_game("procgen/Breakout")
    assert not set(games.MINATAR_GAMES) & set(games.ALL_GAMES)  # ALE lists stay ALE-only.


def test_suite_of_and_get_suite():
    assert suites.suite_of(games.MINATAR_GAMES) is suites.MINATAR
    assert suites.suite_of("minatar/seaquest") is suites.MINATAR
    assert suites.suite_of(["Pong", "atari/Breakout"]) is suites.ATARI
    assert suites.get_suite(" MinAtar ") is suites.MINATAR
    with pytest.raises(ValueError, match="unknown game suite 'procgen'"):
        suites.get_suite("procgen")
    with pytest.raises(ValueError, match=r"different suites .*atari: Pong, Breakout; "
                                         r"minatar: minatar/Breakout"):
        suites.suite_of(["Pong", "minatar/Breakout", "Breakout"])
    with pytest.raises(ValueError, match="no games"):
        suites.suite_of([])


def test_suite_facts():
    minatar, atari = suites.MINATAR, suites.ATARI
    assert minatar.observation is types.MINATAR_OBSERVATION
    assert atari.observation is types.ATARI_OBSERVATION
    assert (minatar.default_sticky_action_prob, minatar.default_max_episode_frames) == (0.1, 10_000)
    assert (atari.default_sticky_action_prob, atari.default_max_episode_frames) == (0.25, 108_000)
    assert minatar.score_name == "DQN-normalized score"
    assert atari.score_name == "human-normalized score"
    assert minatar.normalization == "(score - random) / (DQN - random)"
    assert atari.normalization == "(score - random) / (human - random)"
    assert minatar.games == games.MINATAR_GAMES and atari.games == games.ALL_GAMES


def test_make_environment_picks_the_suites_environment():
    env = suites.make_environment("minatar/Breakout", seed=3, sticky_action_prob=0.0)
    assert isinstance(env, MinAtarEnvironment)
    assert env.reset().observation.shape == suites.MINATAR.observation.shape
    atari = suites.make_environment("Breakout", max_episode_frames=40)
    assert isinstance(atari, AtariEnvironment)
    assert atari.reset().observation.shape == suites.ATARI.observation.shape
    with pytest.raises(ValueError, match="Pong is not a game of the minatar suite"):
        suites.MINATAR.make_environment("Pong")
    with pytest.raises(ValueError, match="minatar/Breakout is not a game of the atari suite"):
        suites.ATARI.validate_environment_arguments("minatar/Breakout")
    with pytest.raises(ValueError, match="minatar/Freeway has no difficulty 1"):
        suites.MINATAR.validate_environment_arguments("minatar/Freeway", difficulty=1)
    assert suites.MINATAR.validate_environment_arguments("minatar/Seaquest", difficulty=1) \
        is games.get_game("minatar/Seaquest")


def test_minatar_scores_follow_the_documented_convention():
    assert games.MINATAR_SCORE_CONVENTION.startswith(
        "DQN-normalized score = (score - random) / (DQN - random).")
    assert "arXiv 1903.03176" in games.MINATAR_SCORE_CONVENTION
    # DQN final returns read off Young & Tian (2019)'s learning curves (games.py docstring).
    dqn = {"Asterix": 16.9, "Breakout": 10.1, "Freeway": 50.2, "Seaquest": 20.1,
           "SpaceInvaders": 43.7}
    for game, score in dqn.items():
        info = games.get_game("minatar/" + game)
        assert info.reference_score == info.human_score == score
        assert info.has_human_score
    # Breakout: random 0.376, DQN 10.1 -> (5.238 - 0.376) / 9.724 = 0.5.
    assert games.normalized_score("minatar/Breakout", 5.238) == pytest.approx(0.5)
    np.testing.assert_allclose(
        games.human_normalized_score("minatar/Breakout", np.array([0.376, 10.1, 19.824])),
        [0.0, 1.0, 2.0])
    assert games.human_normalized_score is games.normalized_score


def test_catalogue_random_scores_are_the_measured_ones():
    """The catalogue holds the means of benchmarks/results/minatar_random_scores.json (1,000
    episodes per game, difficulty 0, sticky actions 0.1), rounded to 3 decimals."""
    report = json.loads(RANDOM_SCORES.read_text())
    assert report["settings"]["episodes_per_game"] == 1000
    assert report["settings"]["difficulty"] == 0
    assert report["settings"]["sticky_action_prob"] == 0.1
    rows = {row["game"]: row for row in report["rows"]}
    assert sorted(rows) == sorted(games.MINATAR_GAMES)
    for name, row in rows.items():
        assert games.get_game(name).random_score == round(row["mean_return"], 3), name


def test_random_scores_reproduce_with_fresh_seeds():
    """200 new episodes per game (seed 1) land within 4 standard errors of the catalogue."""
    from benchmarks.minatar_random_scores import run

    short = tuple(g for g in games.MINATAR_GAMES if g != "minatar/Freeway")  # 2,500-step games
    report = run(200, seed=1, games=short)
    for row in report["rows"]:
        random_score = games.get_game(row["game"]).random_score
        assert abs(row["mean_return"] - random_score) < 4 * row["stderr_return"] + 1e-9, row
        assert row["truncated_episodes"] == 0


def test_constant_action_scores_play_each_action_at_every_step():
    """A chicken that never moves up never crosses, and in SpaceInvaders only firing scores
    (200 episodes each: benchmarks/results/minatar_constant_action_scores.json)."""
    from benchmarks.minatar_random_scores import run

    report = run(3, games=("minatar/Freeway", "minatar/SpaceInvaders"), constant_actions=True,
                 max_episode_frames=2500)
    rows = {(row["game"], row["policy"]): row for row in report["rows"]}
    assert sorted(rows) == [("minatar/Freeway", f"action {a}") for a in range(3)] + [
        ("minatar/SpaceInvaders", f"action {a}") for a in range(4)]
    assert report["settings"]["max_episode_frames"] == 2500
    freeway = [rows[("minatar/Freeway", f"action {a}")] for a in range(3)]
    assert [row["mean_return"] for row in freeway][::2] == [0.0, 0.0]  # no-op, down
    assert freeway[1]["mean_return"] > 0  # up
    assert all(row["mean_length"] == 2500 for row in freeway)  # Freeway's own time limit
    space = [rows[("minatar/SpaceInvaders", f"action {a}")] for a in range(4)]
    assert [row["mean_return"] for row in space[:3]] == [0.0, 0.0, 0.0]
    assert space[3]["mean_return"] > 0  # fire
    for row in report["rows"]:
        assert row["normalized_mean"] == pytest.approx(
            games.normalized_score(row["game"], row["mean_return"]))

