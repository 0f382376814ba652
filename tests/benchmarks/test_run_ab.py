"""benchmarks/run_ab.py times the study's own run: its flags are those of the study's size-M
Scaled QL at CQL 0.1 (scripts/study.py), apart from the step budget and where things go.
(Timing two whole runs takes minutes; the worktree and JSON handling it shares with
commit_ab are tested there.)"""

import pytest

from benchmarks import run_ab
from tests.conftest import load_script

PER_RUN = {"--data", "--out", "--name", "--method", "--steps", "--eval-every",
           "--checkpoint-every"}


def flags(tokens) -> dict:
    """{flag: value or True} of a command line's `--flag [value]` tokens."""
    parsed, tokens = {}, list(tokens)
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            following = tokens[i + 1] if i + 1 < len(tokens) else "--"
            parsed[token] = True if following.startswith("--") else following
    return parsed


def test_the_timed_run_is_the_studys_size_m_run(tmp_path):
    study = load_script("study")
    args = study.parse_args(["--out", str(tmp_path)])
    job = next(j for j in study.build_jobs(args, tmp_path)
               if j.label == "Scaled QL M, CQL 0.1" and j.seed == 0)
    ours = flags(run_ab.run_flags(2000, 1000))
    theirs = flags(job.command)
    assert {k: v for k, v in ours.items() if k not in PER_RUN} == {
        k: v for k, v in theirs.items() if k not in PER_RUN}
    assert ours["--steps"] == "2000" and ours["--eval-every"] == "1000"


def test_unknown_base_commit_is_a_clear_error():
    with pytest.raises(ValueError, match="--base: 'no-such-commit-xyz' is not a commit"):
        run_ab.main(["--base", "no-such-commit-xyz"])
