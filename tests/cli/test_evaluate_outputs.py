"""`scaled-ql evaluate` on a tiny MinAtar checkpoint: what it records and refuses.

Episodes cut off by `--max-frames` are recorded as truncated and marked in the printed table
and in `scaled-ql report`; a checkpoint folder is accepted as `--checkpoint`; `--step` is the
old name of `--checkpoint-step`; an existing results file is not overwritten silently; the file
has the user's permissions.
"""

import json
import os
import stat

import pytest

from scaled_ql.cli import main
from tests.cli.tiny_run import save_tiny_run
from tests.reliability import faults

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CAP = 3  # MinAtar frames (steps): no Breakout game ends this soon
QUICK = ["--episodes", "2", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with checkpoints at steps 12 and 20 of a tiny MinAtar network."""
    return save_tiny_run(tmp_path_factory.mktemp("evaluate") / "run", (12, 20), "tiny")


def evaluate(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cut_off_episodes_are_recorded_and_marked(run_dir, tmp_path, capsys):
    out = tmp_path / "cut.json"
    code, printed, _ = evaluate(capsys, "--checkpoint", run_dir, "--max-frames", CAP,
                                "--out", out, *QUICK)
    assert code == 0
    episodes = json.loads(out.read_text())["evaluations"][0]["episodes"]
    assert [(e["frames"], e["truncated"]) for e in episodes] == [(CAP, True)] * 2
    assert "| minatar/Breakout† |" in printed
    (line,) = [line for line in printed.splitlines() if line.startswith("† ")]
    faults.check("truncated_evaluation", line, cut=2, total=2, frames=CAP,
                 games="minatar/Breakout")

    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--reps", "50"]) == 0
    markdown = (report / "report.md").read_text()
    assert f"- † tiny: 2 of 2 episodes at the final step cut at {CAP} frames" in markdown
    assert "| minatar/Breakout | " in markdown and ")† |" in markdown


def test_a_checkpoint_folder_and_the_old_step_flag(run_dir, capsys):
    code, printed, _ = evaluate(capsys, "--checkpoint", run_dir / "checkpoints" / "12",
                                "--max-frames", CAP, *QUICK)
    assert code == 0
    written = run_dir / "evaluate_step12.json"  # beside the run, not inside the checkpoint
    assert printed.strip().endswith(f"per-episode returns: {written}")
    assert json.loads(written.read_text())["evaluations"][0]["step"] == 12
    code, _, err = evaluate(capsys, "--checkpoint", run_dir / "checkpoints", "--step", 12,
                            "--max-frames", CAP, *QUICK)  # --step: the old name
    assert code == 2 and "evaluate_step12.json exists" in err
    code, _, err = evaluate(capsys, "--checkpoint", run_dir / "checkpoints" / "12",
                            "--checkpoint-step", 20, *QUICK)
    assert code == 2
    faults.check("checkpoint_folder_as_run", err.strip(), path=run_dir / "checkpoints" / "12",
                 step=12, other=20, run_dir=run_dir)


def test_an_existing_results_file_needs_overwrite(run_dir, tmp_path, capsys):
    out = tmp_path / "e.json"
    previous = os.umask(0o022)
    try:
        argv = ["--checkpoint", run_dir, "--checkpoint-step", 20, "--max-frames", CAP,
                "--out", out, *QUICK]
        assert evaluate(capsys, *argv)[0] == 0
        first = out.read_text()
        code, _, err = evaluate(capsys, *argv)
        assert code == 2 and err.endswith("\n") and err.count("\n") == 1
        faults.check("evaluate_existing_out", err.strip(), out=out)
        assert out.read_text() == first
        assert evaluate(capsys, *argv, "--overwrite")[0] == 0
    finally:
        os.umask(previous)
    (evaluation,) = json.loads(out.read_text())["evaluations"]  # replaced, not appended
    assert len(evaluation["episodes"]) == 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json"]  # no lock or temp file


def test_a_folder_that_is_not_a_run_says_what_to_pass(tmp_path, capsys):
    code, _, err = evaluate(capsys, "--checkpoint", tmp_path, *QUICK)
    assert code == 2
    assert f"{tmp_path} has no checkpoints/ folder: is it a run directory? Pass the folder " \
           "of a run (the one holding checkpoints/ and config.json) or one of its " \
           "checkpoints (RUN/checkpoints/STEP)" in err


def test_library_functions_take_a_checkpoint_folder_too(run_dir):
    """`read_run_meta` and `load_checkpoint` (the fine-tuning commands read checkpoints through
    them) take RUN, RUN/checkpoints and RUN/checkpoints/STEP alike."""
    from scaled_ql.agents.scaled_ql.checkpointing import read_run_meta, run_and_step

    assert run_and_step(run_dir) == (run_dir, None)
    assert run_and_step(run_dir / "checkpoints", 12) == (run_dir, 12)
    assert run_and_step(run_dir / "checkpoints" / "20") == (run_dir, 20)
    assert run_and_step(str(run_dir / "checkpoints" / "20"), 20) == (run_dir, 20)
    meta, where = read_run_meta(run_dir / "checkpoints" / "12")
    assert meta.step == 12 and where.endswith("checkpoints/12")
    assert read_run_meta(run_dir)[0].step == 20  # the latest
    with pytest.raises(ValueError, match="checkpoint of step 20, but checkpoint_step 12"):
        run_and_step(run_dir / "checkpoints" / "20", 12)
