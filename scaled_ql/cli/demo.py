"""`scaled-ql demo`: the embedded default run (`make demo`; `make demo-atari` for the ALE one)."""

import argparse

from scaled_ql.cli.common import command


def register(subparsers) -> None:
    from scaled_ql.runners.demo import DemoConfig, atari_demo_config  # light: dataclasses only

    minatar, atari = DemoConfig(), atari_demo_config()
    parser = subparsers.add_parser(
        "demo", help="the embedded default run (what `make demo` runs)",
        description="MinAtar (default): online C51 agents make DQN-Replay-like data while they "
                    "learn; Scaled QL and BC train offline on its sub-optimal split (the first "
                    "20% of each agent's training); all are evaluated on the real games and "
                    "reported side by side with the data.  --suite atari: random-policy data "
                    "from real ALE games, one small Scaled QL run (the ALE pipeline end to end). "
                    "Unset options take the suite's default (MinAtar first, then Atari).")

    def option(flag, field, kind, help_text):
        parser.add_argument(flag, type=kind, default=None,
                            help=f"{help_text} (default: {getattr(minatar, field)!s}; "
                                 f"atari: {getattr(atari, field)!s})".replace("%", "%%"))

    parser.add_argument("--suite", choices=("minatar", "atari"), default="minatar",
                        help="which demo to run")
    parser.add_argument("--out", default=minatar.out_dir,
                        help="output folder (default: demo_out; make demo-atari: "
                             "demo_atari_out)")
    parser.add_argument("--games", default=None,
                        help=f"comma-separated games (default: {','.join(minatar.games)}; "
                             f"atari: {','.join(atari.games)})")
    option("--collect-steps", "collect_steps", int, "environment steps logged per game")
    option("--train-steps", "train_steps", int, "SGD steps per training run")
    option("--seeds", "seeds", int, "training runs (seeds) per method")
    option("--eval-every", "eval_every", int, "SGD steps between evaluations")
    option("--eval-episodes", "eval_episodes", int, "episodes per game per evaluation")
    option("--eval-max-frames", "eval_max_episode_frames", int,
           "evaluation episode cap in frames (a MinAtar frame is one step)")
    option("--batch-size", "batch_size", int, "transitions per SGD step")
    option("--jobs", "jobs", int,
           "training processes at a time (collection: up to twice as many games)")
    parser.add_argument("--split", default=None,
                        help="checkpoint ids the offline learners train on, FIRST-LAST "
                             "(default: 0-1, the sub-optimal split; MinAtar only)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command(parser, run, {"eval_max_episode_frames": "--eval-max-frames", "out_dir": "--out"})


def config_from_args(args: argparse.Namespace):
    """The DemoConfig the flags describe (validated: errors name the flag)."""
    from scaled_ql.runners.demo import DemoConfig, atari_demo_config

    values = {}
    if args.games is not None:
        values["games"] = tuple(g.strip() for g in args.games.split(",") if g.strip())
    for field in ("collect_steps", "train_steps", "seeds", "eval_every", "eval_episodes",
                  "batch_size", "jobs"):
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    if args.eval_max_frames is not None:
        values["eval_max_episode_frames"] = args.eval_max_frames
    if args.split is not None:
        first, sep, last = args.split.partition("-")
        try:
            values["split"] = (int(first), int(last if sep else first))
        except ValueError:
            raise ValueError(f"--split must be FIRST-LAST (e.g. 0-1), got {args.split!r}") from None
    values["out_dir"] = args.out
    values["progress"] = not args.no_progress
    if args.suite == "atari":
        return atari_demo_config(**values)
    return DemoConfig(**values)


def run(args: argparse.Namespace) -> int:
    from scaled_ql.runners.demo import main

    return main(config_from_args(args))
