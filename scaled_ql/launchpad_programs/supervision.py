"""Launching a Launchpad program and watching it, so that a failed node never hangs the launch.

Why this exists.  In Launchpad 0.5.0's `local_mp` launch with `terminal='current_terminal'`,
each node runs as `decorate_output ... python process_entry.py | sed`; the launcher only sees
the wrapper process, whose exit status is that of `sed`, and it assumes every exit is clean.
A node that raises therefore ends quietly and `launched.wait()` waits forever for the others.

What we do instead:

- Every node body runs inside `guarded(status_dir, node_name)`.  An exception there writes
  `<status_dir>/<node>.failed.json` (node name, error, traceback) and calls `lp.stop()`
  before it propagates, so the launcher learns *which* node failed and *why*.
- The node that ends the program normally writes `<status_dir>/done.json` before `lp.stop()`.
- `launch_and_watch` polls the failure records, the stop event of Launchpad's worker manager
  and (local_mp) the node processes themselves.  A node process that ends while nobody asked
  the program to stop (killed, out of memory, an emulator calling `exit`) is a failure too,
  even without a record.  On any failure it stops every node (SIGTERM, then SIGKILL after
  Launchpad's `--lp_termination_notice_secs`, 10 s by default) and returns 1; the message
  names the node.

Output.  Nodes' lines reach the launcher's stdout as `node_output` arranges (plain, and quiet
without --verbose).

Signals.  A node ends the program with `lp.stop()`, which sends SIGTERM to the launching
process; Launchpad's worker manager passes the signal on to the handler that was there before
it.  Whatever handler the caller had (the `scaled-ql` commands raise on a signal) is therefore
replaced by one that only records, for the whole launch (`_signals_only_recorded`): the watch
loop tells a normal end (a done record) from a stop from outside, and the launch never dies
half-way in a handler of the caller's.

Stopping in order.  Launchpad stops every node at once; a node blocked in a call to the
counter node (Acme's `Counter` behind `lp.CourierNode`) whose server has already stopped waits
forever (courier clients wait for the server, with no deadline), so under `local_mt` the
whole process was SIGKILLed after the termination notice.  `LingeringCounter` keeps serving
for `COUNTER_LINGER_S` after the stop, long enough for the other nodes to finish their last
call, see the stop and end.  A fixed linger is not enough on a loaded machine: a learner step
that began before the stop can reach the counter after it, or a call can wait longer than the
linger for CPU.  So our nodes call other nodes through `stop_aware` clients: once the program
is stopping, a call still unanswered after `STOP_GRACE_S` is cancelled and raises
`ProgramStopping`, which ends the node (unrecorded: it is the stop, not a failure).  Programs
built by Acme's layouts have Acme's counter node, which stops serving with the program;
`bound_counter_calls` gives their calls to it a deadline (`COUNTER_CALL_TIMEOUT_S`) instead,
so a node blocked in one at the stop ends once it passes.

Exit codes of `launch_and_watch`: 0 normal end (done record present), 1 a node failed,
124 the `timeout_s` ran out, 128 + signal stopped from outside before the end (130 Ctrl-C,
143 SIGTERM; `interrupting_signal` gives the signal of such a code).  An interruption prints
nothing: the caller says what was saved.
"""

import concurrent.futures
import contextlib
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator

from acme.utils import counting

from scaled_ql.launchpad_programs import node_output

FAILURE_SUFFIX = ".failed.json"
DONE_FILE = "done.json"

EXIT_OK = 0
EXIT_NODE_FAILED = 1
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130  # by SIGINT; 128 + signal in general

# Seconds the counter node serves after the program's stop (`LingeringCounter`): well under
# Launchpad's termination notice (`--lp_termination_notice_secs`, 10 s).
COUNTER_LINGER_S = 3.0
# Deadline of each call to the counter node of a program given to `bound_counter_calls`.  A
# call waits this long for the node's server to be ready (a node that starts before the counter
# in `local_mp`), and a node blocked in a call to the stopped counter ends this long after the
# stop.
COUNTER_CALL_TIMEOUT_S = 60.0
# Seconds a `stop_aware` call may still wait for its answer once the program is stopping: well
# under the termination notice, so every node has ended before Launchpad kills the process.
STOP_GRACE_S = 2.0

_log = logging.getLogger(__name__)


def _record_name(node: str) -> str:
    return node.replace("/", "_").replace(" ", "_") + FAILURE_SUFFIX


def _write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def report_failure(status_dir: str | None, node: str, error: BaseException) -> None:
    """Records that `node` failed with `error` (no-op without a status directory)."""
    if not status_dir:
        return
    path = pathlib.Path(status_dir)
    path.mkdir(parents=True, exist_ok=True)
    _write_json(path / _record_name(node), {
        "node": node,
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(type(error), error,
                                                        error.__traceback__)),
        "pid": os.getpid(),
        "time": time.time(),
    })


def read_failures(status_dir: str | os.PathLike) -> list[dict]:
    """The failure records written so far, oldest first."""
    records = []
    for path in pathlib.Path(status_dir).glob(f"*{FAILURE_SUFFIX}"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):  # being written: seen on the next poll
            continue
    return sorted(records, key=lambda r: r.get("time", 0.0))


def mark_done(status_dir: str | None, info: dict | None = None) -> None:
    """Records that the program reached its normal end (written before `lp.stop()`)."""
    if not status_dir:
        return
    path = pathlib.Path(status_dir)
    path.mkdir(parents=True, exist_ok=True)
    _write_json(path / DONE_FILE, {"time": time.time(), **(info or {})})


def is_done(status_dir: str | os.PathLike) -> bool:
    return (pathlib.Path(status_dir) / DONE_FILE).exists()


def stop_requested() -> bool:
    """Whether this node's program is stopping (False outside a Launchpad node)."""
    import launchpad as lp

    try:
        return bool(lp.wait_for_stop(0))
    except RuntimeError:  # not in a node thread (e.g. a method called through courier)
        return False


def wait_or_stop(seconds: float | None) -> bool:
    """Sleeps up to `seconds` (None: until the stop); True once the program is stopping.

    Outside a Launchpad node (a method called through courier) it just sleeps.
    """
    import launchpad as lp

    try:
        return bool(lp.wait_for_stop(seconds))
    except RuntimeError:
        if seconds is not None:
            time.sleep(seconds)
        return False


@contextlib.contextmanager
def guarded(status_dir: str | None, node: str) -> Iterator[None]:
    """Runs a node body; an exception is recorded and stops the program, then propagates.

    Errors raised after the program started stopping (a server that went away under a
    client, say) are consequences of the stop, not failures, and are not recorded.
    """
    try:
        yield
    except BaseException as error:
        if not stop_requested():
            report_failure(status_dir, node, error)
            print(f"[scaled-ql] node {node} failed: {type(error).__name__}: {error}",
                  file=sys.stderr, flush=True)
            try:
                import launchpad as lp

                lp.stop()
            except Exception:  # noqa: BLE001 -- no context (not launched): just raise
                pass
        raise


def run_learner_node(status_dir: str | None, node: str, *, keep_going, step, backlog,
                     max_backlog: int, finish, close, ended_by=()) -> None:
    """The run loop every learner node shares, under `guarded`.

    While `keep_going()` and the program is not stopping: wait while `backlog()` (evaluation
    rounds not yet recorded) is at `max_backlog`, then `step()`; a `StopIteration` from `step`
    (the data ended) ends the loop too.  Then `finish()` (final checkpoint and round) unless the
    program is stopping, wait for the program's stop, and `close()`.
    """
    with guarded(status_dir, node):
        while keep_going() and not stop_requested():
            while backlog() >= max_backlog:
                if wait_or_stop(0.2):
                    return
            try:
                step()
            except ended_by:
                break
        if stop_requested():
            return
        finish()
    wait_or_stop(None)
    close()


class LingeringCounter(counting.Counter):
    """Acme's `Counter` for a counter node: its `run` (which `lp.CourierNode` calls, then stops
    the server) returns `COUNTER_LINGER_S` after the program's stop, so the nodes' calls in
    flight at the stop complete instead of waiting forever on a stopped server."""

    def run(self) -> None:
        wait_or_stop(None)
        time.sleep(COUNTER_LINGER_S)


class ProgramStopping(Exception):
    """A call to another node was abandoned because the program is stopping (`stop_aware`)."""


class StopAwareClient:
    """A node's courier client to another node whose calls end when the program stops.

    `client.method(...)` as with the courier client, made through its futures and waited on in
    slices of `poll_s`.  While the program runs a call waits as long as the client would (no
    deadline unless the client has one).  Once the program is stopping, a call still without
    an answer `grace_s` later is cancelled and raises `ProgramStopping`: the server it waits
    for may have stopped with the program, and courier would wait for it forever.  Outside a
    node's thread (`stop_requested()` is False there) it is the plain client.
    """

    def __init__(self, client, *, grace_s: float = STOP_GRACE_S, poll_s: float = 0.1):
        self._client = client
        self._grace_s = grace_s
        self._poll_s = poll_s

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        start_call = getattr(self._client.futures, method)

        def call(*args, **kwargs):
            future = start_call(*args, **kwargs)
            stopping_since = None
            while True:
                try:  # (courier's own errors are StatusNotOk, never this TimeoutError)
                    return future.result(timeout=self._poll_s)
                except concurrent.futures.TimeoutError:
                    pass
                if stopping_since is None:
                    if stop_requested():
                        stopping_since = time.monotonic()
                elif time.monotonic() - stopping_since > self._grace_s:
                    future.cancel()
                    raise ProgramStopping(
                        f"{method}() to {self._client.address} got no answer within "
                        f"{self._grace_s:g} s of the program's stop")

        return call


def stop_aware(client, **kwargs):
    """`client`, a node's courier client (its dereferenced handle), as a `StopAwareClient`;
    anything else (a local object, a client already wrapped) is returned as it is."""
    if isinstance(client, StopAwareClient) or not hasattr(client, "futures"):
        return client
    return StopAwareClient(client, **kwargs)


def bound_counter_calls(program, timeout_s: float = COUNTER_CALL_TIMEOUT_S,
                        group: str = "counter"):
    """Gives every call that a node of `program` makes to the node(s) of `group` a deadline of
    `timeout_s` seconds; returns `program`, for `bound_counter_calls(layout.build())`.

    For programs whose counter node does not linger (Acme's layouts): Launchpad stops every
    node at once, and a node blocked in a call to a counter whose server has stopped would
    wait forever (courier clients wait for the server, with no deadline).  Launchpad's stop
    cannot reach a thread blocked there, so a `local_mt` or `test_mt` launch never ends.
    With a deadline the call fails after `timeout_s` and the node's thread ends: Acme's nodes
    then end by the `SystemExit` that Launchpad's stop has pending in their thread (it takes
    over as the call's error unwinds), which their run loop catches.

    Raises:
      ValueError: `program` has no group `group`, or no node takes a handle to it.
    """
    import launchpad as lp  # Launchpad's own import is slow; only programs need it

    targets = [node for node in program.groups.get(group, ())
               if isinstance(node, lp.CourierNode)]
    if not targets:
        raise ValueError(f"the program has no {group!r} group of courier nodes to bound the "
                         f"calls to (its groups: {sorted(program.groups)})")
    addresses = {id(node._address) for node in targets}  # noqa: SLF001
    bounded = 0
    for nodes in program.groups.values():
        for node in nodes:
            for handle in node.input_handles:
                if (isinstance(handle, lp.CourierHandle)
                        and id(handle._address) in addresses):  # noqa: SLF001
                    handle.set_client_kwargs(**{**handle._kwargs,  # noqa: SLF001
                                                "call_timeout": float(timeout_s)})
                    bounded += 1
    if not bounded:
        raise ValueError(f"no node of the program takes a handle to its {group!r} group")
    return program


def interrupting_signal(code: int) -> int | None:
    """The signal that stopped a launch whose exit code is `code` (None: not a stop from
    outside)."""
    return code - 128 if code > 128 and code - 128 in _STOP_SIGNALS else None


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_only_recorded() -> Iterator[list[int]]:
    """SIGINT/SIGTERM only append to the yielded list (in the main thread; elsewhere the
    handlers are left alone); the previous handlers come back on exit."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in _STOP_SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def launch_and_watch(program, *, launch_type: str, status_dir: str,
                     timeout_s: float | None = None, poll_s: float = 0.5) -> int:
    """Launches `program` ('local_mp' or 'local_mt') and waits for its end without hanging.

    Returns the exit code described in the module docstring; failures are logged and printed
    to stderr with the node's name and error.
    """
    if launch_type not in ("local_mp", "local_mt"):
        raise ValueError(f"launch_type must be 'local_mp' or 'local_mt', got {launch_type!r} "
                         "(test_mt needs a test case: call lp.launch yourself)")
    with _signals_only_recorded() as received, node_output.launcher_quiet(node_output.quiet()):
        return _launch_and_watch(program, launch_type, status_dir, timeout_s, poll_s, received)


def _launch_and_watch(program, launch_type: str, status_dir: str, timeout_s: float | None,
                      poll_s: float, received: list[int]) -> int:
    import launchpad as lp

    kwargs = {"terminal": "current_terminal"} if launch_type == "local_mp" else {}
    # Plain when the output is not a terminal, or to drop the noise (quiet; decorate_output
    # cannot filter).
    with node_output.plain_node_output(launch_type == "local_mp"
                                       and (node_output.quiet() or not sys.stdout.isatty())):
        manager = lp.launch(program, launch_type=launch_type, **kwargs)
    if launch_type == "local_mp":
        # Launchpad's manager SIGKILLs nodes that outlive the termination notice and, by
        # default, its own process too; here that process is our caller, which must live on
        # to report and return.  (Thread workers, local_mt, cannot be killed apart from it.)
        manager._kill_main_thread = False  # noqa: SLF001 -- no public switch in 0.5.0
    processes = node_output.node_processes() if launch_type == "local_mp" else {}
    if launch_type == "local_mp" and not processes:
        _log.warning("no node processes found under the launcher; watching records only")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    code, message = None, ""
    while code is None:
        failures = read_failures(status_dir)
        if failures:
            code, message = EXIT_NODE_FAILED, _describe(failures)
            break
        if manager.wait_for_stop(0) or received:
            # Stopping: a node called lp.stop() (normal end or failure) or a signal arrived.
            # A failing node writes its record before it calls lp.stop(): look once more.
            time.sleep(poll_s)
            code, message = _outcome(status_dir, EXIT_INTERRUPTED,
                                     "the program was stopped before its end")
            break
        ended = [title for title, process in processes.items()
                 if node_output.process_ended(process)]
        if ended:
            time.sleep(2 * poll_s)  # a failing node may still be writing its record
            code, message = _outcome(
                status_dir, EXIT_NODE_FAILED,
                f"node {', '.join(sorted(ended))} exited without reporting an error "
                "(killed, out of memory, or a crash in native code?)")
            break
        if deadline is not None and time.monotonic() > deadline:
            code, message = EXIT_TIMEOUT, f"the program did not end within {timeout_s:.0f} s"
            break
        time.sleep(poll_s)
    _stop_all(manager, processes)
    if code == EXIT_INTERRUPTED:
        # The first signal from outside (a node's lp.stop() is a SIGTERM too, but then a done
        # or failure record decided the code).
        code = 128 + (received[0] if received else signal.SIGINT)
        _log.info("launch stopped by signal %d: %s", code - 128, message)
    elif message:
        print(f"[scaled-ql] launch failed ({code}): {message}", file=sys.stderr, flush=True)
    return code


def _outcome(status_dir: str, otherwise: int, why: str) -> tuple[int, str]:
    """The exit code once the program is ending: a recorded failure, a recorded normal end, or
    (neither) `otherwise` with `why`."""
    failures = read_failures(status_dir)
    if failures:
        return EXIT_NODE_FAILED, _describe(failures)
    if is_done(status_dir):
        return EXIT_OK, ""
    return otherwise, why


def _describe(failures: list[dict]) -> str:
    first = failures[0]
    others = [f["node"] for f in failures[1:]]
    text = f"node {first['node']} failed: {first['error']}"
    if others:
        text += f" (then also: {', '.join(others)})"
    return text + "\n" + first.get("traceback", "")


def _stop_all(manager, processes: dict) -> None:
    """Asks every node to stop, waits (Launchpad kills stragglers), then reaps what is left."""
    import psutil

    if not manager.wait_for_stop(0):
        manager.stop_and_wait()
    else:
        manager.wait(raise_error=False)
    for process in processes.values():  # belt and braces: nothing of ours survives
        try:
            for child in process.children(recursive=True):
                child.kill()
            process.kill()
        except psutil.NoSuchProcess:
            pass
        with contextlib.suppress(psutil.Error, ChildProcessError):
            process.wait(timeout=5)
