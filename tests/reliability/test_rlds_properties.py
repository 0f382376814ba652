"""Property-based tests of the RLDS -> transition pipeline on arbitrary episode lengths and
flag sequences, against the independent numpy reference of tests/datasets/helpers.py.

Every frame of a generated stream has its own pixel value, so a transition names the episode
and step its stacks come from: a stack that mixed two episodes, a lost or duplicated
transition, or a wrong n-step sum shows up as a mismatch with the reference.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaled_ql.datasets import pipeline, rlds, rlu_atari, transitions, validation
from tests.datasets.helpers import reference_transitions

SETTINGS = dict(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NUM_ACTIONS = 6  # Pong


def _frames(first_value: int, num_steps: int) -> np.ndarray:
    """[T, 84, 84] frames whose pixels are first_value, first_value + 1, ... (never 0: zeros
    are the padding before an episode's start)."""
    values = np.arange(first_value, first_value + num_steps, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None], (num_steps, 84, 84)).copy()


def _rlds_steps(frames, actions, rewards, is_first, is_last, is_terminal) -> dict:
    return {"observation": frames[..., None], "action": actions.astype(np.int64),
            "reward": rewards.astype(np.float32),
            "discount": np.ones(len(frames), np.float32), "is_first": is_first,
            "is_last": is_last, "is_terminal": is_terminal}


def _key(observation) -> tuple:
    return tuple(int(observation[0, 0, j]) for j in range(observation.shape[-1]))


def _match(got: list, want: list) -> None:
    """The same transitions, in any order (interleaving reorders episodes)."""
    assert len(got) == len(want)
    by_key = {_key(w["observation"]): w for w in want}
    assert len(by_key) == len(want)  # unique stacks: every transition is identifiable
    for g in got:
        w = by_key.pop(_key(g.observation))
        np.testing.assert_array_equal(g.next_observation, w["next_observation"])
        assert g.action == w["action"] and g.game_id == 0
        assert g.reward == pytest.approx(w["reward"], rel=1e-5, abs=1e-5)
        assert g.discount == pytest.approx(w["discount"], rel=1e-6, abs=1e-7)
    assert not by_key


episode_specs = st.lists(
    st.tuples(st.integers(1, 14), st.booleans()),  # (length, is_terminal), 1 step: no action
    min_size=1, max_size=6)


@settings(max_examples=15, **SETTINGS)
@given(episodes=episode_specs, n_step=st.integers(1, 4), stack=st.integers(1, 4),
       clip=st.booleans(), gamma=st.sampled_from([0.0, 0.9, 1.0]), seed=st.integers(0, 2**16))
def test_a_stream_of_episodes_yields_each_transition_once_within_its_episode(
        episodes, n_step, stack, clip, gamma, seed):
    rng = np.random.default_rng(seed)
    config = transitions.TransitionConfig(n_step=n_step, discount=gamma, stack_size=stack,
                                          clip_rewards=clip)
    stream, want, value = None, [], 1
    for length, terminal in episodes:
        frames = _frames(value, length)
        value += length
        actions = rng.integers(0, NUM_ACTIONS, length)
        rewards = rng.uniform(-3, 3, length)
        index = np.arange(length)
        steps = _rlds_steps(frames, actions, rewards, index == 0, index == length - 1,
                            (index == length - 1) & terminal)
        one = tf.data.Dataset.from_tensors({"steps": tf.data.Dataset.from_tensor_slices(steps)})
        stream = one if stream is None else stream.concatenate(one)
        want += reference_transitions(frames, actions, rewards, terminal, n=n_step, gamma=gamma,
                                      stack=stack, clip=clip)
    got = list(transitions.game_transitions(stream, config, game="Pong", game_id=0,
                                            deterministic=True).as_numpy_iterator())
    assert len(got) == sum(max(length - 1, 0) for length, _ in episodes)
    _match(got, want)


@settings(max_examples=40, **SETTINGS)
@given(length=st.integers(2, 10), data=st.data())
def test_flag_sequences_validation_and_the_pipeline_agree(length, data):
    """Any flags: validation accepts exactly the RLDS-conforming ones, and the transitions only
    ever depend on the last step's is_terminal (what validation guarantees is meaningful)."""
    flags = st.lists(st.booleans(), min_size=length, max_size=length).map(np.array)
    is_first, is_last, is_terminal = data.draw(flags), data.draw(flags), data.draw(flags)
    rng = np.random.default_rng(length)
    frames, actions = _frames(1, length), rng.integers(0, NUM_ACTIONS, length)
    rewards = rng.uniform(-2, 2, length)
    steps = _rlds_steps(frames, actions, rewards, is_first, is_last, is_terminal)

    index = np.arange(length)
    conforming = (np.array_equal(is_first, index == 0)
                  and np.array_equal(is_last, index == length - 1)
                  and not np.any(is_terminal[:-1]))
    try:
        validation.check_episode(steps, NUM_ACTIONS, "episode")
        accepted = True
    except validation.DatasetValidationError as error:
        accepted = False
        assert str(error).startswith("episode: ")
    assert accepted == conforming

    episode = {"steps": tf.data.Dataset.from_tensor_slices(steps)}
    got = list(transitions.episode_transitions(
        episode, transitions.TransitionConfig(), game_id=0, num_actions=NUM_ACTIONS,
        game="Pong").as_numpy_iterator())
    want = reference_transitions(frames, actions, rewards, bool(is_terminal[-1]), n=1,
                                 gamma=0.99, stack=4, clip=True)
    _match(got, want)


@settings(max_examples=5, **SETTINGS)
@given(episodes=st.lists(st.tuples(st.integers(2, 12), st.booleans()), min_size=1,
                         max_size=4),
       per_shard=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_written_and_read_back_through_tfds(tmp_path_factory, episodes, per_shard, seed):
    """The disk path: RluAtariWriter -> TFDS shards -> validation and the training pipeline."""
    rng = np.random.default_rng(seed)
    data_dir = tmp_path_factory.mktemp("rlds_property")
    want, value = [], 1
    with rlds.RluAtariWriter(data_dir, "Pong", 1, max_episodes_per_shard=per_shard) as writer:
        for i, (length, terminal) in enumerate(episodes):
            frames = _frames(value, length)
            value += length
            actions = rng.integers(0, NUM_ACTIONS, length)
            rewards = rng.uniform(-3, 3, length).astype(np.float32)
            writer.add_episode(rlds.EpisodeArrays(
                frames=frames[..., None], actions=actions, rewards=rewards,
                discounts=np.ones(length, np.float32), is_terminal=terminal, episode_id=i,
                checkpoint_id=0))
            want += reference_transitions(frames, actions, rewards, terminal, n=1, gamma=0.99,
                                          stack=4, clip=True)
    report = validation.inspect_run(rlu_atari.open_run("Pong", 1, data_dir=data_dir))
    assert report.checkpoints[0].episodes == len(episodes)
    assert report.checkpoints[0].steps == sum(length for length, _ in episodes)
    config = pipeline.PipelineConfig(games=("Pong",), data_dir=str(data_dir), batch_size=1,
                                     seed=0)
    got = list(pipeline.game_transition_dataset(config, 0, repeat=False).as_numpy_iterator())
    _match(got, want)
