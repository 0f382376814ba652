"""Checkpoint writes killed half-way are never read, and loading never unpickles."""

import _pickle
import pickle
import subprocess
import sys
import textwrap

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.reliability import faults
from tests.reliability.harness import (
    NUM_ACTIONS,
    REPO,
    checkpoint_steps,
    kill9,
    restore,
    unfinished_writes,
    wait_for,
)

# Saves step 1, then starts step 2 with orbax's final rename held up: the process is then
# killed while the step-2 write is complete on disk but not yet renamed into place.
WRITER = textwrap.dedent("""
    import os, sys, time
    import jax
    from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.networks import make_networks
    from tests.conftest import TRAINING_GAMES, tiny_agent_config

    config = tiny_agent_config()
    state = init_training_state(make_networks(config.network, (6, 4)), config,
                                jax.random.PRNGKey(0))
    checkpointer = Checkpointer(sys.argv[1])
    checkpointer.save(state._replace(step=1), games=TRAINING_GAMES, num_actions=(6, 4),
                      config=config)
    real_rename = os.rename

    def held_rename(src, dst, *args, **kwargs):
        if ".orbax-checkpoint-tmp-" in os.fspath(src):
            print("renaming", flush=True)
            time.sleep(600)
        return real_rename(src, dst, *args, **kwargs)

    os.rename = held_rename
    checkpointer.save(state._replace(step=2), games=TRAINING_GAMES, num_actions=(6, 4),
                      config=config)
""")


def test_a_write_killed_before_its_rename_is_never_the_latest(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir / "checkpoints")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "renaming"  # blocked mid-write
        kill9(process.pid)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -9
    torn = wait_for(lambda: unfinished_writes(run_dir), 5, "unfinished write")
    assert torn and all(name.startswith("2.") for name in torn)
    assert checkpoint_steps(run_dir) == [1]

    state, meta = restore(run_dir)  # the latest is the complete step 1
    assert meta.step == int(state.step) == 1
    faults.expect("kill9_mid_checkpoint_write")
    assert not unfinished_writes(run_dir)  # the next Checkpointer deleted the leftover
    checkpointer = Checkpointer(run_dir / "checkpoints")
    assert checkpointer.latest_step() == 1
    checkpointer.close()


def test_restore_never_unpickles(tmp_path, monkeypatch):
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.networks import make_networks

    config = tiny_agent_config()
    state = init_training_state(make_networks(config.network, NUM_ACTIONS), config,
                                jax.random.PRNGKey(3))
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    checkpointer.save(state, games=TRAINING_GAMES, num_actions=NUM_ACTIONS, config=config)
    checkpointer.close()

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    class RefusingUnpickler(pickle.Unpickler):
        def load(self):
            refuse()

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", RefusingUnpickler)
    monkeypatch.setattr(_pickle, "load", refuse)
    monkeypatch.setattr(_pickle, "loads", refuse)
    restored, meta = restore(tmp_path)
    faults.expect("checkpoint_no_pickle")
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert list(meta.rng_key) == np.asarray(state.rng_key).tolist()  # the RNG state recorded
    assert meta.games == TRAINING_GAMES and meta.num_actions == NUM_ACTIONS
