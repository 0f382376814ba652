"""The scripted RAM player of Breakout: its RAM addresses and geometry on the real ROM, its
controller, the policy seam (minimal action set, epsilon), and data collected with it."""

import json
import pathlib

import numpy as np
import pytest

from scaled_ql.agents import scripted
from scaled_ql.environments.atari import AtariEnvironment

NOOP, FIRE, RIGHT, LEFT = "NOOP", "FIRE", "RIGHT", "LEFT"


def _breakout(**kwargs) -> AtariEnvironment:
    return AtariEnvironment("Breakout", **{"sticky_action_prob": 0.0, "seed": 0, **kwargs})


def _index(env, name: str) -> int:
    return [action.name for action in env.ale_actions].index(name)


def _ram(env) -> tuple[int, int, int]:
    ram = env.ale.getRAM()
    return int(ram[scripted.PADDLE_X]), int(ram[scripted.BALL_X]), int(ram[scripted.BALL_Y])


def _paddle_columns(env) -> np.ndarray:
    """Screen columns of the paddle: row 190, between the side walls (columns 8-151)."""
    return np.flatnonzero(env.ale.getScreenGrayscale()[190, 8:152]) + 8


def _ball_box(env):
    """(left column, top row) of the ball on screen, between the bricks and the paddle."""
    region = env.ale.getScreenGrayscale()[93:185, 8:152]
    rows, columns = np.nonzero(region)
    if not len(rows):
        return None
    return int(columns.min()) + 8, int(rows.min()) + 93


def test_ram_paddle_x_follows_left_and_right_and_matches_the_screen():
    env = _breakout()
    env.reset()
    positions = [_ram(env)[0]]
    for _ in range(6):
        env.step(_index(env, RIGHT))
        positions.append(_ram(env)[0])
    right_wall = positions[-1]
    for _ in range(12):
        env.step(_index(env, LEFT))
        positions.append(_ram(env)[0])
    left_wall = positions[-1]
    moves = np.diff(positions)
    assert (moves[:6] >= 0).all() and moves[:6].sum() > 0  # RIGHT: x grows to the wall
    assert (moves[6:] <= 0).all()  # LEFT: x shrinks to the other wall
    assert (right_wall, left_wall) == (191, 55)
    # Standing still, the paddle's 16 screen columns start at paddle_x - 47.
    columns = _paddle_columns(env)
    assert (columns.min(), columns.size) == (left_wall - 47, 16)
    for _ in range(5):
        env.step(_index(env, RIGHT))
    for _ in range(3):
        env.step(_index(env, NOOP))
    paddle_x = _ram(env)[0]
    assert 55 < paddle_x < 191
    columns = _paddle_columns(env)
    assert (columns.min(), columns.size) == (paddle_x - 47, 16)


def test_ram_ball_is_absent_until_fire_then_falls_where_the_screen_shows_it():
    env = _breakout()
    env.reset()
    for _ in range(5):
        env.step(_index(env, NOOP))
        assert _ram(env)[2] == 0  # no ball in play before FIRE
    env.step(_index(env, FIRE))
    track = []
    for _ in range(10):
        env.step(_index(env, NOOP))
        _, ball_x, ball_y = _ram(env)
        track.append((ball_x, ball_y))
        assert _ball_box(env) == (ball_x - 49, ball_y + 9)
    xs, ys = np.array(track).T
    assert (np.diff(ys) == 4).all()  # falling one row per frame, 4 frames a step
    assert len(set(np.diff(xs))) == 1 and np.diff(xs)[0] != 0  # straight line


def test_landing_x_golden_values():
    # Straight: 40 rows at 4 per step is 10 steps of +4.
    assert scripted.landing_x(100, 140, 4, 4) == 140
    # Right wall: 190 + 8 * 10 = 270 is 70 past 200, mirrored to 130.
    assert scripted.landing_x(190, 140, 8, 4) == 130
    # Left wall: 60 - 80 = -20 is 76 past 56, mirrored to 132.
    assert scripted.landing_x(60, 140, -8, 4) == 132
    # Twice across (a full period of 2 * 144 units) comes back to the start.
    assert scripted.landing_x(100, 132, 288 / 12, 4) == pytest.approx(100)
    with pytest.raises(ValueError, match="falling"):
        scripted.landing_x(100, 140, 4, -4)


def _fake_ram(paddle_x: int, ball_x: int, ball_y: int) -> np.ndarray:
    ram = np.zeros(128, np.uint8)
    ram[[scripted.PADDLE_X, scripted.BALL_X, scripted.BALL_Y]] = paddle_x, ball_x, ball_y
    return ram


def test_breakout_player_serves_follows_the_landing_point_and_holds_still():
    player = scripted.BreakoutPlayer()
    assert player.act(_fake_ram(100, 80, 0)) == FIRE
    # The ball rises above a paddle centred under it: hold still.
    assert player.act(_fake_ram(91, 100, 120)) == NOOP
    player.reset()
    # Falling from (100, 136) by (+4, +4): it lands at x 140; the paddle centred there is
    # at 131, 40 units right of 91.
    player.act(_fake_ram(91, 96, 132))
    assert player.act(_fake_ram(91, 100, 136)) == RIGHT
    player.reset()
    player.act(_fake_ram(131, 96, 132))
    assert player.act(_fake_ram(131, 100, 136)) == NOOP
    player.reset()
    player.act(_fake_ram(180, 96, 132))
    assert player.act(_fake_ram(180, 100, 136)) == LEFT


def test_policy_actions_index_the_minimal_action_set():
    env = _breakout()
    assert [a.name for a in env.ale_actions] == [NOOP, FIRE, RIGHT, LEFT]
    policy = scripted.ScriptedRamPolicy(env.num_actions, seed=0, epsilon=0.0)
    policy.attach(env)
    timestep = env.reset()
    assert policy(timestep.observation) == _index(env, FIRE)
    chosen = []
    for _ in range(300):
        action = policy(timestep.observation)
        assert isinstance(action, int) and 0 <= action < env.num_actions
        timestep = env.step(action)
        policy.observe(action, timestep)
        chosen.append(env.ale_actions[action].name)
    assert {LEFT, RIGHT, NOOP} <= set(chosen)


def test_epsilon_one_is_uniform_and_epsilon_is_checked():
    env = _breakout()
    env.reset()
    policy = scripted.ScriptedRamPolicy(env.num_actions, seed=3, epsilon=1.0)
    policy.attach(env)
    draws = 8_000
    counts = np.bincount([policy(None) for _ in range(draws)], minlength=env.num_actions)
    expected = draws / env.num_actions
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.3  # 3 degrees of freedom: p = 0.001
    with pytest.raises(ValueError, match="epsilon"):
        scripted.ScriptedRamPolicy(4, seed=0, epsilon=1.5)


def test_policy_refuses_to_play_without_a_supported_ale_game():
    from scaled_ql.environments.minatar_env import MinAtarEnvironment

    policy = scripted.ScriptedRamPolicy(4, seed=0)
    with pytest.raises(scripted.ScriptedPolicyError, match="attach"):
        policy(None)
    with pytest.raises(scripted.ScriptedPolicyError, match="no scripted player for Pong"):
        scripted.ScriptedRamPolicy(6, seed=0).attach(AtariEnvironment("Pong"))
    with pytest.raises(scripted.ScriptedPolicyError, match="not an ALE game"):
        policy.attach(MinAtarEnvironment("minatar/breakout"))


def _returns(data_dir, policy: str) -> list[float]:
    """The episode returns of the Breakout run 1 dataset in `data_dir`, written by `policy`."""
    from scaled_ql.datasets import inspect_run, open_run, rlds

    run = open_run("Breakout", 1, data_dir=data_dir)
    folder = pathlib.Path(run.builder.data_dir)
    provenance = json.loads((folder / rlds.PROVENANCE_FILE).read_text())
    assert provenance["policy"] == policy and provenance["sticky_action_prob"] == 0.25
    assert provenance["seed"] == 5 + 104729  # the CLI's seed for game 0 of run 1 (--seed 5)
    if policy == "scripted_ram":
        assert provenance["policy_kwargs"] == {"epsilon": 0.0}  # --epsilon reached the policy
    report = inspect_run(run, decode_frames=False)
    return [r for stats in report.checkpoints.values() for r in stats.returns]


@pytest.mark.slow
@pytest.mark.integration
def test_collect_scripted_ram_beats_random_on_the_same_seeds(tmp_path):
    """`scaled-ql collect --policy scripted_ram` (its worker process finds the policy by its
    import string) against the random policy on the same environment seeds: 2 Breakout
    episodes each, capped at 4,000 frames (1,000 agent steps)."""
    from scaled_ql.cli import main
    from scaled_ql.datasets.collect import CollectConfig, collect_run

    code = main(["collect", "--games", "Breakout", "--policy", "scripted_ram", "--epsilon", "0",
                 "--episodes", "2", "--max-episode-frames", "4000", "--seed", "5",
                 "--out", str(tmp_path / "scripted")])
    assert code == 0
    collect_run(CollectConfig("Breakout", num_episodes=2, max_episode_frames=4000,
                              seed=5 + 104729), tmp_path / "random")
    scripted_returns = _returns(tmp_path / "scripted", "scripted_ram")
    random_returns = _returns(tmp_path / "random", "random")
    assert len(scripted_returns) == len(random_returns) == 2
    # The player scores tens of points in 1,000 steps, random play a few at most.
    assert min(scripted_returns) >= 10
    assert min(scripted_returns) > 3 * max(max(random_returns), 1.0)
