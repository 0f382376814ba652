"""`--resume` continues exactly the run that is there, and `--out` writes only into an empty
folder or a run of its own kind (issue 20, items 2, 3 and 10; `--no-final-eval`).

Real `scaled-ql pretrain` runs in this process (`scaled_ql.cli.main`) on a small random-policy
MinAtar Breakout dataset with the tiny MinAtar network, one evaluation episode of at most 50
steps."""

import json
import shutil

import pytest

from scaled_ql.cli import main
from scaled_ql.evaluation import read_results
from scaled_ql.runners.evaluate import load_checkpoint
from tests.reliability import faults
from tests.runners.minatar import TINY_MINATAR_FLAGS

GAME = "minatar/Breakout"


def _args(data, out, steps=2, *extra, episodes=1, frames=50):
    return ["pretrain", "--data", str(data), "--games", GAME, "--steps", str(steps),
            "--out", str(out), "--checkpoint-every", "2", "--shuffle-buffer", "50",
            "--eval-episodes", str(episodes), "--eval-max-frames", str(frames),
            "--eval-workers", "0", "--no-progress", *TINY_MINATAR_FLAGS, *extra]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A finished 2-step run: checkpoint 2, one evaluation round at step 2."""
    out = tmp_path_factory.mktemp("resume_run") / "run"
    assert main(_args(data, out)) == 0
    return out


def _rounds(run_dir) -> list[tuple[int, int]]:
    """(step, episodes) of each recorded evaluation round."""
    return [(ev.step, len(ev.episodes)) for ev in read_results(run_dir).evaluations]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("change, row, expected", [
    (dict(steps=1), "resume_fewer_steps", ""),
    (dict(episodes=3), "resume_other_protocol", ""),
    (dict(frames=60), None, "--eval-max-frames: was 50, now 60"),
])
def test_resume_refuses_settings_that_change_history(run, data, capsys, change, row, expected):
    before = (run / "config.json").read_text()
    capsys.readouterr()
    assert main(_args(data, run, change.pop("steps", 2), "--resume", **change)) == 2
    line = _error(capsys)
    if row:
        faults.check(row, line, run_dir=run)
    else:
        assert line.startswith(f"scaled-ql pretrain: error: --resume of {run} with a different "
                               "configuration: ") and expected in line, line
    assert (run / "config.json").read_text() == before  # config.json not rewritten
    assert _rounds(run) == [(2, 1)]


def test_resume_of_a_finished_run_does_not_evaluate_again(run, data, capsys):
    assert main(_args(data, run, 2, "--resume")) == 0
    assert _rounds(run) == [(2, 1)]  # the recorded round kept as it was, nothing appended
    assert "IQM" in capsys.readouterr().out


def test_resume_of_a_folder_without_a_run_is_an_error(data, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(_args(data, missing, 2, "--resume")) == 2
    faults.check("resume_no_run", _error(capsys), run_dir=missing)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_args(data, empty, 2, "--resume")) == 2
    assert "the folder holds no run (no config.json)" in _error(capsys)
    assert list(empty.iterdir()) == []


def test_a_moved_run_resumes_from_another_working_directory(run, data, tmp_path, monkeypatch,
                                                            capsys):
    moved = tmp_path / "elsewhere" / "moved_run"
    shutil.copytree(run, moved)
    # The data named by a relative path from another folder: the same data, so accepted.
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative_data = "../" * len(elsewhere.parts[1:]) + str(data).lstrip("/")
    assert main(_args(relative_data, "../elsewhere/moved_run", 4, "--resume")) == 0
    assert "from the checkpoint at step 2" in capsys.readouterr().err
    assert load_checkpoint(moved).meta.step == 4
    assert _rounds(moved) == [(2, 1), (4, 1)]
    config = json.loads((moved / "config.json").read_text())
    assert config["out_dir"] == str(moved) and config["data_dir"] == str(data)


def test_out_on_a_foreign_folder_is_refused(data, tmp_path, capsys):
    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.json").write_text('{"mine": true}')
    assert main(_args(data, report)) == 2
    faults.check("out_foreign_folder", _error(capsys), run_dir=report)
    assert [p.name for p in report.iterdir()] == ["summary.json"]
    assert (report / "summary.json").read_text() == '{"mine": true}'


def test_a_failed_start_leaves_no_half_made_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(tmp_path / "no_data", out)) == 2
    assert "no complete rlu_minatar/Breakout_run_1" in _error(capsys)
    assert not out.exists()
    faults.expect("failed_start_no_half_run")
    existing = tmp_path / "empty"
    existing.mkdir()
    assert main(_args(tmp_path / "no_data", existing)) == 2
    assert list(existing.iterdir()) == []  # the folder the user made stays, empty


def test_no_final_eval_and_no_periodic_eval_means_no_evaluation(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    # Files a run does not write (a job script's record) may sit in --out; they stay.
    (out / "job.json").write_text("{}")
    assert main(_args(data, out, 2, "--no-final-eval")) == 0
    assert (out / "job.json").read_text() == "{}"
    assert not (out / "eval_results.json").exists()
    assert load_checkpoint(out).meta.step == 2
    printed = capsys.readouterr().out
    assert printed.startswith("no evaluation: --eval-every 0 and --no-final-eval (step 2;")
    assert (out / "summary.md").read_text().startswith("no evaluation:")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_returns"] == {} and summary["evaluated_step"] is None


def test_resume_plays_an_evaluation_a_signal_dropped(data, tmp_path, capsys):
    """A signal during the evaluation at step 4 leaves checkpoint 4 and no round at step 4
    (tests/cli/test_signals.py shows that on a real process); that state is made here by
    dropping the recorded round, and --resume plays it before training on."""
    import dataclasses

    from scaled_ql.evaluation import write_results

    out = tmp_path / "run"
    assert main(_args(data, out, 4, "--eval-every", "2")) == 0
    results = read_results(out)
    write_results(out, dataclasses.replace(results, evaluations=results.evaluations[:1]))
    assert _rounds(out) == [(2, 1)]
    assert main(_args(data, out, 6, "--eval-every", "2", "--resume")) == 0
    assert _rounds(out) == [(2, 1), (4, 1), (6, 1)]  # each round once, whole
    assert "IQM" in capsys.readouterr().out


def test_a_run_that_never_reached_a_checkpoint_starts_over(data, tmp_path):
    """What a run killed (-9) before its first checkpoint leaves: config.json and a learner
    log; the same command without --resume starts over instead of appending to that log."""
    out = tmp_path / "run"
    assert main(_args(data, out, 2)) == 0
    shutil.rmtree(out / "checkpoints")
    (out / "eval_results.json").unlink()
    assert main(_args(data, out, 2)) == 0
    log = (out / "logs" / "learner.csv").read_text().splitlines()
    assert len(log) == 3  # the header and steps 1-2 of this run, none of the earlier one
    assert _rounds(out) == [(2, 1)]
