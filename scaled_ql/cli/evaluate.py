"""`scaled-ql evaluate`: play a checkpoint's games (real ALE or MinAtar) and write per-episode
returns.

Plays N episodes of each game with the checkpoint's per-game heads (epsilon 0.001 and the
suite's sticky actions and episode cap by default: Atari 0.25 and 108k frames, MinAtar 0.1 and
10k steps) and writes a JSON of per-episode returns.  A checkpoint fine-tuned online on a game
variant plays that variant unless --mode or --difficulty says otherwise.
"""

import argparse

from scaled_ql.cli.common import command
from scaled_ql.cli.flags import add_checkpoint_source, add_evaluation_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on its real games (ALE or MinAtar)",
        description=__doc__.split("\n\n")[1])
    # --step: this command's earlier name of --checkpoint-step, still accepted (added first,
    # so that errors name --checkpoint-step: `command` maps a dest to its last flag).
    parser.add_argument("--step", type=int, dest="checkpoint_step", help=argparse.SUPPRESS)
    add_checkpoint_source(parser, "run directory (its latest checkpoint, or "
                                  "--checkpoint-step's), or one checkpoint folder "
                                  "RUN/checkpoints/STEP")
    parser.add_argument("--games", default=None, help="comma-separated subset (default: all heads)")
    parser.add_argument("--mode", type=int, default=None,
                        help="ALE mode to play (default: the variant the checkpoint was "
                             "fine-tuned on, if any, else the ROM's)")
    parser.add_argument("--difficulty", type=int, default=None,
                        help="ALE difficulty; MinAtar: 1 = difficulty ramping, 0 = none "
                             "(default: the variant the checkpoint was fine-tuned on, if any, "
                             "else the game's default)")
    fields = add_evaluation_arguments(parser, None, prefix="")
    parser.add_argument("--seed", type=int, default=0, help="seeds the games and the policy")
    parser.add_argument("--out", default=None,
                        help="results JSON (default: RUN_DIR/evaluate_step<STEP>.json); an "
                             "existing file is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out file (a fresh file per invocation)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command(parser, run, fields)


def run(args: argparse.Namespace) -> int:
    import pathlib

    from scaled_ql.agents.scaled_ql.checkpointing import check_suite, run_and_step
    from scaled_ql.cli.finetune_online import check_variant
    from scaled_ql.environments.games import get_game
    from scaled_ql.evaluation import RunInfo, append_evaluation
    from scaled_ql.runners.evaluate import (
        EvalProtocol,
        episode_settings,
        load_checkpoint,
        make_evaluator,
    )
    from scaled_ql.runners.summary import format_table, scored

    run_dir, step = run_and_step(args.checkpoint, args.checkpoint_step)
    loaded = load_checkpoint(run_dir, step)
    out = pathlib.Path(args.out or run_dir / f"evaluate_step{loaded.meta.step}.json")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists (an earlier evaluation); pass --overwrite to "
                              f"replace it, or --out to write another file")
    games = loaded.meta.games if args.games is None else tuple(
        get_game(g.strip()).name for g in args.games.split(",") if g.strip())
    check_suite(loaded.meta, games, loaded.where)
    # The variant the run was fine-tuned on (online fine-tuning records it) unless overridden.
    for field in ("mode", "difficulty"):
        if getattr(args, field) is None:
            setattr(args, field, loaded.meta.extra.get(field))
    for game in games:
        check_variant(game, args.mode, args.difficulty)
    # The suite's defaults where unset, recorded as the values used.
    args.sticky_action_prob, args.max_frames = episode_settings(
        games, args.sticky_action_prob, args.max_frames)
    protocol = EvalProtocol(episodes=args.episodes, epsilon=args.epsilon,
                            sticky_action_prob=args.sticky_action_prob,
                            max_episode_frames=args.max_frames, workers=args.workers,
                            seed=args.seed, progress=not args.no_progress, mode=args.mode,
                            difficulty=args.difficulty)
    evaluate = make_evaluator(loaded.networks, loaded.meta.games, protocol,
                              loaded.config.compute_dtype)
    episodes = evaluate(loaded.params, loaded.meta.step, games)
    if out.exists():
        out.unlink()  # --overwrite: a fresh file; the training run's own results are untouched
    # An online run's environment-step budget: its seeds end at learner steps a few apart, and
    # `scaled-ql report` then takes each file's round as the run's final score (evaluation.runs).
    budget = {"env_steps": loaded.meta.extra["env_steps"]} if "env_steps" in loaded.meta.extra \
        else {}
    run_info = RunInfo(name=loaded.meta.extra.get("run_name", "evaluate"), method="evaluate",
                       seed=args.seed, config={"protocol": vars(args) | {"func": None}, **budget})
    append_evaluation(out, run_info, games, loaded.meta.step, episodes)
    summary = scored(str(args.checkpoint), loaded.meta.step, games, episodes, args.seed)
    print(format_table(summary, cap_flag="--max-frames", mark_games=True))
    print(f"per-episode returns: {out}")
    return 0
