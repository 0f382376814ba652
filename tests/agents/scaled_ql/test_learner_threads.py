"""The learner under concurrency: Acme calls `get_variables`, `save` and `restore` from other
threads (a variable client, a checkpointing schedule) while `step()` runs and donates the state.
No call may fail, and every state returned must be one the learner really had."""

import itertools
import threading

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
