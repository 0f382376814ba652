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
