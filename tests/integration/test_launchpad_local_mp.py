"""A real Launchpad program in separate processes (local_mp) exits 0 and leaves nothing behind."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.processes import processes_with_token

PROGRAM = Path(__file__).with_name("launchpad_smoke_program.py")


@pytest.mark.slow
@pytest.mark.integration
def test_reverb_and_courier_nodes_insert_sample_and_stop(tmp_path):
    out = tmp_path / "sampled.json"
    token = uuid.uuid4().hex  # inherited by every node process: finds leftovers afterwards
    env = dict(os.environ, SCALED_QL_TEST_TOKEN=token)
    try:
        result = subprocess.run(
            [sys.executable, str(PROGRAM), str(out)],
            env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        leftovers = processes_with_token(token)
        for process in leftovers:
            process.kill()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"

    report = json.loads(out.read_text())
    assert report["table_size"] == 20
    assert len(report["sampled"]) == 50
    assert set(report["sampled"]) <= set(range(20))
    assert len(set(report["sampled"])) > 1  # uniform sampling over 20 items, 50 draws
    assert report["pid"] != os.getpid()  # the producer ran in its own process
