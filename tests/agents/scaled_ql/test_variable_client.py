"""scaled_ql.agents.scaled_ql.variable_client: Acme's VariableClient contract, and a process
whose fetch waits on a stopped learner still exits (Acme 0.4.0's client keeps it alive)."""

import ctypes
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from scaled_ql.agents.scaled_ql import variable_client
from scaled_ql.agents.scaled_ql.variable_client import VariableClient
from tests.reliability import faults


class CountingSource:
    """A variable source whose variables are the number of requests answered so far."""

    def __init__(self):
        self.requests = []
        self.answer = threading.Event()
        self.answer.set()

    def get_variables(self, names):
        self.answer.wait(10)
        self.requests.append(list(names))
        return [{"version": len(self.requests), "name": name} for name in names]


def _wait_for(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def test_params_are_fetched_on_first_use_one_key_gives_its_variables():
    source = CountingSource()
    client = VariableClient(source, "policy")
    assert client.params == {"version": 1, "name": "policy"}
    assert source.requests == [["policy"]]
    assert client.device is None


def test_several_keys_give_the_list():
    source = CountingSource()
    client = VariableClient(source, ("policy", "target"))
    assert client.params == [{"version": 1, "name": "policy"}, {"version": 1, "name": "target"}]


def test_update_fetches_every_period_th_call_in_the_background():
    source = CountingSource()
    client = VariableClient(source, "policy", update_period=3)
    client.update_and_wait()
    assert client.params["version"] == 1
    client.update()
    client.update()
    assert len(source.requests) == 1  # 2 calls of a period of 3: nothing fetched
    client.update()  # the 3rd: a background fetch
    assert _wait_for(lambda: client.params["version"] == 2)
    for _ in range(2):
        client.update()
    time.sleep(0.05)
    assert len(source.requests) == 2  # the count started again after the fetch


def test_update_does_not_start_a_second_fetch_while_one_is_in_flight():
    source = CountingSource()
    client = VariableClient(source, "policy", update_period=1)
    client.update_and_wait()
    source.answer.clear()  # the next request waits
    client.update()
    for _ in range(5):
        client.update()  # the first is still in flight: no new requests
    assert client.params["version"] == 1  # the actor keeps acting with what it has
    source.answer.set()
    assert _wait_for(lambda: client.params["version"] == 2)
    time.sleep(0.05)
    assert len(source.requests) == 2


class ThreadRecordingSource(CountingSource):
    def __init__(self):
        super().__init__()
        self.threads = []

    def get_variables(self, names):
        self.threads.append(threading.current_thread())
        return super().get_variables(names)


def _fetch_threads():
    return [t for t in threading.enumerate() if t.name == "scaled-ql-variable-fetch"]


def test_background_fetches_share_one_long_lived_thread_which_ends_with_its_client():
    before = set(_fetch_threads())
    source = ThreadRecordingSource()
    client = VariableClient(source, "policy")
    for version in range(1, 6):
        client.update()
        assert _wait_for(lambda: client._params is not None
                         and client.params["version"] == version)
        assert _wait_for(lambda: client._idle.is_set())
    (thread,) = set(source.threads)
    assert thread is not threading.current_thread() and thread.daemon
    assert set(_fetch_threads()) - before == {thread}
    del client  # the thread holds no reference to its client: it notices and ends
    thread.join(timeout=5 * variable_client._POLL_S)
    assert not thread.is_alive()


def _raise_in(thread, exception):
    """What Acme's `runtime_terminator` does to stop a loop: raise in a thread by its id."""
    assert ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exception)) == 1


def test_a_fetch_thread_stopped_by_an_asynchronous_system_exit_is_replaced():
    source = ThreadRecordingSource()
    client = VariableClient(source, "policy")
    client.update()
    assert _wait_for(lambda: len(source.requests) == 1 and client._idle.is_set())
    (first,) = source.threads
    _raise_in(first, SystemExit)  # delivered while it waits for the next request
    first.join(timeout=5 * variable_client._POLL_S)
    assert not first.is_alive()
    client.update()  # no fetch can be in flight on a dead thread: a new one fetches
    assert _wait_for(lambda: len(source.requests) == 2)
    assert source.threads[1] is not first and source.threads[1].is_alive()
    assert _wait_for(lambda: client.params["version"] == 2)


def test_update_wait_fetches_in_the_callers_thread_and_raises_what_the_source_raises():
    class Failing:
        def get_variables(self, names):
            raise ConnectionError("learner is gone")

    source = CountingSource()
    client = VariableClient(source, "policy", update_period=2)
    client.update(wait=True)  # the 1st call of 2: nothing
    assert source.requests == []
    client.update(wait=True)
    assert source.requests == [["policy"]] and client.params["version"] == 1
    with pytest.raises(ConnectionError, match="learner is gone"):
        VariableClient(Failing(), "policy").update(wait=True)


def test_a_failed_background_fetch_is_logged_and_keeps_the_variables(caplog):
    class FailsAfterFirst(CountingSource):
        def get_variables(self, names):
            if self.requests:
                raise ConnectionError("learner is gone")
            return super().get_variables(names)

    client = VariableClient(FailsAfterFirst(), "policy")
    client.update_and_wait()
    with caplog.at_level("WARNING"):
        client.update()
        assert _wait_for(lambda: "learner is gone" in caplog.text)
    (record,) = [r for r in caplog.records if "variable fetch" in r.getMessage()]
    faults.check("learner_stops_mid_fetch", record.getMessage(), keys=["policy"],
                 error=repr(ConnectionError("learner is gone")))
    assert client.params == {"version": 1, "name": "policy"}


def test_update_period_must_be_positive():
    with pytest.raises(ValueError, match="update_period must be >= 1, got 0"):
        VariableClient(CountingSource(), "policy", update_period=0)


# A process whose actor asked for variables from a learner that never answers (its courier
# server stopped mid-call), then finished its work.  Made from a daemon thread, as a program's
# node thread would.  (A stand-in source: a real courier call cannot be made to hang on cue.)
_STUCK_FETCH = textwrap.dedent("""
    import sys, threading
    from acme.jax import variable_utils
    from scaled_ql.agents.scaled_ql.variable_client import VariableClient

    class StoppedLearner:
        def get_variables(self, names):
            threading.Event().wait()  # never answers

    make = {"scaled_ql": VariableClient, "acme": variable_utils.VariableClient}[sys.argv[1]]
    node = threading.Thread(target=lambda: make(StoppedLearner(), "policy").update(),
                            daemon=True)
    node.start()
    node.join()
    print("done", flush=True)
""")


def _exits_after_its_work(client: str, timeout_s: float) -> bool:
    """Whether the process exits within `timeout_s` of printing that its work is done."""
    process = subprocess.Popen([sys.executable, "-c", _STUCK_FETCH, client],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "done"  # (returns '' if it failed)
        process.wait(timeout_s)
        return process.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        process.kill()
        process.wait()


def test_a_fetch_waiting_on_a_stopped_learner_does_not_keep_the_process_alive():
    faults.expect("learner_stops_mid_fetch")
    assert _exits_after_its_work("scaled_ql", timeout_s=30)
    # Acme 0.4.0's client in the same process waits at exit for its executor's worker (why
    # this client exists; the check that the stand-in reproduces the hang).
    assert not _exits_after_its_work("acme", timeout_s=5)
