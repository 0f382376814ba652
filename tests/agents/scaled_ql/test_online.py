"""The online C51 logging agent: its replay against the numpy reference, and a real ALE run."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaled_ql.agents.scaled_ql.online import (
    FrameReplay,
    OnlineAgentConfig,
    OnlineC51Policy,
    epsilon_at,
)
from tests.conftest import tiny_agent_config
from tests.datasets.helpers import reference_transitions


def _fill(replay, episodes):
    """Feeds (frames [T,84,84], actions [T], rewards [T], terminal) episodes step by step."""
    for frames, actions, rewards, terminal in episodes:
        replay.start_episode(frames[0])
        num_steps = len(frames)
        for t in range(num_steps - 1):
            last = t == num_steps - 2
            discount = 0.0 if (last and terminal) else 1.0
            replay.add(int(actions[t]), float(rewards[t]), discount, frames[t + 1], last)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.integers(2, 9), min_size=1, max_size=4),
    terminals=st.lists(st.booleans(), min_size=4, max_size=4),
    n_step=st.integers(1, 4),
    gamma=st.sampled_from([0.0, 0.5, 0.99, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_replay_transitions_match_the_numpy_reference(lengths, terminals, n_step, gamma, seed):
    rng = np.random.default_rng(seed)
    episodes = []
    for length, terminal in zip(lengths, terminals):
        episodes.append((rng.integers(0, 256, (length, 84, 84), dtype=np.uint8),
                         rng.integers(0, 6, length),
                         rng.choice([-7.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0], length),
                         terminal))
    replay = FrameReplay(sum(lengths), n_step=n_step, discount=gamma)
    _fill(replay, episodes)
    want = [w for frames, actions, rewards, terminal in episodes
            for w in reference_transitions(frames, actions, rewards, terminal, n=n_step,
                                           gamma=gamma, stack=4, clip=True)]
    valid = np.flatnonzero(replay._valid(np.arange(replay.size)))
    assert len(valid) == len(want) == replay.num_sampleable()
    got = replay.transitions(valid, game_id=2)
    for i, w in enumerate(want):
        np.testing.assert_array_equal(got.observation[i], w["observation"])
        np.testing.assert_array_equal(got.next_observation[i], w["next_observation"])
        assert got.action[i] == w["action"]
        assert got.reward[i] == pytest.approx(w["reward"], rel=1e-5, abs=1e-5)
        assert got.discount[i] == pytest.approx(w["discount"], rel=1e-6, abs=1e-7)
    assert (got.game_id == 2).all() and got.observation.dtype == np.uint8


def test_open_episode_samples_only_complete_windows():
    replay = FrameReplay(20, n_step=3, discount=0.5)
    frames = np.arange(6, dtype=np.uint8)[:, None, None] * np.ones((6, 84, 84), np.uint8)
    replay.start_episode(frames[0])
    for t in range(5):  # 5 actions taken, the episode goes on
        replay.add(t, 1.0, 1.0, frames[t + 1], last=False)
    # Steps 0, 1, 2 have their 3 following rewards written; 3 and 4 do not yet.
    assert replay.num_sampleable() == 3
    batch = replay.sample(np.random.default_rng(0), 64)
    assert set(batch.action.tolist()) == {0, 1, 2}
    np.testing.assert_allclose(batch.reward, 1.0 + 0.5 + 0.25)
    np.testing.assert_allclose(batch.discount, 0.125)
    assert replay.nbytes == 20 * (84 * 84 + 4 * 4 + 8)  # frame, 4 x 32-bit fields, int64 end


def test_replay_refuses_misuse():
    replay = FrameReplay(2)
    frame = np.zeros((84, 84), np.uint8)
    with pytest.raises(RuntimeError, match="before start_episode"):
        replay.add(0, 0.0, 1.0, frame, last=False)
    replay.start_episode(frame)
    replay.add(0, 0.0, 1.0, frame, last=False)
    with pytest.raises(RuntimeError, match="full"):
        replay.add(0, 0.0, 1.0, frame, last=False)


def test_epsilon_schedule_and_config_validation():
    config = OnlineAgentConfig(total_steps=1000, epsilon_decay_fraction=0.1)
    assert epsilon_at(config, 0) == 1.0
    assert epsilon_at(config, 50) == pytest.approx(0.525)
    assert epsilon_at(config, 100) == pytest.approx(0.05)
    assert epsilon_at(config, 900) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="total_steps"):
        OnlineAgentConfig(total_steps=0)
    with pytest.raises(ValueError, match="epsilon_end"):
        OnlineAgentConfig(total_steps=10, epsilon_end=1.5)


def test_online_agent_learns_on_real_breakout_while_logging_checkpoint_ids(tmp_path):
    """The collector's seam on a real game: checkpoint ids rise by tenths, updates happen."""
    import jax

    from scaled_ql.datasets import inspect_run, open_run
    from scaled_ql.datasets.collect import CollectConfig, collect_run

    total = 400
    kwargs = dict(total_steps=total, min_replay_steps=100, update_period=4,
                  agent=tiny_agent_config(cql_alpha=0.0, n_step=3))
    config = CollectConfig("Breakout", num_steps=total, policy="online_c51",
                           policy_kwargs=tuple(kwargs.items()), seed=5,
                           layout="rlu_atari_checkpoints_ordered")
    policies = []

    import scaled_ql.agents.scaled_ql.online as online

    class Spy(OnlineC51Policy):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.initial = jax.tree_util.tree_map(np.array, self.params)
            policies.append(self)

    original = online.OnlineC51Policy
    online.OnlineC51Policy = Spy
    try:
        collect_run(config, tmp_path)
    finally:
        online.OnlineC51Policy = original
    (policy,) = policies
    assert policy.steps == total
    assert policy.updates == len(range(100, total + 1, 4))  # steps 100, 104, ..., 400
    assert policy.checkpoint_id == 9 and policy.epsilon == pytest.approx(0.05)
    moved = jax.tree_util.tree_map(lambda a, b: float(np.abs(np.asarray(a) - b).max()),
                                   policy.params, policy.initial)
    assert max(jax.tree_util.tree_leaves(moved)) > 0
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(policy.params))
    report = inspect_run(open_run("Breakout", 1, data_dir=tmp_path,
                                  layout="rlu_atari_checkpoints_ordered"), decode_frames=False)
    ids = sorted(report.checkpoints)
    assert ids[0] == 0 and ids == sorted(set(ids)) and all(0 <= i <= 9 for i in ids)
    logged = sum(stats.steps for stats in report.checkpoints.values())
    assert logged == policy.replay.size  # every step the agent saw is in the dataset

    # Readers find the checkpoint-ordered layout on their own ("auto"), e.g. the first 20%.
    from scaled_ql.datasets import PipelineConfig, numpy_iterator
    from scaled_ql.datasets.rlu_atari import DatasetNotFoundError, EpisodeSelection

    early = PipelineConfig(games=("Breakout",), data_dir=str(tmp_path), batch_size=8,
                           shuffle_buffer=16, seed=0,
                           selection=EpisodeSelection(checkpoints=(0, 1)))
    batch = next(numpy_iterator(early))
    assert batch.observation.shape == (8, 84, 84, 4) and (batch.game_id == 0).all()
    with pytest.raises(DatasetNotFoundError,
                       match="Pong run 1: no complete rlu_atari/Pong_run_1 .*nor a "
                             "rlu_atari_checkpoints_ordered dataset"):
        next(numpy_iterator(PipelineConfig(games=("Pong",), data_dir=str(tmp_path))))


def test_cli_refuses_online_c51_without_a_step_budget(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "scaled_ql.cli", "collect", "--games", "Pong", "--episodes", "1",
         "--policy", "online_c51", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--policy online_c51 needs --steps" in result.stderr
    assert not any(tmp_path.iterdir())
