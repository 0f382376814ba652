"""What `scaled-ql` shows of a `local_mp` program's output: each node's lines go through
the plain wrapper (real bash and sed, as `node_output.launch_plain` runs them), which, quiet
(no --verbose), drops Reverb's C++ logs, courier's "Binding" lines and Launchpad's stop
countdown and Ctrl-C lines; the launcher's own countdown is dropped likewise.  `--verbose`
keeps everything."""

import subprocess

import pytest

from scaled_ql._quiet import QUIET_ENV
from scaled_ql.launchpad_programs import node_output

# A node's output as Launchpad 0.5.0 and Reverb print it; the countdown has no newline.
NODE_OUTPUT = ("Waiting for workers to stop for 10s.\r[reverb/cc/platform/default/server.cc:84] "
               "Shutting down replay server\n"
               "[reverb/cc/platform/default/server.cc:71] Started replay server on port 4\n"
               "I1127 04:24:18.851308 1400 courier_utils.py:50] Binding: get_counts\n"
               "step 3 done\n"
               "User-requested termination. Asking workers to stop.\n"
               "Press CTRL+C to terminate immediately.\n"
               "Waiting for workers to stop for 10s.\rWaiting for workers to stop for 9s.\r")


def _through_wrapper(monkeypatch, quiet: str) -> str:
    monkeypatch.setenv(QUIET_ENV, quiet)
    return subprocess.run(
        ["/bin/bash", "-c", node_output.plain_script(), node_output.PLAIN_OUTPUT,
         "replay/0", "printf", "%s", NODE_OUTPUT],
        capture_output=True, text=True, check=True, timeout=30).stdout


def test_quiet_node_output_keeps_only_the_nodes_own_lines(monkeypatch):
    assert _through_wrapper(monkeypatch, "1") == "[replay/0] step 3 done\n"


def test_verbose_node_output_keeps_everything(monkeypatch):
    output = _through_wrapper(monkeypatch, "0")
    assert output.count("[reverb/cc/") == 2 and "Binding: get_counts" in output
    assert output.count("Waiting for workers to stop") == 3
    assert "[replay/0] Press CTRL+C to terminate immediately.\n" in output
    assert output.startswith("[replay/0] Waiting") and "[replay/0] step 3 done\n" in output


@pytest.mark.parametrize("quiet", [True, False])
def test_launcher_countdown(capsys, quiet):
    from launchpad.launch import worker_manager

    # The worker manager's own print calls, run in its module as it runs them.
    code = ("print('User-requested termination. Asking workers to stop.');"
            "print('Waiting for workers to stop for 3s.', end='\\r');"
            "print('Killing entire runtime.')")
    with node_output.launcher_quiet(quiet):
        exec(code, vars(worker_manager))  # noqa: S102
    out = capsys.readouterr().out
    assert "Killing entire runtime." in out  # a warning: always shown
    assert ("Waiting for workers" in out) is not quiet
    assert ("User-requested termination" in out) is not quiet
    assert not hasattr(worker_manager, "print")  # the builtin again after the launch
