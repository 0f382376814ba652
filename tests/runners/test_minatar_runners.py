"""The single-process commands on MinAtar, through the same code as Atari: `scaled-ql pretrain`
on real MinAtar RLDS data (and `--resume`), `evaluate`, `finetune-offline` to a held-out
MinAtar game, `report`; and the refusals that keep the two suites apart."""

import csv
import json

import numpy as np
import pytest

from scaled_ql.cli import main
from scaled_ql.environments import suites
from scaled_ql.runners.evaluate import load_checkpoint
from scaled_ql.types import MINATAR_OBSERVATION
from tests.runners.minatar import HELD_OUT_GAME, PRETRAIN_GAMES, TINY_MINATAR_FLAGS

QUICK_EVAL = ["--eval-episodes", "1", "--eval-workers", "0"]


def _pretrain_args(data, out, steps, *extra):
    return ["pretrain", "--data", data, "--games", ",".join(PRETRAIN_GAMES), "--steps",
            str(steps), "--out", str(out), "--eval-every", "2", "--checkpoint-every", "2",
            "--shuffle-buffer", "100", "--no-progress", *QUICK_EVAL, *TINY_MINATAR_FLAGS,
            *extra]


@pytest.fixture(scope="module")
def minatar_run(minatar_data, tmp_path_factory):
    """`scaled-ql pretrain` for 4 steps on minatar/Breakout + minatar/Asterix (one process),
    with the suite's evaluation defaults (no --eval-max-frames)."""
    out = tmp_path_factory.mktemp("minatar_run") / "run"
    assert main(_pretrain_args(minatar_data, out, 4)) == 0
    return out


def _in_channels(params) -> set[int]:
    return {np.shape(leaves["w"])[2] for module, leaves in params.items()
            if module.startswith("torso") and np.ndim(leaves.get("w")) == 4}


def test_pretrain_single_process_on_minatar(minatar_run, minatar_data, capsys):
    loaded = load_checkpoint(minatar_run)
    meta = loaded.meta
    assert (meta.step, meta.suite, meta.games, meta.num_actions) == (
        4, "minatar", PRETRAIN_GAMES, (3, 5))
    assert loaded.networks.observation == MINATAR_OBSERVATION
    assert 10 in _in_channels(loaded.params)  # the stem reads the 10 MinAtar channels
    config = json.loads((minatar_run / "config.json").read_text())
    assert (config["agent"]["network"]["torso"], config["agent"]["network"]["num_blocks"]) == (
        "minatar_resnet", 1)
    # The suite's evaluation settings, recorded as used: MinAtar's sticky actions and cap.
    assert (config["eval_sticky_action_prob"], config["eval_max_episode_frames"]) == (
        suites.MINATAR.default_sticky_action_prob, suites.MINATAR.default_max_episode_frames)
    assert (config["eval_sticky_action_prob"], config["eval_max_episode_frames"]) == (0.1, 10_000)
    results = json.loads((minatar_run / "eval_results.json").read_text())
    assert [e["step"] for e in results["evaluations"]] == [2, 4]
    for evaluation in results["evaluations"]:
        assert sorted(e["game"] for e in evaluation["episodes"]) == sorted(PRETRAIN_GAMES)
    with open(minatar_run / "logs" / "learner.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["step"])) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    summary = (minatar_run / "summary.md").read_text()
    assert summary.startswith("| game | mean return | DQN-normalized |")
    assert "| minatar/Breakout |" in summary and "human-normalized" not in summary

    # --resume continues the MinAtar run from its checkpoint (suite and heads checked).
    capsys.readouterr()
    assert main(_pretrain_args(minatar_data, minatar_run, 6, "--resume")) == 0
    assert "from the checkpoint at step 4" in capsys.readouterr().err
    assert load_checkpoint(minatar_run).meta.step == 6
    assert main(_pretrain_args(minatar_data, minatar_run, 4)) == 2  # exists, no --resume


def test_pretrain_picks_the_suites_default_torso():
    from scaled_ql.cli import build_parser
    from scaled_ql.cli.pretrain import pretrain_config

    def torso(games):
        args = build_parser().parse_args(["pretrain", "--data", "d", "--games", games,
                                          "--steps", "1", "--out", "o"])
        return pretrain_config(args).agent.network.torso

    assert torso("minatar/Breakout,minatar/Asterix") == "minatar_resnet"
    assert torso("Pong,Breakout") == "resnet18"  # as before suites existed


def test_evaluate_a_minatar_run(minatar_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(minatar_run), "--episodes", "2", "--max-frames",
                 "300", "--workers", "0", "--out", str(out), "--no-progress"]) == 0
    results = json.loads(out.read_text())
    (evaluation,) = results["evaluations"]
    episodes = evaluation["episodes"]
    assert sorted(e["game"] for e in episodes) == sorted(PRETRAIN_GAMES * 2)
    assert all(e["frames"] <= 300 for e in episodes)  # a MinAtar frame is a step
    protocol = results["run"]["config"]["protocol"]
    assert (protocol["sticky_action_prob"], protocol["max_frames"]) == (0.1, 300)
    printed = capsys.readouterr().out
    assert "| minatar/Asterix |" in printed and "DQN-normalized" in printed

    # An Atari game is refused by name, with both suites named.
    assert main(["evaluate", "--checkpoint", str(minatar_run), "--games", "Breakout",
                 "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is a checkpoint of the minatar suite" in err and "['Breakout'] are atari games" in err


@pytest.fixture(scope="module")
def finetuned(minatar_run, minatar_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetuned") / "run"
    code = main(["finetune-offline", "--checkpoint", str(minatar_run), "--game", HELD_OUT_GAME,
                 "--data", minatar_data, "--steps", "3", "--out", str(out), "--freeze-torso",
                 "--eval-every", "2", "--checkpoint-every", "3", "--eval-max-frames", "500",
                 "--shuffle-buffer", "100", "--no-progress", *QUICK_EVAL])
    assert code == 0
    return out


def test_finetune_offline_to_a_held_out_minatar_game(minatar_run, finetuned):
    source, tuned = load_checkpoint(minatar_run), load_checkpoint(finetuned)
    assert (tuned.meta.suite, tuned.meta.games, tuned.meta.num_actions, tuned.meta.step) == (
        "minatar", (HELD_OUT_GAME,), (6,), 3)
    assert tuned.meta.extra["pretrained_games"] == list(PRETRAIN_GAMES)
    torso = lambda params: {f"{m}/{n}": np.asarray(v) for m, leaves in params.items()
                            if m.startswith("torso") for n, v in leaves.items()}
    before, after = torso(source.params), torso(tuned.params)
    assert before.keys() == after.keys() and before
    for name in before:  # --freeze-torso: bit for bit the pre-trained MinAtar torso
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    n = tuned.config.network.num_atoms
    assert tuned.params["heads"]["w"].shape == (1, source.params["heads"]["w"].shape[1], 6 * n)
    config = json.loads((finetuned / "config.json").read_text())
    assert (config["eval_sticky_action_prob"], config["eval_max_episode_frames"]) == (0.1, 500)
    with open(finetuned / "learning_curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 2, 3]
    assert all(r["human_normalized"] != "" for r in rows)  # Seaquest has a reference score


def test_finetune_offline_without_a_final_evaluation(minatar_run, minatar_data, tmp_path,
                                                     capsys):
    """--no-final-eval: the summary is of the last evaluation (here the one at step 0), and
    says so; resuming with another episode count is refused (one protocol per run)."""
    out = tmp_path / "run"
    args = ["finetune-offline", "--checkpoint", str(minatar_run), "--game", HELD_OUT_GAME,
            "--data", minatar_data, "--steps", "2", "--out", str(out), "--no-final-eval",
            "--eval-max-frames", "50", "--shuffle-buffer", "100", "--no-progress", *QUICK_EVAL]
    assert main(args) == 0
    results = json.loads((out / "eval_results.json").read_text())
    assert [e["step"] for e in results["evaluations"]] == [0]
    assert load_checkpoint(out).meta.step == 2
    printed = capsys.readouterr().out
    assert ("no final evaluation (--no-final-eval): the scores are of the last evaluation, at "
            "step 0 of 2") in printed
    assert json.loads((out / "summary.json").read_text())["evaluated_step"] == 0
    assert main([*args, "--resume", "--eval-episodes", "2"]) == 2
    assert "--eval-episodes: was 1, now 2" in capsys.readouterr().err


def test_a_minatar_checkpoint_is_not_fine_tuned_on_an_atari_game(minatar_run, minatar_data,
                                                                 tmp_path, capsys):
    out = tmp_path / "atari"
    where = load_checkpoint(minatar_run).where
    capsys.readouterr()
    assert main(["finetune-offline", "--checkpoint", str(minatar_run), "--game", "Seaquest",
                 "--data", minatar_data, "--steps", "2", "--out", str(out),
                 "--no-progress"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"scaled-ql finetune-offline: error: {where} is "
                           "a checkpoint of the minatar suite (games ['minatar/Breakout', "
                           "'minatar/Asterix'], observations uint8 [10, 10, 10]); ['Seaquest'] "
                           "are atari games (observations uint8 [84, 84, 4])")
    assert not out.exists()


def test_report_compares_minatar_runs(minatar_run, finetuned, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(minatar_run), str(finetuned), "--out", str(out), "--reps",
                 "50"]) == 0
    report = (out / "report.md").read_text()
    for game in (*PRETRAIN_GAMES, HELD_OUT_GAME):
        assert game in report
    assert "DQN-normalized" in report and "human-normalized" not in report
    assert json.loads((out / "summary.json").read_text())
    assert list(out.glob("*.png"))


def test_a_runs_closing_iqm_is_the_reports_iqm(minatar_run, tmp_path):
    """One IQM definition: the run's summary.json (printed at its end) and `scaled-ql report`
    give the same number for the same run; the run's interval is labelled as evaluation
    uncertainty over episodes, never as a CI."""
    out = tmp_path / "report_one"
    assert main(["report", str(minatar_run), "--out", str(out), "--reps", "50"]) == 0
    group, = json.loads((out / "summary.json").read_text())["groups"]
    run_summary = json.loads((minatar_run / "summary.json").read_text())
    assert run_summary["iqm"] == pytest.approx(group["aggregates"]["IQM"]["estimate"], abs=1e-9)
    lower, upper = run_summary["episode_interval"]
    assert lower <= run_summary["iqm"] <= upper
    closing = (minatar_run / "summary.md").read_text()
    assert "evaluation uncertainty, episodes resampled" in closing and "95% CI" not in closing
