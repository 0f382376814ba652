"""scripts/greedy_actions.py: the greedy policy's action fractions, checked against a policy
whose actions are counted independently (the same checkpoint through `CheckpointPolicy`)."""

import collections
import importlib.util
import pathlib

import numpy as np
import pytest

from tests.cli.tiny_run import GAME, save_tiny_run

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def greedy_actions():
    spec = importlib.util.spec_from_file_location("greedy_actions",
                                                  ROOT / "scripts/greedy_actions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fractions_are_the_greedy_policys_counts(greedy_actions, tmp_path, capsys):
    from scaled_ql.agents.scaled_ql.actor import CheckpointPolicy
    from scaled_ql.environments.minatar_env import MinAtarEnvironment

    run = str(save_tiny_run(tmp_path / "run"))
    returns, fractions = greedy_actions.action_fractions(run, GAME, 2, 200)
    assert len(returns) == 2 and len(fractions) == 3
    assert sum(fractions) == pytest.approx(1.0)
    # The same episodes played here: greedy (epsilon 0), the same environment seed.
    env = MinAtarEnvironment(GAME, seed=1, max_episode_frames=200)
    policy = CheckpointPolicy(3, 0, checkpoint=run, game=GAME, epsilon=0.0)
    counts, totals = collections.Counter(), []
    for _ in range(2):
        timestep, total = env.reset(), 0.0
        while not timestep.last():
            action = policy(timestep.observation)
            counts[action] += 1
            timestep = env.step(action)
            total += float(timestep.reward)
        totals.append(total)
    assert returns == totals
    np.testing.assert_allclose(fractions, [counts[a] / sum(counts.values()) for a in range(3)])
    assert greedy_actions.main(["--game", GAME, "--episodes", "1", run]) == 0
    assert f"| {run} |" in capsys.readouterr().out
