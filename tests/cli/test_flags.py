"""One flag per setting: the training commands take the run, checkpointing and evaluation
settings with the same flags and defaults (`cli.flags`), and the flags reach the configs."""

import argparse

import pytest

from scaled_ql.cli import build_parser
from tests.cli.test_help import leaf_parsers

PARSERS = leaf_parsers(build_parser())
TRAINING = ("scaled-ql pretrain", "scaled-ql finetune-offline", "scaled-ql finetune-online")
SHARED = ("--out", "--seed", "--name", "--checkpoint-every", "--keep-checkpoints",
          "--eval-every", "--eval-episodes", "--eval-epsilon", "--eval-sticky-action-prob",
          "--eval-max-frames", "--eval-workers", "--verbose")
SINGLE_PROCESS = ("--log-every", "--no-progress", "--no-final-eval", "--data", "--runs",
                  "--checkpoints", "--episode-fraction", "--shuffle-buffer", "--cache-data")


def _options(prog: str) -> dict[str, argparse.Action]:
    return {flag: action for action in PARSERS[prog]._actions  # no public list of actions
            for flag in action.option_strings}


def _same(actions: list[argparse.Action]) -> set:
    return {(a.dest, a.default, a.type, a.required, a.help) for a in actions}


@pytest.mark.parametrize("flag", SHARED)
def test_the_training_commands_share_their_run_settings(flag):
    actions = [_options(prog)[flag] for prog in TRAINING]
    if flag in ("--seed", "--name", "--out", "--checkpoint-every", "--eval-every"):
        # What is seeded, the default name, the folder and the step unit are the command's.
        assert len({(a.dest, a.default, a.type, a.required) for a in actions}) == 1
    else:
        assert len(_same(actions)) == 1, flag


@pytest.mark.parametrize("flag", SINGLE_PROCESS)
def test_the_single_process_commands_share_their_loop_and_data_settings(flag):
    pretrain, offline = (_options(prog) for prog in TRAINING[:2])
    if flag in ("--runs", "--checkpoints"):
        assert (pretrain[flag].default, pretrain[flag].type) == (
            offline[flag].default, offline[flag].type)
    else:
        assert len(_same([pretrain[flag], offline[flag]])) == 1, flag
    assert flag not in _options("scaled-ql finetune-online")  # a Launchpad program


def test_evaluate_plays_the_same_protocol_without_the_eval_prefix():
    evaluate, pretrain = _options("scaled-ql evaluate"), _options("scaled-ql pretrain")
    for name in ("episodes", "epsilon", "sticky-action-prob", "max-frames", "workers"):
        ours, theirs = evaluate[f"--{name}"], pretrain[f"--eval-{name}"]
        assert (ours.default, ours.type) == (theirs.default, theirs.type), name
    for flag in ("--checkpoint", "--checkpoint-step"):
        assert len(_same([_options(p)[flag] for p in (
            "scaled-ql finetune-offline", "scaled-ql finetune-online")])) == 1
        assert _options("scaled-ql evaluate")[flag].dest == flag[2:].replace("-", "_")


def test_the_flags_reach_the_configs():
    from scaled_ql.cli.finetune_offline import finetune_config
    from scaled_ql.cli.pretrain import pretrain_config

    shared = ["--out", "o", "--seed", "3", "--checkpoint-every", "5", "--keep-checkpoints", "2",
              "--eval-every", "4", "--eval-episodes", "2", "--eval-epsilon", "0.05",
              "--eval-sticky-action-prob", "0", "--eval-max-frames", "300", "--eval-workers",
              "0", "--log-every", "7", "--no-progress", "--no-final-eval", "--data", "d",
              "--runs", "1,2", "--checkpoints", "0-9", "--episode-fraction", "0.5",
              "--shuffle-buffer", "50", "--cache-data", "--steps", "9"]
    parser = build_parser()
    pretrain = pretrain_config(parser.parse_args(["pretrain", "--games", "Pong", *shared]))
    offline = finetune_config(parser.parse_args(
        ["finetune-offline", "--checkpoint", "pre", "--game", "Pong", *shared]))
    for config in (pretrain, offline):
        assert (config.out_dir, config.seed, config.checkpoint_every, config.keep_checkpoints,
                config.eval_every, config.eval_episodes, config.eval_epsilon,
                config.eval_sticky_action_prob, config.eval_max_episode_frames,
                config.eval_workers, config.log_every, config.progress, config.final_eval,
                config.data_dir, config.runs, config.checkpoints, config.episode_fraction,
                config.shuffle_buffer, config.cache_data, config.steps) == (
            "o", 3, 5, 2, 4, 2, 0.05, 0.0, 300, 0, 7, False, False, "d", (1, 2), (0, 9), 0.5,
            50, True, 9)
    assert (pretrain.run_name, offline.run_name) == ("scaled_ql-resnet18", None)
