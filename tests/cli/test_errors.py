"""Errors in the user's words: every validation error of `scaled-ql` names the flag the user
typed (the configs, for library users, keep naming their fields), and every subcommand
reports errors the same way: `scaled-ql COMMAND: error: ...` on stderr, exit status 2.

Runs `scaled_ql.cli.main` in this process (its stderr and exit status are what a shell shows).
The bad values are caught before any data is read or any run directory is made.
"""

import pytest

from scaled_ql.cli import main
from tests.cli.test_help import PARSERS
from tests.cli.tiny_run import GAME, save_tiny_run
from tests.reliability import faults
from tests.runners.minatar import TINY_MINATAR_FLAGS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli(capsys, *argv) -> tuple[int, list[str]]:
    """Runs `scaled-ql ARGV`; returns (exit status, stderr lines)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


def one_error(capsys, prog: str, *argv) -> str:
    """Runs `scaled-ql ARGV`, checks the one-line error format; returns the message."""
    code, lines = cli(capsys, *argv)
    assert code == 2, lines
    assert lines, "no error printed"
    line = lines[-1]
    assert line.startswith(f"{prog}: error: "), line
    assert "Config" not in line, line  # no config class names on the command line
    return line.removeprefix(f"{prog}: error: ")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with one checkpoint of a tiny MinAtar network (no training: the
    commands below stop at their settings)."""
    return save_tiny_run(tmp_path_factory.mktemp("cli_errors") / "run")


def pretrain(tmp_path, *extra):
    return ["pretrain", "--data", tmp_path / "no_data", "--games", GAME, "--steps", 10,
            "--out", tmp_path / "run", "--no-progress", *TINY_MINATAR_FLAGS, *extra]


def finetune_offline(tmp_path, *extra):
    return ["finetune-offline", "--checkpoint", tmp_path / "no_run", "--game", GAME, "--data",
            tmp_path / "no_data", "--steps", 10, "--out", tmp_path / "ft", "--no-progress", *extra]


def finetune_online(tmp_path, *extra):
    return ["finetune-online", "--checkpoint", tmp_path / "no_run", "--game", GAME,
            "--env-steps", 10, "--out", tmp_path / "online", *extra]


# (command builder, bad flag and value, the text the message starts with)
BAD_VALUES = [
    (pretrain, ("--steps", 0), "--steps must be >= 1, got 0"),
    (pretrain, ("--batch-size", 0), "--batch-size: must be >= 1, got 0"),
    (pretrain, ("--eval-episodes", 0), "--eval-episodes must be >= 1, got 0"),
    (pretrain, ("--learning-rate", 0), "--learning-rate: must be > 0, got 0.0"),
    (pretrain, ("--eval-every", -1), "--eval-every must be >= 0, got -1"),
    (pretrain, ("--checkpoint-every", 0), "--checkpoint-every must be >= 1, got 0"),
    (pretrain, ("--target-update-period", 0), "--target-update-period: must be >= 1"),
    (pretrain, ("--sgd-steps-per-call", 0), "--sgd-steps-per-call: must be >= 1"),
    (pretrain, ("--n-step", 0), "--n-step: must be >= 1, got 0"),
    (pretrain, ("--cql-alpha", -1), "--cql-alpha: must be >= 0, got -1.0"),
    (pretrain, ("--td-loss", "l1"), "--td-loss: got 'l1', expected one of"),
    (pretrain, ("--num-groups", 0), "--num-groups: must be >= 1, got 0"),
    (finetune_offline, ("--steps", 0), "--steps must be >= 1, got 0"),
    (finetune_offline, ("--eval-episodes", 0), "--eval-episodes must be >= 1, got 0"),
    (finetune_offline, ("--log-every", 0), "--log-every must be >= 1, got 0"),
    (finetune_offline, ("--eval-every", -5), "--eval-every must be >= 0, got -5"),
    (finetune_offline, ("--batch-size", 0), "--batch-size: must be >= 1, got 0"),
    (finetune_offline, ("--learning-rate", -1), "--learning-rate: must be > 0, got -1.0"),
    (finetune_offline, ("--target-update-period", 0), "--target-update-period: must be >= 1"),
    (finetune_online, ("--env-steps", 0), "--env-steps must be >= 1, got 0"),
    (finetune_online, ("--num-actors", 0), "--num-actors must be >= 1, got 0"),
    (finetune_online, ("--eval-episodes", 0), "--eval-episodes must be >= 1, got 0"),
    (finetune_online, ("--replay-size", 0), "--replay-size must be >= 1, got 0"),
    (finetune_online, ("--variable-update-period", 0),
     "--variable-update-period must be >= 1, got 0"),
    (finetune_online, ("--offline-ratio", 1.5), "--offline-ratio must be in [0, 1), got 1.5"),
    (finetune_online, ("--offline-ratio", 0.5), "--offline-ratio > 0 needs --offline-data"),
    (finetune_online, ("--online-cql-alpha", -1), "--online-cql-alpha must be >= 0, got -1.0"),
    (finetune_online, ("--train-epsilon", 2), "--train-epsilon must be in [0, 1]"),
    (finetune_online, ("--batch-size", 0), "--batch-size: must be >= 1, got 0"),
]


@pytest.mark.parametrize("build, bad, expected", BAD_VALUES,
                         ids=[f"{b.__name__}{bad[0]}={bad[1]}" for b, bad, _ in BAD_VALUES])
def test_validation_errors_name_the_flag(capsys, tmp_path, build, bad, expected):
    argv = build(tmp_path, *bad)
    message = one_error(capsys, f"scaled-ql {argv[0]}", *argv)
    assert message.startswith(expected), message
    assert not any(tmp_path.iterdir()), "nothing is written for a bad value"


@pytest.mark.parametrize("row, bad", [("flag_out_of_range", ("--steps", 0)),
                                      ("learner_flag_out_of_range", ("--batch-size", 0))])
def test_the_documented_rows(capsys, tmp_path, row, bad):
    message = one_error(capsys, "scaled-ql pretrain", *pretrain(tmp_path, *bad))
    faults.check(row, f"scaled-ql pretrain: error: {message}")


def test_other_commands_name_their_flags(capsys, tmp_path, run_dir):
    assert one_error(capsys, "scaled-ql evaluate", "evaluate", "--checkpoint", run_dir,
                     "--episodes", 0, "--no-progress") == "--episodes must be >= 1, got 0"
    assert one_error(capsys, "scaled-ql evaluate", "evaluate", "--checkpoint", run_dir,
                     "--epsilon", 2, "--no-progress") == "--epsilon must be in [0, 1], got 2.0"
    assert one_error(capsys, "scaled-ql collect", "collect", "--games", GAME, "--steps", 0,
                     "--out", tmp_path / "data") == "--steps/--episodes must be >= 1, got 0"
    assert one_error(capsys, "scaled-ql collect", "collect", "--games", GAME, "--steps", 5,
                     "--run", 0, "--out", tmp_path / "data") == "--run must be >= 1, got 0"
    assert one_error(capsys, "scaled-ql demo", "demo", "--train-steps", 0, "--out",
                     tmp_path / "demo") == "--train-steps must be >= 1, got 0"
    assert one_error(capsys, "scaled-ql report", "report", run_dir, "--reps", 0, "--out",
                     tmp_path / "report") == "--reps must be at least 1, got 0"
    assert not (tmp_path / "data").exists() and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("flag, value", [("--mode", 5), ("--difficulty", 7)])
def test_a_missing_variant_names_its_flag_and_how_to_leave_it_out(capsys, tmp_path, flag, value):
    message = one_error(capsys, "scaled-ql finetune-online", "finetune-online", "--checkpoint",
                        tmp_path, "--game", "Breakout", flag, value, "--env-steps", 10, "--out",
                        tmp_path / "online")
    assert f"Breakout has no {flag} {value}; valid " in message
    assert f"(or leave out {flag} for the game's default)" in message
    assert "None" not in message  # `--mode None` is not a value the parser takes


def test_finetune_online_does_not_suggest_resume(capsys, run_dir):
    """An online run cannot be resumed, so its message must not say `pass --resume`."""
    message = one_error(capsys, "scaled-ql finetune-online", "finetune-online", "--checkpoint",
                        run_dir, "--game", GAME, "--env-steps", 10, "--out", run_dir)
    faults.check("online_existing_run", f"scaled-ql finetune-online: error: {message}",
                 run_dir=run_dir)
    assert "--resume" not in message


def test_library_users_still_see_field_names():
    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.runners import PretrainConfig

    with pytest.raises(ValueError, match=r"^PretrainConfig\.steps must be >= 1, got 0$"):
        PretrainConfig(games=(GAME,), data_dir="d", out_dir="o", steps=0)
    with pytest.raises(ValueError, match=r"^ScaledQLConfig\.batch_size: must be >= 1, got 0$"):
        ScaledQLConfig(batch_size=0)


# -- one format for every subcommand -----------------------------------------------------------


def test_every_subcommand_reports_errors_the_same_way(capsys, tmp_path):
    """One bad input per subcommand: one `PROG: error:` line, exit status 2; argparse's own
    errors (missing or malformed flags) have the same form."""
    missing = tmp_path / "missing"
    cases = {
        "scaled-ql demo": ["demo", "--seeds", 0, "--out", tmp_path / "demo"],
        "scaled-ql pretrain": pretrain(tmp_path, "--steps", -3),
        "scaled-ql finetune-offline": finetune_offline(tmp_path),
        "scaled-ql finetune-online": finetune_online(tmp_path),
        "scaled-ql evaluate": ["evaluate", "--checkpoint", missing],
        "scaled-ql report": ["report", missing, "--out", tmp_path / "report"],
        "scaled-ql games": ["games", "--suite", "nes"],
        "scaled-ql collect": ["collect", "--games", "Pongg", "--steps", 5, "--out", missing],
        "scaled-ql data info": ["data", "info", missing],
        "scaled-ql data validate": ["data", "validate", missing],
    }
    assert set(cases) == set(PARSERS)
    for prog, argv in cases.items():
        one_error(capsys, prog, *argv)
    # argparse's errors: the usage, then the same line.
    assert one_error(capsys, "scaled-ql pretrain", "pretrain", "--steps", "ten").startswith(
        "argument --steps: invalid int value")
    assert one_error(capsys, "scaled-ql data info", "data", "info") == (
        "the following arguments are required: path")


def test_data_commands_say_where_they_looked(capsys, tmp_path):
    for sub in ("info", "validate"):
        assert one_error(capsys, f"scaled-ql data {sub}", "data", sub, tmp_path) == (
            f"no rlu_atari or rlu_minatar dataset under {tmp_path}")


# -- the translation itself ----------------------------------------------------------------------


def command(prog: str):
    return PARSERS[prog].get_default("func")


def test_translation_rules():
    words = command("scaled-ql finetune-online").user_words
    assert words("FinetuneOnlineConfig.replay_min_size (5000) must be <= replay_max_size "
                 "(100)") == "--replay-min-size (5000) must be <= --replay-size (100)"
    # Fields without a flag keep their config names; paths, values and prose are untouched.
    assert words("FinetuneOnlineConfig.sampler_poll_ms must be >= 1") == (
        "FinetuneOnlineConfig.sampler_poll_ms must be >= 1")
    assert words("runs/eval_every/x has no eval_results.json for games") == (
        "runs/eval_every/x has no eval_results.json for games")
    resume = command("scaled-ql pretrain").user_words
    assert resume("--resume of /r/run_name with a different configuration: "
                  "agent.network.width_multiplier: was 1.0, now 0.5; run_name: was 'a', now "
                  "'b'") == ("--resume of /r/run_name with a different configuration: "
                             "--width: was 1.0, now 0.5; --name: was 'a', now 'b'")
    assert resume("checkpoints must be (first, last)") == "--checkpoints must be (first, last)"
    assert resume("no checkpoints in run") == "no checkpoints in run"  # only a leading word


def test_an_existing_dataset_names_overwrite(tmp_path):
    """The writer's message (an API call: `overwrite=True`) as `collect` prints it.  The
    collection itself runs in a worker process, so the writer is called here directly."""
    from scaled_ql.datasets import rlds

    folder = rlds.dataset_dir(tmp_path, GAME, 1)
    folder.mkdir(parents=True)
    with pytest.raises(FileExistsError) as raised:
        rlds.RluAtariWriter(tmp_path, GAME, 1)
    assert str(raised.value).endswith("(pass overwrite=True)")
    faults.check("existing_dataset",
                 command("scaled-ql collect").user_words(str(raised.value)), path=folder)
