"""StopRequested: a signal that lands inside an object finalizer (`__del__`, a weakref
callback) is not lost."""

import os
import signal
import sys
import time
import weakref

import pytest

from scaled_ql.runners import run_dir


def test_finalizer_frames_are_recognised():
    seen = []

    class Dying:
        def __del__(self):
            seen.append(run_dir._in_finalizer(sys._getframe()))

    Dying()  # no reference kept: finalized at once
    assert seen == [True]
    assert not run_dir._in_finalizer(sys._getframe())


def test_a_signal_inside_a_finalizer_stops_the_command_just_after_it():
    # Python prints and drops an exception raised in __del__ ("Exception ignored in ..."):
    # the handler delivers the signal again outside the finalizer, where Stopped propagates.
    class SignalledWhileDying:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    with run_dir.StopRequested() as stop, pytest.raises(run_dir.Stopped):
        SignalledWhileDying()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert stop.signal == signal.SIGINT and not stop.repeated


def test_a_signal_inside_a_weakref_callback_stops_the_command_just_after_it():
    # A weakref callback (here weakref.finalize's; WeakKeyDictionary's entry removal in the
    # final-evaluation signal test) drops an exception like __del__ does.
    class Referent:
        pass

    with run_dir.StopRequested() as stop, pytest.raises(run_dir.Stopped):
        weakref.finalize(Referent(), os.kill, os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert stop.signal == signal.SIGINT and not stop.repeated


def test_a_second_signal_while_winding_down_names_what_the_first_one_stopped(
        tmp_path, monkeypatch, capsys):
    # The two SIGINTs of the final-evaluation signal test, in a fixed order: the first stops
    # the final evaluation (the loop returns), the second lands while the summary is made.
    from scaled_ql.cli import main
    from scaled_ql.runners import loop, offline
    from tests.runners.minatar import TINY_MINATAR_FLAGS, collect_minatar

    data = collect_minatar(tmp_path / "data", games=("minatar/Breakout",), num_steps=60)

    def stopped_in_the_final_evaluation(learner, *, stop, **unused):
        stop.signal = signal.SIGINT
        return loop.LoopEnd(0, signal.SIGINT, "the final evaluation", None, False)

    def second_signal(*unused, **also_unused):
        raise run_dir.Stopped(signal.SIGINT)

    monkeypatch.setattr(offline, "train_loop", stopped_in_the_final_evaluation)
    monkeypatch.setattr(offline, "finish", second_signal)
    out = tmp_path / "run"
    code = main(["pretrain", "--data", data, "--games", "minatar/Breakout", "--steps", "2",
                 "--out", str(out), "--shuffle-buffer", "10", "--no-progress",
                 *TINY_MINATAR_FLAGS])
    assert code == 130
    assert "stopped by SIGINT at step 0 during the final evaluation" in capsys.readouterr().err
