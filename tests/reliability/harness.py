"""Helpers of the reliability suite: run, kill and inspect real training runs.

The runs are the real thing at a tiny size: `scaled-ql pretrain` in a subprocess (or the
Launchpad `local_mp` program) on real RLDS data collected from ALE, orbax checkpoints on disk.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.networks import make_networks
from tests.conftest import TRAINING_GAMES, tiny_agent_config

REPO = Path(__file__).resolve().parents[2]
NUM_ACTIONS = (6, 4)  # Pong, Breakout minimal action sets
TINY_FLAGS = ["--torso", "nature", "--feed-forward-size", "64", "--num-groups", "8",
              "--batch-size", "16", "--target-update-period", "10"]
QUICK_EVAL_FLAGS = ["--eval-episodes", "1", "--eval-max-frames", "200", "--eval-workers", "0"]
TMP_MARK = ".orbax-checkpoint-tmp-"


def pretrain_command(data_dir: str, run_dir: Path, steps: int, checkpoint_every: int,
                     *extra: str) -> list[str]:
    """`scaled-ql pretrain` of the tiny network on Pong+Breakout, as a subprocess argv."""
    return [sys.executable, "-m", "scaled_ql.cli", "pretrain", "--data", data_dir,
            "--games", ",".join(TRAINING_GAMES), "--steps", str(steps), "--out", str(run_dir),
            "--checkpoint-every", str(checkpoint_every), "--shuffle-buffer", "200",
            "--no-progress", *TINY_FLAGS, *QUICK_EVAL_FLAGS, *extra]


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints on disk (orbax names each folder by its step)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def unfinished_writes(run_dir: Path) -> list[str]:
    """Temporary folders of checkpoint writes that never completed (read without orbax, which
    would delete them)."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name) if folder.is_dir() else []


def logged_steps(run_dir: Path) -> list[int]:
    """The `step` column of logs/learner.csv, complete rows only (a killed run may leave a torn
    last line)."""
    path = Path(run_dir) / "logs" / "learner.csv"
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the part after the last newline may be torn
    if not lines:
        return []
    rows = list(csv.reader(lines))
    column = rows[0].index("step")
    return [int(float(row[column])) for row in rows[1:] if len(row) == len(rows[0])]


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None,
             poll: float = 0.1):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds or if
    `process` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(poll)


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def restore(run_dir: Path, step: int | None = None):
    """(TrainingState, CheckpointMeta) of a checkpoint of a tiny Pong+Breakout run."""
    config = tiny_agent_config()
    networks = make_networks(config.network, NUM_ACTIONS)
    template = init_training_state(networks, config, jax.random.PRNGKey(123))
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        return checkpointer.restore(template, games=TRAINING_GAMES, num_actions=NUM_ACTIONS,
                                    step=step)
    finally:
        checkpointer.close()


def all_finite(tree) -> bool:
    return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(tree))


def _adam_parts(state):
    """(count, mu, nu) of the Adam state inside `optax.chain(clip, adam)`."""
    parts = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state.opt_state):
        key = jax.tree_util.keystr(path)
        for name in ("count", "mu", "nu"):
            if f".{name}" in key:
                parts.setdefault(name, []).append((key, np.asarray(leaf)))
    (count,) = [leaf for _, leaf in parts["count"]]
    ordered = {name: [leaf for _, leaf in sorted(parts[name], key=lambda kv: kv[0])]
               for name in ("mu", "nu")}
    return int(count), ordered["mu"], ordered["nu"]


def assert_one_adam_step_from(before, after, *, learning_rate: float, eps: float,
                              b1: float = 0.9, b2: float = 0.999) -> None:
    """`after` is exactly one Adam update of `before`: same parameters, optimizer moments and
    step counter carried over, not a fresh or another state.

    From the stored moments of `after` the Adam rule gives the parameter change exactly;
    the gradient recovered from the first moment must also explain the second moment.
    """
    assert int(after.step) == int(before.step) + 1
    count0, mu0, nu0 = _adam_parts(before)
    count1, mu1, nu1 = _adam_parts(after)
    assert count1 == count0 + 1, (count0, count1)
    params0 = [np.asarray(x) for x in sorted_leaves(before.params)]
    params1 = [np.asarray(x) for x in sorted_leaves(after.params)]
    assert len(params0) == len(mu1) == len(nu1)
    for p0, p1, m, v in zip(params0, params1, mu1, nu1):
        m_hat = m / (1 - b1 ** count1)
        v_hat = v / (1 - b2 ** count1)
        expected = p0 - learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(p1, expected, rtol=1e-4, atol=3e-7)
    # The gradient of this step, twice: g from the first moment, g^2 from the second.
    g = np.concatenate([((m1 - b1 * m0) / (1 - b1)).ravel() for m0, m1 in zip(mu0, mu1)])
    g2 = np.concatenate([((v1 - b2 * v0) / (1 - b2)).ravel() for v0, v1 in zip(nu0, nu1)])
    assert np.linalg.norm(g2 - g ** 2) <= 0.05 * np.linalg.norm(g ** 2) + 1e-12


def sorted_leaves(tree):
    """Leaves ordered by their key path (the order `_adam_parts` uses for the moments)."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return [leaf for _, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0]))]


def torn_tail(run_dir: Path) -> int:
    """1 if logs/learner.csv ends in a torn (unterminated) row, else 0."""
    path = Path(run_dir) / "logs" / "learner.csv"
    text = path.read_text() if path.exists() else ""
    return int(bool(text) and not text.endswith("\n"))


def node_pid(launcher_pid: int, title: str, timeout: float = 120) -> int:
    """The pid of the Python process running Launchpad node `title` (e.g. 'learner/0') under
    a `local_mp` launcher: each node runs as `decorate_output COLOUR TITLE python
    process_entry.py ...`, the node's Python being that wrapper's child."""
    import psutil

    from scaled_ql.launchpad_programs import node_output

    def find():
        for wrapper in psutil.Process(launcher_pid).children():
            try:
                cmdline = wrapper.cmdline()
                names = [os.path.basename(part) for part in cmdline]
                # Launchpad's colour wrapper, or node_output's plain one (stdout not a TTY).
                titles = [cmdline[names.index(wrapper) + offset]
                          for wrapper, offset in (("decorate_output", 2),
                                                  (node_output.PLAIN_OUTPUT, 1))
                          if wrapper in names]
                if title not in titles:
                    continue
                for child in wrapper.children():
                    if any("process_entry.py" in part for part in child.cmdline()):
                        return child.pid
            except (psutil.NoSuchProcess, psutil.ZombieProcess, IndexError):
                continue
        return None

    return wait_for(find, timeout, f"process of node {title}")
