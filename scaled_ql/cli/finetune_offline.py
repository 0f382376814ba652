"""`scaled-ql finetune-offline`: fine-tune a pre-trained network on a new game's small dataset."""

import argparse
import dataclasses

from scaled_ql.cli.common import command
from scaled_ql.cli.pretrain import (
    AGENT_FIELDS,
    DATA_HELP,
    TRAINING_FIELDS,
    _range,
    add_evaluation_arguments,
    add_no_final_eval,
    add_reading_arguments,
    interruptible,
    report_end_of_run,
)

_CHECKPOINTS = "(default: the pre-trained run's)"


def add_learner_overrides(parser: argparse.ArgumentParser) -> None:
    """Learner settings that may differ from the checkpoint's (default: the checkpoint's)."""
    group = parser.add_argument_group("learner (default: the pre-trained run's values)")
    group.add_argument("--cql-alpha", type=float, default=None, help=f"CQL weight {_CHECKPOINTS}")
    group.add_argument("--learning-rate", type=float, default=None,
                       help=f"Adam step size {_CHECKPOINTS}")
    group.add_argument("--batch-size", type=int, default=None,
                       help=f"transitions per SGD step {_CHECKPOINTS}")
    group.add_argument("--target-update-period", type=int, default=None,
                       help=f"SGD steps between target-network refreshes {_CHECKPOINTS}")
    group.add_argument("--sgd-steps-per-call", type=int, default=None,
                       help=f"SGD steps per jitted update call {_CHECKPOINTS}")


def learner_overrides(args: argparse.Namespace) -> dict:
    names = {"cql_alpha": "cql_alpha", "learning_rate": "learning_rate",
             "batch_size": "batch_size", "target_update_period": "target_update_period",
             "sgd_steps_per_call": "num_sgd_steps_per_step"}
    return {field: getattr(args, flag) for flag, field in names.items()
            if getattr(args, flag) is not None}


def finetune_agent(checkpoint: str, overrides: dict, step: int | None = None):
    """The checkpoint's learner config with `overrides` applied (None if there are none).

    The overrides are checked first (`ScaledQLConfig`'s ranges), so a bad value is reported
    before the checkpoint is read.
    """
    if not overrides:
        return None
    import pathlib

    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer, config_from_json

    ScaledQLConfig(**overrides)  # raises on a bad value; the default loss weights are valid

    directory = pathlib.Path(checkpoint) / "checkpoints"
    if not directory.is_dir():
        raise FileNotFoundError(f"{checkpoint} has no checkpoints/ folder: is it a run directory?")
    checkpointer = Checkpointer(directory)
    try:
        config = config_from_json(checkpointer.read_meta(step).config)
    finally:
        checkpointer.close()
    return dataclasses.replace(config, **overrides)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune-offline", help="fine-tune a pre-trained network offline on a new game",
        description="Copies the pre-trained torso into a network with one head for --game (its "
                    "own action count), trains it with the same loss on --data, evaluates on "
                    "the real game (ALE or MinAtar: the checkpoint's suite). --from-scratch "
                    "trains the same architecture from random "
                    "initialisation (the baseline).")
    parser.add_argument("--checkpoint", required=True, help="pre-trained run directory")
    parser.add_argument("--checkpoint-step", type=int, default=None,
                        help="which checkpoint of the run, by SGD step (default: the latest)")
    parser.add_argument("--game", required=True,
                        help="the game to fine-tune on, of the checkpoint's suite: e.g. Alien, "
                             "minatar/Seaquest")
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--steps", required=True, type=int, help="SGD steps")
    parser.add_argument("--out", required=True, help="run directory of the fine-tuning run")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--freeze-torso", action="store_true", help="train the new head only")
    mode.add_argument("--from-scratch", action="store_true",
                      help="random initialisation of the same architecture (baseline)")
    parser.add_argument("--fresh-head", action="store_true",
                        help="start the game's head fresh even if the checkpoint has one")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--runs", default="1", help="dataset runs to read, e.g. 1,2")
    parser.add_argument("--checkpoints", type=_range, default=None,
                        help="checkpoint_id range FIRST-LAST of the data (default: all)")
    parser.add_argument("--episode-fraction", type=float, default=1.0,
                        help="fraction of the selected episodes to read (small data)")
    add_reading_arguments(parser)
    add_evaluation_arguments(
        parser, "SGD steps between evaluations (0: only at the start and the end)")
    parser.add_argument("--no-eval-at-start", action="store_true",
                        help="skip the evaluation of the initial network at step 0")
    add_no_final_eval(parser)
    parser.add_argument("--checkpoint-every", type=int, default=1000,
                        help="SGD steps between checkpoints (a final one is always written)")
    parser.add_argument("--log-every", type=int, default=100,
                        help="SGD steps between updates of the loss shown by the progress bar")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the new head, data order and evaluation")
    parser.add_argument("--name", default=None,
                        help="configuration name in reports (default: the method: finetune, "
                             "finetune_frozen_torso or scratch)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_learner_overrides(parser)
    command(parser, run, {**TRAINING_FIELDS, **AGENT_FIELDS})


def finetune_config(args: argparse.Namespace):
    from scaled_ql.runners.finetune_offline import FinetuneOfflineConfig

    return FinetuneOfflineConfig(
        checkpoint=args.checkpoint, checkpoint_step=args.checkpoint_step, game=args.game,
        data_dir=args.data, out_dir=args.out, steps=args.steps,
        agent=finetune_agent(args.checkpoint, learner_overrides(args), args.checkpoint_step),
        freeze_torso=args.freeze_torso, from_scratch=args.from_scratch,
        fresh_head=args.fresh_head, runs=tuple(int(r) for r in args.runs.split(",")),
        checkpoints=args.checkpoints, episode_fraction=args.episode_fraction,
        shuffle_buffer=args.shuffle_buffer, cache_data=args.cache_data,
        eval_every=args.eval_every,
        eval_at_start=not args.no_eval_at_start, final_eval=not args.no_final_eval, eval_episodes=args.eval_episodes,
        eval_max_episode_frames=args.eval_max_frames, eval_workers=args.eval_workers,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, seed=args.seed,
        run_name=args.name, progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    return interruptible("scaled-ql finetune-offline", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from scaled_ql.runners.finetune_offline import CURVE_PNG, run_finetune_offline

    summary = run_finetune_offline(finetune_config(args), resume=args.resume)
    return report_end_of_run(summary, "scaled-ql finetune-offline",
                             f" (learning curve: {CURVE_PNG})")
