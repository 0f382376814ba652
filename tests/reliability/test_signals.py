"""Ctrl-C (SIGINT) during single-process pretraining: the step in progress finishes, a final
checkpoint is written, and the command exits 130 saying how to continue.  (SIGTERM through the
command line: tests/runners/test_pretrain_resume.py.)"""

import os
import signal
import threading

from scaled_ql.cli.pretrain import report_end_of_run
from scaled_ql.runners import PretrainConfig, run_pretrain
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.reliability import faults
from tests.reliability.harness import checkpoint_steps, logged_steps, restore, wait_for


def test_sigint_writes_a_final_checkpoint_and_exits_130(training_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = PretrainConfig(
        games=TRAINING_GAMES, data_dir=training_data, out_dir=str(run_dir), steps=100_000,
        agent=tiny_agent_config(), shuffle_buffer=200, eval_workers=0, checkpoint_every=1000,
        log_every=1, progress=False)

    def interrupt():
        # Rows in the learner log mean the loop (and its signal handler) is running.
        wait_for(lambda: len(logged_steps(run_dir)) >= 3, 300, "training steps")
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    summary = run_pretrain(config)
    sender.join(timeout=10)

    assert summary.stopped_by_signal == signal.SIGINT and summary.step >= 3
    # No periodic checkpoint was due (every 1000): the one on disk is the final one.
    assert checkpoint_steps(run_dir) == [summary.step]
    state, _ = restore(run_dir)
    assert int(state.step) == summary.step == logged_steps(run_dir)[-1]
    assert not (run_dir / "summary.json").exists()  # no final evaluation after a stop

    capsys.readouterr()
    assert report_end_of_run(summary, "scaled-ql pretrain") == 128 + signal.SIGINT
    line = capsys.readouterr().err.strip()
    faults.check("sigint_sigterm", line, signal="SIGINT", step=summary.step,
                 run_dir=summary.run_dir)
