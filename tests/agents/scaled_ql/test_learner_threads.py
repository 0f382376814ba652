"""The learner under concurrency: Acme calls `get_variables`, `save` and `restore` from other
threads (a variable client, a checkpointing schedule) while `step()` runs and donates the state.
No call may fail, and every state returned must be one the learner really had.  A stop
raised in the stepping thread (as Acme stops its learner nodes) leaves a usable state."""

import contextlib
import ctypes
import itertools
import threading
import time

import jax
import numpy as np

from scaled_ql.types import MINATAR_OBSERVATION
from tests.agents.scaled_ql.test_learner import (
    MINATAR_ACTIONS,
    _leaves_equal,
    _minatar_learner,
    _random_batches,
)

NUM_STEPS = 40
STOP_TRIALS = 20


def _fingerprint(tree) -> bytes:
    return b"".join(np.asarray(leaf).tobytes() for leaf in jax.tree_util.tree_leaves(tree))


def test_readers_on_other_threads_see_only_states_the_learner_had():
    # One batch forever: the state after k steps is then a function of k alone (the PRNG key
    # is part of the state), whatever restores happen in between.
    batch = next(_random_batches(16, MINATAR_ACTIONS, observation=MINATAR_OBSERVATION))
    learner = _minatar_learner(itertools.repeat(batch))
    states = [learner.save()]  # first stepped alone: the states it passes through
    for _ in range(NUM_STEPS):
        learner.step()
        states.append(learner.save())
    step_of_params = {_fingerprint(state.params): k for k, state in enumerate(states)}
    assert len(step_of_params) == NUM_STEPS + 1  # every step changes the parameters
    learner.restore(states[0])  # then again, with readers on other threads

    stop, errors = threading.Event(), []
    variables, saved = [], []

    def read():
        while not stop.wait(0.001):
            variables.append(learner.get_variables(["policy"])[0])
            saved.append(learner.save())

    def save_and_restore():  # may roll the learner back a step: still a state it had
        while not stop.wait(0.05):
            learner.restore(learner.save())

    def guarded(target):
        def run():
            try:
                target()
            except Exception as error:  # noqa: BLE001  (reported by the assertion below)
                errors.append(error)
        return threading.Thread(target=run)

    threads = [guarded(read), guarded(read), guarded(save_and_restore)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(NUM_STEPS):
            learner.step()
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    seen_steps = {step_of_params.get(_fingerprint(params)) for params in variables}
    assert None not in seen_steps, "get_variables returned parameters the learner never had"
    assert len(seen_steps) > 1, "the readers did not overlap the training steps"
    for state in saved:  # the whole state, consistent with its own step counter
        assert _leaves_equal(state, states[int(state.step)])
    assert _leaves_equal(learner.save(), states[learner.num_steps])


def _raise_in_thread(thread: threading.Thread, exception: type) -> None:
    """What Acme's `signals.runtime_terminator` does to stop a learner's thread."""
    delivered = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_long(thread.ident),
                                                           ctypes.py_object(exception))
    assert delivered == 1


def test_a_stop_raised_in_the_stepping_thread_never_leaves_a_donated_state():
    # Acme stops a learner node by raising SystemExit in the thread that steps it, at whatever
    # bytecode it is running.  Before the update ran on its own thread, a stop landing just
    # after the update returned lost its result and kept the donated (deleted) input state:
    # every later get_variables/save raised "Array has been deleted" (the first of these
    # trials did, on a 2-core CPU).
    batch = next(_random_batches(16, MINATAR_ACTIONS, observation=MINATAR_OBSERVATION))
    learner = _minatar_learner(itertools.repeat(batch))
    learner.step()  # compiled before the trials
    delays = np.random.default_rng(0).uniform(0.001, 0.02, size=STOP_TRIALS)
    for delay in delays:
        steps_before = learner.num_steps
        started = threading.Event()

        def run():
            started.set()
            with contextlib.suppress(SystemExit):
                while True:
                    learner.step()

        thread = threading.Thread(target=run)
        thread.start()
        started.wait()
        time.sleep(delay)
        _raise_in_thread(thread, SystemExit)
        thread.join(timeout=60)
        assert not thread.is_alive()
        state = learner.save()  # RuntimeError: Array has been deleted, before the fix
        params = learner.get_variables(["policy"])[0]
        assert _leaves_equal(params, state.params)
        assert int(state.step) == learner.num_steps >= steps_before
    learner.step()  # and it trains on
    assert learner.num_steps == int(learner.save().step)
