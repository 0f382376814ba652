"""One helper per part of a run's configuration (`runners.run_config`), so that every command
has the same flag, help and default for the same setting.

    add_checkpoint_source     --checkpoint, --checkpoint-step: the checkpoint a command reads
    add_run_arguments         --out, --seed, --name; single-process: --log-every, --no-progress
    add_checkpoint_arguments  --checkpoint-every, --keep-checkpoints
    add_evaluation_arguments  --eval-every, the protocol (--eval-episodes, --eval-epsilon,
                              --eval-sticky-action-prob, --eval-max-frames, --eval-workers;
                              `scaled-ql evaluate`: the same without `eval-`), --no-final-eval
    add_data_arguments        --data, --runs, --checkpoints, --episode-fraction,
                              --shuffle-buffer, --cache-data
    add_learner_arguments     the learner's optimisation (`ScaledQLConfig`): --batch-size,
                              --learning-rate, --target-update-period, --sgd-steps-per-call
    add_finetune_start        a fine-tuning run's start (`FinetuneStart`): the checkpoint
                              source, --game, --from-scratch, --freeze-torso, --fresh-head,
                              and the learner settings it may change (--cql-alpha,
                              --frozen-torso-steps, --torso-learning-rate-scale and the
                              above, unset: the checkpoint's)

Each `add_*` returns the config fields whose flag is not their name (`{"out_dir": "--out"}`),
for `common.command`'s field -> flag mapping; each `*_fields(args)` returns the part's config
fields from the parsed flags.
"""

import argparse

MAX_FRAMES_HELP = ("episode cap in emulator frames (default: the suite's: 108,000 Atari "
                   "frames; 10,000 MinAtar steps, a MinAtar frame being a step)")
DATA_HELP = "TFDS data_dir with rlu_atari/<Game>_run_<k>/ (MinAtar: rlu_minatar/<Game>_run_<k>/)"
EVAL_WORKERS_HELP = ("evaluation worker processes (default: one per CPU core; 0: in this "
                     "process)")
NO_FINAL_EVAL_HELP = ("skip the evaluation at the end (with --eval-every 0: no evaluation at "
                      "all; the summary then says so)")
# The learner's optimisation settings, by flag: (ScaledQLConfig field, type, the pre-training
# default, help).  `add_learner_arguments` declares them; a fine-tuning run's default to the
# pre-trained run's values.
LEARNER_FLAGS = {
    "--batch-size": ("batch_size", int, 256, "transitions per SGD step"),
    "--learning-rate": ("learning_rate", float, 6.25e-5, "Adam step size"),
    "--target-update-period": ("target_update_period", int, 2000,
                               "SGD steps between target-network refreshes"),
    "--sgd-steps-per-call": ("num_sgd_steps_per_step", int, 1, "SGD steps per jitted update call"),
}
FROM_CHECKPOINT = "(default: the pre-trained run's)"
# ScaledQLConfig / NetworkConfig fields (also as `agent.<field>`, `agent.network.<field>` in
# config.json) -> flag, for those whose names differ from their flag's dest (and all of
# LEARNER_FLAGS': `num_sgd_steps_per_step` -> --sgd-steps-per-call, the others as their dest).
AGENT_FIELDS = {"width_multiplier": "--width", "compute_dtype": "--bfloat16",
                "feature_norm": "--no-feature-norm",
                **{field: flag for flag, (field, *_) in LEARNER_FLAGS.items()}}


def checkpoint_range(text: str) -> tuple[int, int]:
    """FIRST-LAST (e.g. 0-9) as (first, last): a `--checkpoints` range of dataset ids."""
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST, e.g. 0-9, got {text!r}") from None
    return first, last


def add_checkpoint_source(parser: argparse.ArgumentParser,
                          checkpoint_help: str = "pre-trained run directory") -> None:
    """The checkpoint a command starts from or plays: --checkpoint and --checkpoint-step."""
    parser.add_argument("--checkpoint", required=True, help=checkpoint_help)
    parser.add_argument("--checkpoint-step", type=int, default=None,
                        help="which checkpoint of the run, by SGD step (default: the latest)")


def add_run_arguments(parser: argparse.ArgumentParser, *, seed_help: str, name_help: str,
                      out_help: str = "run directory", single_process: bool = True) -> dict:
    """The run's identity and output (`RunIdentity`); a single-process run's progress bar
    too (`--log-every`, `--no-progress`)."""
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--name", default=None, help=name_help)
    if single_process:
        parser.add_argument("--log-every", type=int, default=100,
                            help="SGD steps between updates of the loss shown by the progress "
                                 "bar (logs/learner.csv gets every learner step)")
        parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return {"out_dir": "--out", "run_name": "--name"}


def run_fields(args: argparse.Namespace) -> dict:
    """`RunIdentity`'s fields (and a single-process run's `log_every`, `progress`)."""
    fields = {"out_dir": args.out, "seed": args.seed, "run_name": args.name}
    if hasattr(args, "no_progress"):
        fields.update(log_every=args.log_every, progress=not args.no_progress)
    return fields


def add_checkpoint_arguments(parser: argparse.ArgumentParser, unit: str = "SGD steps") -> dict:
    """How often the run checkpoints (`Checkpointing`); `unit`: what the steps count."""
    parser.add_argument("--checkpoint-every", type=int, default=1000,
                        help=f"{unit} between checkpoints (a final one is always written)")
    parser.add_argument("--keep-checkpoints", type=int, default=3,
                        help="checkpoints kept on disk (the newest)")
    return {}


def checkpoint_fields(args: argparse.Namespace) -> dict:
    return {"checkpoint_every": args.checkpoint_every,
            "keep_checkpoints": args.keep_checkpoints}


def add_evaluation_arguments(parser: argparse.ArgumentParser, every_help: str | None,
                             *, prefix: str = "eval-", final: bool = False) -> dict:
    """When and how the run is evaluated (`EvaluationSettings`).

    `every_help`: what --eval-every counts (None: no --eval-every, as in `scaled-ql evaluate`,
    which also names the protocol's flags without `prefix`); `final`: add --no-final-eval.
    """
    if every_help is not None:
        parser.add_argument(f"--{prefix}every", type=int, default=0, help=every_help)
    per_round = " per evaluation" if every_help is not None else ""
    parser.add_argument(f"--{prefix}episodes", type=int, default=10,
                        help=f"episodes per game{per_round}")
    parser.add_argument(f"--{prefix}epsilon", type=float, default=0.001,
                        help="probability of a random action at each step")
    parser.add_argument(f"--{prefix}sticky-action-prob", type=float, default=None,
                        help="probability of repeating the previous action (default: the "
                             "suite's: Atari 0.25, MinAtar 0.1)")
    parser.add_argument(f"--{prefix}max-frames", type=int, default=None,
                        help=f"{'evaluation ' if prefix else ''}{MAX_FRAMES_HELP}")
    parser.add_argument(f"--{prefix}workers", type=int, default=None, help=EVAL_WORKERS_HELP)
    if final:
        parser.add_argument("--no-final-eval", action="store_true", help=NO_FINAL_EVAL_HELP)
    field = prefix.replace("-", "_")
    return {f"{field}max_episode_frames": f"--{prefix}max-frames"}


def evaluation_fields(args: argparse.Namespace) -> dict:
    """`EvaluationSettings`' fields (and `final_eval` where the command has --no-final-eval)."""
    fields = {"eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
              "eval_epsilon": args.eval_epsilon,
              "eval_sticky_action_prob": args.eval_sticky_action_prob,
              "eval_max_episode_frames": args.eval_max_frames,
              "eval_workers": args.eval_workers}
    if hasattr(args, "no_final_eval"):
        fields["final_eval"] = not args.no_final_eval
    return fields


def add_data_arguments(parser: argparse.ArgumentParser, *, runs_help: str,
                       checkpoints_help: str) -> dict:
    """Which offline data the run reads, and how (`OfflineTraining`'s data fields)."""
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--runs", default="1", help=runs_help)
    parser.add_argument("--checkpoints", type=checkpoint_range, default=None,
                        help=checkpoints_help)
    parser.add_argument("--episode-fraction", type=float, default=1.0,
                        help="fraction of the selected episodes to read (small data)")
    parser.add_argument("--shuffle-buffer", type=int, default=10_000,
                        help="transitions in the shuffle buffer")
    parser.add_argument("--cache-data", action="store_true",
                        help="keep the decoded transitions in memory after the first pass "
                             "(small datasets such as MinAtar's: 2 KB per transition)")
    return {"data_dir": "--data"}


def data_fields(args: argparse.Namespace) -> dict:
    return {"data_dir": args.data, "runs": runs(args.runs), "checkpoints": args.checkpoints,
            "episode_fraction": args.episode_fraction, "shuffle_buffer": args.shuffle_buffer,
            "cache_data": args.cache_data}


def runs(text: str) -> tuple[int, ...]:
    """A `--runs` list (1,2,3) as a tuple of run numbers."""
    return tuple(int(r) for r in text.split(","))


def add_learner_arguments(group, *, from_checkpoint: bool = False) -> None:
    """The learner's optimisation flags (`LEARNER_FLAGS`: --batch-size, --learning-rate,
    --target-update-period, --sgd-steps-per-call) on `group` (a parser or argument group);
    `from_checkpoint`: a fine-tuning run's, whose unset flags keep the pre-trained run's values
    (default None) instead of the pre-training defaults."""
    for flag, (_, kind, default, text) in LEARNER_FLAGS.items():
        group.add_argument(flag, type=kind, default=None if from_checkpoint else default,
                           help=f"{text} {FROM_CHECKPOINT}" if from_checkpoint else text)


def learner_fields(args: argparse.Namespace) -> dict:
    """`ScaledQLConfig`'s optimisation fields from the parsed `add_learner_arguments` flags
    (None where a fine-tuning run leaves the checkpoint's value)."""
    return {field: getattr(args, flag[2:].replace("-", "_"))
            for flag, (field, *_) in LEARNER_FLAGS.items()}


def add_finetune_start(parser: argparse.ArgumentParser) -> dict:
    """Where a fine-tuning run starts (`FinetuneStart`) and on what: --checkpoint,
    --checkpoint-step, --game, --from-scratch and/or --freeze-torso, --fresh-head; and, in their
    own group, the learner settings that may differ from the checkpoint's: --cql-alpha and
    `add_learner_arguments`' flags, all defaulting to the pre-trained run's values
    (`learner_overrides`)."""
    add_checkpoint_source(parser)
    parser.add_argument("--game", required=True,
                        help="the game to fine-tune on, of the checkpoint's suite: e.g. Alien, "
                             "minatar/Seaquest")
    parser.add_argument("--from-scratch", action="store_true",
                        help="random initialisation of the same architecture (baseline)")
    parser.add_argument("--freeze-torso", action="store_true",
                        help="train the game's head only (the torso stays the pre-trained one; "
                             "with --from-scratch the random one: the random-features control)")
    parser.add_argument("--fresh-head", action="store_true",
                        help="start the game's head fresh even if the checkpoint has one")
    group = parser.add_argument_group("learner (default: the pre-trained run's values)")
    group.add_argument("--cql-alpha", type=float, default=None,
                       help=f"CQL weight {FROM_CHECKPOINT}")
    group.add_argument("--frozen-torso-steps", type=int, default=None, metavar="N",
                       help="train the head alone for the first N SGD steps, then the whole "
                            "network, the torso with an Adam of its own: linear probing, then "
                            "fine-tuning (default: the pre-trained run's, 0 after pre-training)")
    group.add_argument("--torso-learning-rate-scale", type=float, default=None, metavar="S",
                       help="the torso's Adam step size is --learning-rate times S, the heads' "
                            "is --learning-rate: the pre-trained torso moves slower than the new "
                            "head (default: the pre-trained run's, 1 after pre-training)")
    add_learner_arguments(group, from_checkpoint=True)
    return {}


def finetune_start_fields(args: argparse.Namespace) -> dict:
    """`FinetuneStart`'s fields but `agent` (the checkpoint's config with `learner_overrides`,
    which the command makes when it reads the checkpoint), and the `game`."""
    return {"game": args.game, "checkpoint": args.checkpoint,
            "checkpoint_step": args.checkpoint_step,
            "from_scratch": args.from_scratch, "freeze_torso": args.freeze_torso,
            "fresh_head": args.fresh_head}


def learner_overrides(args: argparse.Namespace) -> dict:
    """The learner settings a fine-tuning run's flags change (`ScaledQLConfig` field -> value;
    the flags left out keep the checkpoint's)."""
    fields = {"cql_alpha": args.cql_alpha, "frozen_torso_steps": args.frozen_torso_steps,
              "torso_learning_rate_scale": args.torso_learning_rate_scale,
              **learner_fields(args)}
    return {field: value for field, value in fields.items() if value is not None}
