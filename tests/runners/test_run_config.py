"""The run configurations' shared parts (`runners.run_config`) and the run summary
(`runners.summary`): one check per field for every config, config.json's keys unchanged, what a
`--resume` may change, and how a summary marks episodes cut off by the episode cap."""

import dataclasses

import numpy as np
import pytest

from scaled_ql.agents.scaled_ql import ScaledQLConfig
from scaled_ql.evaluation import Episode
from scaled_ql.runners import run_dir
from scaled_ql.runners.finetune_offline import FinetuneOfflineConfig
from scaled_ql.runners.finetune_offline import flat_config as finetune_flat
from scaled_ql.runners.pretrain import PretrainConfig, flat_config
from scaled_ql.runners.run_config import OfflineTraining, json_fields
from scaled_ql.runners.summary import format_table, scored

PRETRAIN = dict(games=("Pong", "Breakout"), data_dir="data", out_dir="run", steps=4)
FINETUNE = dict(checkpoint="pre", game="Breakout", data_dir="data", out_dir="ft", steps=4)

# config.json's keys before the parts existed: a run started then resumes now.
PRETRAIN_KEYS = {
    "games", "data_dir", "out_dir", "steps", "agent", "runs", "checkpoints", "episode_fraction",
    "shuffle_buffer", "cache_data", "eval_every", "final_eval", "eval_episodes", "eval_epsilon",
    "eval_sticky_action_prob", "eval_max_episode_frames", "eval_workers", "checkpoint_every",
    "keep_checkpoints", "log_every", "max_consecutive_skips", "seed", "run_name", "method",
    "progress"}
FINETUNE_KEYS = (PRETRAIN_KEYS - {"games", "max_consecutive_skips"}) | {
    "checkpoint", "game", "freeze_torso", "from_scratch", "fresh_head", "checkpoint_step",
    "eval_at_start"}


def test_both_offline_configs_are_made_of_the_same_parts():
    pretrain, finetune = PretrainConfig(**PRETRAIN), FinetuneOfflineConfig(**FINETUNE)
    assert isinstance(pretrain, OfflineTraining) and isinstance(finetune, OfflineTraining)
    assert {f.name for f in dataclasses.fields(pretrain)} == PRETRAIN_KEYS
    assert {f.name for f in dataclasses.fields(finetune)} == FINETUNE_KEYS
    assert set(flat_config(pretrain)) == PRETRAIN_KEYS
    assert set(finetune_flat(finetune, pretrain.agent)) == FINETUNE_KEYS
    # The defaults each command had: the pretraining names, fine-tuning's derived ones.
    assert (pretrain.run_name, pretrain.method) == ("scaled-ql", "scaled_ql")
    assert (finetune.run_name, finetune.method_name) == (None, "finetune")
    assert dataclasses.replace(finetune, freeze_torso=True).method_name == "finetune_frozen_torso"
    assert dataclasses.replace(finetune, from_scratch=True).method_name == "scratch"
    with pytest.raises(TypeError):
        PretrainConfig(("Pong",), "data", "run", 4)  # keyword-only: parts cannot reorder them


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be >= 1, got 0"),
    ("log_every", 0, "log_every must be >= 1, got 0"),
    ("checkpoint_every", 0, "checkpoint_every must be >= 1, got 0"),
    ("keep_checkpoints", 0, "keep_checkpoints must be >= 1, got 0"),
    ("eval_every", -1, "eval_every must be >= 0, got -1"),
    ("eval_episodes", 0, "eval_episodes must be >= 1, got 0"),
    ("eval_epsilon", 1.5, "eval_epsilon must be in [0, 1], got 1.5"),
])
def test_every_part_checks_its_fields_and_names_the_config(field, value, message):
    for config, fields in ((PretrainConfig, PRETRAIN), (FinetuneOfflineConfig, FINETUNE)):
        with pytest.raises(ValueError) as error:
            config(**{**fields, field: value})
        assert str(error.value) == f"{config.__name__}.{message}"
    with pytest.raises(ValueError, match=r"^PretrainConfig\.max_consecutive_skips must be >= 1"):
        PretrainConfig(**PRETRAIN, max_consecutive_skips=0)


# The online program's config.json keys before it was made of the parts.
ONLINE_KEYS = {
    "checkpoint", "game", "out_dir", "env_steps", "mode", "difficulty", "agent",
    "online_cql_alpha", "checkpoint_step", "fresh_head", "from_scratch", "freeze_torso",
    "offline_data", "offline_ratio", "offline_runs", "offline_checkpoints", "num_actors",
    "train_epsilon", "variable_update_period", "replay_max_size", "replay_min_size",
    "samples_per_insert", "samples_per_insert_tolerance", "offline_replay_size",
    "sampler_poll_ms", "sampler_timeout_ms", "actor_sticky_action_prob",
    "actor_max_episode_frames", "eval_every", "eval_at_start", "eval_episodes", "eval_epsilon",
    "eval_sticky_action_prob", "eval_max_episode_frames", "eval_workers", "num_evaluators",
    "checkpoint_every", "keep_checkpoints", "max_pending_rounds", "seed", "run_name", "method"}


def test_the_online_config_is_made_of_the_same_parts_and_keeps_its_keys():
    from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
    from scaled_ql.launchpad_programs.online_config import FinetuneOnlineConfig, flat_config
    from scaled_ql.runners.run_config import (
        Checkpointing,
        EvaluationSettings,
        FinetuneStart,
        RunIdentity,
    )

    online = FinetuneOnlineConfig(checkpoint="pre", game="Breakout", out_dir="on", env_steps=10,
                                  agent=ScaledQLConfig(), offline_runs=(1, 2))
    for part in (RunIdentity, Checkpointing, EvaluationSettings, FinetuneStart):
        assert isinstance(online, part)
    flat = flat_config(online)
    assert set(flat) == ONLINE_KEYS
    assert (flat["offline_runs"], flat["method"], flat["run_name"]) == (
        [1, 2], "online_finetune", "online_finetune")
    assert isinstance(flat["agent"], dict)
    assert dataclasses.replace(online, from_scratch=True).method_name == "online_scratch"
    assert dataclasses.replace(online, freeze_torso=True).method_name == (
        "online_finetune_frozen_torso")
    # The parts' checks name the online config; its own checks stay.
    for field, value, message in (("eval_every", -1, "eval_every must be >= 0, got -1"),
                                  ("keep_checkpoints", 0, "keep_checkpoints must be >= 1, got 0"),
                                  ("env_steps", 0, "env_steps must be >= 1, got 0"),
                                  ("num_evaluators", 2, "num_evaluators must be 0 or 1, got 2")):
        with pytest.raises(ValueError) as error:
            dataclasses.replace(online, **{field: value})
        assert str(error.value) == f"FinetuneOnlineConfig.{message}"


def test_every_fine_tuning_start_is_named_by_its_method():
    from scaled_ql.agents.scaled_ql.builder import FinetuneConfig
    from scaled_ql.launchpad_programs.finetune_online import FinetuneOnlineConfig

    online = dict(checkpoint="pre", game="Breakout", out_dir="on", env_steps=10)
    lp_ft = ScaledQLConfig(frozen_torso_steps=5)
    for config, fields, prefix in ((FinetuneOfflineConfig, FINETUNE, ""),
                                   (FinetuneOnlineConfig, online, "online_")):
        for scratch, frozen, agent, method in (
                (False, False, None, "finetune"), (False, True, None, "finetune_frozen_torso"),
                (False, False, lp_ft, "finetune_lp_ft"), (True, False, None, "scratch"),
                (True, True, None, "scratch_frozen_torso")):  # the random-features control
            start = config(**fields, from_scratch=scratch, freeze_torso=frozen, agent=agent)
            assert start.method_name == prefix + method
            builder_start = start.builder_start()
            assert (builder_start.from_scratch, builder_start.freeze_torso) == (scratch, frozen)
    both = FinetuneConfig(checkpoint="pre", from_scratch=True, freeze_torso=True)
    assert (both.from_scratch, both.freeze_torso) == (True, True)


def test_json_fields_are_what_config_json_reads_back():
    fields = json_fields(PretrainConfig(**PRETRAIN, runs=(1, 2), checkpoints=(0, 9)))
    assert (fields["games"], fields["runs"], fields["checkpoints"]) == (
        ["Pong", "Breakout"], [1, 2], [0, 9])
    assert "agent" not in fields


def test_resume_may_change_how_many_checkpoints_are_kept_but_not_the_protocol(tmp_path):
    previous = flat_config(PretrainConfig(**PRETRAIN))
    kept = flat_config(PretrainConfig(**PRETRAIN, keep_checkpoints=10, checkpoint_every=7))
    run_dir.check_resume(tmp_path, previous, kept, latest=2)  # no error
    other = flat_config(PretrainConfig(**PRETRAIN, eval_epsilon=0.05))
    with pytest.raises(ValueError, match=r"eval_epsilon: was 0\.001, now 0\.05"):
        run_dir.check_resume(tmp_path, previous, other, latest=2)


def test_a_run_made_before_a_learner_setting_existed_resumes_with_its_default(tmp_path):
    # A run whose config.json predates `frozen_torso_steps` resumes (the default, 0, is what
    # the code did before); a changed setting is still refused, and so is a non-default value
    # of the new one.
    current = flat_config(PretrainConfig(**PRETRAIN))
    older = {**current, "agent": {k: v for k, v in current["agent"].items()
                                  if k != "frozen_torso_steps"}}
    assert "frozen_torso_steps" in current["agent"]
    run_dir.check_resume(tmp_path, older, current, latest=2)  # no error
    other = flat_config(PretrainConfig(**PRETRAIN, agent=ScaledQLConfig(frozen_torso_steps=5)))
    with pytest.raises(ValueError, match=r"agent\.frozen_torso_steps: was 0, now 5"):
        run_dir.check_resume(tmp_path, older, other, latest=2)
    changed = {**older, "agent": {**older["agent"], "cql_alpha": 0.7}}
    with pytest.raises(ValueError, match=r"agent\.cql_alpha: was 0\.7"):
        run_dir.check_resume(tmp_path, changed, current, latest=2)


def _episodes(pong_frames: int, pong_cut: bool) -> list[Episode]:
    return [Episode("Pong", -20.0, 100, pong_frames, pong_cut),
            Episode("Pong", -21.0, 100, 400, False),
            Episode("Carnival", 500.0, 100, 400, False)]


def test_a_summary_marks_cut_off_episodes_as_the_report_does():
    summary = scored("run", 8, ("Pong", "Carnival"), _episodes(400, True), seed=0)
    assert summary.truncated_games == ("Pong",)
    assert summary.truncation.startswith("1 of 3 episodes cut at 400 frames by the episode cap")
    table = format_table(summary)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["Pong"].endswith(f"| {summary.human_normalized['Pong']:.3f}† |")
    assert rows["Carnival"].endswith("| n/a |")  # no human score, no cut-off episode
    (iqm,) = [line for line in table.splitlines() if line.startswith("IQM")]
    assert f"{summary.iqm:.3f}† (one run;" in iqm  # Pong is in the IQM
    assert table.splitlines()[-1] == (f"† {summary.truncation} Raise --eval-max-frames (or "
                                      "leave it out: the suite's cap) to score whole games.")
    evaluate_table = format_table(summary, cap_flag="--max-frames", mark_games=True)
    assert "| Pong† | -20.5 |" in evaluate_table and "Raise --max-frames" in evaluate_table


def test_a_summary_without_cut_off_episodes_has_no_marks():
    summary = scored("run", 8, ("Pong", "Carnival"), _episodes(300, False), seed=0)
    assert (summary.truncation, summary.truncated_games) == ("", ())
    assert "†" not in format_table(summary)
    # Only an unscored game cut off: its row is marked, the IQM (without it) is not.
    cut_carnival = [*_episodes(300, False)[:2], Episode("Carnival", 500.0, 100, 400, True)]
    table = format_table(scored("run", 8, ("Pong", "Carnival"), cut_carnival, seed=0))
    assert "| n/a† |" in table
    assert "†" not in next(line for line in table.splitlines() if line.startswith("IQM"))
    assert np.isnan(scored("run", 8, ("Carnival",), cut_carnival[2:], seed=0)
                    .human_normalized["Carnival"])


def test_no_episodes_no_scores():
    summary = scored("run", 8, ("Pong",), None, seed=0, evaluated_step=None)
    assert (summary.mean_returns, summary.iqm, summary.truncation) == ({}, None, "")
    assert format_table(summary).startswith("no evaluation: --eval-every 0 and --no-final-eval")
