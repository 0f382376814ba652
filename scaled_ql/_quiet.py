"""Silencing the pinned stack's import-time noise, for the command line and its workers.

The pinned TF 2.8 / TFDS / Acme stack raises DeprecationWarnings (distutils, jax.tree_map) at
import and on every call site, gym 0.23.1 (imported by Acme) prints a three-line "please upgrade
to Gymnasium" notice, and TFDS logs an absl warning per boolean feature.  These are for those
projects' maintainers, not our users.  `quiet_third_party()` is called by `scaled-ql` at start
and by the worker processes it spawns (collection, demo training), which start afresh.
"""

import contextlib
import io
import logging
import sys
import warnings


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
    # After gym's import: its logger resets DeprecationWarnings to "once".
    _quiet_gym_notice()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("absl").setLevel(logging.ERROR)
