"""NaN injected into real training batches: each such update is skipped and counted, saved
parameters stay finite, and the run aborts after `max_consecutive_skips` in a row."""

import itertools

import jax
import numpy as np
import pytest

from scaled_ql.agents.scaled_ql.builder import ScaledQLBuilder
from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.agents.scaled_ql.learner import NonFiniteLossError
from scaled_ql.cli import USER_ERRORS
from scaled_ql.runners import PretrainConfig, run_pretrain
from scaled_ql.types import Transition
from tests.conftest import TRAINING_GAMES, tiny_agent_config
from tests.reliability import faults
from tests.reliability.harness import all_finite, checkpoint_steps, logged_steps, restore


def poisoned(batches, bad_calls):
    """`batches` with a NaN reward in the first example of the calls in `bad_calls` (0-based;
    a callable for an open-ended set)."""
    is_bad = bad_calls if callable(bad_calls) else bad_calls.__contains__
    for call in itertools.count():
        batch = Transition(*next(batches))
        if is_bad(call):
            reward = np.array(batch.reward, copy=True)
            reward[0] = np.nan
            batch = batch._replace(reward=reward)
        yield batch


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                    jax.tree_util.tree_leaves(b)))


def test_nan_batches_are_skipped_counted_and_never_saved(training_data, tmp_path):
    config = tiny_agent_config()
    builder = ScaledQLBuilder(config, TRAINING_GAMES, max_consecutive_skips=3)
    real = builder.make_offline_dataset_iterator(training_data, shuffle_buffer=200, seed=0)
    learner = builder.make_learner(jax.random.PRNGKey(0), builder.make_networks(),
                                   poisoned(real, {1, 2, 4, 5, 6}))
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    save = lambda: checkpointer.save(learner.state, games=builder.games,  # noqa: E731
                                     num_actions=builder.num_actions, config=config)

    learner.step()  # clean
    good = learner.save()
    learner.step()  # NaN: skipped
    learner.step()  # NaN: skipped
    assert _leaves_equal(learner.save().params, good.params)
    assert _leaves_equal(learner.save().opt_state, good.opt_state)
    assert learner.last_metrics["num_skipped_updates"] == 2 and learner.num_steps == 3
    faults.expect("nan_batch")
    save()
    state, meta = restore(tmp_path, 3)
    assert int(state.num_skipped_updates) == 2 and all_finite(state.params)
    assert _leaves_equal(state.params, good.params)

    learner.step()  # clean: the consecutive count starts again
    learner.step()
    learner.step()
    with pytest.raises(NonFiniteLossError) as raised:
        learner.step()  # the third NaN in a row
    faults.check("nan_abort", str(raised.value), n=3, step=7)
    assert isinstance(raised.value, USER_ERRORS)  # the CLI prints it as one line, exit 2
    assert all_finite(learner.save().params)

    # Parameters that did turn non-finite are never written; the latest stays as it was.
    broken = learner.save()
    broken = broken._replace(step=np.int32(8), params=jax.tree_util.tree_map(
        lambda x: np.full_like(x, np.nan), broken.params))
    with pytest.raises(FloatingPointError) as refused:
        checkpointer.save(broken, games=builder.games, num_actions=builder.num_actions,
                          config=config)
    faults.check("nonfinite_checkpoint", str(refused.value), step=8,
                 directory=checkpointer.directory)
    assert checkpointer.latest_step() == 3
    checkpointer.close()


def test_a_run_aborts_after_max_consecutive_skips(training_data, tmp_path, monkeypatch):
    """The runner end to end, with its real data stream poisoned from the 3rd batch on."""
    make_iterator = ScaledQLBuilder.make_offline_dataset_iterator
    monkeypatch.setattr(ScaledQLBuilder, "make_offline_dataset_iterator",
                        lambda self, *a, **k: poisoned(make_iterator(self, *a, **k),
                                                       lambda call: call >= 2))
    run_dir = tmp_path / "run"
    config = PretrainConfig(
        games=TRAINING_GAMES, data_dir=training_data, out_dir=str(run_dir), steps=100,
        agent=tiny_agent_config(), shuffle_buffer=200, eval_workers=0, checkpoint_every=2,
        log_every=1, max_consecutive_skips=4, progress=False)
    with pytest.raises(NonFiniteLossError) as raised:
        run_pretrain(config)
    faults.check("nan_abort", str(raised.value), n=4, step=6)
    assert checkpoint_steps(run_dir) == [2, 4]  # no checkpoint of the aborted update
    clean, _ = restore(run_dir, 2)
    skipped, _ = restore(run_dir, 4)
    assert _leaves_equal(skipped.params, clean.params) and all_finite(skipped.params)
    assert int(clean.num_skipped_updates) == 0 and int(skipped.num_skipped_updates) == 2
    assert logged_steps(run_dir) == [1, 2, 3, 4, 5]  # the aborting update was not logged
