"""AtariEnvironment on real ALE ROMs: specs, preprocessing, seeding, sticky actions, endings."""

import inspect
import subprocess
import sys
import textwrap

import ale_py
import cv2
import dm_env
import numpy as np
import pytest

from scaled_ql.environments import AtariEnvironment, get_game
from scaled_ql.environments import atari as atari_module


def _rollout(env: AtariEnvironment, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plays `actions` from a reset; returns stacked observations, rewards and discounts."""
    observations, rewards, discounts = [env.reset().observation], [], []
    for action in actions:
        timestep = env.step(action)
        observations.append(timestep.observation)
        rewards.append(timestep.reward)
        discounts.append(timestep.discount)
        if timestep.last():
            break
    return np.stack(observations), np.array(rewards), np.array(discounts)


def _random_actions(num_actions: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(num_actions, size=length)


def test_specs_are_exact():
    env = AtariEnvironment("MsPacman")
    assert env.observation_spec() == dm_env.specs.BoundedArray(
        (84, 84, 4), np.uint8, 0, 255, name="pixels"
    )
    action_spec = env.action_spec()
    assert isinstance(action_spec, dm_env.specs.DiscreteArray)
    assert action_spec.num_values == 9  # MsPacman's minimal action set.
    assert env.reward_spec() == dm_env.specs.Array((), np.float32, name="reward")
    assert env.discount_spec() == dm_env.specs.BoundedArray((), np.float32, 0.0, 1.0)
    assert AtariEnvironment("MsPacman", full_action_space=True).action_spec().num_values == 18

    timestep = env.reset()
    assert timestep.first()
    env.observation_spec().validate(timestep.observation)
    timestep = env.step(3)
    env.observation_spec().validate(timestep.observation)
    env.reward_spec().validate(timestep.reward)
    env.discount_spec().validate(timestep.discount)


def _reference_ale(game: str, seed: int, sticky: float):
    """A second, bare ALEInterface set up as AtariEnvironment sets up its own."""
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ref = ale_py.ALEInterface()
    ref.setInt("random_seed", seed)
    ref.setFloat("repeat_action_probability", sticky)
    ref.loadROM(ale_py.roms.get_rom_path(get_game(game).rom_id))
    ref.reset_game()
    return ref


def _expected_frame(screen_a, screen_b):
    return cv2.resize(np.maximum(screen_a, screen_b), (84, 84), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("game", ["MsPacman", "Pong", "Breakout", "Seaquest", "SpaceInvaders"])
def test_preprocessing_matches_an_independent_computation_bit_for_bit(game):
    """Steps a second, bare ALEInterface by hand and preprocesses its screens with numpy+cv2."""
    seed, sticky = 7, 0.25
    env = AtariEnvironment(game, seed=seed, sticky_action_prob=sticky)
    ref = _reference_ale(game, seed, sticky)
    minimal = ref.getMinimalActionSet()

    observation = env.reset().observation
    first = _expected_frame(ref.getScreenGrayscale(), ref.getScreenGrayscale())
    np.testing.assert_array_equal(observation[..., -1], first)
    np.testing.assert_array_equal(observation[..., :-1], 0)  # Zero padding before the start.

    frames = [first]
    for action in _random_actions(len(minimal), 150, seed=1):
        reward = 0
        screens = []
        for _ in range(4):
            reward += ref.act(minimal[action])
            screens.append(ref.getScreenGrayscale())
        frames.append(_expected_frame(screens[-2], screens[-1]))
        timestep = env.step(action)
        assert timestep.reward == reward
        assert timestep.observation.dtype == np.uint8
        assert timestep.observation.flags.c_contiguous
        # Newest frame last; the three before it are the previous steps' frames.
        stack = np.stack((4 * [np.zeros_like(first)] + frames)[-4:], axis=-1)
        np.testing.assert_array_equal(timestep.observation, stack)
        if timestep.last():
            break
    assert len({f.tobytes() for f in frames}) > 10  # The game really moved.


def test_the_last_frame_of_a_game_over_is_the_final_screen_alone():
    env = AtariEnvironment("Pong", sticky_action_prob=0.0)
    ref = _reference_ale("Pong", 0, 0.0)
    env.reset()
    while True:  # NOOP loses 0-21; the game ends inside some step's frame skip.
        timestep = env.step(0)
        screens = []
        for _ in range(4):
            ref.act(ref.getMinimalActionSet()[0])
            if ref.game_over():
                break
            screens.append(ref.getScreenGrayscale())
        if timestep.last():
            break
        np.testing.assert_array_equal(timestep.observation[..., -1], _expected_frame(*screens[-2:]))
    assert ref.game_over() and timestep.discount == 0.0
    final = ref.getScreenGrayscale()
    np.testing.assert_array_equal(timestep.observation[..., -1], _expected_frame(final, final))


@pytest.mark.parametrize("game", ["Pong", "Breakout"])
def test_fixed_seed_rollouts_are_reproducible(game):
    actions = _random_actions(AtariEnvironment(game).num_actions, 300, seed=3)
    first = _rollout(AtariEnvironment(game, seed=11), actions)
    second = _rollout(AtariEnvironment(game, seed=11), actions)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # Reset replays from the same game start, continuing the same random stream.
    assert first[0].shape[0] == len(actions) + 1


def test_sticky_actions_change_trajectories_only_when_enabled():
    actions = _random_actions(4, 300, seed=5)

    def observations(seed, prob):
        return _rollout(AtariEnvironment("Breakout", seed=seed, sticky_action_prob=prob), actions)[
            0
        ]

    # p = 0: ALE is deterministic, the seed does not matter.
    np.testing.assert_array_equal(observations(1, 0.0), observations(2, 0.0))
    # p = 0.25: different seeds repeat different actions, so the paddle ends elsewhere.
    assert not np.array_equal(observations(1, 0.25), observations(2, 0.25))
    # ... and p = 0.25 differs from p = 0 with the same seed.
    assert not np.array_equal(observations(1, 0.25), observations(1, 0.0))


def test_ale_vector_env_produces_the_same_frames():
    """ale_py's AtariVectorEnv (C++ preprocessing) gives our observations bit for bit.

    docs/ENVIRONMENTS.md relies on this when it compares the two; sticky actions off, no
    no-op or FIRE resets, so both play the same frames.  Its layout is [stack, 84, 84].
    """
    from ale_py.vector_env import AtariVectorEnv

    game = "MsPacman"
    vector = AtariVectorEnv(
        get_game(game).rom_id,
        1,
        num_threads=1,
        repeat_action_probability=0.0,
        noop_max=0,
        use_fire_reset=False,
        reward_clipping=False,
    )
    env = AtariEnvironment(game, sticky_action_prob=0.0)
    try:
        theirs, _ = vector.reset(seed=0)
        np.testing.assert_array_equal(np.moveaxis(env.reset().observation, -1, 0), theirs[0])
        for action in _random_actions(env.num_actions, 200, seed=6):
            timestep = env.step(action)
            theirs, reward, terminated, truncated, _ = vector.step(np.array([action]))
            if timestep.last() or terminated[0] or truncated[0]:
                break
            assert timestep.reward == reward[0]
            np.testing.assert_array_equal(np.moveaxis(timestep.observation, -1, 0), theirs[0])
    finally:
        vector.close()


def test_frame_cap_truncates_with_discount_one():
    env = AtariEnvironment("Breakout", max_episode_frames=42, sticky_action_prob=0.0)
    _, rewards, discounts = _rollout(env, [1] * 100)
    assert len(rewards) == 11  # 10 steps of 4 frames, then the last 2 frames up to the cap.
    assert env.episode_frames == 42
    assert discounts[-1] == 1.0 and (discounts == 1.0).all()
    assert not env.game_over  # The game itself was still running.
    # The next step starts a new episode from a fresh game.
    timestep = env.step(0)
    assert timestep.first() and env.episode_frames == 0


def test_default_frame_cap_is_108k_frames():
    assert inspect.signature(AtariEnvironment).parameters["max_episode_frames"].default == 108_000
    assert AtariEnvironment("Pong").max_episode_frames == 108_000


def test_game_over_ends_with_discount_zero():
    env = AtariEnvironment("Pong", sticky_action_prob=0.0)
    _, rewards, discounts = _rollout(env, [0] * 2000)  # NOOP loses 0-21.
    assert rewards.sum() == -21.0
    assert discounts[-1] == 0.0 and (discounts[:-1] == 1.0).all()
    assert env.game_over and env.episode_frames < 2000 * 4


def test_terminal_on_life_loss_continues_the_same_game():
    env = AtariEnvironment("Breakout", sticky_action_prob=0.0, terminal_on_life_loss=True)
    env.reset()
    lives = env.ale.lives()
    _, _, discounts = _rollout(env, [1] + [0] * 500)  # FIRE, then let the ball drop.
    assert discounts[-1] == 0.0 and not env.game_over
    frames_so_far = env.episode_frames
    timestep = env.step(1)  # Starts the next "episode": the same game, one life fewer.
    assert timestep.first()
    assert env.ale.lives() == lives - 1
    assert env.episode_frames == frames_so_far


@pytest.mark.parametrize(
    "game, variant",
    [("Pong", {}), ("MsPacman", {}), ("Breakout", {"mode": 4, "difficulty": 1})],
)
def test_reseed_plays_exactly_what_a_fresh_environment_plays(game, variant):
    """`reseed(s)` on a used environment == `AtariEnvironment(game, seed=s)`, sticky actions on."""
    used = AtariEnvironment(game, seed=777, **variant)
    actions = _random_actions(used.num_actions, 400, seed=2)
    _rollout(used, actions[:150])  # Leave it mid-game, with a non-NOOP last action.
    for seed in (0, 12345, 2**31 - 1):
        used.reseed(seed)
        assert used.episode_frames == 0
        fresh = _rollout(AtariEnvironment(game, seed=seed, **variant), actions)
        again = _rollout(used, actions)
        for a, b in zip(fresh, again):
            np.testing.assert_array_equal(a, b)
    # Different seeds really are different games (sticky actions differ).
    used.reseed(1)
    assert not np.array_equal(_rollout(used, actions)[0], again[0])


def test_reseed_reloads_the_rom_when_the_saved_state_is_not_as_expected(monkeypatch):
    env = AtariEnvironment("Breakout", seed=3)
    # The saved state holds the generator of seed 3, not of seed 4: the check must notice.
    assert atari_module._reseeded_state(env._fresh_state, 4, 5) is None
    assert atari_module._reseeded_state(env._fresh_state[:-1], 3, 5) is None
    assert atari_module._reseeded_state(env._fresh_state, 3, 5) is not None
    monkeypatch.setattr(atari_module, "_reseeded_state", lambda *args: None)
    actions = _random_actions(env.num_actions, 200, seed=4)
    _rollout(env, actions)
    env.reseed(5)
    fresh = _rollout(AtariEnvironment("Breakout", seed=5), actions)
    for a, b in zip(fresh, _rollout(env, actions)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed must be an int"):
        env.reseed(-1)


def test_modes_and_difficulties_change_the_game():
    actions = np.array([1] + [2, 2, 3, 3, 0] * 40)  # FIRE, then move the paddle around.

    def observations(**variant):
        env = AtariEnvironment("Breakout", sticky_action_prob=0.0, **variant)
        return _rollout(env, actions)[0]

    default = observations()
    np.testing.assert_array_equal(default, observations(mode=0, difficulty=0))
    assert not np.array_equal(default, observations(mode=12))
    assert not np.array_equal(default, observations(difficulty=1))


def test_render_rgb_adds_the_raw_screen():
    env = AtariEnvironment("Pong", render_rgb=True)
    spec = env.observation_spec()
    assert set(spec) == {"pixels", "rgb"} and spec["rgb"].shape == (210, 160, 3)
    timestep = env.step(2)
    spec["pixels"].validate(timestep.observation["pixels"])
    spec["rgb"].validate(timestep.observation["rgb"])
    np.testing.assert_array_equal(timestep.observation["rgb"], env.render())
    gray = cv2.cvtColor(timestep.observation["rgb"], cv2.COLOR_RGB2GRAY)
    assert gray.std() > 0  # A real picture, not a blank buffer.


@pytest.mark.parametrize("action", [6, -1, 1.5, "1"])
def test_bad_action_names_the_game(action):
    env = AtariEnvironment("Pong")
    env.reset()
    with pytest.raises(ValueError, match=r"Pong: action must be an int in \[0, 6\)"):
        env.step(action)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"game": "Pong", "mode": 2}, "Pong has no mode 2; valid mode values for Pong: 0, 1"),
        ({"game": "Pong", "difficulty": 4}, "Pong has no difficulty 4"),
        ({"game": "Pong", "sticky_action_prob": 1.5}, "sticky_action_prob must be in"),
        ({"game": "Pong", "frame_skip": 1}, "frame_skip must be >= 2"),
        ({"game": "Pong", "seed": -1}, "seed must be an int"),
        ({"game": "Pong", "max_episode_frames": 0}, "max_episode_frames must be >= 1"),
    ],
)
def test_bad_arguments_raise_before_ale(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AtariEnvironment(**kwargs)


@pytest.mark.integration
@pytest.mark.parametrize(
    "call, message",
    [
        ("AtariEnvironment('Pongg')", "ValueError: Unknown game 'Pongg'. Did you mean 'Pong'?"),
        (
            "AtariEnvironment('Breakout', mode=5)",
            "ValueError: Breakout has no mode 5; valid mode values for Breakout: 0, 4, 8,",
        ),
    ],
)
def test_bad_game_or_mode_is_a_python_error_in_a_fresh_process(call, message):
    """ALE exits the process on a bad ROM; our checks must raise first, as a Python error."""
    code = textwrap.dedent(
        f"""
        from scaled_ql.environments import AtariEnvironment
        try:
            {call}
        except ValueError:
            print("caught")
            raise
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "caught"
    assert "Traceback" in result.stderr and message in result.stderr
