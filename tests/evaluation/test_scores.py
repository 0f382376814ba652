"""Human-normalized scores against hand-computed values from the catalogue's scores."""

import numpy as np
import pytest

from scaled_ql.evaluation import scores


def test_normalize_formula():
    # (score - random) / (human - random) with random 10, human 110.
    np.testing.assert_allclose(scores.normalize([10.0, 60.0, 210.0, 0.0], 10.0, 110.0),
                               [0.0, 0.5, 2.0, -0.1])
    with pytest.raises(ValueError, match="must exceed"):
        scores.normalize([1.0], 5.0, 5.0)


def test_human_normalized_uses_the_catalogue_scores():
    # Breakout: random 1.7, human 30.5 -> (16.1 - 1.7) / 28.8 = 0.5; 30.5 -> 1.
    np.testing.assert_allclose(scores.human_normalized("Breakout", [1.7, 16.1, 30.5]),
                               [0.0, 0.5, 1.0])
    # Pong: random -20.7, human 14.6 -> (-3.05 + 20.7) / 35.3 = 0.5.
    np.testing.assert_allclose(scores.human_normalized("Pong", -3.05), 0.5)


def test_games_without_a_human_score_are_nan_and_split_out():
    assert np.isnan(scores.human_normalized("Carnival", 500.0))
    assert np.isnan(scores.human_normalized("Pooyan", 500.0))
    scored, unscored = scores.split_scored(["Pooyan", "Pong", "Carnival", "Breakout"])
    assert scored == ("Pong", "Breakout")
    assert unscored == ("Pooyan", "Carnival")


def test_normalize_games_follows_the_game_axis():
    returns = np.array([[[1.7, 16.1], [-20.7, 14.6]]])  # [R=1, G=2 (Breakout, Pong), S=2]
    np.testing.assert_allclose(scores.normalize_games(["Breakout", "Pong"], returns),
                               [[[0.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="2 games on axis 1, but 1 game names"):
        scores.normalize_games(["Pong"], returns)
    with pytest.raises(ValueError, match="Unknown game 'Brekout'"):
        scores.normalize_games(["Brekout", "Pong"], returns)


def test_minatar_games_are_dqn_normalized():
    # minatar/Breakout: random 0.376, DQN 10.1 -> (5.238 - 0.376) / 9.724 = 0.5.
    np.testing.assert_allclose(scores.normalized("minatar/Breakout", [0.376, 5.238, 10.1]),
                               [0.0, 0.5, 1.0])
    # minatar/SpaceInvaders: random 4.019, DQN 43.7 -> (23.8595 - 4.019) / 39.681 = 0.5.
    np.testing.assert_allclose(scores.normalized("minatar/SpaceInvaders", 23.8595), 0.5)
    assert scores.human_normalized is scores.normalized
    returns = np.array([[10.1, 43.7]])  # [R=1, G=2]
    np.testing.assert_allclose(
        scores.normalize_games(["minatar/Breakout", "minatar/SpaceInvaders"], returns),
        [[1.0, 1.0]])
    assert scores.split_scored(["minatar/Freeway", "Pooyan"]) == (("minatar/Freeway",),
                                                                   ("Pooyan",))


def test_score_scale_names_the_suites_score():
    assert scores.score_scale(["Pong", "Carnival"]) == scores.ScoreScale(
        "human-normalized score", "human", "(score - random) / (human - random)")
    minatar = scores.score_scale(["minatar/Breakout", "minatar/Seaquest"])
    assert minatar == scores.ScoreScale("DQN-normalized score", "DQN",
                                        "(score - random) / (DQN - random)")
    assert minatar.adjective == "DQN-normalized"
    mixed = scores.score_scale(["Pong", "minatar/Breakout"])
    assert (mixed.name, mixed.reference) == ("normalized score", "reference")
    with pytest.raises(ValueError, match="Unknown game 'Brekout'"):
        scores.score_scale(["Brekout"])
