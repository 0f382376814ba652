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


LEARNER = ("--batch-size", "--learning-rate", "--target-update-period", "--sgd-steps-per-call")
FINETUNING = TRAINING[1:]


@pytest.mark.parametrize("flag", ("--checkpoint", "--checkpoint-step", "--game", "--from-scratch",
                                  "--freeze-torso", "--fresh-head", "--cql-alpha", *LEARNER))
def test_the_fine_tuning_commands_share_their_start_and_learner_flags(flag):
    actions = [_options(prog)[flag] for prog in FINETUNING]
    assert len(_same(actions)) == 1, flag
    # The learner settings default to the checkpoint's: unset, and the help says so.
    if flag in ("--cql-alpha", *LEARNER):
        assert actions[0].default is None and "the pre-trained run's" in actions[0].help


def test_pretraining_defaults_its_learner_flags_to_the_learner_config():
    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.cli.flags import learner_fields

    args = build_parser().parse_args(["pretrain", "--games", "Pong", "--data", "d", "--out", "o",
                                      "--steps", "1"])
    for flag in LEARNER:
        assert _options("scaled-ql pretrain")[flag].type == _options(FINETUNING[0])[flag].type
    assert learner_fields(args) == {field: getattr(ScaledQLConfig(), field) for field in (
        "batch_size", "learning_rate", "target_update_period", "num_sgd_steps_per_step")}


def test_the_fine_tuning_flags_reach_the_start_and_the_learner_overrides():
    from scaled_ql.cli.flags import finetune_start_fields, learner_overrides
    from scaled_ql.cli.pretrain import agent_config

    learner = ["--batch-size", "32", "--learning-rate", "0.001", "--sgd-steps-per-call", "2"]
    start = ["--checkpoint", "pre", "--checkpoint-step", "7", "--game", "Alien", "--freeze-torso",
             "--fresh-head", "--cql-alpha", "0.5", "--torso-learning-rate-scale", "0.1", *learner]
    parser = build_parser()
    offline = parser.parse_args(["finetune-offline", *start, "--steps", "1", "--data", "d",
                                 "--out", "o"])
    online = parser.parse_args(["finetune-online", *start, "--env-steps", "1", "--out", "o"])
    for args in (offline, online):
        assert finetune_start_fields(args) == {
            "game": "Alien", "checkpoint": "pre", "checkpoint_step": 7, "from_scratch": False,
            "freeze_torso": True, "fresh_head": True}
        # Only the flags given: --target-update-period keeps the checkpoint's value.
        assert learner_overrides(args) == {"cql_alpha": 0.5, "torso_learning_rate_scale": 0.1,
                                           "batch_size": 32,
                                           "learning_rate": 0.001, "num_sgd_steps_per_step": 2}
    bare = ["--checkpoint", "pre", "--game", "Alien", "--steps", "1", "--data", "d", "--out", "o"]
    assert learner_overrides(parser.parse_args(["finetune-offline", *bare])) == {}
    control = parser.parse_args(["finetune-offline", *bare, "--from-scratch", "--freeze-torso"])
    assert finetune_start_fields(control)["from_scratch"] is True  # random-features control
    assert finetune_start_fields(control)["freeze_torso"] is True
    pretrain = agent_config(parser.parse_args(["pretrain", "--games", "Pong", "--data", "d",
                                               "--out", "o", "--steps", "1", *learner]))
    assert (pretrain.batch_size, pretrain.learning_rate, pretrain.target_update_period,
            pretrain.num_sgd_steps_per_step) == (32, 0.001, 2000, 2)
