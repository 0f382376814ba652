"""Silencing the pinned stack's noise, for the command line and the processes it starts.

The pinned TF 2.8 / TFDS / Acme stack raises DeprecationWarnings (distutils, jax.tree_map) at
import and on every call site, gym 0.23.1 (imported by Acme) prints a three-line "please upgrade
to Gymnasium" notice, TFDS logs an absl warning per boolean feature, and Orbax, Launchpad and
Reverb log INFO lines through absl (150 to 330 of them in a `--launch local_mp` run).  These are
for those projects' maintainers, not our users.

`quiet_third_party()` is called by `scaled-ql` at start (whatever SCALED_QL_QUIET it
inherited: `scaled_ql.cli.main` clears it first).  It also sets environment variables
that the processes the command starts inherit (Launchpad's `local_mp` node processes get this
process's environment; collection and demo workers too):

  SCALED_QL_QUIET=1         importing `scaled_ql` in such a process (not in a `scaled-ql`
                            command: see `is_the_command`) applies the same settings
                            (a Launchpad node runs under absl's `app.run`, which turns absl
                            INFO on before it unpickles the node, which imports scaled_ql);
  TF_CPP_MIN_LOG_LEVEL=2    TensorFlow's C++ INFO and WARNING logs (errors still print);
  GRPC_VERBOSITY=ERROR      gRPC's (Reverb's, Launchpad's courier) C++ logs;
  PYTHONWARNINGS            DeprecationWarnings raised while a child starts, before scaled_ql
                            is imported; multiprocessing's resource tracker's "leaked
                            shared_memory" warning (a process killed mid-evaluation: the
                            tracker unlinks its shared memory, as it should, and says so).

`loud_third_party()` undoes it (`scaled-ql ... --verbose`) for this process and its children.
Variables the user set are left as they are.
"""

import contextlib
import io
import logging
import os
import sys
import warnings

QUIET_ENV = "SCALED_QL_QUIET"
_CHILD_ENV = {  # name: (quiet, loud)
    "TF_CPP_MIN_LOG_LEVEL": ("2", "0"), "GRPC_VERBOSITY": ("ERROR", "INFO"),
    "PYTHONWARNINGS": ("ignore::DeprecationWarning,ignore:resource_tracker:UserWarning", None)}
_QUIET_FILTER = ("ignore", None, DeprecationWarning, None, 0)


def is_the_command() -> bool:
    """Whether this process is `scaled-ql` itself (the console script or `python -m
    scaled_ql.cli`), not a process it started or a program that imports the package (a test,
    a script).  The command quiets itself once its signal handling is in place."""
    argv = list(getattr(sys, "orig_argv", ()))
    return (os.path.basename(sys.argv[0]) == "scaled-ql"
            or any(argv[i:i + 2] == ["-m", "scaled_ql.cli"] for i in range(len(argv))))


def _quiet_gym_notice() -> None:
    """Imports gym once with its notice captured (an import error would still raise)."""
    if "gym" in sys.modules:
        return
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import gym  # noqa: F401
    except ImportError:
        pass


def quiet_third_party() -> None:
    """Third-party warnings and INFO logs off, here and in the processes started from here;
    a no-op in a process started by `scaled-ql --verbose` (SCALED_QL_QUIET=0), so the workers
    that call this at start (collection, demo training) stay as verbose as their command."""
    if os.environ.get(QUIET_ENV) == "0":
        return
    os.environ[QUIET_ENV] = "1"
    for name, (quiet, _) in _CHILD_ENV.items():
        os.environ.setdefault(name, quiet)
    # After gym's import: its logger resets DeprecationWarnings to "once".
    _quiet_gym_notice()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if logging.getLogger().level < logging.WARNING:  # absl's app.run sets the root to INFO
        logging.getLogger().setLevel(logging.WARNING)


def loud_third_party() -> None:
    """Undoes `quiet_third_party` (the values it set; what the user set stays): absl INFO,
    DeprecationWarnings, TensorFlow's and gRPC's C++ logs, here and in child processes."""
    os.environ[QUIET_ENV] = "0"
    for name, (quiet, loud) in _CHILD_ENV.items():
        if os.environ.get(name) == quiet:
            if loud is None:
                del os.environ[name]
            else:
                os.environ[name] = loud
    with contextlib.suppress(ValueError):
        warnings.filters.remove(_QUIET_FILTER)
    logging.getLogger("absl").setLevel(logging.INFO)
    logging.getLogger().setLevel(logging.INFO)
