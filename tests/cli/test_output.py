"""Quiet output: `scaled-ql` prints its own lines, not third-party logging, unless --verbose.

Real subprocesses (what a user's terminal or a log file gets): `evaluate` on a tiny MinAtar
checkpoint (Orbax logs INFO through absl when it restores; TensorFlow and JAX log at import),
and a child process started the way Launchpad's `local_mp` starts a node (absl's `app.run`,
which turns absl INFO on, then `import scaled_ql`) with the environment a quiet or a verbose
`scaled-ql` hands its children.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from scaled_ql import _quiet
from scaled_ql.cli import build_parser
from tests.cli.test_help import PARSERS
from tests.cli.tiny_run import save_tiny_run

ANSI = re.compile(r"\x1b\[")
THIRD_PARTY = re.compile(r"^(INFO|WARNING):(absl|jax|tensorflow)|^I\d{4} |DeprecationWarning",
                         re.MULTILINE)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return save_tiny_run(tmp_path_factory.mktemp("quiet") / "run")


def user_environment() -> dict[str, str]:
    """This process's environment less what an earlier in-process `main()` set."""
    env = dict(os.environ)
    for name in (_quiet.QUIET_ENV, "GRPC_VERBOSITY", "PYTHONWARNINGS"):
        env.pop(name, None)
    return env


def scaled_ql(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scaled_ql.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=300, env=user_environment())


@pytest.mark.slow
def test_evaluate_is_quiet_by_default_and_verbose_on_request(run_dir, tmp_path):
    argv = ["evaluate", "--checkpoint", run_dir, "--episodes", "1", "--max-frames", "3",
            "--workers", "0", "--no-progress"]
    quiet = scaled_ql(*argv, "--out", tmp_path / "quiet.json")
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert not THIRD_PARTY.search(output), output
    assert not ANSI.search(output)
    assert quiet.stdout.startswith("| game | mean return |")
    assert quiet.stderr == ""

    verbose = scaled_ql(*argv, "--out", tmp_path / "verbose.json", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO:absl:" in verbose.stderr  # Orbax's restore
    assert "DeprecationWarning" in verbose.stderr  # TensorFlow's import
    assert verbose.stdout == quiet.stdout.replace("quiet.json", "verbose.json")


WORKER = textwrap.dedent("""
    import sys
    from scaled_ql._quiet import quiet_third_party

    quiet_third_party()  # what collection and demo workers call at start
    from absl import logging
    logging.warning("absl warning from a worker")
    print("worker done")
""")


@pytest.mark.parametrize("verbose", [False, True])
def test_workers_that_quiet_themselves_follow_their_command(verbose):
    env = user_environment()
    env[_quiet.QUIET_ENV] = "0" if verbose else "1"
    child = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True,
                           timeout=120, env=env)
    assert child.returncode == 0, child.stderr
    assert child.stdout == "worker done\n"
    assert ("absl warning from a worker" in child.stderr) == verbose, child.stderr


NODE = textwrap.dedent("""
    from absl import app, logging

    def main(_):
        import scaled_ql  # a Launchpad node unpickles its function: scaled_ql gets imported
        logging.info("absl info from a node")
        print("node done")

    app.run(main)
""")


@pytest.mark.parametrize("verbose", [False, True])
def test_child_processes_inherit_the_setting(verbose):
    """What Launchpad's local_mp passes a node is this process's environment (and its own
    flags): the child is as quiet as the command that started it."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(user_environment())
        _quiet.quiet_third_party()
        if verbose:
            _quiet.loud_third_party()
        env = dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _quiet.quiet_third_party()  # as the test session had it (pytest's own filters stay)
    assert env[_quiet.QUIET_ENV] == ("0" if verbose else "1")
    child = subprocess.run([sys.executable, "-c", NODE], capture_output=True, text=True,
                           timeout=120, env=env)
    assert child.returncode == 0, child.stderr
    assert child.stdout == "node done\n"
    assert ("absl info from a node" in child.stderr) == verbose, child.stderr


def test_every_subcommand_takes_verbose_before_or_after_it():
    parser = build_parser()
    for prog in PARSERS:
        words = prog.split()[1:]
        assert parser.parse_args([*words, "--verbose", *_required(prog)]).verbose is True
        assert parser.parse_args(["--verbose", *words, *_required(prog)]).verbose is True
        assert parser.parse_args([*words, *_required(prog)]).verbose is False


def _required(prog: str) -> list[str]:
    """A value for each required argument of `prog` (parsing only: no value is used)."""
    values = []
    for action in PARSERS[prog]._actions:  # argparse has no public list of its actions
        if not action.option_strings:
            values.append("1")
        elif action.required:
            values += [action.option_strings[-1], "1"]
    for group in PARSERS[prog]._mutually_exclusive_groups:
        if group.required:  # collect: --steps or --episodes
            values += [group._group_actions[0].option_strings[-1], "1"]
    return values
