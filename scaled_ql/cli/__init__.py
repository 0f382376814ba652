"""The `scaled-ql` command line.

Each subcommand lives in its own module under `scaled_ql.cli` and defines
`register(subparsers) -> None`, which adds an argparse sub-parser whose `func(args) -> int`
runs the command.  Heavy imports (TF, JAX, ALE) happen inside `func`, so `scaled-ql --help`
stays fast.
"""

import argparse
import importlib
import os
import sys
from typing import Sequence

from scaled_ql._quiet import quiet_third_party

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


def main(argv: Sequence[str] | None = None) -> int:
    # The pinned TF 2.8 / TFDS / Acme stack raises DeprecationWarnings (distutils, jax.tree_map)
    # at import and on every call site; they are for those projects' maintainers, not users.
    # Set after gym's import (its logger sets DeprecationWarnings to "once") and before the
    # parser is built (building it imports the subcommands' modules).
    quiet_third_party()
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
