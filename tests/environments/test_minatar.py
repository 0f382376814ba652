"""MinAtarEnvironment on the five real MinAtar games, against a bare `minatar.Environment`."""

import dm_env
import numpy as np
import pytest
from minatar import Environment

from scaled_ql.environments import games
from scaled_ql.environments.atari import AtariEnvironment
from scaled_ql.environments.minatar_env import MinAtarEnvironment

GAMES = games.MINATAR_GAMES
RAMPING_GAMES = ("minatar/Asterix", "minatar/Seaquest", "minatar/SpaceInvaders")
# Breakout: channel 0 is the paddle (bottom row); minimal actions 0 = noop, 1 = left, 2 = right.
PADDLE, LEFT, RIGHT = 0, 1, 2


def _actions(game: str, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, games.get_game(game).num_actions, count)


def _rollout(env, actions) -> list[dm_env.TimeStep]:
    """The timesteps of reset + `actions` (a LAST step starts a new episode, dm_env style)."""
    steps = [env.reset()]
    steps += [env.step(int(a)) for a in actions]
    return steps


def _assert_same(steps_a, steps_b) -> None:
    assert len(steps_a) == len(steps_b)
    for t, (a, b) in enumerate(zip(steps_a, steps_b)):
        assert a.step_type == b.step_type, t
        assert a.reward == b.reward and a.discount == b.discount, t
        np.testing.assert_array_equal(a.observation, b.observation, err_msg=f"step {t}")


@pytest.mark.parametrize("game", GAMES)
def test_observations_are_the_games_channels_padded_to_ten(game):
    """Every observation equals a bare minatar.Environment's state (same seed, same actions
    from the minimal set, sticky actions on), followed by zero channels up to 10."""
    info = games.get_game(game)
    env = MinAtarEnvironment(game, sticky_action_prob=0.1, seed=7)
    bare = Environment(info.rom_id, sticky_action_prob=0.1, difficulty_ramping=False)
    bare.seed(7)
    minimal = bare.minimal_action_set()
    timestep = env.reset()
    bare.reset()
    seen_ones = 0
    for action in _actions(game, 300, seed=1):
        observation = timestep.observation
        assert observation.shape == (10, 10, 10) and observation.dtype == np.uint8
        assert set(np.unique(observation)) <= {0, 1}
        np.testing.assert_array_equal(observation[..., : info.num_channels], bare.state())
        assert not observation[..., info.num_channels:].any()
        seen_ones += int(observation.sum())
        if timestep.last():
            break
        timestep = env.step(int(action))
        reward, terminal = bare.act(minimal[action])
        assert timestep.reward == np.float32(reward) and timestep.last() == terminal
    assert seen_ones > 0
    spec = env.observation_spec()
    assert spec.shape == (10, 10, 10) and spec.dtype == np.uint8
    assert (spec.minimum, spec.maximum) == (0, 1)


@pytest.mark.parametrize("game", GAMES)
def test_actions_index_the_minimal_action_set(game):
    env = MinAtarEnvironment(game)
    minimal = Environment(games.get_game(game).rom_id).minimal_action_set()
    assert env.num_actions == len(minimal) == games.get_game(game).num_actions
    assert env.action_spec().num_values == len(minimal)
    assert env.action_spec().dtype == np.int32


def test_breakout_actions_move_the_paddle():
    """Action 1 of Breakout's minimal set [noop, left, right] is left, action 2 right."""
    env = MinAtarEnvironment("minatar/Breakout", sticky_action_prob=0.0, seed=3)

    def paddle_column(timestep):
        (column,) = np.flatnonzero(timestep.observation[9, :, PADDLE])
        return int(column)

    start = paddle_column(env.reset())
    assert paddle_column(env.step(LEFT)) == start - 1
    assert paddle_column(env.step(RIGHT)) == start
    assert paddle_column(env.step(RIGHT)) == start + 1
    assert paddle_column(env.step(0)) == start + 1


def test_sticky_probability_one_repeats_the_first_action_forever():
    """With sticky_action_prob=1 every step repeats the episode's initial action (noop)."""
    env = MinAtarEnvironment("minatar/Breakout", sticky_action_prob=1.0, seed=3)
    first = env.reset().observation[9, :, PADDLE].copy()
    for _ in range(3):
        np.testing.assert_array_equal(env.step(LEFT).observation[9, :, PADDLE], first)


@pytest.mark.parametrize("game", GAMES)
def test_no_sticky_actions_is_deterministic_given_seed_and_actions(game):
    actions = _actions(game, 400, seed=2)
    runs = [_rollout(MinAtarEnvironment(game, sticky_action_prob=0.0, seed=11), actions)
            for _ in range(2)]
    _assert_same(*runs)


def test_game_over_ends_with_discount_zero_and_the_next_step_restarts():
    env = MinAtarEnvironment("minatar/Breakout", sticky_action_prob=0.0, seed=0)
    timestep, steps = env.reset(), 0
    assert timestep.first() and timestep.reward is None and timestep.discount is None
    while not timestep.last():  # Noop: the ball falls past the paddle within a few steps.
        timestep = env.step(0)
        steps += 1
        assert steps < 100
        assert timestep.discount == (0.0 if timestep.last() else 1.0)
    assert timestep.discount == 0.0 and env.game_over
    assert env.episode_frames == steps
    assert env.step(0).first() and env.episode_frames == 0


def test_episode_cap_truncates_with_discount_one():
    """Freeway never ends before 2,500 steps; a cap of 5 truncates it at step 5."""
    env = MinAtarEnvironment("minatar/Freeway", max_episode_frames=5, seed=0)
    steps = _rollout(env, [1] * 6)
    assert [s.step_type for s in steps[:6]] == [dm_env.StepType.FIRST] + [
        dm_env.StepType.MID] * 4 + [dm_env.StepType.LAST]
    assert steps[5].discount == 1.0 and not env.game_over
    assert steps[6].first()
    assert env.max_episode_frames == 5


@pytest.mark.parametrize("game, difficulty", [("minatar/Seaquest", 1), ("minatar/Breakout", 0),
                                              ("minatar/SpaceInvaders", 0)])
def test_reseed_plays_exactly_what_a_fresh_environment_plays(game, difficulty):
    actions = _actions(game, 300, seed=4)
    used = MinAtarEnvironment(game, difficulty=difficulty, seed=1)
    _rollout(used, actions[:137])  # Mid-episode, sticky RNG and game state advanced.
    used.reseed(99)
    fresh = MinAtarEnvironment(game, difficulty=difficulty, seed=99)
    _assert_same(_rollout(used, actions), _rollout(fresh, actions))
    other = MinAtarEnvironment(game, difficulty=difficulty, seed=98)
    with pytest.raises(AssertionError):  # The seed matters (sticky actions, game randomness).
        _assert_same(_rollout(fresh, actions), _rollout(other, actions))


@pytest.mark.parametrize("game", RAMPING_GAMES)
def test_difficulty_one_is_minatars_difficulty_ramping(game):
    info = games.get_game(game)
    actions = _actions(game, 2000, seed=5)
    for difficulty, ramping in ((0, False), (None, False), (1, True)):
        env = MinAtarEnvironment(game, difficulty=difficulty, seed=21)
        assert env._env.env.ramping is ramping  # minatar's own flag.
        bare = Environment(info.rom_id, sticky_action_prob=0.1, difficulty_ramping=ramping)
        bare.seed(21)
        bare.reset()
        timestep = env.reset()
        minimal = bare.minimal_action_set()
        for action in actions:
            timestep = env.step(int(action))
            bare.act(minimal[action])
            np.testing.assert_array_equal(timestep.observation[..., : info.num_channels],
                                          bare.state())
            if timestep.last():
                break


@pytest.mark.parametrize("game", ("minatar/Breakout", "minatar/Freeway"))
def test_games_without_ramping_refuse_difficulty_one(game):
    with pytest.raises(ValueError, match=f"{game} has no difficulty 1; .*{game}: 0"):
        MinAtarEnvironment(game, difficulty=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": 1}, "has no mode 1"),
    ({"sticky_action_prob": 1.5}, "sticky_action_prob"),
    ({"max_episode_frames": 0}, "max_episode_frames"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MinAtarEnvironment("minatar/Asterix", **kwargs)


@pytest.mark.parametrize("action", [3, -1, 1.5, "left", None])
def test_bad_action_is_a_value_error(action):
    env = MinAtarEnvironment("minatar/Breakout")
    env.reset()
    with pytest.raises(ValueError, match=r"minatar/Breakout: action must be an int in \[0, 3\)"):
        env.step(action)
    assert env.step(np.int64(2)).mid()  # The environment is still usable.


def test_ale_names_are_refused_and_minatar_names_are_not_ale_games():
    with pytest.raises(ValueError, match="Breakout is an ALE game, not a MinAtar one"):
        MinAtarEnvironment("Breakout")
    with pytest.raises(ValueError, match="Breakout is an ALE game"):
        MinAtarEnvironment("atari/Breakout")
    with pytest.raises(ValueError, match="minatar/Breakout is a minatar game, not an ALE one"):
        AtariEnvironment("minatar/Breakout")
    with pytest.raises(ValueError, match="Unknown game 'minatar/Pong'"):
        MinAtarEnvironment("minatar/Pong")


def test_render_colours_each_object_channel():
    env = MinAtarEnvironment("minatar/Breakout", seed=0)
    observation = env.reset().observation
    image = env.render()
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    empty = ~observation.any(-1)
    assert not image[empty].any() and image[~empty].any(-1).all()
