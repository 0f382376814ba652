"""`bound_counter_calls`: calls to a program's counter node get a deadline, so a node that calls
the counter after its server stopped ends instead of waiting forever.

Real Launchpad (`test_mt`, every node a thread of this process) and real courier servers.
"""

import json
import time
import unittest

import pytest

from scaled_ql.launchpad_programs import bound_counter_calls


def counter_node():
    import launchpad as lp
    from acme.utils import counting

    return lp.CourierNode(counting.Counter)  # no run(): serves until the stop, then stops


def stop_after_one_count(counter) -> None:
    """Counts once through the counter (its server is up), then stops the program."""
    import launchpad as lp

    counter.increment(steps=1)
    lp.stop()


def call_after_the_stop(counter, result_path: str) -> None:
    """Waits for the stop, then calls the counter until a call fails (its server stops with
    the program); writes what that call raised and how long it took."""
    import launchpad as lp

    lp.wait_for_stop()
    outcome = {"returned": 0}
    for _ in range(100):  # 20 s: the counter's server stops within moments of the stop
        started = time.monotonic()
        try:
            counter.get_counts()
        except Exception as error:  # noqa: BLE001 - what courier raises is the result
            outcome.update(raised=f"{type(error).__name__}: {error}",
                           seconds=time.monotonic() - started)
            break
        outcome["returned"] += 1
        time.sleep(0.2)
    with open(result_path, "w") as f:
        json.dump(outcome, f)


def make_program(result_path: str):
    import launchpad as lp

    program = lp.Program("late_caller")
    with program.group("counter"):
        counter = program.add_node(counter_node())
    with program.group("stopper"):
        program.add_node(lp.PyNode(stop_after_one_count, counter))
    with program.group("caller"):
        program.add_node(lp.PyNode(call_after_the_stop, counter, result_path))
    return program


def client_kwargs(program, group: str) -> list[dict]:
    return [dict(handle._kwargs)  # noqa: SLF001
            for node in program.groups[group] for handle in node.input_handles]


class BoundCounterCallsTest(unittest.TestCase):

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path):
        self.tmp_path = tmp_path

    def test_a_call_to_the_stopped_counter_fails_after_the_deadline_and_the_node_ends(self):
        import launchpad as lp

        result_path = str(self.tmp_path / "late_call.json")
        program = bound_counter_calls(make_program(result_path), timeout_s=2.0)
        manager = lp.launch(program, launch_type="test_mt", test_case=self)
        started = time.monotonic()
        # Without the deadline the caller's thread never ends: fail after 60 s (the cleanup,
        # which joins every node, would then wait on it until pytest-timeout ends the test).
        while any(worker.thread.is_alive()
                  for workers in manager._active_workers.values()  # noqa: SLF001
                  for worker in workers):
            self.assertLess(time.monotonic() - started, 60.0,
                            "a node still runs 60 s after the start")
            time.sleep(0.2)
        self.assertTrue(manager.wait_for_stop(0))
        with open(result_path) as f:
            outcome = json.load(f)
        print(f"the call after the stop: {outcome}")
        self.assertIn("raised", outcome, outcome)
        self.assertIn("deadline", outcome["raised"].lower())
        self.assertGreaterEqual(outcome["seconds"], 1.5)  # it waited for the server ...
        self.assertLess(outcome["seconds"], 30.0)        # ... until the 2 s deadline

    def test_only_handles_to_the_counter_get_the_deadline(self):
        import launchpad as lp

        program = make_program("unused")
        with program.group("other"):
            other = program.add_node(counter_node())
        with program.group("user_of_other"):
            program.add_node(lp.PyNode(stop_after_one_count, other))
        self.assertIs(bound_counter_calls(program, timeout_s=7), program)
        self.assertEqual(client_kwargs(program, "stopper"), [{"call_timeout": 7.0}])
        self.assertEqual(client_kwargs(program, "caller"), [{"call_timeout": 7.0}])
        self.assertEqual(client_kwargs(program, "user_of_other"), [{}])

    def test_a_program_without_the_group_or_its_users_is_an_error(self):
        import launchpad as lp

        program = lp.Program("no_counter")
        with program.group("learner"):
            program.add_node(counter_node())
        with self.assertRaisesRegex(ValueError, "no 'counter' group.*'learner'"):
            bound_counter_calls(program)
        with self.assertRaisesRegex(ValueError, "no node of the program takes a handle to "
                                                "its 'learner' group"):
            bound_counter_calls(program, group="learner")
