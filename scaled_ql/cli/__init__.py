"""The `scaled-ql` command line.

Each subcommand lives in its own module under `scaled_ql.cli` and defines
`register(subparsers) -> None`, which adds an argparse sub-parser whose `func(args) -> int`
runs the command.  Heavy imports (TF, JAX, ALE) happen inside `func`, so `scaled-ql --help`
stays fast.
"""

import argparse
import importlib
import sys
from typing import Sequence

# Order = order in `scaled-ql --help`.
_COMMAND_MODULES: tuple[str, ...] = ("games", "collect", "data", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaled-ql",
        description="Scaled Q-Learning (Kumar et al., ICLR 2023) on DeepMind Acme.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"scaled_ql.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
