"""`scaled-ql --help`, `--version` and every subcommand's `--help`: each option shows its
default (and its unit where it counts steps, frames or episodes)."""

import argparse
import importlib.metadata
import re
import subprocess
import sys

import pytest

from scaled_ql.cli import build_parser

# Options that count something say what they count.
_COUNT = re.compile(r"steps?|every|frames|episodes|period")
_UNITS = ("SGD step", "environment step", "learner step", "emulator frame", "frames",
          "episode")


def leaf_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser ("scaled-ql data info", ...), by prog."""
    found = {}
    for action in parser._actions:  # argparse lists sub-parsers only in its actions
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(leaf_parsers(sub) or {sub.prog: sub})
    return found


def option_help(help_text: str, flag: str) -> str:
    """The help of option `flag` as `--help` prints it (its lines, joined)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"  {flag}\b", line))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" " * 6) or line.lstrip().startswith("-"):
            break
        entry.append(line)
    return " ".join(" ".join(entry).split())


PARSERS = leaf_parsers(build_parser())


def test_every_subcommand_is_covered():
    assert set(PARSERS) == {f"scaled-ql {name}" for name in (
        "demo", "pretrain", "finetune-offline", "finetune-online", "evaluate", "report", "games",
        "collect", "data info", "data validate")}


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_option_shows_its_default(prog):
    parser = PARSERS[prog]
    text = parser.format_help()
    assert "(default: None)" not in text
    checked = 0
    for action in parser._actions:
        if (not action.option_strings or isinstance(action, argparse._HelpAction)
                or action.help == argparse.SUPPRESS):  # a hidden old name (evaluate --step)
            continue
        flag = action.option_strings[-1]
        entry = option_help(text, flag)
        assert action.help, f"{prog} {flag} has no help"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            continue  # a switch: off unless given
        if not action.required:
            assert "default" in entry, f"{prog} {flag} shows no default: {entry!r}"
            checked += 1
        if _COUNT.search(flag):
            assert any(unit in entry for unit in _UNITS), f"{prog} {flag} has no unit: {entry!r}"
    assert checked or prog in ("scaled-ql data info", "scaled-ql data validate")


def test_defaults_shown_are_the_parsers_defaults():
    text = PARSERS["scaled-ql pretrain"].format_help()
    assert "(default: 256)" in option_help(text, "--batch-size")
    assert "(default: 6.25e-05)" in option_help(text, "--learning-rate")
    assert "(default: 0)" in option_help(text, "--eval-every")  # a 0 default is still shown
    assert "the suite's" in option_help(text, "--eval-max-frames")  # None, said in words
    # A hand-written default is not repeated.
    assert option_help(text, "--cql-alpha").count("default") == 1


def test_version_prints_the_installed_version():
    result = subprocess.run([sys.executable, "-m", "scaled_ql.cli", "--version"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"scaled-ql {importlib.metadata.version('scaled-ql')}\n"
