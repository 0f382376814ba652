"""A pretraining run stopped by SIGTERM keeps its last checkpoint, and --resume continues it:
step counter monotone, parameters and optimizer state carried over."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.networks import make_networks
from scaled_ql.runners import PretrainConfig, run_pretrain
from tests.conftest import TRAINING_GAMES, tiny_agent_config

TINY_FLAGS = ["--torso", "nature", "--feed-forward-size", "64", "--num-groups", "8",
              "--batch-size", "16", "--target-update-period", "10"]


def _config(data_dir, out_dir, steps):
    return PretrainConfig(
        games=TRAINING_GAMES, data_dir=data_dir, out_dir=str(out_dir), steps=steps,
        agent=tiny_agent_config(), shuffle_buffer=200, eval_episodes=1,
        eval_max_episode_frames=400, eval_workers=0, checkpoint_every=1, log_every=1,
        progress=False, run_name="scaled_ql-nature", method="scaled_ql")


def _checkpoint_steps(run_dir) -> list[int]:
    """Steps of the complete checkpoints on disk (orbax names them by step)."""
    return [int(p.name) for p in (Path(run_dir) / "checkpoints").glob("[0-9]*") if p.name.isdigit()]


def _restore(run_dir, step, num_actions=(6, 4)):
    config = tiny_agent_config()
    networks = make_networks(config.network, num_actions)
    template = init_training_state(networks, config, jax.random.PRNGKey(1))
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    state, _ = checkpointer.restore(template, games=TRAINING_GAMES, num_actions=num_actions,
                                    step=step)
    checkpointer.close()
    return state, template


def _distance(a, b):
    return float(np.sqrt(sum(np.sum((np.asarray(x) - np.asarray(y)) ** 2) for x, y in zip(
        jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))))


def _adam_count(state):
    counts = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(state.opt_state)
              if "count" in jax.tree_util.keystr(path)]
    assert len(counts) == 1
    return int(counts[0])


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_then_resume_continues_from_the_checkpoint(training_data, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "scaled_ql.cli", "pretrain", "--data", training_data,
               "--games", ",".join(TRAINING_GAMES), "--steps", "100000", "--out", str(run_dir),
               "--checkpoint-every", "3", "--shuffle-buffer", "200", "--no-progress",
               "--eval-episodes", "1", "--eval-max-frames", "400", *TINY_FLAGS]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        deadline = time.time() + 240
        while max(_checkpoint_steps(run_dir), default=0) < 6:
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.time() < deadline, "no checkpoint >= 6 within 240 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "stopped by SIGTERM at step" in output and "continue with --resume" in output
    assert "Traceback" not in output

    checkpointer = Checkpointer(run_dir / "checkpoints")
    stopped_at = checkpointer.latest_step()
    checkpointer.close()
    assert stopped_at >= 6  # the final checkpoint written on SIGTERM, at the step it stopped
    saved, fresh = _restore(run_dir, stopped_at)

    with pytest.raises(FileExistsError, match="--resume"):
        run_pretrain(_config(training_data, run_dir, stopped_at + 2))
    summary = run_pretrain(_config(training_data, run_dir, stopped_at + 2), resume=True)
    assert summary.step == stopped_at + 2 and summary.stopped_by_signal is None
    resumed, _ = _restore(run_dir, stopped_at + 1)

    # One Adam step away from the checkpoint, not from a fresh initialisation.
    assert _distance(resumed.params, saved.params) < 0.01 * _distance(fresh.params, saved.params)
    assert _adam_count(resumed) == _adam_count(saved) + 1 == stopped_at + 1
    assert int(resumed.step) == stopped_at + 1

    with open(run_dir / "logs" / "learner.csv") as f:
        steps = [int(float(row["step"])) for row in csv.DictReader(f)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # monotone, no repeats
    assert steps[-2:] == [stopped_at + 1, stopped_at + 2]
    assert (run_dir / "eval_results.json").exists() and (run_dir / "summary.md").exists()
