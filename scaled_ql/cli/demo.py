"""`scaled-ql demo`: collect from real ALE, pretrain, evaluate and report, all at small scale."""

import argparse


def register(subparsers) -> None:
    from scaled_ql.runners.demo import DemoConfig  # light: dataclasses only at import

    defaults = DemoConfig()
    parser = subparsers.add_parser(
        "demo", help="the embedded default run (what `make demo` runs)",
        description="Collects a small multi-game dataset from real ALE play, pretrains a small "
                    "Scaled QL network on it, evaluates it and writes a report.")
    parser.add_argument("--out", default=defaults.out_dir)
    parser.add_argument("--games", default=",".join(defaults.games))
    parser.add_argument("--collect-steps", type=int, default=defaults.collect_steps)
    parser.add_argument("--train-steps", type=int, default=defaults.train_steps)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--eval-episodes", type=int, default=defaults.eval_episodes)
    parser.add_argument("--eval-max-frames", type=int, default=defaults.eval_max_episode_frames)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaled_ql.runners.demo import DemoConfig, main

    return main(DemoConfig(
        out_dir=args.out, games=tuple(g.strip() for g in args.games.split(",") if g.strip()),
        collect_steps=args.collect_steps, train_steps=args.train_steps,
        eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        eval_max_episode_frames=args.eval_max_frames, batch_size=args.batch_size,
        seed=args.seed, progress=not args.no_progress))
