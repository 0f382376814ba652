"""How the nodes of a `local_mp` launch print, and how the launcher finds their processes.

Launchpad's 'current_terminal' launch runs each node as `decorate_output ... | sed`, which
colours every line with ANSI codes.  When our stdout is not a terminal (a log file, a pipe, a
test's capture), or third-party noise is off (`scaled-ql` without --verbose),
`supervision.launch_and_watch` runs the nodes through `launch_plain` instead: the same
`[label/index] ` prefix, no colour codes, and (quiet) without Reverb's C++ logs, courier's
"Binding" lines and Launchpad's stop countdown, here and in the nodes.  `node_processes` finds
the node processes under either wrapper.
"""

import contextlib
import os
from collections.abc import Iterator

# A node's output, stderr included, prefixed with its title ($1) and no colour codes: what
# Launchpad's `decorate_output` does, less the ANSI colours (and signals ignored likewise).
# Quiet (`scaled-ql` without --verbose), the sed program first drops what is noise to a user:
# Reverb's C++ server logs (printed whatever the log level), the courier "Binding: METHOD"
# INFO lines, Launchpad's "Waiting for workers to stop for Ns." countdown (no newline) and its
# two lines for a Ctrl-C (which a terminal sends to every node too).
PLAIN_OUTPUT = "plain_output"
PLAIN_SCRIPT = "trap '' EXIT TERM QUIT INT; exec \"${@:2}\" 2>&1 | sed -u \"%ss!^![$1] !\""
# (The countdown first: a line that follows it on the same line is judged on its own.)
NOISE_SED = (r"s/Waiting for workers to stop for [0-9]*s\.\r\?//g; /^\[reverb\/cc\//d; "
              r"/courier_utils\.py:[0-9]*\] Binding: /d; /^User-requested termination\./d; "
              r"/^Press CTRL+C to terminate immediately\./d; /^$/d; ")
# What Launchpad's worker manager prints to the launcher's stdout while it stops the program
# (kept: its warnings that workers did not stop in time and that it kills them).
LAUNCHER_NOISE = ("User-requested termination", "Press CTRL+C to terminate immediately",
                   "Waiting for workers to stop")


def quiet() -> bool:
    """Whether third-party noise is off (`scaled-ql` without --verbose; `scaled_ql._quiet`)."""
    from scaled_ql._quiet import QUIET_ENV

    return os.environ.get(QUIET_ENV) == "1"


def plain_script() -> str:
    return PLAIN_SCRIPT % (NOISE_SED if quiet() else "")


@contextlib.contextmanager
def launcher_quiet(enabled: bool) -> Iterator[None]:
    """While `enabled`, the worker manager's progress lines while stopping (`LAUNCHER_NOISE`)
    are not printed."""
    if not enabled:
        yield
        return
    from launchpad.launch import worker_manager

    def filtered_print(*args, **kwargs):
        if not any(noise in str(arg) for arg in args for noise in LAUNCHER_NOISE):
            print(*args, **kwargs)

    # The module calls the builtin print: a module global of that name takes its place (no
    # public switch in 0.5.0).
    worker_manager.print = filtered_print
    try:
        yield
    finally:
        del worker_manager.print


def launch_plain(commands_to_launch):
    """Launchpad's 'current_terminal' local launch with each node's lines prefixed by its
    title in plain text (`PLAIN_SCRIPT`); returns the worker manager as Launchpad's does."""
    import atexit
    import subprocess

    from launchpad.launch import worker_manager

    manager = worker_manager.WorkerManager()
    atexit.register(manager.wait)
    for command in commands_to_launch:
        process = subprocess.Popen(
            ["/bin/bash", "-c", plain_script(), PLAIN_OUTPUT, command.title,
             *command.command_as_list], env={**os.environ, **command.env_overrides})
        manager.register_existing_process(command.title, process.pid)
    return manager


@contextlib.contextmanager
def plain_node_output(plain: bool) -> Iterator[None]:
    """While `plain`, Launchpad's 'current_terminal' launch runs nodes through
    `launch_plain` instead of `decorate_output`, which colours every line with ANSI codes
    (noise in a log file or a pipe: `launch_and_watch` asks for it when stdout is not a
    terminal)."""
    if not plain:
        yield
        return
    from launchpad.launch.run_locally import run_locally

    launchers = run_locally._LOCAL_LAUNCHER_MAP  # noqa: SLF001 -- no public hook in 0.5.0
    saved = launchers[run_locally.SEPARATE_TERMINAL_CURRENT_TERMINAL]
    launchers[run_locally.SEPARATE_TERMINAL_CURRENT_TERMINAL] = launch_plain
    try:
        yield
    finally:
        launchers[run_locally.SEPARATE_TERMINAL_CURRENT_TERMINAL] = saved


def node_processes() -> dict[str, object]:
    """local_mp: the launcher's children that run nodes, by node title ('label/index')."""
    import psutil

    nodes = {}
    for child in psutil.Process(os.getpid()).children():
        try:
            cmdline = child.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        # ['/bin/bash', '.../decorate_output', COLOUR, TITLE, python, process_entry.py, ...]
        # or, plain: ['/bin/bash', '-c', PLAIN_SCRIPT, 'plain_output', TITLE, python, ...]
        names = [os.path.basename(part) for part in cmdline]
        for wrapper, offset in (("decorate_output", 2), (PLAIN_OUTPUT, 1)):
            if wrapper in names and len(cmdline) > names.index(wrapper) + offset:
                nodes[cmdline[names.index(wrapper) + offset]] = child
    return nodes


def process_ended(process) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
