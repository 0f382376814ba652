"""`bound_counter_calls`: calls to a program's counter node get a deadline, so a node that calls
the counter after its server stopped ends instead of waiting forever.  `stop_aware`: a node's
calls to another node end shortly after the program's stop, with no deadline while it runs.

Real Launchpad (`test_mt`, every node a thread of this process) and real courier servers.
"""

import json
import time
import unittest

import pytest

from scaled_ql.launchpad_programs import bound_counter_calls
from scaled_ql.launchpad_programs import supervision


def counter_node():
    import launchpad as lp
    from acme.utils import counting

    return lp.CourierNode(counting.Counter)  # no run(): serves until the stop, then stops


def stop_after_one_count(counter) -> None:
    """Counts once through the counter (its server is up), then stops the program."""
    import launchpad as lp

    counter.increment(steps=1)
    lp.stop()


def call_after_the_stop(counter, result_path: str, grace_s: float | None = None) -> None:
    """Waits for the stop, then calls the counter until a call fails (its server stops with
    the program); writes what that call raised and how long it took.  With `grace_s` the
    calls go through `supervision.stop_aware(counter, grace_s=grace_s)`."""
    import launchpad as lp

    if grace_s is not None:
        counter = supervision.stop_aware(counter, grace_s=grace_s)
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


def make_program(result_path: str, grace_s: float | None = None):
    import launchpad as lp

    program = lp.Program("late_caller")
    with program.group("counter"):
        counter = program.add_node(counter_node())
    with program.group("stopper"):
        program.add_node(lp.PyNode(stop_after_one_count, counter))
    with program.group("caller"):
        program.add_node(lp.PyNode(call_after_the_stop, counter, result_path, grace_s))
    return program


def run_until_every_node_ended(test_case, program):
    """Launches `program` (test_mt) and waits until all its nodes ended (fails after 60 s:
    without a deadline or `stop_aware` the caller's thread never ends, and the cleanup, which
    joins every node, would then wait on it until pytest-timeout ends the test)."""
    import launchpad as lp

    manager = lp.launch(program, launch_type="test_mt", test_case=test_case)
    started = time.monotonic()
    while any(worker.thread.is_alive()
              for workers in manager._active_workers.values()  # noqa: SLF001
              for worker in workers):
        test_case.assertLess(time.monotonic() - started, 60.0,
                             "a node still runs 60 s after the start")
        time.sleep(0.2)
    test_case.assertTrue(manager.wait_for_stop(0))


def use_while_running(counter, result_path: str) -> None:
    """Through `stop_aware`: two counts, the counts, a call the server refuses; then stops."""
    import launchpad as lp

    client = supervision.stop_aware(counter)
    outcome = {"same_when_wrapped_again": supervision.stop_aware(client) is client}
    client.increment(steps=2)
    outcome["counts"] = client.increment(steps=3)
    try:
        client.increment("not a keyword")  # Counter.increment takes keywords only
    except Exception as error:  # noqa: BLE001 - the server's refusal is the result
        outcome["refused"] = f"{type(error).__name__}: {error}"
    with open(result_path, "w") as f:
        json.dump(outcome, f)
    lp.stop()


def client_kwargs(program, group: str) -> list[dict]:
    return [dict(handle._kwargs)  # noqa: SLF001
            for node in program.groups[group] for handle in node.input_handles]


class ProgramTestCase(unittest.TestCase):
    """A test case with `self.tmp_path` (Launchpad's test_mt launch needs a TestCase)."""

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path):
        self.tmp_path = tmp_path


class BoundCounterCallsTest(ProgramTestCase):

    def test_a_call_to_the_stopped_counter_fails_after_the_deadline_and_the_node_ends(self):
        result_path = str(self.tmp_path / "late_call.json")
        run_until_every_node_ended(
            self, bound_counter_calls(make_program(result_path), timeout_s=2.0))
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


class StopAwareTest(ProgramTestCase):

    def test_a_call_to_the_stopped_counter_ends_after_the_grace_without_a_deadline(self):
        result_path = str(self.tmp_path / "late_call.json")
        program = make_program(result_path, grace_s=1.0)
        self.assertEqual(client_kwargs(program, "caller"), [{}])  # no deadline
        run_until_every_node_ended(self, program)
        with open(result_path) as f:
            outcome = json.load(f)
        print(f"the call after the stop: {outcome}")
        self.assertIn("raised", outcome, outcome)
        self.assertRegex(outcome["raised"], r"^ProgramStopping: get_counts\(\) to \S+ got no "
                                            r"answer within 1 s of the program's stop$")
        self.assertGreaterEqual(outcome["seconds"], 1.0)  # it gave the server its grace ...
        self.assertLess(outcome["seconds"], 30.0)        # ... and no more than that

    def test_while_the_program_runs_calls_answer_and_fail_as_the_client_s(self):
        import launchpad as lp

        result_path = str(self.tmp_path / "running.json")
        program = lp.Program("running")
        with program.group("counter"):
            counter = program.add_node(counter_node())
        with program.group("user"):
            program.add_node(lp.PyNode(use_while_running, counter, result_path))
        run_until_every_node_ended(self, program)
        with open(result_path) as f:
            outcome = json.load(f)
        self.assertTrue(outcome["same_when_wrapped_again"])
        self.assertEqual(outcome["counts"], {"steps": 5})
        self.assertIn("refused", outcome, outcome)
        self.assertNotIn("ProgramStopping", outcome["refused"])
        self.assertIn("increment", outcome["refused"])

    def test_what_is_not_a_courier_client_is_returned_as_it_is(self):
        from acme.utils import counting

        local = counting.Counter()
        self.assertIs(supervision.stop_aware(local), local)
