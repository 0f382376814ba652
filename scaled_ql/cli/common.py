"""What every `scaled-ql` subcommand shares: help that shows each option's default, errors
in the words the user typed, and `--verbose`.

Help: `Parser` (and so every sub-parser: argparse makes them of the parent's class) formats
help with `HelpFormatter`, which appends "(default: X)" to an option's help unless the help
already says its default.  An option whose default is None (unset: the suite's, the
checkpoint's, ...) says in its help what None stands for; "(default: None)" would tell the
user nothing.

Errors: the library's configs name their fields (`PretrainConfig.steps must be >= 1`), which is
right for a library user and wrong for someone who typed `--steps 0`.  Each subcommand's
`Command` carries a field -> flag mapping built next to its parser (`command(...)`), and
`scaled_ql.cli.main` prints every user error through `Command.user_words`, so the message names
the flag (`--steps must be >= 1`).  The configs keep raising with field names.

Output: third-party logging (absl, Orbax, Launchpad, TensorFlow, gRPC) and warnings are quiet
by default (`scaled_ql._quiet`); `--verbose`, accepted before the subcommand and after it
(`add_verbose`), brings them back.
"""

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Mapping


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: %(default)s)" to an option's help unless the help mentions its
    default already, the option is required, or it is a switch (store_true: off by default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.required or "default" in text
                or any(action.default is unset for unset in (None, False, argparse.SUPPRESS))):
            # (`is`, not `in`: a default of 0 equals False and is shown.)
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults (`HelpFormatter`); sub-parsers made with
    `add_subparsers().add_parser` are Parsers too."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


# "PretrainConfig.steps", "agent.network.torso", "eval_every", "steps": a config class (optional),
# then a field or dotted config key; not part of a path, a flag or a longer word.
_NAME = re.compile(r"(?<![\w./=-])(?:([A-Z]\w*)\.)?([a-z_]\w*(?:\.[a-z_]\w*)*)(?![\w/-])")
# "(pass overwrite=True)": a keyword argument of a switch.
_SWITCH = re.compile(r"(?<![\w.-])([a-z_]\w*)=True\b")


def _is_listed_setting(message: str, match: re.Match) -> bool:
    """Whether `match` is a setting in a list such as `run_dir.check_resume`'s ("...: steps:
    must be ...; eval_every: was ...")."""
    return (message.startswith(": ", match.end())
            and message[:match.start()].endswith((": ", "; ")))


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: what it runs, and how its errors name the flags.

    Attributes:
      run: `run(args) -> exit status`.
      prog: the command as typed ("scaled-ql pretrain"): errors print as "PROG: error: ...".
      flags: config field (or dotted config key, or the parser's own dest) -> flag.
      replacements: (text, replacement) pairs applied to error messages first, for messages
        that suggest something this command does not have.
    """

    run: Callable[[argparse.Namespace], int]
    prog: str
    flags: Mapping[str, str]
    replacements: tuple[tuple[str, str], ...] = ()

    def __call__(self, args: argparse.Namespace) -> int:
        return self.run(args)

    def user_words(self, message: str) -> str:
        """`message` with config field names replaced by this command's flags.

        A field qualified by its config class (`PretrainConfig.steps`), a snake_case or dotted
        name (`replay_max_size`, `agent.network.torso`: its last part) and a bare word that
        starts the message (`checkpoints must be ...`) become the flag when this command has
        one for it; `overwrite=True` becomes `--overwrite`.  Anything else is left as it is.
        """
        for old, new in self.replacements:
            message = message.replace(old, new)

        def flag(match: re.Match) -> str:
            owner, name = match.group(1), match.group(2)
            qualified = (owner is not None or "_" in name or "." in name or match.start() == 0
                         or _is_listed_setting(message, match))
            found = self.flags.get(name) or self.flags.get(name.rsplit(".", 1)[-1])
            return found if qualified and found else match.group(0)

        message = _NAME.sub(flag, message)
        return _SWITCH.sub(lambda m: self.flags.get(m.group(1), m.group(0)), message)

    def error(self, message: str) -> None:
        """Prints `message` (in the user's words) the way every subcommand reports errors."""
        print(f"{self.prog}: error: {self.user_words(message)}", file=sys.stderr)


VERBOSE_HELP = ("show third-party logging (absl/Orbax/Launchpad INFO, TensorFlow and gRPC "
                "logs, DeprecationWarnings), quiet by default")


def add_verbose(parser: argparse.ArgumentParser, default=False) -> None:
    """Adds `--verbose` to `parser` and to every subcommand's parser under it, so it may be
    given before or after the subcommand (`args.verbose`)."""
    subparsers = [action for action in parser._actions  # no public list of actions
                  if isinstance(action, argparse._SubParsersAction)]
    parser.add_argument("--verbose", action="store_true", default=default, help=VERBOSE_HELP)
    for action in subparsers:
        for sub in action.choices.values():
            # A sub-parser's default would overwrite `scaled-ql --verbose COMMAND`: none there.
            add_verbose(sub, default=argparse.SUPPRESS)


def command(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
            fields: Mapping[str, str] | None = None,
            replacements: tuple[tuple[str, str], ...] = ()) -> Command:
    """Makes `run` the sub-parser's command (`args.func`) and returns it.

    Every option's dest maps to its flag; `fields` adds the config fields whose names differ
    from the dest (`{"data_dir": "--data"}`).
    """
    flags = {action.dest: _long_flag(action)
             for action in parser._actions  # argparse has no public list of its actions
             if action.option_strings and action.dest != "help"}
    result = Command(run, parser.prog, {**flags, **(fields or {})}, replacements)
    parser.set_defaults(func=result)
    return result


def _long_flag(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")),
                action.option_strings[0])
