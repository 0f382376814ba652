"""Real ALE play -> rlu_atari datasets -> read back through TFDS, bit for bit."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaled_ql.datasets import collect, rlds, rlu_atari, validation
from scaled_ql.environments.atari import AtariEnvironment
from tests.datasets.conftest import COLLECTED_STEPS

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _replay(config):
    """Plays the config again in this process (ALE is deterministic given its seed)."""
    env = AtariEnvironment(
        config.game, sticky_action_prob=config.sticky_action_prob, seed=config.seed
    )
    policy = collect.UniformRandomPolicy(env.num_actions, config.seed + 1)
    episodes, steps = [], 0
    while steps < config.num_steps:
        timestep = env.reset()
        frames, actions, rewards = [timestep.observation[..., -1]], [], []
        while not timestep.last() and steps < config.num_steps:
            action = policy(timestep.observation)
            timestep = env.step(action)
            frames.append(timestep.observation[..., -1])
            actions.append(action)
            rewards.append(timestep.reward)
            steps += 1
        terminal = bool(timestep.last() and timestep.discount == 0)
        episodes.append((np.stack(frames), np.array(actions), np.array(rewards), terminal))
    return episodes


def test_collected_observations_read_back_bit_for_bit_through_tfds(collected):
    data_dir, configs, paths = collected
    for config, path in zip(configs, paths):
        assert path == rlds.dataset_dir(data_dir, config.game, 1)
        builder = tfds.builder(f"rlu_atari/{config.game}_run_1", data_dir=str(data_dir))
        read = sorted(
            tfds.as_numpy(builder.as_dataset(split="train")), key=lambda e: e["episode_id"]
        )
        expected = _replay(config)
        assert len(read) == len(expected)
        total_actions = 0
        for episode, (frames, actions, rewards, terminal) in zip(read, expected):
            steps = list(episode["steps"])
            observed = np.stack([s["observation"] for s in steps])  # [T, 84, 84, 1]
            assert observed.dtype == np.uint8 and observed.shape[1:] == (84, 84, 1)
            np.testing.assert_array_equal(observed[..., 0], frames)
            np.testing.assert_array_equal([s["action"] for s in steps][:-1], actions)
            np.testing.assert_array_equal([s["reward"] for s in steps][:-1], rewards)
            assert [s["is_first"] for s in steps] == [True] + [False] * (len(steps) - 1)
            assert [s["is_last"] for s in steps] == [False] * (len(steps) - 1) + [True]
            assert bool(steps[-1]["is_terminal"]) == terminal
            assert episode["episode_return"] == pytest.approx(float(np.sum(rewards)))
            assert episode["checkpoint_id"] == 0
            total_actions += len(actions)
        assert total_actions == COLLECTED_STEPS


def test_collected_datasets_validate_and_open_every_way(collected):
    data_dir, configs, paths = collected
    for config, path in zip(configs, paths):
        by_name = rlu_atari.open_run(config.game, 1, data_dir=data_dir)
        by_folder = rlu_atari.open_directory(path)
        assert (by_folder.game, by_folder.run, by_folder.layout) == (config.game, 1, rlds.RLU_ATARI)
        report = validation.inspect_run(by_name)
        steps = sum(s.steps for s in report.checkpoints.values())
        episodes = sum(s.episodes for s in report.checkpoints.values())
        assert steps - episodes == COLLECTED_STEPS  # T steps = T-1 actions + final observation
        assert report.bytes_on_disk > 0
        provenance = (path / rlds.PROVENANCE_FILE).read_text()
        assert '"policy": "random"' in provenance


def test_data_info_cli_prints_per_game_statistics(collected):
    """As a user runs it: a separate process, and the stack's DeprecationWarnings stay hidden
    (gym's logger resets them to "once" on import, before TF's np.bool8 ones would show)."""
    import subprocess
    import sys

    data_dir, _, _ = collected
    result = subprocess.run([sys.executable, "-m", "scaled_ql.cli", "data", "info",
                             str(data_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Pong" in out and "Breakout" in out and "MiB on disk" in out
    assert "2 dataset(s) OK, 0 failed" in out
    assert "DeprecationWarning" not in result.stderr, result.stderr


def test_collect_config_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        collect.CollectConfig("Pong", num_steps=10, num_episodes=1)
    with pytest.raises(ValueError):
        collect.CollectConfig("NotAGame", num_steps=10)
    with pytest.raises(ValueError, match="unknown policy"):
        collect.CollectConfig("Pong", num_steps=10, policy="greedy")
