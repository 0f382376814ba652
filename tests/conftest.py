"""Fixtures shared across test folders."""

import importlib.util
import os
import pathlib

# The tests compile with XLA's cheap settings (JAX's `jax_disable_most_optimizations`: backend
# optimization level 0, no expensive LLVM passes).  The compiled programs compute the same
# functions; compiling dominates most tests here (two of the training test files run 0.69 of
# their time; the whole suite's gain is within the VM's spread: docs/REGRESSION_CHECKS.md,
# 2026-11-28, morning).  Set here, before any test imports jax, so the processes the tests
# start (local_mp nodes, the CLI) inherit it; `make demo`,
# `make study` and the benchmarks compile fully optimized.  `JAX_DISABLE_MOST_OPTIMIZATIONS=0
# make test` runs the suite fully optimized.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import pytest

TRAINING_GAMES = ("Pong", "Breakout")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_script(name: str):
    """The module of `scripts/<name>.py` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Launchpad's first worker manager in a process stops a program with a termination notice: once a
# node calls lp.stop(), any worker still registered 10 s later (`--lp_termination_notice_secs`) gets
# the process SIGKILLed, and with thread workers (test_mt, local_mt) that process is pytest itself.
# The manager forgets ended threads only when someone waits on it, which the tests do at their end;
# on a loaded 2-core CI machine, nodes winding down plus a test reading back their checkpoints can
# outlast 10 s.  The tests bound their programs themselves (each waits a stated time and fails), so
# the notice only has to be longer than any test's wind-down.
LAUNCHPAD_TERMINATION_NOTICE_S = 300


def pytest_configure(config):
    from absl import flags

    import launchpad  # noqa: F401  (defines --lp_termination_notice_secs)

    flags.FLAGS.lp_termination_notice_secs = LAUNCHPAD_TERMINATION_NOTICE_S


@pytest.fixture
def fully_optimized_xla():
    """XLA's full optimization for one test whose time goes into running many compiled steps
    rather than compiling them (the suite compiles cheaply: top of this file)."""
    import jax

    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


def pytest_addoption(parser):
    parser.addoption(
        "--reliability-sweep", type=int, default=0, metavar="N",
        help="tests/reliability: run the long fault sweeps with N kill points (default: off)")


@pytest.fixture(scope="session")
def training_data(tmp_path_factory):
    """A TFDS data_dir with real random-policy RLDS data of Pong and Breakout (400 steps each),
    collected once per session for the tests that train."""
    from scaled_ql.datasets.collect import CollectConfig, collect_games

    data_dir = tmp_path_factory.mktemp("training_data")
    collect_games([CollectConfig(game, num_steps=400, seed=i)
                   for i, game in enumerate(TRAINING_GAMES)], data_dir, show_progress=False)
    return str(data_dir)


@pytest.fixture(scope="session")
def pong_breakout_pretrained(training_data, tmp_path_factory):
    """A run directory: the tiny network (`tiny_agent_config`) pre-trained for 2 steps on
    `training_data`, built once per session; the tests that fine-tune from it only read it."""
    from scaled_ql.runners import PretrainConfig, run_pretrain

    out = tmp_path_factory.mktemp("pretrained") / "run"
    run_pretrain(PretrainConfig(games=TRAINING_GAMES, data_dir=training_data, out_dir=str(out),
                                steps=2, agent=tiny_agent_config(), shuffle_buffer=200,
                                eval_episodes=1, eval_max_episode_frames=400, eval_workers=0,
                                checkpoint_every=2, log_every=1, progress=False))
    return str(out)


@pytest.fixture(scope="session")
def rlds_data_dir(tmp_path_factory):
    """Pong and Breakout, 300 collected steps each (rlu_atari layout, run 1, shards of at most
    two episodes), collected once per session for the Launchpad program tests."""
    from scaled_ql.datasets.collect import CollectConfig, collect_games

    data_dir = tmp_path_factory.mktemp("rlds")
    configs = [CollectConfig(game, num_steps=300, seed=20 + i, max_episodes_per_shard=2)
               for i, game in enumerate(TRAINING_GAMES)]
    collect_games(configs, data_dir, show_progress=False)
    return str(data_dir)


@pytest.fixture(scope="session")
def minatar_data(tmp_path_factory):
    """minatar/Breakout, minatar/Asterix (tests.runners.minatar.PRETRAIN_GAMES) and
    minatar/Seaquest (HELD_OUT_GAME), 300 random-policy steps each, collected once per session
    (tests pass the games they train on; none writes into this folder)."""
    from tests.runners.minatar import collect_minatar

    return collect_minatar(tmp_path_factory.mktemp("minatar_data"))


def tiny_agent_config(**overrides):
    """The smallest sensible Scaled QL network (Nature CNN, narrow feed-forward), batch 16."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig

    network = NetworkConfig(torso="nature", feed_forward_size=64, num_groups=8)
    return ScaledQLConfig(**{"network": network, "batch_size": 16,
                             "target_update_period": 10, **overrides})
