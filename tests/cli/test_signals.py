"""SIGINT/SIGTERM sent to real `scaled-ql` processes at each moment of a run: startup (the
heavy imports), training, a periodic evaluation, the final evaluation (twice), `collect`, and
a Launchpad program (`finetune-online`, threads and processes).
Each ends within seconds with one line on stderr saying what was saved and how to continue,
exit status 128 + signal and no traceback; what the line says was saved is there and loads
(issue 20, item 1).

Every signal waits for a marker of the moment it targets (a library mapped into the process,
log rows, a checkpoint folder, an unfinished dataset folder), never for a fixed sleep.
Evaluations are made long (many episodes on minatar/Breakout) so the signal lands inside them.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from scaled_ql._quiet import QUIET_ENV
from scaled_ql.runners.evaluate import load_checkpoint
from tests.cli.tiny_run import save_tiny_run
from tests.integration.processes import TOKEN_VARIABLE, processes_with_token
from tests.reliability import faults
from tests.runners.minatar import TINY_MINATAR_FLAGS

GAME = "minatar/Breakout"
ROOT = pathlib.Path(__file__).resolve().parents[2]
PROG = "scaled-ql pretrain"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _pretrain(data, out, steps, *extra):
    return [sys.executable, "-m", "scaled_ql.cli", "pretrain", "--data", str(data), "--games",
            GAME, "--steps", str(steps), "--out", str(out), "--checkpoint-every", "2",
            "--shuffle-buffer", "50", "--no-progress", *TINY_MINATAR_FLAGS, *extra]


def _start(command, env=None) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait(process: subprocess.Popen, ready, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"ended (exit {process.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def _has_children(process: subprocess.Popen) -> bool:
    """Whether `process` has started a process of its own (gone: False)."""
    try:
        return bool(psutil.Process(process.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return False


def _stop(process: subprocess.Popen, *signums, within: float = 60) -> tuple[str, str, float]:
    """Sends the signals (0.05 s apart); (stdout, stderr, seconds until the process ended)."""
    sent = time.monotonic()
    for i, signum in enumerate(signums):
        if i:
            time.sleep(0.05)
        process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running {within} s after the signal")
    return out, err, time.monotonic() - sent


def _one_line(err: str) -> str:
    """The one line stderr holds besides progress bars (collect has one); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if "%|" not in line]
    assert len(lines) == 1, err
    return lines[0]


def _without_reverb_logs(err: str) -> str:
    """`err` less Reverb's C++ server logs: under local_mt the nodes share the command's
    stderr, and Reverb logs its server's start and end there whatever the log level."""
    return "\n".join(line for line in err.splitlines() if not line.startswith("[reverb/cc/"))


def _mapped(process: subprocess.Popen, library: str) -> bool:
    try:
        return library in pathlib.Path(f"/proc/{process.pid}/maps").read_text()
    except OSError:
        return False


def _checkpoints(run_dir: pathlib.Path) -> list[int]:
    folder = run_dir / "checkpoints"
    return sorted(int(p.name) for p in folder.glob("[0-9]*") if p.name.isdigit())


def _log_rows(run_dir: pathlib.Path) -> int:
    path = run_dir / "logs" / "learner.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_during_startup(data, tmp_path):
    out = tmp_path / "run"
    process = _start(_pretrain(data, out, 2))
    # TensorFlow's library mapped: the runner's imports (Acme, TF) are under way, seconds
    # before the first step.
    _wait(process, lambda: _mapped(process, "_pywrap_tensorflow_internal"), "the TF import")
    _, err, _ = _stop(process, signal.SIGINT)
    assert process.returncode == 130
    faults.check("signal_during_startup", _one_line(err))
    assert not out.exists()  # no half-made run


@pytest.mark.parametrize("inherited_quiet", [None, "1"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_during_the_first_imports(data, tmp_path, signum, inherited_quiet):
    out = tmp_path / "run"
    # SCALED_QL_QUIET=1 inherited (a scaled-ql started by another, or by this test process
    # once an in-process command has set it): `import scaled_ql` used to quiet the stack, gym's
    # import included, before the command had installed its handlers (failed in `make test`).
    env = {k: v for k, v in os.environ.items() if k != QUIET_ENV}
    if inherited_quiet is not None:
        env[QUIET_ENV] = inherited_quiet
    process = _start(_pretrain(data, out, 2), env=env)
    # NumPy's library mapped: `scaled-ql` is importing gym (to quiet it) or building its
    # parser, before the command runs (and before JAX is imported).  Python's default used to
    # answer there: a KeyboardInterrupt traceback, or (SIGTERM) a silent death.
    _wait(process, lambda: _mapped(process, "_multiarray_umath"), "the NumPy import")
    _, err, _ = _stop(process, signum)
    assert process.returncode == 128 + signum, err
    assert _one_line(err) == faults.message("signal_during_startup").replace(
        "SIGINT", signal.Signals(signum).name)
    assert not out.exists()


def test_during_training_then_resume(data, tmp_path):
    out = tmp_path / "run"
    process = _start(_pretrain(data, out, 100_000, "--checkpoint-every", "1000"))
    _wait(process, lambda: _log_rows(out) >= 2, "training steps")
    _, err, seconds = _stop(process, signal.SIGTERM)
    assert process.returncode == 143 and seconds < 30
    [step] = _checkpoints(out)  # the final one (none was due every 1000)
    assert step >= 2
    assert _one_line(err) == (f"{PROG}: stopped by SIGTERM at step {step}; checkpoint {step} "
                              f"saved in {out}/checkpoints; continue with --resume")
    assert load_checkpoint(out).meta.step == step


@pytest.mark.parametrize("moment", ["periodic", "final"])
def test_during_an_evaluation(data, tmp_path, moment):
    out = tmp_path / "run"
    # Hundreds of episodes in a worker process: far longer than the time the signal may take.
    evaluation = ["--eval-episodes", "400", "--eval-workers", "1"]
    steps, every = (6, "2") if moment == "periodic" else (2, "0")
    process = _start(_pretrain(data, out, steps, "--eval-every", every, *evaluation))
    # Checkpoint 2 is written before the evaluation at step 2 starts, and the evaluation's
    # worker processes are the run's first (checkpoint 2 alone let a signal on a loaded
    # machine land in the step that wrote it, before the evaluation began).
    _wait(process, lambda: _checkpoints(out) == [2] and _has_children(process),
          "checkpoint 2 and the evaluation's workers")
    signums = (signal.SIGINT,) if moment == "periodic" else (signal.SIGINT, signal.SIGINT)
    _, err, seconds = _stop(process, *signums)
    assert seconds < 30, err
    during = "the evaluation at step 2" if moment == "periodic" else "the final evaluation"
    if moment == "periodic":
        assert process.returncode == 130, err
        faults.check("signal_during_evaluation", _one_line(err), step=2, run_dir=out)
    else:
        # The second SIGINT lands somewhere in the shutdown; once the command has said how it
        # ended, Python's default may end it (-SIGINT: status 130 to a shell as well).
        assert process.returncode in (130, -signal.SIGINT), err
        assert err.startswith(f"{PROG}: stopped by SIGINT at step 2 during {during}"), err
        faults.expect("second_signal")  # the run stays consistent: checked below
    assert _checkpoints(out) == [2] and load_checkpoint(out).meta.step == 2
    assert not (out / "eval_results.json").exists()  # the round dropped whole
    assert not (out / "summary.json").exists()
    assert not list((out / "checkpoints").glob("*tmp*"))


def test_launched_pretrain_then_resume_line(data, tmp_path):
    out = tmp_path / "run"
    process = _start(_pretrain(data, out, 100_000, "--launch", "local_mt"))
    _wait(process, lambda: _log_rows(out) >= 3 and _checkpoints(out), "learner steps")
    _, err, seconds = _stop(process, signal.SIGTERM)
    assert process.returncode == 143 and seconds < 30, err
    err = _without_reverb_logs(err)
    step = _checkpoints(out)[-1]
    assert _one_line(err) == (f"{PROG}: stopped by SIGTERM; checkpoint {step} kept in "
                              f"{out}/checkpoints; continue with --resume")
    assert load_checkpoint(out).meta.step == step


def test_during_collect(tmp_path):
    out = tmp_path / "data"
    process = _start([sys.executable, "-m", "scaled_ql.cli", "collect", "--games", GAME,
                      "--steps", "100000000", "--out", str(out), "--workers", "1"])
    _wait(process, lambda: list(out.glob("*/*/incomplete.*")), "a dataset being written")
    _, err, seconds = _stop(process, signal.SIGINT)
    assert process.returncode == 130 and seconds < 30, err
    faults.check("signal_during_collect", _one_line(err))
    assert not list(out.glob("*/*/incomplete.*"))


def test_the_next_collect_removes_what_a_killed_one_left(tmp_path):
    from scaled_ql.datasets import rlds

    final = rlds.dataset_dir(tmp_path, GAME, 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    abandoned = final.with_name(f"incomplete.{final.name}.{int(dead.stdout)}")
    live = final.with_name(f"incomplete.{final.name}.{os.getppid()}")  # a running process's
    for folder in (abandoned, live):
        folder.mkdir(parents=True)
    assert rlds.remove_abandoned(final) == [abandoned]
    assert not abandoned.exists() and live.exists()


@pytest.mark.parametrize("launch", ["local_mt", "local_mp"])
def test_finetune_online(tmp_path, launch):
    base, out = save_tiny_run(tmp_path / "base"), tmp_path / "online"
    token = uuid.uuid4().hex  # every node process inherits it: none may be left
    process = _start([
        sys.executable, "-m", "scaled_ql.cli", "finetune-online", "--checkpoint", str(base),
        "--game", GAME, "--env-steps", "100000000", "--out", str(out), "--launch", launch,
        "--replay-min-size", "32", "--replay-size", "2000", "--samples-per-insert", "2",
        "--eval-every", "0", "--eval-episodes", "1", "--eval-workers", "0",
        "--checkpoint-every", "2", "--batch-size", "16"],
        env=dict(os.environ, JAX_PLATFORMS="cpu", **{TOKEN_VARIABLE: token}))
    try:
        # The evaluator's round at the start is recorded too (on a loaded machine the learner
        # can write 3 rows and a checkpoint first).
        _wait(process, lambda: (_log_rows(out) >= 3 and _checkpoints(out)
                                and (out / "eval_results.json").exists()),
              "learner steps and the round at the start")
        _, err, seconds = _stop(process, signal.SIGINT)
    finally:
        time.sleep(1.0)
        leftovers = processes_with_token(token)
        for node in leftovers:
            node.kill()
    assert process.returncode == 130 and seconds < 30, err
    assert not leftovers, [node.cmdline() for node in leftovers]
    err = _without_reverb_logs(err)
    step = _checkpoints(out)[-1]
    faults.check("signal_launched", _one_line(err), signal="SIGINT", step=step, run_dir=out)
    assert load_checkpoint(out).meta.step == step
    assert (out / "eval_results.json").exists()  # the round at the start, recorded
