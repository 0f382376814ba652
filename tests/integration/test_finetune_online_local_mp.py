"""Online fine-tuning for real: `scaled-ql finetune-online --launch local_mp`, one process per
node, real ALE (Breakout mode 4, difficulty 1), real Reverb with a sample-to-insert limiter,
a few hundred environment steps.  Every process started inherits SCALED_QL_TEST_TOKEN; after
the run none may be left."""

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.processes import processes_with_token

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], timeout: float):
    token = uuid.uuid4().hex
    env = dict(os.environ, SCALED_QL_TEST_TOKEN=token, JAX_PLATFORMS="cpu")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "scaled_ql.cli", "finetune-online", *args],
                                cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=timeout)
    finally:
        time.sleep(1.0)
        leftovers = processes_with_token(token)
        for process in leftovers:
            process.kill()
    return result, leftovers, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.integration
def test_local_mp_online_finetuning_collects_learns_evaluates_and_exits(
        pong_breakout_pretrained, training_data, tmp_path):
    out = tmp_path / "online"
    env_steps = 300
    result, leftovers, wall = _run(
        ["--checkpoint", pong_breakout_pretrained, "--game", "Breakout", "--mode", "4",
         "--difficulty", "1", "--env-steps", str(env_steps), "--out", str(out),
         "--launch", "local_mp",
         "--timeout", "240", "--replay-min-size", "64", "--replay-size", "2000",
         "--samples-per-insert", "2", "--variable-update-period", "20", "--eval-every", "10",
         "--eval-episodes", "1", "--eval-max-frames", "400", "--eval-workers", "0",
         "--checkpoint-every", "10", "--actor-max-frames", "2000",
         # Mix in the base game's offline data: a quarter of each batch.
         "--offline-data", training_data, "--offline-ratio", "0.25"], timeout=300)
    log = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, log
    assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"
    # Captured (not a terminal): node lines are prefixed in plain text, no ANSI colour codes;
    # the launcher still found the node processes it watches; the summary printed once.
    output = result.stdout + result.stderr
    assert "\x1b[" not in output, log
    # Quiet by default (no --verbose): no Reverb C++ logs, courier "Binding" INFO lines, or
    # Launchpad's stop countdown, from the nodes or the launcher.
    for noise in ("[reverb/cc/", "] Binding: ", "Waiting for workers to stop"):
        assert noise not in output, log
    assert "no node processes found" not in output, log
    assert result.stdout.count("IQM human-normalized at step") == 1, log

    stats = json.loads((out / "online_stats.json").read_text())
    online = stats["tables"]["transitions/Breakout/online"]
    offline = stats["tables"]["transitions/Breakout"]
    assert env_steps <= stats["env_steps"] <= env_steps + 1, stats
    assert online["inserts"] >= env_steps - 1, stats  # every step's transition reached Reverb
    assert online["samples"] > 0 and offline["inserts"] > 0 and offline["samples"] > 0, stats
    assert stats["learner_steps"] >= 1

    results = json.loads((out / "eval_results.json").read_text())
    steps = [e["step"] for e in results["evaluations"]]
    assert steps[0] == 0 and steps[-1] == stats["learner_steps"], steps
    with open(out / "learning_curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == steps
    assert int(rows[-1]["env_steps"]) == stats["env_steps"]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == stats["learner_steps"]
    assert "Breakout" in summary["mean_returns"]
    learner_log = (out / "logs" / "learner.csv").read_text().splitlines()
    assert len(learner_log) == stats["learner_steps"] + 1  # header + one row per update
    checkpoints = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert checkpoints[-1] == stats["learner_steps"]
    print(f"local_mp online fine-tuning: {wall:.1f} s, {stats['learner_steps']} learner steps")


@pytest.mark.slow
@pytest.mark.integration
def test_invalid_variant_is_a_clear_cli_error(pong_breakout_pretrained, tmp_path):
    result, leftovers, _ = _run(["--checkpoint", pong_breakout_pretrained, "--game", "Breakout",
                                 "--mode", "3", "--env-steps", "10", "--out", str(tmp_path / "x")],
                                timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Breakout has no --mode 3; valid mode values for Breakout: 0, 4, 8" in result.stderr
    assert not leftovers
