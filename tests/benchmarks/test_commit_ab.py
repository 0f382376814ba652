"""benchmarks/commit_ab.py: the same update step timed from a base commit's worktree and from this
tree, alternating; the JSON holds both blocks, the median ratio, and the worktree is gone."""

import json
import subprocess

import pytest

from benchmarks import commit_ab

pytestmark = pytest.mark.slow


def test_commit_ab_times_both_trees_and_cleans_up(tmp_path):
    out = tmp_path / "ab.json"
    result = commit_ab.main(["--base", "HEAD", "--blocks", "1", "--iters", "1",
                             "--batch-size", "2", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["base"] == result["base"] and len(written["blocks"]) == 1
    block = written["blocks"][0]
    for side in ("base", "current"):
        assert block[side]["samples_per_cpu_s"] > 0 and block[side]["samples_per_s"] > 0
    ratio = block["current"]["samples_per_cpu_s"] / block["base"]["samples_per_cpu_s"]
    assert written["current_over_base_cpu"] == pytest.approx(ratio)
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=commit_ab.ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert "/base " not in worktrees  # the temporary worktree was removed


def test_unknown_base_commit_is_a_clear_error():
    with pytest.raises(ValueError, match="--base: 'no-such-commit-xyz' is not a commit"):
        commit_ab.main(["--base", "no-such-commit-xyz"])
