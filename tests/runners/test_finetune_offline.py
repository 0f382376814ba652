"""Offline fine-tuning on real RLDS data and real ALE: a Pong-only pre-trained network gets a
fresh Breakout head (4 actions instead of 6), trained with and without a frozen torso, and the
from-scratch baseline one flag apart."""

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql.checkpointing import CheckpointMismatchError
from scaled_ql.agents.scaled_ql.finetune import is_torso_module
from scaled_ql.runners import PretrainConfig, run_pretrain
from scaled_ql.runners.evaluate import load_checkpoint
from scaled_ql.runners.finetune_offline import FinetuneOfflineConfig, run_finetune_offline
from tests.conftest import tiny_agent_config

EVAL = dict(eval_episodes=1, eval_max_episode_frames=400, eval_workers=0, progress=False)


@pytest.fixture(scope="module")
def pretrained(training_data, tmp_path_factory):
    """A tiny network pre-trained for 2 steps on Pong only."""
    out = tmp_path_factory.mktemp("pretrained") / "run"
    run_pretrain(PretrainConfig(games=("Pong",), data_dir=training_data, out_dir=str(out),
                                steps=2, agent=tiny_agent_config(), shuffle_buffer=200,
                                checkpoint_every=2, log_every=1, **EVAL))
    return str(out)


def _config(pretrained, training_data, out, **overrides):
    fields = dict(checkpoint=pretrained, game="Breakout", data_dir=training_data,
                  out_dir=str(out), steps=3, shuffle_buffer=200, eval_every=2,
                  checkpoint_every=3, log_every=1, **EVAL)
    fields.update(overrides)
    return FinetuneOfflineConfig(**fields)


def _torso(params):
    return {f"{m}/{n}": np.asarray(v) for m, leaves in params.items() if is_torso_module(m)
            for n, v in leaves.items()}


def test_freeze_torso_keeps_the_torso_bit_for_bit_and_trains_the_new_head(
        pretrained, training_data, tmp_path):
    source = load_checkpoint(pretrained)
    summary = run_finetune_offline(_config(pretrained, training_data, tmp_path / "frozen",
                                           freeze_torso=True))
    assert summary.step == 3 and set(summary.mean_returns) == {"Breakout"}
    tuned = load_checkpoint(summary.run_dir)
    assert tuned.meta.games == ("Breakout",) and tuned.meta.num_actions == (4,)
    assert tuned.meta.step == 3 and tuned.meta.extra["freeze_torso"] is True
    before, after = _torso(source.params), _torso(tuned.params)
    assert before.keys() == after.keys() and before
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)

    # The head moved away from where it started (same init key: seed 0).
    start = run_finetune_offline(_config(pretrained, training_data, tmp_path / "zero",
                                         freeze_torso=True, steps=1, eval_every=0,
                                         eval_at_start=False, checkpoint_every=1))
    start_head = load_checkpoint(start.run_dir).params["heads"]["w"]
    assert tuned.params["heads"]["w"].shape == (1, start_head.shape[1], 4 * 51)
    assert not np.array_equal(tuned.params["heads"]["w"], start_head)

    # Files: results of rounds 0 (before fine-tuning), 2 and 3; the curve CSV and PNG.
    run_dir = Path(summary.run_dir)
    results = json.loads((run_dir / "eval_results.json").read_text())
    assert [e["step"] for e in results["evaluations"]] == [0, 2, 3]
    assert results["run"]["method"] == "finetune_frozen_torso"
    with open(run_dir / "learning_curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 2, 3]
    assert float(rows[-1]["mean_return"]) == pytest.approx(summary.mean_returns["Breakout"])
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unfrozen_and_from_scratch_runs_differ_from_the_checkpoint_as_expected(
        pretrained, training_data, tmp_path):
    source = _torso(load_checkpoint(pretrained).params)
    tuned = run_finetune_offline(_config(pretrained, training_data, tmp_path / "tuned",
                                         eval_every=0, eval_at_start=False))
    tuned_torso = _torso(load_checkpoint(tuned.run_dir).params)
    changed = [k for k in source if not np.array_equal(source[k], tuned_torso[k])]
    assert changed, "training the torso left it unchanged"
    # Three Adam steps from the checkpoint: close to it, unlike a random initialisation.
    distance = lambda a, b: np.sqrt(sum(np.sum((a[k] - b[k]) ** 2) for k in a))
    scratch = run_finetune_offline(_config(pretrained, training_data, tmp_path / "scratch",
                                           from_scratch=True, seed=1, eval_every=0,
                                           eval_at_start=False))
    scratch_torso = _torso(load_checkpoint(scratch.run_dir).params)
    assert distance(tuned_torso, source) < 0.1 * distance(scratch_torso, source)
    assert load_checkpoint(scratch.run_dir).meta.extra["from_scratch"] is True


def test_frozen_torso_steps_train_the_head_first_then_the_torso_across_a_resume(
        pretrained, training_data, tmp_path):
    source = _torso(load_checkpoint(pretrained).params)
    agent = dataclasses.replace(tiny_agent_config(), frozen_torso_steps=2)
    config = _config(pretrained, training_data, tmp_path / "lp_ft", agent=agent, steps=2,
                     eval_every=0, eval_at_start=False, checkpoint_every=2)
    probed = run_finetune_offline(config)
    assert probed.step == 2
    probed_torso = _torso(load_checkpoint(probed.run_dir).params)
    for name in source:  # linear probing: 2 steps of the head alone
        np.testing.assert_array_equal(probed_torso[name], source[name], err_msg=name)
    results = json.loads((Path(probed.run_dir) / "eval_results.json").read_text())
    assert results["run"]["method"] == "finetune_lp_ft"
    # Resumed to 4 steps: the restored optimizer state knows the 2 steps are over.
    tuned = run_finetune_offline(dataclasses.replace(config, steps=4), resume=True)
    assert tuned.step == 4
    tuned_torso = _torso(load_checkpoint(tuned.run_dir).params)
    assert any(not np.array_equal(tuned_torso[k], v) for k, v in source.items())


def test_bad_input_fails_early_with_clear_messages(pretrained, training_data, tmp_path):
    with pytest.raises(ValueError, match="Pacman"):
        run_finetune_offline(_config(pretrained, training_data, tmp_path / "a", game="Pacman"))
    with pytest.raises(FileNotFoundError, match="no checkpoints/ folder"):
        run_finetune_offline(_config(str(tmp_path), training_data, tmp_path / "b"))
    other = tiny_agent_config(network=tiny_agent_config().network.__class__(
        torso="nature", feed_forward_size=32, num_groups=8))
    with pytest.raises(ValueError, match="must be the pre-trained one"):
        run_finetune_offline(_config(pretrained, training_data, tmp_path / "d", agent=other))
    # The fine-tuned run's checkpoints belong to its own game set: resuming them as Pong fails.
    from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.networks import make_networks

    checkpointer = Checkpointer(Path(pretrained) / "checkpoints")
    networks = make_networks(tiny_agent_config().network, (4,))
    template = init_training_state(networks, tiny_agent_config(), jax.random.PRNGKey(0))
    with pytest.raises(CheckpointMismatchError, match=r"\['Pong'\].*\['Breakout'\]"):
        checkpointer.restore(template, games=("Breakout",), num_actions=(4,))
    checkpointer.close()


@pytest.mark.slow
def test_cli_runs_and_reports(pretrained, training_data, tmp_path):
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "scaled_ql.cli", "finetune-offline", "--checkpoint",
               pretrained, "--game", "Breakout", "--data", training_data, "--steps", "2",
               "--out", str(out), "--freeze-torso", "--eval-episodes", "1", "--eval-max-frames",
               "400", "--eval-workers", "0", "--shuffle-buffer", "200", "--no-progress",
               "--cql-alpha", "0.05", "--batch-size", "8", "--frozen-torso-steps", "1",
               "--torso-learning-rate-scale", "0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "| Breakout |" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["cql_alpha"] == 0.05 and config["agent"]["batch_size"] == 8
    assert config["agent"]["frozen_torso_steps"] == 1
    assert config["agent"]["torso_learning_rate_scale"] == 0.5
    assert (out / "learning_curve.png").exists()
    bad = subprocess.run([*command[:6], "--game", "Pacman", *command[8:]], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "Pacman" in bad.stderr
