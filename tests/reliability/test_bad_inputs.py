"""The bad-input matrix: each bad input, and the exact error a user sees.

Inputs that come from the command line go through `scaled-ql` itself (in this process:
`scaled_ql.cli.main`, whose stderr and exit status are what a shell shows); the others
through the API call that receives them.  The messages are rows of `faults.py`, the table
docs/RELIABILITY.md is rendered from.
"""

import dataclasses
import re
import shutil

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql import ScaledQLConfig
from scaled_ql.agents.scaled_ql.builder import ScaledQLBuilder
from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer, CheckpointMismatchError
from scaled_ql.agents.scaled_ql.learning import init_training_state
from scaled_ql.cli import build_parser, main
from scaled_ql.datasets import rlds, rlu_atari
from scaled_ql.environments import AtariEnvironment
from scaled_ql.networks import NetworkConfig, make_networks
from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.types import Transition
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.datasets.helpers import random_episode
from tests.reliability import faults
from tests.reliability.harness import NUM_ACTIONS, TINY_FLAGS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli(capsys, *argv) -> tuple[int, str]:
    """Runs `scaled-ql ARGV`; returns (exit status, last line of stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines[-1] if lines else ""


def pretrain_args(data_dir, out, *extra):
    return ["pretrain", "--data", str(data_dir), "--games", ",".join(TRAINING_GAMES), "--steps",
            "5", "--out", str(out), "--shuffle-buffer", "50", "--no-progress", *TINY_FLAGS, *extra]


@pytest.fixture(scope="module")
def pretrained_run(training_data, tmp_path_factory):
    """A run directory as `scaled-ql pretrain` leaves it (config.json, one checkpoint)."""
    from scaled_ql.cli.pretrain import pretrain_config
    from scaled_ql.runners.pretrain import flat_config

    run_dir = tmp_path_factory.mktemp("bad_inputs") / "run"
    config = pretrain_config(build_parser().parse_args(pretrain_args(training_data, run_dir)))
    run_dir_lib.prepare(run_dir, flat_config(config), resume=False)
    networks = make_networks(config.agent.network, NUM_ACTIONS)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    checkpointer.save(init_training_state(networks, config.agent, jax.random.PRNGKey(0)),
                      games=TRAINING_GAMES, num_actions=NUM_ACTIONS, config=config.agent)
    checkpointer.close()
    return run_dir


# -- games, modes, difficulties ------------------------------------------------------------


def test_unknown_game(capsys, training_data, tmp_path):
    out = tmp_path / "run"
    code, line = cli(capsys, "pretrain", "--data", training_data, "--games", "Pongg,Breakout",
                     "--steps", 5, "--out", out)
    assert code == 2
    faults.check("unknown_game", line)
    assert not out.exists()  # refused before the run directory is made


@pytest.mark.parametrize("row, flags", [
    ("invalid_mode", ["--game", "Breakout", "--mode", "5"]),
    ("invalid_difficulty", ["--game", "Pong", "--difficulty", "7"]),
])
def test_invalid_mode_or_difficulty(capsys, pretrained_run, tmp_path, row, flags):
    code, line = cli(capsys, "finetune-online", "--checkpoint", pretrained_run, *flags,
                     "--env-steps", 10, "--out", tmp_path / "online")
    assert code == 2
    faults.check(row, line)


# -- observations and actions ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_batch(training_data):
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    return Transition(*next(builder.make_offline_dataset_iterator(
        training_data, shuffle_buffer=50, seed=0)))


def _bad_batch(batch: Transition, row: str) -> Transition:
    if row == "observation_shape":
        return batch._replace(observation=batch.observation[..., :3])
    if row == "observation_dtype":
        return batch._replace(observation=batch.observation.astype(np.float32))
    action, game_id = batch.action.copy(), batch.game_id.copy()
    game_id[0], action[0] = 0, 6  # Pong has 6 actions: 0..5
    return batch._replace(action=action, game_id=game_id)


@pytest.mark.parametrize("row", ["observation_shape", "observation_dtype", "action_batch"])
def test_bad_batches_are_refused_before_the_update(real_batch, row):
    builder = ScaledQLBuilder(tiny_agent_config(), TRAINING_GAMES)
    learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(),
                                   iter([_bad_batch(real_batch, row)]))
    before = learner.save()
    with pytest.raises(ValueError) as raised:
        learner.step()
    faults.check(row, str(raised.value))
    assert learner.num_steps == 0 and learner.save().step == before.step


def test_frames_of_the_wrong_dtype_are_not_written():
    good = random_episode(np.random.default_rng(0), 5)
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(good, frames=good.frames.astype(np.float32))
    faults.check("frames_to_write", str(raised.value))


def test_action_outside_the_game_in_the_environment():
    env = AtariEnvironment("Pong")
    env.reset()
    with pytest.raises(ValueError) as raised:
        env.step(6)
    faults.check("action_env", str(raised.value))


# -- datasets --------------------------------------------------------------------------------


class _NaNRewards(rlds.EpisodeArrays):
    """Writes NaN rewards (the writer itself refuses them: data from elsewhere can have them)."""

    def to_rlds(self):
        episode = super().to_rlds()
        episode["steps"]["reward"][:] = np.nan
        return episode


def _write(data_dir, game, episode):
    with rlds.RluAtariWriter(data_dir, game, 1) as writer:
        writer.add_episode(episode)
    return rlu_atari.open_run(game, 1, data_dir=data_dir).shard_paths()[0]


def test_action_outside_the_game_in_the_data(capsys, tmp_path):
    episode = random_episode(np.random.default_rng(1), 12, num_actions=4)
    episode = dataclasses.replace(episode, actions=np.array([0, 9, *[1] * 10]))
    shard = _write(tmp_path / "data", "Breakout", episode)
    code, line = cli(capsys, "pretrain", "--data", tmp_path / "data", "--games", "Breakout",
                     "--steps", 5, "--out", tmp_path / "run", "--shuffle-buffer", 8,
                     "--no-progress", *TINY_FLAGS)
    assert code == 2
    faults.check("action_data", line, shard=shard, data_dir=tmp_path / "data")


def test_non_finite_reward_in_the_data(capsys, tmp_path):
    episode = random_episode(np.random.default_rng(2), 12)
    fields = {f.name: getattr(episode, f.name) for f in dataclasses.fields(episode)}
    shard = _write(tmp_path / "data", "Pong", _NaNRewards(**fields))
    code, line = cli(capsys, "pretrain", "--data", tmp_path / "data", "--games", "Pong",
                     "--steps", 5, "--out", tmp_path / "run", "--shuffle-buffer", 8,
                     "--no-progress", *TINY_FLAGS)
    assert code == 2
    faults.check("nonfinite_reward", line, shard=shard, data_dir=tmp_path / "data")


def test_missing_dataset(capsys, training_data, tmp_path):
    code, line = cli(capsys, "pretrain", "--data", training_data, "--games", "Pong,Alien",
                     "--steps", 5, "--out", tmp_path / "run", "--no-progress", *TINY_FLAGS)
    assert code == 2
    faults.check("missing_dataset", line, data_dir=training_data)


def _damaged_copy(training_data, tmp_path, damage: str):
    data_dir = tmp_path / "data"
    shutil.copytree(training_data, data_dir)
    shard = rlu_atari.open_run("Pong", 1, data_dir=data_dir).shard_paths()[0]
    content = bytearray(shard.read_bytes())
    if damage == "missing_shard":
        shard.unlink()
    elif damage == "truncated_shard":
        shard.write_bytes(bytes(content[: len(content) // 2]))
    else:
        content[len(content) // 2] ^= 0xFF
        shard.write_bytes(bytes(content))
    return data_dir, shard


def _tf_error(line: str) -> str:
    found = re.search(r"reading the training data failed \((.*)\): Pong run 1", line)
    assert found, line
    return found.group(1)


@pytest.mark.parametrize("row, tf_text", [
    ("missing_shard", None),
    ("truncated_shard", "truncated record"),
    ("flipped_bytes", "corrupted record"),
])
def test_damaged_shards_are_named(capsys, training_data, tmp_path, row, tf_text):
    data_dir, shard = _damaged_copy(training_data, tmp_path, row)
    code, line = cli(capsys, *pretrain_args(data_dir, tmp_path / "run"))
    assert code == 2
    if tf_text is None:
        faults.check(row, line, shard=shard)
    else:
        tf_error = _tf_error(line)
        assert tf_text in tf_error
        faults.check(row, line, shard=shard, tf_error=tf_error)


def test_data_validate_names_the_flipped_shard_and_checks_the_rest(capsys, training_data,
                                                                   tmp_path):
    data_dir, shard = _damaged_copy(training_data, tmp_path, "flipped_bytes")
    capsys.readouterr()
    assert main(["data", "validate", str(data_dir)]) == 2
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.startswith("scaled-ql data validate: error: ")]
    tf_error = line.rsplit("readable episode(s): ", 1)[-1]
    assert "corrupted record" in tf_error
    faults.check("flipped_bytes_validate", line, shard=shard, tf_error=tf_error)
    assert "total: 1 dataset(s) OK, 1 failed" in out  # Breakout still validated


# -- checkpoints and run directories ----------------------------------------------------------


def test_checkpoint_of_another_game_set(pretrained_run):
    config = tiny_agent_config()
    networks = make_networks(config.network, (6, 18))
    template = init_training_state(networks, config, jax.random.PRNGKey(0))
    checkpointer = Checkpointer(pretrained_run / "checkpoints")
    with pytest.raises(CheckpointMismatchError) as raised:
        checkpointer.restore(template, games=("Pong", "Alien"), num_actions=(6, 18))
    faults.check("checkpoint_other_games", str(raised.value),
                 where=f"{checkpointer.directory}/0")
    checkpointer.close()


def test_checkpoint_of_another_architecture(pretrained_run):
    config = tiny_agent_config(network=NetworkConfig(torso="impala", feed_forward_size=64,
                                                     num_groups=8))
    networks = make_networks(config.network, NUM_ACTIONS)
    template = init_training_state(networks, config, jax.random.PRNGKey(0))
    checkpointer = Checkpointer(pretrained_run / "checkpoints")
    with pytest.raises(CheckpointMismatchError) as raised:
        checkpointer.restore(template, games=TRAINING_GAMES, num_actions=NUM_ACTIONS)
    faults.check("checkpoint_other_architecture", str(raised.value),
                 where=f"{checkpointer.directory}/0")
    checkpointer.close()


def test_checkpoint_of_another_suite(capsys, pretrained_run, tmp_path):
    out = tmp_path / "finetuned"
    code, line = cli(capsys, "finetune-offline", "--checkpoint", pretrained_run, "--game",
                     "minatar/Breakout", "--data", tmp_path / "no_data", "--steps", 5, "--out",
                     out, "--no-progress")
    assert code == 2
    faults.check("checkpoint_other_suite", line,
                 where=f"{pretrained_run.absolute()}/checkpoints/0")
    assert not out.exists()  # refused before the run directory is made


def test_resume_with_other_settings(capsys, training_data, pretrained_run):
    args = pretrain_args(training_data, pretrained_run, "--resume", "--torso", "impala")
    code, line = cli(capsys, *args)
    assert code == 2
    faults.check("resume_other_config", line, run_dir=pretrained_run)


def test_existing_run_without_resume(capsys, training_data, pretrained_run):
    code, line = cli(capsys, *pretrain_args(training_data, pretrained_run))
    assert code == 2
    faults.check("existing_run_without_resume", line, run_dir=pretrained_run)


# -- contradictory settings -------------------------------------------------------------------


def test_contradictory_replay_sizes(capsys, pretrained_run, tmp_path):
    code, line = cli(capsys, "finetune-online", "--checkpoint", pretrained_run, "--game", "Pong",
                     "--env-steps", 10, "--out", tmp_path / "online", "--replay-min-size",
                     5000, "--replay-size", 100)
    assert code == 2
    faults.check("contradictory_replay_sizes", line)


def test_contradictory_checkpoint_range(capsys, training_data, tmp_path):
    out = tmp_path / "run"
    code, line = cli(capsys, *pretrain_args(training_data, out, "--checkpoints", "9-0"))
    assert code == 2
    faults.check("contradictory_checkpoint_range", line)
    assert not out.exists()


def test_contradictory_bc_and_cql_weight(capsys, training_data, tmp_path):
    out = tmp_path / "run"
    code, line = cli(capsys, *pretrain_args(training_data, out, "--bc", "--cql-alpha", "0.5"))
    assert code == 2
    faults.check("contradictory_bc_cql", line)
    assert not out.exists()


def test_contradictory_loss_weights():
    with pytest.raises(ValueError) as raised:
        ScaledQLConfig(td_weight=0.0, cql_alpha=0.0, bc_weight=0.0)
    faults.check("contradictory_loss_weights", str(raised.value))
