"""Node failures of the real pretraining program (Launchpad `local_mp`, Reverb, ALE, RLDS).

Default: the learner node's process is killed (SIGKILL) at a seeded random moment after its
first checkpoint; the launch must stop every node, exit 1 naming the node, and leave a
checkpoint that `--resume` continues from (here resumed by the single-process runner, which
reads the same run directory).

With `--reliability-sweep N`: the program is resumed as a `local_mp` program, which continues
from the checkpoint, and then an evaluator node is killed mid-run: the documented behaviour is
that the whole program stops with exit 1 naming the evaluator, keeping checkpoints and the
evaluation rounds already recorded.
"""

import json
import os
import random
import subprocess
import sys
import time
import uuid

import pytest

from scaled_ql.evaluation import read_results
from scaled_ql.runners import PretrainConfig, run_pretrain
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.integration.processes import TOKEN_VARIABLE, processes_with_token
from tests.reliability import faults
from tests.reliability.harness import (
    REPO,
    all_finite,
    assert_one_adam_step_from,
    checkpoint_steps,
    kill9,
    logged_steps,
    node_pid,
    restore,
    wait_for,
)

CHECKPOINT_EVERY = 5

# The launcher `scaled-ql pretrain --launch local_mp` calls, on the tiny agent of the tests.
DRIVER = """
import json, sys
from scaled_ql.launchpad_programs import launch
from scaled_ql.runners import PretrainConfig
from tests.conftest import TRAINING_GAMES, tiny_agent_config

spec = json.loads(sys.argv[1])
config = PretrainConfig(games=TRAINING_GAMES, agent=tiny_agent_config(), **spec.pop("config"))
sys.exit(launch(config, launch_type="local_mp", **spec))
"""


def _run_config(data_dir, run_dir, **overrides) -> dict:
    """PretrainConfig fields shared by the program and the single-process resume."""
    return {**dict(data_dir=data_dir, out_dir=str(run_dir), steps=100_000, eval_episodes=1,
                   eval_max_episode_frames=200, eval_workers=0,
                   checkpoint_every=CHECKPOINT_EVERY, shuffle_buffer=200, progress=False,
                   run_name="lp-reliability"), **overrides}


class Launch:
    """One `local_mp` launch in a subprocess, with an env token to find what it started."""

    def __init__(self, tmp_path, name: str, config: dict, resume: bool = False,
                 num_evaluators: int = 1):
        self.token = uuid.uuid4().hex
        self.log_path = tmp_path / f"{name}.log"
        spec = dict(config=config, resume=resume, num_feeders=1, num_evaluators=num_evaluators,
                    replay_min_size=64, replay_max_size=2000, sampler_timeout_ms=60_000,
                    timeout_s=400)
        env = dict(os.environ, JAX_PLATFORMS="cpu", **{TOKEN_VARIABLE: self.token})
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)],
                                        cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def finish(self, timeout: float = 180) -> tuple[int, str, list]:
        """Waits for the launcher; returns (exit code, output, processes left behind)."""
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._log.close()
            time.sleep(1.0)  # processes killed at the very end need a moment to disappear
            leftovers = processes_with_token(self.token)
            for process in leftovers:
                process.kill()
        return self.process.returncode, self.log_path.read_text(), leftovers


def _failure_line(output: str) -> str:
    """The launcher's failure line.  Nodes share its output file, so the line may start after
    a node's unterminated output; nothing follows it (it is printed once every node stopped)."""
    marker = "[scaled-ql] launch failed"
    assert output.count(marker) == 1, output[-3000:]
    return output[output.index(marker):].splitlines()[0]


def _kill_node_and_check(launch: Launch, run_dir, title: str, row: str, *, after, seed: int):
    """Kills node `title` at a random moment once `after()` holds; checks the launch's end and
    the checkpoint it leaves.  Returns (latest checkpoint step, steps lost)."""
    wait_for(after, 300, f"the moment to kill {title}", launch.process, poll=0.2)
    time.sleep(random.Random(seed).uniform(0.0, 2.0))
    kill9(node_pid(launch.process.pid, title))
    code, output, leftovers = launch.finish()
    assert code == 1, output[-3000:]
    faults.check(row, _failure_line(output))
    assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"
    steps = logged_steps(run_dir)
    assert steps == list(range(1, max(steps) + 1)), steps  # each step once, in order
    state, meta = restore(run_dir)
    assert meta.step == int(state.step) == checkpoint_steps(run_dir)[-1]
    assert all_finite(state.params) and all_finite(state.opt_state)
    lost = max(steps) - meta.step
    assert 0 <= lost <= CHECKPOINT_EVERY, (steps[-8:], meta.step)
    return meta.step, lost


def _resume_single_process(data_dir, run_dir, latest: int) -> None:
    """Two steps more with the single-process runner; its first must be one Adam step from
    the checkpoint the killed program left."""
    saved, _ = restore(run_dir, latest)
    config = PretrainConfig(games=TRAINING_GAMES, agent=tiny_agent_config(),
                            **_run_config(data_dir, run_dir, steps=latest + 2, checkpoint_every=1))
    summary = run_pretrain(config, resume=True)
    assert summary.step == latest + 2
    resumed, _ = restore(run_dir, latest + 1)
    agent = tiny_agent_config()
    assert_one_adam_step_from(saved, resumed, learning_rate=agent.learning_rate,
                              eps=agent.adam_eps)
    assert logged_steps(run_dir) == list(range(1, latest + 3))


@pytest.mark.slow
@pytest.mark.integration
def test_learner_node_killed_then_resume(training_data, tmp_path):
    run_dir = tmp_path / "run"
    # No evaluator node: one process fewer to start on a small machine.
    launch = Launch(tmp_path, "launch", _run_config(training_data, run_dir), num_evaluators=0)
    latest, lost = _kill_node_and_check(
        launch, run_dir, "learner/0", "learner_node_killed",
        after=lambda: checkpoint_steps(run_dir), seed=11)
    print(f"\nlocal_mp learner kill -9 survived: checkpoint {latest}, {lost} step(s) lost "
          f"(checkpoint every {CHECKPOINT_EVERY})")
    _resume_single_process(training_data, run_dir, latest)


@pytest.mark.slow
@pytest.mark.integration
def test_local_mp_resume_then_evaluator_killed(training_data, tmp_path, reliability_sweep):
    if not reliability_sweep:
        pytest.skip("a second local_mp launch: run with --reliability-sweep N")
    run_dir = tmp_path / "run"
    config = _run_config(training_data, run_dir, eval_every=20)
    first, _ = _kill_node_and_check(
        Launch(tmp_path, "first", config), run_dir, "learner/0", "learner_node_killed",
        after=lambda: max(checkpoint_steps(run_dir), default=0) >= 20, seed=12)

    # The program resumed as a program continues from the checkpoint ...
    launch = Launch(tmp_path, "resumed", config, resume=True)
    results = run_dir / "eval_results.json"
    rounds_before = len(read_results(run_dir).evaluations) if results.exists() else 0

    def resumed_and_evaluating():
        return (max(checkpoint_steps(run_dir), default=0) > first and results.exists()
                and len(read_results(run_dir).evaluations) > rounds_before)

    # ... and when its evaluator dies, the whole program stops, naming it.
    latest, _ = _kill_node_and_check(launch, run_dir, "evaluator/0", "evaluator_node_killed",
                                     after=resumed_and_evaluating, seed=13)
    assert latest > first
    output = launch.log_path.read_text()
    assert f"from the checkpoint at step {first}" in output
    recorded = [e.step for e in read_results(run_dir).evaluations]
    assert recorded == sorted(recorded) and recorded[-1] > first  # rounds kept, in order
    _resume_single_process(training_data, run_dir, latest)
