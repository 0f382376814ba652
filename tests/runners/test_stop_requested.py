"""StopRequested: a signal that lands inside an object finalizer is not lost."""

import os
import signal
import sys
import time

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
