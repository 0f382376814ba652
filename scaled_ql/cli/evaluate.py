"""`scaled-ql evaluate`: play a checkpoint's games (real ALE or MinAtar) and write per-episode
returns."""

import argparse

from scaled_ql.cli.common import command
from scaled_ql.cli.pretrain import EVAL_WORKERS_HELP, MAX_FRAMES_HELP


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on its real games (ALE or MinAtar)",
        description="Plays N episodes of each game with the checkpoint's per-game heads "
                    "(epsilon 0.001 and the suite's sticky actions and episode cap by default: "
                    "Atari 0.25 and 108k frames, MinAtar 0.1 and 10k steps) and writes a JSON "
                    "of per-episode returns.")
    parser.add_argument("--checkpoint", required=True,
                        help="run directory (its latest checkpoint, or --checkpoint-step's), "
                             "or one checkpoint folder RUN/checkpoints/STEP")
    # --step: this command's earlier name of --checkpoint-step, still accepted.
    parser.add_argument("--step", type=int, dest="checkpoint_step", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-step", type=int, default=None,
                        help="which checkpoint of the run, by SGD step (default: the latest)")
    parser.add_argument("--games", default=None, help="comma-separated subset (default: all heads)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per game")
    parser.add_argument("--epsilon", type=float, default=0.001,
                        help="probability of a random action at each step")
    parser.add_argument("--sticky-action-prob", type=float, default=None,
                        help="probability of repeating the previous action (default: the "
                             "suite's: Atari 0.25, MinAtar 0.1)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help=MAX_FRAMES_HELP)
    parser.add_argument("--workers", type=int, default=None, help=EVAL_WORKERS_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seeds the games and the policy")
    parser.add_argument("--out", default=None,
                        help="results JSON (default: RUN_DIR/evaluate_step<STEP>.json); an "
                             "existing file is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out file (a fresh file per invocation)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command(parser, run, {"max_episode_frames": "--max-frames"})


def run(args: argparse.Namespace) -> int:
    import pathlib

    from scaled_ql.agents.scaled_ql.checkpointing import check_suite, run_and_step
    from scaled_ql.environments.games import get_game
    from scaled_ql.evaluation import RunInfo, append_evaluation
    from scaled_ql.evaluation.results import episodes_truncation_note
    from scaled_ql.runners.evaluate import (
        EvalProtocol,
        episode_settings,
        load_checkpoint,
        make_evaluator,
    )
    from scaled_ql.runners.pretrain import PretrainSummary, format_table, summarize

    run_dir, step = run_and_step(args.checkpoint, args.checkpoint_step)
    loaded = load_checkpoint(run_dir, step)
    out = pathlib.Path(args.out or run_dir / f"evaluate_step{loaded.meta.step}.json")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists (an earlier evaluation); pass --overwrite to "
                              f"replace it, or --out to write another file")
    games = loaded.meta.games if args.games is None else tuple(
        get_game(g.strip()).name for g in args.games.split(",") if g.strip())
    check_suite(loaded.meta, games, loaded.where)
    # The suite's defaults where unset, recorded as the values used.
    args.sticky_action_prob, args.max_frames = episode_settings(
        games, args.sticky_action_prob, args.max_frames)
    protocol = EvalProtocol(episodes=args.episodes, epsilon=args.epsilon,
                            sticky_action_prob=args.sticky_action_prob,
                            max_episode_frames=args.max_frames, workers=args.workers,
                            seed=args.seed, progress=not args.no_progress)
    evaluate = make_evaluator(loaded.networks, loaded.meta.games, protocol,
                              loaded.config.compute_dtype)
    episodes = evaluate(loaded.params, loaded.meta.step, games)
    if out.exists():
        out.unlink()  # --overwrite: a fresh file; the training run's own results are untouched
    run_info = RunInfo(name=loaded.meta.extra.get("run_name", "evaluate"), method="evaluate",
                       seed=args.seed, config={"protocol": vars(args) | {"func": None}})
    append_evaluation(out, run_info, games, loaded.meta.step, episodes)
    mean_returns, normalized, iqm, ci = summarize(games, episodes, seed=args.seed)
    table = format_table(PretrainSummary(str(args.checkpoint), loaded.meta.step, None,
                                         mean_returns, normalized, iqm, ci))
    cut = episodes_truncation_note(episodes)
    for game in {e.game for e in episodes if e.truncated}:
        table = table.replace(f"| {game} |", f"| {game}† |", 1)
    print(table)
    if cut:
        print(f"† {cut} Raise --max-frames (or leave it out: the suite's cap) to score whole "
              f"games.")
    print(f"per-episode returns: {out}")
    return 0
