"""tests/conftest.py's exit guard finds a VariableClient fetch that waits on its learner.

A real Acme VariableClient on a variable source that does not answer until released (standing
in for a learner whose courier server stopped mid-call: a real one cannot be made to stop at
that instant on purpose).
"""

import threading
import time

from tests.conftest import threads_waiting_on_a_variable_source


def _wait_for(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_fetch_waiting_on_its_learner_is_found_and_released_one_is_not():
    from acme.jax import variable_utils

    release = threading.Event()

    class SilentLearner:
        def get_variables(self, names):
            release.wait(30)
            return [{"w": 1.0} for _ in names]

    before = set(threads_waiting_on_a_variable_source())  # (earlier tests' programs may leave some)
    made = {}

    def node():  # as a program's node thread would: make the client, ask for an update, go on
        made["client"] = variable_utils.VariableClient(SilentLearner(), "policy", update_period=1)
        made["client"].update()  # asynchronous: the executor's worker calls get_variables

    # Made from a daemon thread, the executor's worker is a daemon thread too, and Python's
    # exit still joins it (the case the guard's first version missed: pytest hung at exit).
    maker = threading.Thread(target=node, daemon=True)
    maker.start()
    maker.join()
    client = made["client"]
    assert _wait_for(lambda: len(set(threads_waiting_on_a_variable_source()) - before) == 1)
    (worker,) = set(threads_waiting_on_a_variable_source()) - before
    assert worker.daemon
    release.set()
    assert _wait_for(lambda: client.params == {"w": 1.0})  # (one key: its params)
    assert _wait_for(lambda: not set(threads_waiting_on_a_variable_source()) - before)
