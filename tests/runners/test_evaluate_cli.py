"""`scaled-ql evaluate`: a checkpoint's heads play real ALE and the returns land in a JSON."""

import json

import jax
import pytest

from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.cli import main
from scaled_ql.networks import make_networks
from tests.conftest import TRAINING_GAMES, tiny_agent_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory holding one checkpoint of a tiny two-game network."""
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_agent_config()
    networks = make_networks(config.network, (6, 4))
    state = init_training_state(networks, config, jax.random.PRNGKey(3))._replace(step=12)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    checkpointer.save(state, games=TRAINING_GAMES, num_actions=(6, 4), config=config,
                      extra={"run_name": "tiny"})
    checkpointer.close()
    return run_dir


def test_evaluate_writes_per_episode_returns_for_each_game(run_dir, capsys):
    out = run_dir / "eval.json"
    code = main(["evaluate", "--checkpoint", str(run_dir), "--episodes", "2", "--max-frames",
                 "300", "--workers", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    results = json.loads(out.read_text())
    (evaluation,) = results["evaluations"]
    assert evaluation["step"] == 12
    episodes = evaluation["episodes"]
    assert sorted(e["game"] for e in episodes) == sorted(TRAINING_GAMES * 2)
    assert all(e["frames"] <= 300 for e in episodes)
    printed = capsys.readouterr().out
    # 300 frames end no game: both rows are marked as scores of cut-off episodes.
    assert "| Pong† |" in printed and "| Breakout† |" in printed
    assert all(e["truncated"] for e in episodes)


def test_evaluate_a_subset_of_the_heads(run_dir):
    out = run_dir / "breakout.json"
    assert main(["evaluate", "--checkpoint", str(run_dir), "--games", "breakout", "--episodes",
                 "1", "--max-frames", "200", "--workers", "0", "--out", str(out),
                 "--no-progress"]) == 0
    episodes = json.loads(out.read_text())["evaluations"][0]["episodes"]
    assert [e["game"] for e in episodes] == ["Breakout"]


def test_a_game_without_a_head_is_refused(run_dir, capsys):
    assert main(["evaluate", "--checkpoint", str(run_dir), "--games", "Seaquest", "--episodes",
                 "1", "--workers", "0", "--no-progress"]) == 2
    assert "scaled-ql evaluate: error: no head for ['Seaquest']" in capsys.readouterr().err


def test_a_folder_without_checkpoints_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--no-progress"]) == 2
    assert "is it a run directory" in capsys.readouterr().err


def test_a_checkpoint_fine_tuned_on_a_variant_plays_that_variant(tmp_path, monkeypatch, capsys):
    """Online fine-tuning records its variant in the checkpoint (MinAtar Asterix with difficulty
    ramping here); `evaluate` plays it unless --difficulty says otherwise, records what it
    played, and refuses a variant the game does not have."""
    from scaled_ql.environments.suites import suite_of
    from scaled_ql.runners import evaluate as evaluate_lib
    from tests.runners.minatar import tiny_minatar_agent

    game, agent = "minatar/Asterix", tiny_minatar_agent()
    networks = make_networks(agent.network, (5,), suite_of((game,)).observation)
    state = init_training_state(networks, agent, jax.random.PRNGKey(0))._replace(step=7)
    checkpointer = Checkpointer(tmp_path / "run" / "checkpoints")
    checkpointer.save(state, games=(game,), num_actions=(5,), config=agent,
                      extra={"run_name": "ramping", "mode": None, "difficulty": 1,
                             "env_steps": 20000})
    checkpointer.close()
    played = []
    real = evaluate_lib.make_evaluator

    def spy(networks, games, protocol, *rest):
        played.append((protocol.mode, protocol.difficulty))
        return real(networks, games, protocol, *rest)

    monkeypatch.setattr(evaluate_lib, "make_evaluator", spy)
    flags = ["evaluate", "--checkpoint", str(tmp_path / "run"), "--episodes", "1",
             "--max-frames", "50", "--workers", "0", "--no-progress"]
    for extra, difficulty in (([], 1), (["--difficulty", "0"], 0)):
        out = tmp_path / f"eval{difficulty}.json"
        assert main([*flags, *extra, "--out", str(out)]) == 0
        config = json.loads(out.read_text())["run"]["config"]
        assert (config["protocol"]["mode"], config["protocol"]["difficulty"]) == (None, difficulty)
        assert config["env_steps"] == 20000  # the run's budget: `report` aligns on final rounds
    assert played == [(None, 1), (None, 0)]
    capsys.readouterr()
    # A difficulty the game does not have: refused before any episode, naming the flag.
    assert main([*flags, "--difficulty", "5", "--out", str(tmp_path / "bad.json")]) == 2
    assert "minatar/Asterix has no --difficulty 5" in capsys.readouterr().err
    assert played == [(None, 1), (None, 0)] and not (tmp_path / "bad.json").exists()
