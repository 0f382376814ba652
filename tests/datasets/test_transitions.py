"""Frame stacks and n-step transitions against an independent numpy reference."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaled_ql import types
from scaled_ql.datasets import rlu_atari, transitions
from tests.datasets.helpers import reference_transitions


def _in_memory_episode(frames, actions, rewards, is_terminal):
    """An RLDS episode whose steps are a tf.data.Dataset, like TFDS yields (no disk)."""
    num_steps = len(frames)
    index = np.arange(num_steps)
    steps = {
        "observation": frames[..., None],
        "action": actions.astype(np.int64),
        "reward": rewards.astype(np.float32),
        "discount": np.ones(num_steps, np.float32),
        "is_first": index == 0,
        "is_last": index == num_steps - 1,
        "is_terminal": (index == num_steps - 1) & is_terminal,
    }
    return {"steps": tf.data.Dataset.from_tensor_slices(steps)}


def _assert_match(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.observation, w["observation"])
        np.testing.assert_array_equal(g.next_observation, w["next_observation"])
        assert g.action == w["action"]
        assert g.reward == pytest.approx(w["reward"], rel=1e-5, abs=1e-5)
        assert g.discount == pytest.approx(w["discount"], rel=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_steps=st.integers(1, 9),
    n_step=st.integers(1, 5),
    stack_size=st.integers(1, 4),
    terminal=st.booleans(),
    clip=st.booleans(),
    gamma=st.sampled_from([0.0, 0.5, 0.99, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_episode_transitions_match_numpy_reference(
    num_steps, n_step, stack_size, terminal, clip, gamma, seed
):
    rng = np.random.default_rng(seed)
    # Small distinct frames keep failures readable; values still cover the uint8 range.
    frames = rng.integers(0, 256, (num_steps, 84, 84), dtype=np.uint8)
    actions = rng.integers(0, 6, num_steps)
    rewards = rng.choice([-7.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0], num_steps)
    config = transitions.TransitionConfig(
        n_step=n_step, discount=gamma, stack_size=stack_size, clip_rewards=clip
    )
    episode = _in_memory_episode(frames, actions, rewards, terminal)
    got = list(
        transitions.episode_transitions(
            episode, config, game_id=3, num_actions=6
        ).as_numpy_iterator()
    )
    want = reference_transitions(
        frames, actions, rewards, terminal, n=n_step, gamma=gamma, stack=stack_size, clip=clip
    )
    _assert_match(got, want)
    assert all(g.game_id == 3 and g.observation.dtype == np.uint8 for g in got)


def test_stack_never_crosses_an_episode_start():
    frames = np.full((3, 84, 84), 200, np.uint8)
    episode = _in_memory_episode(frames, np.zeros(3, int), np.zeros(3), False)
    config = transitions.TransitionConfig()
    first = next(
        transitions.episode_transitions(
            episode, config, game_id=0, num_actions=6
        ).as_numpy_iterator()
    )
    assert first.observation.shape == types.ATARI_OBSERVATION.shape
    assert np.all(first.observation[..., :3] == 0) and np.all(first.observation[..., 3] == 200)
    assert np.all(first.next_observation[..., :2] == 0) and np.all(
        first.next_observation[..., 2:] == 200
    )


def test_action_outside_minimal_action_set_is_an_error_naming_the_game():
    frames = np.zeros((3, 84, 84), np.uint8)
    episode = _in_memory_episode(frames, np.array([0, 6, 0]), np.zeros(3), True)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="Pong: action outside the minimal action set"
    ):
        list(
            transitions.episode_transitions(
                episode, transitions.TransitionConfig(), game_id=0, num_actions=6, game="Pong"
            )
        )


def test_transition_config_validates():
    with pytest.raises(ValueError):
        transitions.TransitionConfig(n_step=0)
    with pytest.raises(ValueError):
        transitions.TransitionConfig(discount=1.5)


@pytest.mark.slow
@pytest.mark.parametrize("steps_as_tensors", [False, True])
def test_real_collected_data_matches_reference(collected, steps_as_tensors):
    """Through the disk path: TFDS episodes of real ALE play -> transitions, 3-step; steps as
    TFDS's nested datasets and as whole-episode tensors (the training pipeline's read)."""
    data_dir, configs, _ = collected
    config = transitions.TransitionConfig(n_step=3)
    for game_id, collect_config in enumerate(configs):
        run = rlu_atari.open_run(collect_config.game, 1, data_dir=data_dir)
        expected, count = [], 0
        for episode in tfds.as_numpy(run.episodes()):
            steps = list(episode["steps"])
            frames = np.stack([s["observation"][..., 0] for s in steps])
            actions = np.array([s["action"] for s in steps])
            rewards = np.array([s["reward"] for s in steps])
            want = reference_transitions(
                frames,
                actions,
                rewards,
                bool(steps[-1]["is_terminal"]),
                n=3,
                gamma=0.99,
                stack=4,
                clip=True,
            )
            expected.extend(want)
            count += len(steps) - 1
        got = list(
            transitions.game_transitions(
                run.episodes(steps_as_tensors=steps_as_tensors),
                config,
                game=collect_config.game,
                game_id=game_id,
                deterministic=True,
                episode_cycle=1,
            ).as_numpy_iterator()
        )
        assert len(got) == count
        _assert_match(got, expected)
        assert {int(g.game_id) for g in got} == {game_id}
