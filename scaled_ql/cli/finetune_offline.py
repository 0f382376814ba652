"""`scaled-ql finetune-offline`: fine-tune a pre-trained network on a new game's small dataset.

Copies the pre-trained torso into a network with one head for --game (its own action count),
trains it with the same loss on --data, evaluates on the real game (ALE or MinAtar: the
checkpoint's suite). --from-scratch trains the same architecture from random initialisation (the
baseline).
"""

import argparse
import dataclasses

from scaled_ql.cli import flags
from scaled_ql.cli.common import command
from scaled_ql.cli.pretrain import interruptible, report_end_of_run


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
        description=__doc__.split("\n\n")[1])
    fields = flags.add_finetune_start(parser)
    parser.add_argument("--steps", required=True, type=int, help="SGD steps")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    fields |= flags.add_data_arguments(
        parser, runs_help="dataset runs to read, e.g. 1,2",
        checkpoints_help="checkpoint_id range FIRST-LAST of the data (default: all)")
    fields |= flags.add_run_arguments(
        parser, seed_help="seeds the new head, data order and evaluation",
        name_help="configuration name in reports (default: the method: finetune, "
                  "finetune_frozen_torso, finetune_lp_ft, scratch or scratch_frozen_torso)",
        out_help="run directory of the fine-tuning run")
    fields |= flags.add_checkpoint_arguments(parser)
    fields |= flags.add_evaluation_arguments(
        parser, "SGD steps between evaluations (0: only at the start and the end)", final=True)
    parser.add_argument("--no-eval-at-start", action="store_true",
                        help="skip the evaluation of the initial network at step 0")
    command(parser, run, {**fields, **flags.AGENT_FIELDS})


def finetune_config(args: argparse.Namespace):
    from scaled_ql.runners.finetune_offline import FinetuneOfflineConfig

    return FinetuneOfflineConfig(
        steps=args.steps, eval_at_start=not args.no_eval_at_start,
        agent=finetune_agent(args.checkpoint, flags.learner_overrides(args),
                             args.checkpoint_step), **flags.finetune_start_fields(args),
        **flags.data_fields(args), **flags.run_fields(args), **flags.checkpoint_fields(args),
        **flags.evaluation_fields(args))


def run(args: argparse.Namespace) -> int:
    return interruptible("scaled-ql finetune-offline", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from scaled_ql.runners.finetune_offline import CURVE_PNG, run_finetune_offline

    summary = run_finetune_offline(finetune_config(args), resume=args.resume)
    return report_end_of_run(summary, "scaled-ql finetune-offline",
                             f" (learning curve: {CURVE_PNG})")
