"""`scaled-ql finetune-offline`: fine-tune a pre-trained network on a new game's small dataset."""

import argparse
import dataclasses

from scaled_ql.cli import flags
from scaled_ql.cli.common import command
from scaled_ql.cli.pretrain import interruptible, report_end_of_run

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
    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.agents.scaled_ql.checkpointing import config_from_json, read_run_meta

    ScaledQLConfig(**overrides)  # raises on a bad value; the default loss weights are valid
    config = config_from_json(read_run_meta(checkpoint, step)[0].config)
    return dataclasses.replace(config, **overrides)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune-offline", help="fine-tune a pre-trained network offline on a new game",
        description="Copies the pre-trained torso into a network with one head for --game (its "
                    "own action count), trains it with the same loss on --data, evaluates on "
                    "the real game (ALE or MinAtar: the checkpoint's suite). --from-scratch "
                    "trains the same architecture from random "
                    "initialisation (the baseline).")
    flags.add_checkpoint_source(parser)
    parser.add_argument("--game", required=True,
                        help="the game to fine-tune on, of the checkpoint's suite: e.g. Alien, "
                             "minatar/Seaquest")
    parser.add_argument("--steps", required=True, type=int, help="SGD steps")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--freeze-torso", action="store_true", help="train the new head only")
    mode.add_argument("--from-scratch", action="store_true",
                      help="random initialisation of the same architecture (baseline)")
    parser.add_argument("--fresh-head", action="store_true",
                        help="start the game's head fresh even if the checkpoint has one")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    fields = flags.add_data_arguments(
        parser, runs_help="dataset runs to read, e.g. 1,2",
        checkpoints_help="checkpoint_id range FIRST-LAST of the data (default: all)")
    fields |= flags.add_run_arguments(
        parser, seed_help="seeds the new head, data order and evaluation",
        name_help="configuration name in reports (default: the method: finetune, "
                  "finetune_frozen_torso or scratch)",
        out_help="run directory of the fine-tuning run")
    fields |= flags.add_checkpoint_arguments(parser)
    fields |= flags.add_evaluation_arguments(
        parser, "SGD steps between evaluations (0: only at the start and the end)", final=True)
    parser.add_argument("--no-eval-at-start", action="store_true",
                        help="skip the evaluation of the initial network at step 0")
    add_learner_overrides(parser)
    command(parser, run, {**fields, **flags.AGENT_FIELDS})


def finetune_config(args: argparse.Namespace):
    from scaled_ql.runners.finetune_offline import FinetuneOfflineConfig

    return FinetuneOfflineConfig(
        checkpoint=args.checkpoint, checkpoint_step=args.checkpoint_step, game=args.game,
        steps=args.steps,
        agent=finetune_agent(args.checkpoint, learner_overrides(args), args.checkpoint_step),
        freeze_torso=args.freeze_torso, from_scratch=args.from_scratch,
        fresh_head=args.fresh_head, eval_at_start=not args.no_eval_at_start,
        **flags.data_fields(args), **flags.run_fields(args), **flags.checkpoint_fields(args),
        **flags.evaluation_fields(args))


def run(args: argparse.Namespace) -> int:
    return interruptible("scaled-ql finetune-offline", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from scaled_ql.runners.finetune_offline import CURVE_PNG, run_finetune_offline

    summary = run_finetune_offline(finetune_config(args), resume=args.resume)
    return report_end_of_run(summary, "scaled-ql finetune-offline",
                             f" (learning curve: {CURVE_PNG})")
