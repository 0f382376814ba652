"""The pinned stack imports together and Acme's own JAX DQN learner really runs on it."""

import importlib
import sys

import numpy as np


def test_whole_stack_imports_in_one_process():
    names = [
        "scaled_ql", "acme", "reverb", "launchpad", "tensorflow_datasets", "rlds", "ale_py",
        "haiku", "optax", "rlax",
    ]
    modules = {name: importlib.import_module(name) for name in names}
    assert sys.version_info[:2] == (3, 10)
    assert hasattr(modules["acme"], "EnvironmentLoop")


def test_installed_versions_match_requirements_pins():
    """The venv holds exactly the pinned set that the tests are meant to run against."""
    from importlib import metadata
    from pathlib import Path

    pins = {}
    for line in (Path(__file__).parents[1] / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version
    assert pins["dm-acme"] == "0.4.0" and pins["jax"] == "0.4.30"
    wrong = {
        name: (version, metadata.version(name))
        for name, version in pins.items()
        if metadata.version(name) != version
    }
    assert not wrong, f"installed versions differ from requirements.txt (pin, installed): {wrong}"


def _tiny_q_network(spec):
    import haiku as hk
    from acme.jax import networks as networks_lib
    from acme.jax import utils

    def q_values(observation):
        return hk.Sequential([hk.Flatten(), hk.nets.MLP([32, spec.actions.num_values])])(
            observation
        )

    transformed = hk.without_apply_rng(hk.transform(q_values))
    dummy = utils.add_batch_dim(utils.zeros_like(spec.observations))
    return networks_lib.FeedForwardNetwork(
        init=lambda key: transformed.init(key, dummy), apply=transformed.apply
    )


def _random_replay_samples(spec, batch_size, seed):
    """Random transitions shaped like Reverb samples (Acme's fakes.transition_dataset repeats an
    all-zero transition, on which a freshly initialised MLP has exactly zero TD error)."""
    import reverb
    from acme import types

    rng = np.random.default_rng(seed)
    obs_shape = (batch_size, *spec.observations.shape)
    while True:
        data = types.Transition(
            observation=rng.normal(size=obs_shape).astype(np.float32),
            action=rng.integers(0, spec.actions.num_values, batch_size).astype(np.int32),
            reward=rng.normal(size=batch_size).astype(np.float32),
            discount=np.ones(batch_size, np.float32),
            next_observation=rng.normal(size=obs_shape).astype(np.float32),
        )
        info = reverb.SampleInfo(
            key=np.arange(batch_size, dtype=np.uint64),
            probability=np.full(batch_size, 1.0 / batch_size),
            table_size=np.full(batch_size, batch_size, np.int64),
            priority=np.ones(batch_size),
        )
        yield reverb.ReplaySample(info=info, data=data)


def test_acme_dqn_learner_steps_through_compat_layer():
    """Acme 0.4.0's DQNLearner reads jax.numpy.DeviceArray at import and jax.xla.Device in
    its utilities: it only imports because scaled_ql_acme_compat supplied them."""
    import scaled_ql  # noqa: F401  (applies the compatibility aliases)
    import jax
    import optax
    from acme import specs
    from acme.agents.jax import dqn
    from acme.testing import fakes
    from acme.utils import counting, loggers

    environment = fakes.DiscreteEnvironment(
        num_actions=3, num_observations=5, obs_shape=(6,), obs_dtype=np.float32, episode_length=8
    )
    spec = specs.make_environment_spec(environment)
    network = _tiny_q_network(spec)
    iterator = _random_replay_samples(spec, batch_size=16, seed=0)
    counter = counting.Counter()  # the learner counts "steps"
    learner = dqn.DQNLearner(
        network=network,
        discount=0.99,
        importance_sampling_exponent=0.2,
        target_update_period=2,
        iterator=iterator,
        optimizer=optax.adam(1e-3),
        random_key=jax.random.PRNGKey(0),
        counter=counter,
        logger=loggers.NoOpLogger(),
    )
    before = jax.tree_util.tree_map(np.copy, learner.get_variables([""])[0])
    for _ in range(5):
        learner.step()
    after = learner.get_variables([""])[0]

    changed = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b), before, after)
    assert any(jax.tree_util.tree_leaves(changed)), "five SGD steps left every parameter unchanged"
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(after))
    assert counter.get_counts()["steps"] == 5


def test_acme_dqn_agent_runs_environment_loop_with_reverb():
    """The whole Acme DQN agent (Reverb replay, adder, actor, learner) in EnvironmentLoop."""
    import acme
    from acme import specs
    from acme.agents.jax import dqn
    from acme.testing import fakes

    environment = fakes.DiscreteEnvironment(
        num_actions=3, num_observations=5, obs_shape=(6,), obs_dtype=np.float32, episode_length=8
    )
    spec = specs.make_environment_spec(environment)
    agent = dqn.DQN(
        environment_spec=spec,
        network=_tiny_q_network(spec),
        batch_size=8,
        samples_per_insert=2,
        min_replay_size=8,
    )
    loop = acme.EnvironmentLoop(environment, agent, should_update=True)
    result = loop.run_episode()
    for _ in range(4):
        result = loop.run_episode()
    assert result["episode_length"] == 8
    assert np.isfinite(result["episode_return"])
