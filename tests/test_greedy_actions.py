"""scripts/greedy_actions.py on a network whose greedy action is known: its head's weights are
zero and its bias puts one action's whole return distribution on the top atom, so that
action's Q-value is v_max and every other action's is the mean of uniform atoms (0)."""

import importlib.util
import pathlib

import numpy as np
import pytest

from tests.cli.tiny_run import GAME

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def greedy_actions():
    spec = importlib.util.spec_from_file_location("greedy_actions",
                                                  ROOT / "scripts/greedy_actions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_always(run_dir: pathlib.Path, action: int) -> str:
    """A tiny MinAtar Breakout network (3 actions) whose greedy policy is always `action`."""
    import jax

    from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.environments.suites import suite_of
    from scaled_ql.networks import make_networks
    from tests.runners.minatar import tiny_minatar_agent

    agent = tiny_minatar_agent()
    networks = make_networks(agent.network, (3,), suite_of((GAME,)).observation)
    state = init_training_state(networks, agent, jax.random.PRNGKey(0))
    atoms = agent.network.num_atoms
    heads = dict(state.params["heads"])
    bias = np.zeros(heads["b"].shape, np.float32)
    bias[0, action * atoms + atoms - 1] = 50.0  # action-major: index a * N + n
    heads = {"w": np.zeros(heads["w"].shape, np.float32), "b": bias}
    params = {**state.params, "heads": heads}
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        checkpointer.save(state._replace(params=params, target_params=params), games=(GAME,),
                          num_actions=(3,), config=agent)
    finally:
        checkpointer.close()
    return str(run_dir)


@pytest.mark.parametrize("action", [0, 2])
def test_a_network_that_always_takes_one_action(greedy_actions, tmp_path, capsys, action):
    run = save_always(tmp_path / "run", action)
    returns, fractions = greedy_actions.action_fractions(run, GAME, 2, 200)
    assert len(returns) == 2
    assert fractions == [1.0 if a == action else 0.0 for a in range(3)]
    assert greedy_actions.main(["--game", GAME, "--episodes", "1", run]) == 0
    out = capsys.readouterr().out
    assert f"| {run} |" in out and f"{action}: 1.00" in out
