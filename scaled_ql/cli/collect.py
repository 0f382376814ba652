"""`scaled-ql collect`: play real games (ALE or MinAtar) and log them as rlu_atari-schema RLDS
datasets."""

import argparse

from scaled_ql.cli.common import command
from scaled_ql.cli.flags import MAX_FRAMES_HELP
from scaled_ql.cli.pretrain import interruptible


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="play ALE or MinAtar games with a policy and write one RLDS dataset per game and run",
        description=(
            "Plays each game with the policy in its own process and writes "
            "OUT/<layout>/<Game>_run_<k>/<version>/, readable with "
            "tfds.builder('rlu_atari/<Game>_run_<k>', data_dir=OUT); MinAtar games go to "
            "OUT/rlu_minatar/<Game>_run_<k>/ (or rlu_minatar_checkpoints_ordered/), "
            "read with tfds.builder('rlu_minatar/<Game>_run_<k>', data_dir=OUT)."
        ),
    )
    parser.add_argument(
        "--games", required=True,
        help="comma-separated game names: rlu_atari names (Pong,Breakout) or MinAtar games "
             "(minatar/Breakout,minatar/Asterix)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument(
        "--steps", type=int,
        help="environment steps per game (MinAtar: steps; ALE: agent steps of 4 emulator "
             "frames); the last episode is truncated (default: none, use --episodes)")
    budget.add_argument("--episodes", type=int,
                        help="complete episodes per game (default: none, use --steps)")
    parser.add_argument(
        "--policy", default="random",
        help="behaviour policy: random, checkpoint (epsilon-greedy with a saved "
             "network: --checkpoint RUN_DIR [--epsilon E]), or online_c51 (an online C51 agent "
             "that learns while it plays, over --steps steps; use the "
             "rlu_atari_checkpoints_ordered layout to keep each tenth of its training apart), "
             "or scripted_ram (a Breakout player reading the RAM, with --epsilon noise)")
    parser.add_argument("--checkpoint", default=None,
                        help="run directory, for --policy checkpoint (default: none)")
    parser.add_argument("--epsilon", type=float, default=0.01,
                        help="exploration of --policy checkpoint or scripted_ram")
    parser.add_argument("--out", required=True, help="TFDS data_dir to write into")
    parser.add_argument(
        "--run", type=int, default=1, help="run number k of {Game}_run_{k}"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed; each game gets its own")
    parser.add_argument("--sticky-action-prob", type=float, default=None,
                        help="probability of repeating the previous action (default: the "
                             "suite's: ALE 0.25, MinAtar 0.1)")
    parser.add_argument("--max-episode-frames", type=int, default=None,
                        help=MAX_FRAMES_HELP)
    parser.add_argument(
        "--layout",
        choices=("rlu_atari", "rlu_atari_checkpoints_ordered", "rlu_minatar",
                 "rlu_minatar_checkpoints_ordered"),
        default="rlu_atari",
        help="one train split, or one split per checkpoint; the rlu_atari names mean the same "
             "for MinAtar games, which are stored as rlu_minatar[_checkpoints_ordered]",
    )
    parser.add_argument("--episodes-per-shard", type=int, default=100,
                        help="episodes per TFRecord shard file")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel processes (default: one per game, at most one per CPU "
                             "core)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing datasets")
    command(parser, run, {"num_steps": "--steps", "num_episodes": "--episodes",
                          "max_episodes_per_shard": "--episodes-per-shard"},
            replacements=(("the step/episode budget", "--steps/--episodes"),))


def run(args: argparse.Namespace) -> int:
    """Collects; SIGINT/SIGTERM end it with one line on stderr saying which datasets are
    complete (unfinished ones are removed) and status 128 + signal."""
    configs = []
    return interruptible("scaled-ql collect", lambda: _collect(args, configs),
                         lambda name: _stop_line(args, configs, name))


def _collect(args: argparse.Namespace, configs: list) -> int:
    from scaled_ql.datasets.collect import CollectConfig, collect_games

    games = [g.strip() for g in args.games.split(",") if g.strip()]
    configs += _configs(args, games, CollectConfig)
    paths = collect_games(configs, args.out, num_workers=args.workers)
    for path in paths:
        print(path)
    return 0


def _stop_line(args: argparse.Namespace, configs: list, name: str) -> str:
    from scaled_ql.datasets import rlds

    done = [f"{c.game} run {c.run}" for c in configs
            if rlds.dataset_dir(args.out, c.game, c.run, c.layout).is_dir()]
    kept = f"complete datasets kept: {', '.join(done)}" if done else "no dataset complete"
    return (f"scaled-ql collect: stopped by {name}; {kept}; unfinished ones removed; run the "
            "command again for the missing games (--overwrite to replace the kept ones)")


def _policy_kwargs(args: argparse.Namespace, game: str) -> tuple:
    if args.policy == "online_c51":
        if args.steps is None:
            raise ValueError("--policy online_c51 needs --steps (its training budget)")
        return (("total_steps", args.steps),)
    if args.policy == "scripted_ram":
        return (("epsilon", args.epsilon),)
    if args.policy != "checkpoint":
        return ()
    if not args.checkpoint:
        raise ValueError("--policy checkpoint needs --checkpoint RUN_DIR")
    from scaled_ql.environments.games import get_game

    # The checkpoint's heads are named by catalogue name ("minatar/Breakout").
    return (("checkpoint", args.checkpoint), ("game", get_game(game).name),
            ("epsilon", args.epsilon))


def _configs(args: argparse.Namespace, games: list[str], config_class) -> list:
    return [
        config_class(
            game=game,
            run=args.run,
            num_steps=args.steps,
            num_episodes=args.episodes,
            policy=args.policy,
            policy_kwargs=_policy_kwargs(args, game),
            seed=args.seed + 7919 * index + 104729 * args.run,
            sticky_action_prob=args.sticky_action_prob,
            max_episode_frames=args.max_episode_frames,
            layout=args.layout,
            max_episodes_per_shard=args.episodes_per_shard,
            overwrite=args.overwrite,
        )
        for index, game in enumerate(games)
    ]
