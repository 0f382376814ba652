"""A run directory holding checkpoints of a tiny MinAtar network, for the command-line tests
(no training: the commands under test only load it)."""

import pathlib

GAME = "minatar/Breakout"  # 3 actions


def save_tiny_run(run_dir: pathlib.Path, steps=(0,), run_name: str | None = None
                  ) -> pathlib.Path:
    """Writes `run_dir/checkpoints/STEP` for each of `steps` (the same initial parameters)."""
    import jax

    from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
    from scaled_ql.agents.scaled_ql.learning import init_training_state
    from scaled_ql.environments.suites import suite_of
    from scaled_ql.networks import make_networks
    from tests.runners.minatar import tiny_minatar_agent

    agent = tiny_minatar_agent()
    networks = make_networks(agent.network, (3,), suite_of((GAME,)).observation)
    state = init_training_state(networks, agent, jax.random.PRNGKey(0))
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        for step in steps:
            checkpointer.save(state._replace(step=step), games=(GAME,), num_actions=(3,),
                              config=agent, extra={} if run_name is None else
                              {"run_name": run_name})
    finally:
        checkpointer.close()
    return run_dir
