"""The `scaled-ql` command line.

Each subcommand lives in its own module under `scaled_ql.cli` and defines
`register(subparsers) -> None`, which adds an argparse sub-parser and makes its `run(args) ->
int` the command with `common.command` (which also maps config fields to the flags, for
errors).  Heavy imports (TF, JAX, ALE) happen inside `run`, so `scaled-ql --help` stays fast.

Every subcommand reports a user error the same way: one line `scaled-ql COMMAND: error: ...`
on stderr (argparse's own errors too, after the usage line) and exit status 2.
"""

import os
import signal
import sys
from typing import Sequence

from scaled_ql._quiet import is_the_command  # light: no third-party import

# Order = order in `scaled-ql --help`.
_COMMAND_MODULES: tuple[str, ...] = ("demo", "pretrain", "finetune_offline", "finetune_online",
                                     "evaluate", "report", "games", "collect", "data")


def _prog(argv: Sequence[str]) -> str:
    """The command as typed: `scaled-ql` and the first argument that names a subcommand."""
    commands = {name.replace("_", "-") for name in _COMMAND_MODULES}
    return " ".join(["scaled-ql", *[arg for arg in argv if arg in commands][:1]])


def _stopped_at_startup(signum, frame) -> None:
    """Ends the process with the one line every command prints for a signal during its
    startup, before the command's own handling takes over (`interruptible`)."""
    name = signal.Signals(signum).name
    line = (f"{_prog(sys.argv[1:])}: stopped by {name} during startup; nothing saved; run the "
            "command again\n")
    # To the file descriptor: sys.stderr may be redirected (gym's import notice is captured).
    os.write(2, line.encode())
    os._exit(128 + signum)  # nothing to clean up yet: imports and argument parsing


# A signal while the command starts (the imports below, the subcommands' modules, argument
# parsing) ends it with one line and 128 + signal instead of a traceback.  Installed before
# anything heavy is imported: `import scaled_ql` imports no JAX (its compatibility aliases
# wait for JAX's import), so only Python's own start, a tenth of a second, is left out.
_STARTUP_HANDLERS = ({signum: signal.signal(signum, _stopped_at_startup)
                      for signum in (signal.SIGINT, signal.SIGTERM)}
                     if is_the_command() else {})

import importlib  # noqa: E402
import importlib.metadata  # noqa: E402

from scaled_ql._quiet import QUIET_ENV, loud_third_party, quiet_third_party
from scaled_ql.cli.common import Parser, add_verbose

DISTRIBUTION = "scaled-ql"  # pyproject.toml's project name


def version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when the package
    runs from a source tree that was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    parser = Parser(
        prog="scaled-ql",
        description="Scaled Q-Learning (Kumar et al., ICLR 2023) on DeepMind Acme.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"scaled_ql.cli.{name}").register(subparsers)
    add_verbose(parser)
    return parser


# Errors caused by the user's input (a bad game name, a missing dataset, a run directory in
# use, ...): printed as one line naming what is wrong (config fields named by their flags),
# exit status 2.  Anything else is a bug and keeps its traceback.  SCALED_QL_DEBUG=1 shows
# tracebacks for these too.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)


def main(argv: Sequence[str] | None = None) -> int:
    # The pinned TF 2.8 / TFDS / Acme stack raises DeprecationWarnings (distutils, jax.tree_map)
    # at import and on every call site; they are for those projects' maintainers, not users.
    # Set after gym's import (its logger sets DeprecationWarnings to "once") and before the
    # parser is built (building it imports the subcommands' modules).  Third-party logging
    # too, here and (through environment variables) in the processes the command starts;
    # --verbose turns both back on before the command imports its stack.
    os.environ.pop(QUIET_ENV, None)  # a command starts quiet, whatever its parent asked for
    quiet_third_party()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        loud_third_party()
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    # The command takes over the signals (`interruptible`), or leaves Python's default.
    for signum, handler in _STARTUP_HANDLERS.items():
        signal.signal(signum, handler)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        # Ctrl-C in a command without its own handling (evaluate, report, ...): one line.
        print(f"{args.func.prog}: stopped by SIGINT; run the command again", file=sys.stderr,
              flush=True)
        return 128 + signal.SIGINT
    except USER_ERRORS as error:
        if os.environ.get("SCALED_QL_DEBUG"):
            raise
        args.func.error(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
