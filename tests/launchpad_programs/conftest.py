"""A tiny pretraining config (for the data of tests/conftest.py's `rlds_data_dir`) and the
helpers of the program tests."""

import pytest

GAMES = ("Pong", "Breakout")


def tiny_config(data_dir: str, out_dir: str, **overrides):
    """A PretrainConfig with a tiny network and short evaluation, for tests."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig
    from scaled_ql.runners import PretrainConfig

    agent = ScaledQLConfig(network=NetworkConfig(torso="nature", feed_forward_size=64,
                                                 num_groups=8), batch_size=16)
    fields = dict(games=GAMES, data_dir=data_dir, out_dir=out_dir, steps=4, agent=agent,
                  eval_every=2, eval_episodes=1, eval_max_episode_frames=400, eval_workers=0,
                  checkpoint_every=2, log_every=1, progress=False, run_name="lp-test")
    fields.update(overrides)
    return PretrainConfig(**fields)


@pytest.fixture
def program_config(request, tmp_path):
    """For a unittest class with `pretrained_fixture` (the name of the fixture giving the
    pre-trained run directory) and `make_config(checkpoint, out_dir)`: sets `cls.pretrained`
    and `cls.config` (a program config writing under tmp_path)."""
    pretrained = request.getfixturevalue(request.cls.pretrained_fixture)
    request.cls.pretrained = pretrained
    request.cls.config = request.cls.make_config(pretrained, str(tmp_path / "online"))


def launch_online_nodes(program, test_case) -> dict:
    """Launches an online fine-tuning program in this process (`test_mt`, which also checks
    that every node pickles) with the run() of its learner, actor, evaluator and limiter
    disabled; returns {label: the first node's handle} for the test to drive."""
    import launchpad as lp

    for label in ("learner", "actor", "evaluator", "limiter"):
        for node in program.groups[label]:
            node.disable_run()
    lp.launch(program, launch_type="test_mt", test_case=test_case)
    return {label: nodes[0].create_handle().dereference()
            for label, nodes in program.groups.items() if label != "replay"}
