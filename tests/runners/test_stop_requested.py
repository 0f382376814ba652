"""StopRequested: a signal that lands inside an object finalizer (`__del__`, a weakref
callback) is not lost; one during an evaluation ends it where the evaluation polls."""

import os
import signal
import sys
import time
import weakref

import jax
import pytest

from scaled_ql.runners import run_dir
from scaled_ql.types import MINATAR_OBSERVATION


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


def test_a_signal_during_an_evaluation_ends_it_at_the_next_policy_call():
    # The runner evaluates inside `deferred()` and hands `raise_if_stopped` to the evaluator:
    # the handler only records the signal (it cannot land in a finalizer or a library's
    # callback and be dropped), and the evaluation raises Stopped from its own loop.
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.networks import make_networks
    from scaled_ql.runners.evaluate import EvalProtocol, make_evaluator
    from tests.runners.minatar import PRETRAIN_GAMES, tiny_minatar_agent

    config = tiny_minatar_agent()
    networks = make_networks(config.network, (3, 5), MINATAR_OBSERVATION)
    params = init_training_state(networks, config, jax.random.PRNGKey(0)).params
    evaluate = make_evaluator(networks, PRETRAIN_GAMES, EvalProtocol(
        episodes=50, workers=0, progress=False))
    calls = []

    def poll():
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)  # handled before the next bytecode
        calls.append(stop.signal)
        stop.raise_if_stopped()

    with run_dir.StopRequested() as stop:
        with stop.deferred(), pytest.raises(run_dir.Stopped):
            evaluate(params, 0, poll=poll)
    # The signal arrived at the fifth poll, and that same poll (not the handler) stopped it.
    assert calls == [None] * 4 + [signal.SIGINT]
    assert stop.signal == signal.SIGINT and not stop.repeated
