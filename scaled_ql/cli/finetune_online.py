"""`scaled-ql finetune-online`: fine-tune a pre-trained network online on a game variant.

A Launchpad program: actors play --game in --mode/--difficulty (real ALE, or MinAtar, where
--difficulty 1 is difficulty ramping) into a rate-limited Reverb table, the learner starts from
--checkpoint (optionally mixing the base game's offline data), evaluators score the variant, and
the program stops after --env-steps environment steps. --from-scratch: the single-game baseline
in the same program.
"""

import argparse
import dataclasses

from scaled_ql.cli import flags
from scaled_ql.cli.common import command
from scaled_ql.cli.finetune_offline import finetune_agent
from scaled_ql.cli.pretrain import NOT_RESUMABLE, interruptible, report_launch

# The run directory's "already holds checkpoints" error suggests --resume, which this command
# does not have (an online run's replay is not checkpointed).
_NO_RESUME = ("pass --resume to continue that run, or choose another --out",
              "online runs cannot be resumed (their replay is not checkpointed): choose "
              "another --out")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune-online", help="fine-tune a pre-trained network online on a game variant",
        description=__doc__.split("\n\n")[1])
    fields = flags.add_finetune_start(parser)
    parser.add_argument("--mode", type=int, default=None,
                        help="ALE mode (default: the ROM's; `scaled-ql games` lists them)")
    parser.add_argument("--difficulty", type=int, default=None,
                        help="ALE difficulty; MinAtar: 1 = difficulty ramping (Asterix, "
                             "Seaquest, SpaceInvaders) (default: the ROM's; MinAtar: 0)")
    parser.add_argument("--env-steps", required=True, type=int,
                        help="environment steps to collect over all actors (the stop "
                             "condition)")
    parser.add_argument("--launch", choices=("local_mt", "local_mp"), default="local_mp",
                        help="Launchpad launch type: threads or processes")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop everything after this many seconds, exit status 124 "
                             "(default: no time limit)")
    parser.add_argument("--online-cql-alpha", type=float, default=0.01,
                        help="CQL weight online (--cql-alpha overrides it too)")
    parser.add_argument("--offline-data", default=None,
                        help="TFDS data_dir with the base game's rlu_atari data to mix in "
                             "(default: none, online data only)")
    parser.add_argument("--offline-ratio", type=float, default=0.0,
                        help="fraction of each batch from the offline data")
    parser.add_argument("--offline-runs", default="1",
                        help="dataset runs of the offline data, e.g. 1,2")
    parser.add_argument("--offline-checkpoints", type=flags.checkpoint_range, default=None,
                        help="checkpoint_id range FIRST-LAST of the offline data (default: all)")
    parser.add_argument("--num-actors", type=int, default=1, help="actor nodes")
    parser.add_argument("--train-epsilon", type=float, default=0.01,
                        help="the actors' exploration epsilon")
    parser.add_argument("--variable-update-period", type=int, default=100,
                        help="actor environment steps between parameter pulls from the learner")
    parser.add_argument("--replay-size", type=int, default=100_000,
                        help="transitions in the online replay table (first in, first out)")
    parser.add_argument("--replay-min-size", type=int, default=1_000,
                        help="transitions in the online table before the learner samples it")
    parser.add_argument("--samples-per-insert", type=float, default=8.0,
                        help="learner samples per inserted transition")
    parser.add_argument("--actor-max-frames", type=int, default=None,
                        help=f"actors' {flags.MAX_FRAMES_HELP}")
    fields |= flags.add_run_arguments(
        parser, seed_help="seeds initialisation, the actors' games and evaluation",
        name_help="configuration name in reports (default: the method: online_finetune, "
                  "online_finetune_frozen_torso, online_finetune_lp_ft, online_scratch or "
                  "online_scratch_frozen_torso)",
        out_help="run directory (a new one: online runs cannot be resumed)",
        single_process=False)
    fields |= flags.add_checkpoint_arguments(parser, unit="learner steps")
    fields |= flags.add_evaluation_arguments(
        parser, "learner steps between evaluation rounds (0: at the start and the end only)")
    command(parser, run, {**fields, **flags.AGENT_FIELDS,
                          "replay_max_size": "--replay-size",
                          "actor_max_episode_frames": "--actor-max-frames"},
            replacements=(_NO_RESUME,))


def check_variant(game: str, mode: int | None, difficulty: int | None) -> None:
    """Raises ValueError naming --mode or --difficulty unless the game has that variant."""
    from scaled_ql.environments.games import get_game

    info = get_game(game)
    for flag, field, value in (("--mode", "mode", mode),
                               ("--difficulty", "difficulty", difficulty)):
        try:
            info.check_variant(**{field: value})
        except ValueError as error:
            # The catalogue's "(or None for the default)" is the API's word for leaving it out.
            raise ValueError(str(error).replace(
                f"has no {field}", f"has no {flag}").replace(
                "(or None for the default)", f"(or leave out {flag} for the game's default)")
            ) from None


def online_config(args: argparse.Namespace):
    """The FinetuneOnlineConfig the flags describe; its own settings are checked before the
    checkpoint is read (so a bad value is reported as such, whatever --checkpoint is)."""
    from scaled_ql.launchpad_programs.finetune_online import FinetuneOnlineConfig

    check_variant(args.game, args.mode, args.difficulty)
    config = FinetuneOnlineConfig(
        mode=args.mode, difficulty=args.difficulty, env_steps=args.env_steps,
        online_cql_alpha=args.online_cql_alpha, **flags.finetune_start_fields(args),
        offline_data=args.offline_data, offline_ratio=args.offline_ratio,
        offline_runs=flags.runs(args.offline_runs),
        offline_checkpoints=args.offline_checkpoints,
        num_actors=args.num_actors, train_epsilon=args.train_epsilon,
        variable_update_period=args.variable_update_period, replay_max_size=args.replay_size,
        replay_min_size=args.replay_min_size, samples_per_insert=args.samples_per_insert,
        actor_max_episode_frames=args.actor_max_frames, **flags.run_fields(args),
        **flags.checkpoint_fields(args), **flags.evaluation_fields(args))
    return dataclasses.replace(config, agent=finetune_agent(
        args.checkpoint, {"cql_alpha": args.online_cql_alpha, **flags.learner_overrides(args)},
        args.checkpoint_step))


PROG = "scaled-ql finetune-online"


def run(args: argparse.Namespace) -> int:
    return interruptible(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from scaled_ql.launchpad_programs.finetune_online import launch

    config = online_config(args)
    return report_launch(launch(config, launch_type=args.launch, timeout_s=args.timeout), PROG,
                         config.out_dir, NOT_RESUMABLE)
