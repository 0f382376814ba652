"""kill -9 of a single-process pretraining run at seeded random moments, then `--resume`.

After every kill: the newest complete checkpoint loads, its parameters are finite, no
unfinished write is taken for it, and at most `checkpoint_every` logged steps are lost.  Each
resumed run is killed again; the last one finishes, and its first step is exactly one Adam
update of the checkpoint it resumed from.  The learner log stays strictly increasing.

Default: 2 kill points.  `--reliability-sweep N`: N kill points (a longer chain).
"""

import json
import random
import subprocess
import time

import pytest

from scaled_ql.runners import PretrainConfig, run_pretrain
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.reliability import faults
from tests.reliability.harness import (
    all_finite,
    assert_one_adam_step_from,
    checkpoint_steps,
    kill9,
    logged_steps,
    pretrain_command,
    restore,
    torn_tail,
    unfinished_writes,
    wait_for,
)

CHECKPOINT_EVERY = 3
DEFAULT_KILLS = 2


def _final_config(data_dir, run_dir, steps):
    """The killed runs' configuration, finishing at `steps` with a checkpoint every step."""
    return PretrainConfig(
        games=TRAINING_GAMES, data_dir=data_dir, out_dir=str(run_dir), steps=steps,
        agent=tiny_agent_config(), shuffle_buffer=200, eval_episodes=1,
        eval_max_episode_frames=200, eval_workers=0, checkpoint_every=1, progress=False,
        run_name="scaled_ql-nature", method="scaled_ql")


def kill_resume_chain(data_dir: str, run_dir, kills: int, seed: int) -> list[dict]:
    """Starts a run, kills it `kills` times (resuming after each), checks each kill; returns
    one record per kill."""
    rng = random.Random(seed)
    records, previous, dropped_rows = [], None, 0
    for index in range(kills):
        resume = ["--resume"] if index else []
        command = pretrain_command(data_dir, run_dir, 100_000, CHECKPOINT_EVERY, *resume)
        log = open(run_dir.parent / f"run{index}.log", "w")  # noqa: SIM115
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            # A random moment after this run has written a checkpoint of its own.
            wait_for(lambda: max(checkpoint_steps(run_dir), default=-1) > (previous or 0), 240,
                     "new checkpoint", process)
            startup = time.monotonic() - started
            delay = rng.uniform(0.0, 2.0)
            time.sleep(delay)
            kill9(process.pid)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        assert process.returncode == -9, (run_dir.parent / f"run{index}.log").read_text()[-2000:]

        # What the kill left: read before anything opens the directory with orbax.
        torn = unfinished_writes(run_dir)
        steps = logged_steps(run_dir)
        # Every step once, in order: the resumed run cut the log back to its checkpoint and
        # continued right after it.
        assert steps == list(range(1, max(steps) + 1)), steps
        state, meta = restore(run_dir)  # the latest complete checkpoint
        latest = meta.step
        assert latest == int(state.step) == checkpoint_steps(run_dir)[-1]
        assert previous is None or latest > previous
        assert all_finite(state.params) and all_finite(state.opt_state)
        assert meta.extra["data_seed"] == (previous or 0)  # seed 0 + the step resumed from
        assert meta.extra["resumed_from_step"] == (previous or 0)
        assert meta.rng_key is not None and list(meta.rng_key) == state.rng_key.tolist()
        lost = max(steps) - latest
        assert 0 <= lost <= CHECKPOINT_EVERY, (steps[-5:], latest)
        if previous is not None:  # this run said where it resumed, and what it cut
            output = (run_dir.parent / f"run{index}.log").read_text().splitlines()
            (line,) = [x for x in output if x.startswith("resuming ")]
            faults.check("kill9_single_process", line, run_dir=run_dir, step=previous,
                         rows=dropped_rows)
        dropped_rows = lost + torn_tail(run_dir)  # what the next resume must cut
        records.append({"kill": index, "first_checkpoint_s": round(startup, 1),
                        "delay_s": round(delay, 3), "latest": latest,
                        "last_logged": max(steps), "steps_lost": lost,
                        "killed_mid_write": bool(torn)})
        previous = latest

    # The last resume finishes: its first update starts from the last complete checkpoint.
    saved, _ = restore(run_dir, previous)
    summary = run_pretrain(_final_config(data_dir, run_dir, previous + 2), resume=True)
    assert summary.step == previous + 2 and summary.stopped_by_signal is None
    resumed, _ = restore(run_dir, previous + 1)
    config = tiny_agent_config()
    assert_one_adam_step_from(saved, resumed, learning_rate=config.learning_rate,
                              eps=config.adam_eps)
    steps = logged_steps(run_dir)
    assert steps == list(range(1, previous + 3))  # every step once, in order, across all runs
    assert not unfinished_writes(run_dir)  # leftovers of killed writes were cleaned up
    return records


def _report(records, label):
    lost = max(r["steps_lost"] for r in records)
    mid_write = sum(r["killed_mid_write"] for r in records)
    print(f"\n{label}: {len(records)} kill -9 survived, at most {lost} step(s) lost "
          f"(checkpoint every {CHECKPOINT_EVERY}), {mid_write} kill(s) during a checkpoint "
          f"write\n{json.dumps(records)}")


@pytest.mark.slow
@pytest.mark.integration
def test_kill9_at_random_moments_then_resume(training_data, tmp_path, record_property):
    records = kill_resume_chain(training_data, tmp_path / "run", DEFAULT_KILLS, seed=20240)
    assert len(records) == DEFAULT_KILLS
    record_property("kills", records)
    _report(records, "single-process")


@pytest.mark.slow
@pytest.mark.integration
def test_kill9_sweep(training_data, tmp_path, reliability_sweep, record_property):
    if not reliability_sweep:
        pytest.skip("long sweep: run with --reliability-sweep N")
    records = kill_resume_chain(training_data, tmp_path / "run", reliability_sweep, seed=7)
    assert len(records) == reliability_sweep
    record_property("kills", records)
    _report(records, "single-process sweep")
