"""The `scaled-ql` command line.

Each subcommand lives in its own module under `scaled_ql.cli` and defines
`register(subparsers) -> None`, which adds an argparse sub-parser whose `func(args) -> int`
runs the command.  Heavy imports (TF, JAX, ALE) happen inside `func`, so `scaled-ql --help`
stays fast.
"""

import argparse
import contextlib
import importlib
import io
import os
import sys
import warnings
from typing import Sequence

# Order = order in `scaled-ql --help`.
_COMMAND_MODULES: tuple[str, ...] = ("demo", "pretrain", "finetune_offline", "finetune_online",
                                     "evaluate", "report", "games", "collect", "data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaled-ql",
        description="Scaled Q-Learning (Kumar et al., ICLR 2023) on DeepMind Acme.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"scaled_ql.cli.{name}").register(subparsers)
    return parser


# Errors caused by the user's input (a bad game name, a missing dataset, a run directory in
# use, ...): printed as one line naming what is wrong, exit status 2.  Anything else is a bug
# and keeps its traceback.  SCALED_QL_DEBUG=1 shows tracebacks for these too.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)


def _quiet_gym_notice() -> None:
    """Acme 0.4.0 imports `gym` (0.23.1, pinned for it), which prints a three-line "please
    upgrade to Gymnasium" notice on import; this project uses ale-py directly.  Import it once
    with that print captured, so it does not land in every command's output (an import error
    would still raise)."""
    if "gym" in sys.modules:
        return
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import gym  # noqa: F401
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    # The pinned TF 2.8 / TFDS / Acme stack raises DeprecationWarnings (distutils, jax.tree_map)
    # at import and on every call site; they are for those projects' maintainers, not users.
    # Set after gym's import (its logger sets DeprecationWarnings to "once") and before the
    # parser is built (building it imports the subcommands' modules).
    _quiet_gym_notice()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        if os.environ.get("SCALED_QL_DEBUG"):
            raise
        print(f"scaled-ql {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
