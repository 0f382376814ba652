"""`scaled-ql pretrain`: multi-game offline pretraining, in one process or as a Launchpad
program."""

import argparse
import signal
import sys

from scaled_ql.cli import flags
from scaled_ql.cli.common import command
from scaled_ql.cli.flags import checkpoint_range as _range  # noqa: F401  (scripts/study.py)


def _games(text: str) -> tuple[str, ...]:
    games = tuple(g.strip() for g in text.split(",") if g.strip())
    if not games:
        raise argparse.ArgumentTypeError("expected comma-separated game names, e.g. Pong,Breakout")
    return games


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Pre-training's network, loss and learner flags (`agent_config` makes the learner config;
    the fine-tuning commands take the checkpoint's, `flags.add_finetune_start`)."""
    group = parser.add_argument_group("network and loss")
    group.add_argument("--torso", default=None,
                       help="Atari: nature, impala, resnet18/34/50/101 (default: resnet18); "
                            "MinAtar: minatar_resnet (default), minatar_dqn")
    group.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    group.add_argument("--num-blocks", type=int, default=None,
                       help="residual blocks of minatar_resnet (default: 2)")
    group.add_argument("--num-groups", type=int, default=32, help="GroupNorm groups")
    group.add_argument("--feed-forward-size", type=int, default=512,
                       help="units of the feed-forward layer after the torso")
    group.add_argument("--no-feature-norm", action="store_true",
                       help="disable unit-L2 feature normalization")
    group.add_argument("--td-loss", default="c51", help="c51, hl_gauss, mse or huber")
    group.add_argument("--cql-alpha", type=float, default=None,
                       help="CQL weight (default: 0.1; 0: plain C51)")
    group.add_argument("--bc", action="store_true",
                       help="behaviour cloning baseline (td weight 0, CQL 0, BC weight 1)")
    flags.add_learner_arguments(group)
    group.add_argument("--n-step", type=int, default=1,
                       help="return horizon in environment steps")
    group.add_argument("--bfloat16", action="store_true", help="bfloat16 torso activations")


# The torso when --torso is not given, by the games' suite.
DEFAULT_TORSOS = {"atari": "resnet18", "minatar": "minatar_resnet"}


def agent_config(args: argparse.Namespace):
    """The learner config of the network and loss flags (`args.games` picks the default
    torso)."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig
    from scaled_ql.environments import suites

    torso = args.torso or DEFAULT_TORSOS[suites.suite_of(args.games).name]
    network = NetworkConfig(
        torso=torso, width_multiplier=args.width, num_blocks=args.num_blocks,
        num_groups=args.num_groups, feed_forward_size=args.feed_forward_size,
        feature_norm=not args.no_feature_norm)
    if args.bc and args.cql_alpha is not None:
        raise ValueError("--bc trains behaviour cloning alone (TD and CQL weights 0); "
                         "drop --cql-alpha")
    weights = dict(td_weight=0.0, cql_alpha=0.0, bc_weight=1.0) if args.bc else dict(
        cql_alpha=0.1 if args.cql_alpha is None else args.cql_alpha)
    return ScaledQLConfig(
        network=network, td_loss=args.td_loss, n_step=args.n_step,
        compute_dtype="bfloat16" if args.bfloat16 else "float32", **flags.learner_fields(args),
        **weights)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="pre-train one multi-game Q-network on RLDS datasets",
        description="Streams the games' RLDS datasets (rlu_atari schema), trains Scaled QL, "
                    "evaluates on the real games (ALE, or MinAtar for minatar/<Game> names), "
                    "checkpoints to --out.")
    parser.add_argument("--games", required=True, type=_games,
                        help="comma-separated, one suite: e.g. Pong,Breakout or "
                             "minatar/Breakout,minatar/Asterix")
    parser.add_argument("--steps", required=True, type=int, help="total SGD steps")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    fields = flags.add_data_arguments(
        parser, runs_help="dataset runs to read, e.g. 1,2,3",
        checkpoints_help="checkpoint_id range FIRST-LAST (e.g. 0-9: sub-optimal data; "
                         "default: all)")
    fields |= flags.add_run_arguments(
        parser, seed_help="seeds parameters, data order and evaluation",
        name_help="configuration name in reports (default: METHOD-TORSO)")
    parser.add_argument("--method", default=None,
                        help="method name in reports (default: bc with --bc, c51 with "
                             "--cql-alpha 0, else scaled_ql)")
    fields |= flags.add_checkpoint_arguments(parser)
    fields |= flags.add_evaluation_arguments(
        parser, "SGD steps between evaluations (0: only the final one)", final=True)
    parser.add_argument("--launch", choices=("none", "local_mt", "local_mp"), default="none",
                        help="run as a Launchpad program (default: none, one process)")
    add_network_arguments(parser)
    command(parser, run, {**fields, **flags.AGENT_FIELDS})


def pretrain_config(args: argparse.Namespace):
    from scaled_ql.runners import PretrainConfig

    agent = agent_config(args)
    method = args.method or ("bc" if args.bc else "scaled_ql" if agent.cql_alpha > 0 else "c51")
    name = args.name or f"{method}-{agent.network.torso}"
    return PretrainConfig(games=args.games, steps=args.steps, agent=agent, method=method,
                          **flags.run_fields(args) | {"run_name": name},
                          **flags.data_fields(args), **flags.checkpoint_fields(args),
                          **flags.evaluation_fields(args))


def run(args: argparse.Namespace) -> int:
    return interruptible("scaled-ql pretrain", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    config = pretrain_config(args)
    if args.launch != "none":
        if args.no_final_eval:
            raise ValueError("--no-final-eval is for single-process runs (--launch none)")
        from scaled_ql.launchpad_programs.pretrain import launch

        return report_launch(launch(config, launch_type=args.launch, resume=args.resume),
                             "scaled-ql pretrain", config.out_dir)
    from scaled_ql.runners import run_pretrain

    return report_end_of_run(run_pretrain(config, resume=args.resume), "scaled-ql pretrain")


def interruptible(prog: str, body, stopped_line=None) -> int:
    """`body()`, with a SIGINT/SIGTERM that reaches the command itself (its startup: imports,
    before a runner takes over the signals; or all of `collect`) ending it with one line on
    stderr, `stopped_line(signal name)` or a startup line, and status 128 + signal instead of
    a traceback."""
    from scaled_ql.runners import run_dir as run_dir_lib

    with run_dir_lib.StopRequested():
        try:
            return body()
        except (run_dir_lib.Stopped, KeyboardInterrupt) as stopped:
            signum = getattr(stopped, "signal", signal.SIGINT)
            name = run_dir_lib.SIGNAL_NAMES.get(signum, f"signal {signum}")
            line = (stopped_line(name) if stopped_line else
                    f"{prog}: stopped by {name} during startup; nothing saved; run the command "
                    "again")
            print(line, file=sys.stderr, flush=True)
            return 128 + signum


def stop_line(summary, prog: str) -> str:
    """The one line that says how a stopped run ended, what was saved and how to continue."""
    from scaled_ql.runners.run_dir import SIGNAL_NAMES

    signum = summary.stopped_by_signal
    during = summary.stopped_during or "training"
    where = (f"at step {summary.step}" if during == "training" else
             f"at step {summary.step} during {during}" if during != "startup" else
             "during startup")
    if during.startswith("the final evaluation") or during.startswith("the evaluation"):
        where += " (its episodes are not recorded; --resume plays it again)"
    saved = _saved(summary.checkpoint_step, summary.run_dir,
                   "kept" if during == "startup" else "saved")
    return f"{prog}: stopped by {SIGNAL_NAMES.get(signum, signum)} {where}; {saved}"


# How to go on after a stopped run that cannot be resumed (online fine-tuning: the replay is
# not checkpointed).
NOT_RESUMABLE = "online runs cannot be resumed: run the command again with another --out"


def _saved(checkpoint_step: int | None, run_dir, kept: str, how_to_continue: str | None = None
           ) -> str:
    """What a stopped run left (its newest checkpoint) and how to continue (`--resume`, or
    `how_to_continue`)."""
    if checkpoint_step is None:
        return "nothing saved; run the command again"
    return (f"checkpoint {checkpoint_step} {kept} in {run_dir}/checkpoints; "
            f"{how_to_continue or 'continue with --resume'}")


def report_launch(code: int, prog: str, run_dir, how_to_continue: str | None = None) -> int:
    """`code`, the exit status of a Launchpad program's launch (`supervision.launch_and_watch`);
    when a signal stopped it (Ctrl-C: 130), first prints the one line that says so, what the run
    directory keeps (its newest checkpoint, and the evaluation rounds recorded) and how to
    continue (`--resume`, or `how_to_continue`)."""
    from scaled_ql.launchpad_programs.supervision import interrupting_signal
    from scaled_ql.runners.run_dir import SIGNAL_NAMES, latest_checkpoint_step

    signum = interrupting_signal(code)
    if signum is not None:
        saved = _saved(latest_checkpoint_step(run_dir), run_dir, "kept", how_to_continue)
        print(f"{prog}: stopped by {SIGNAL_NAMES.get(signum, signum)}; {saved}",
              file=sys.stderr, flush=True)
    return code


def report_end_of_run(summary, prog: str, note: str = "") -> int:
    """Prints how a single-process run ended; its exit status (128 + signal if stopped)."""
    from scaled_ql.runners.summary import format_table

    if summary.stopped_by_signal is not None:
        print(stop_line(summary, prog), file=sys.stderr, flush=True)
        return 128 + summary.stopped_by_signal
    print(format_table(summary))
    print(f"run directory: {summary.run_dir}{note}")
    return 0
