"""`scaled-ql collect --policy checkpoint`: real ALE play logged with a saved network's head."""

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql.actor import CheckpointPolicy, make_policy
from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.cli import main
from scaled_ql.datasets import open_run
from scaled_ql.networks import make_networks
from tests.conftest import TRAINING_GAMES, tiny_agent_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_agent_config()
    networks = make_networks(config.network, (6, 4))
    state = init_training_state(networks, config, jax.random.PRNGKey(5))
    checkpointer = Checkpointer(run_dir / "checkpoints")
    checkpointer.save(state, games=TRAINING_GAMES, num_actions=(6, 4), config=config)
    checkpointer.close()
    return run_dir, networks, jax.device_get(state.params)


def _stacks(frames: np.ndarray) -> np.ndarray:
    """[T, 84, 84, 1] frames -> [T, 84, 84, 4] observations, zero-padded before the start."""
    padded = np.concatenate([np.zeros((3, 84, 84, 1), np.uint8), frames])
    return np.concatenate([padded[i:i + len(frames)] for i in range(4)], axis=-1)


def test_greedy_checkpoint_policy_logs_the_heads_argmax(run_dir, tmp_path):
    run_dir, networks, params = run_dir
    out = tmp_path / "data"
    assert main(["collect", "--games", "Breakout", "--steps", "60", "--policy", "checkpoint",
                 "--checkpoint", str(run_dir), "--epsilon", "0", "--out", str(out),
                 "--workers", "1"]) == 0
    episodes = [list(episode["steps"].as_numpy_iterator())
                for episode in open_run("Breakout", 1, data_dir=str(out)).episodes()]
    assert sum(len(steps) - 1 for steps in episodes) == 60
    greedy = jax.jit(make_policy(networks, TRAINING_GAMES.index("Breakout"), 0.0))
    for steps in episodes:
        frames = np.stack([s["observation"] for s in steps])
        actions = np.asarray([s["action"] for s in steps])[:-1]  # the last step has no action
        expected = np.asarray(greedy(params, jax.random.PRNGKey(0), _stacks(frames)))[:-1]
        np.testing.assert_array_equal(actions, expected)


def test_a_game_without_a_head_is_refused(run_dir):
    with pytest.raises(ValueError, match="no head for Seaquest"):
        CheckpointPolicy(18, 0, checkpoint=str(run_dir[0]), game="Seaquest")


def test_checkpoint_policy_needs_a_checkpoint(tmp_path, capsys):
    assert main(["collect", "--games", "Pong", "--steps", "10", "--policy", "checkpoint",
                 "--out", str(tmp_path)]) == 2
    assert "--policy checkpoint needs --checkpoint RUN_DIR" in capsys.readouterr().err
