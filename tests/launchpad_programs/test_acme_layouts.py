"""Scaled QL inside dm-acme 0.4.0's own Launchpad layouts, built from `ScaledQLBuilder` alone.

Launched with Launchpad's `test_mt` (every node in a thread of this process, after a check
that each node pickles), on real MinAtar data and games, real Reverb and courier.  The
programs run by themselves and end by themselves: Acme's `StepsLimiter` calls `lp.stop()`
once its step count passes `max_number_of_steps`, and every node (Acme's learner, evaluator,
actors, counter) then ends its own `run()`.  What happened is read back from Acme's own
checkpoints (`CheckpointingRunner` saves the counter and the learner when the program stops).
"""

import time
import unittest

import numpy as np
import pytest

from scaled_ql.launchpad_programs import bound_counter_calls
from scaled_ql.launchpad_programs.supervision import COUNTER_CALL_TIMEOUT_S
from tests.agents.scaled_ql.test_builder_seam import torso_leaves, write_minatar_checkpoint
from tests.agents.scaled_ql.test_readme_snippet import README, readme_snippet

STOP_WITHIN_S = 240  # the limiter polls every 10 s; nodes end within seconds of the stop


def run_until_it_stops_itself(program, test_case, workdir: str, counter_key: str) -> dict:
    """Launches `program` (`test_mt`), waits until every node's thread has ended (the test
    fails after STOP_WITHIN_S) and checks that a node stopped it (`lp.stop()`); returns the
    counts Acme's counter node checkpointed at the stop (saved under `counter_key`)."""
    import launchpad as lp
    from acme.utils import counting

    started = time.monotonic()
    manager = lp.launch(program, launch_type="test_mt", test_case=test_case)
    while any(worker.thread.is_alive()
              for workers in manager._active_workers.values()  # noqa: SLF001
              for worker in workers):
        if time.monotonic() - started > STOP_WITHIN_S:
            raise AssertionError(f"the program did not stop by itself within {STOP_WITHIN_S} s")
        time.sleep(0.2)
    test_case.assertTrue(manager.wait_for_stop(0))  # lp.stop(), called by Acme's limiter
    counts = restore_acme_checkpoint(counting.Counter(), workdir, "counter",
                                     counter_key).get_counts()
    # Evaluator counts: however far it got before the stop.
    print(f"{type(test_case).__name__}: the program stopped by itself after "
          f"{time.monotonic() - started:.1f} s; counts: {counts}")
    return counts


def restore_acme_checkpoint(saveable, workdir: str, subdirectory: str, key: str):
    """Restores what a layout's `CheckpointingRunner` last saved under `workdir` into
    `saveable` (`key`: the name the layout saved it under); returns `saveable`."""
    from acme.tf import savers  # acme.jax.savers.CheckpointingRunner is acme.tf's

    savers.Checkpointer({key: saveable}, directory=workdir, subdirectory=subdirectory,
                        add_uid=False)  # restores the latest checkpoint on creation
    return saveable


@pytest.mark.slow
class OfflineDistributedLayoutTest(unittest.TestCase):

    @pytest.fixture(autouse=True)
    def _inputs(self, minatar_data, tmp_path):
        self.data_dir, self.workdir = minatar_data, str(tmp_path / "acme")

    def test_readme_snippet_trains_evaluates_and_stops_by_itself(self):
        from acme.utils import counting

        namespace = {"DATA_DIR": self.data_dir, "WORKDIR": self.workdir}
        exec(compile(readme_snippet("acme-layout"), str(README), "exec"), namespace)  # noqa: S102
        program = namespace["program"]
        self.assertEqual(set(program.groups), {"counter", "learner", "evaluator"})
        self.assertEqual([handle._kwargs for handle in  # noqa: SLF001
                          program.groups["learner"][0].input_handles],
                         [{"call_timeout": COUNTER_CALL_TIMEOUT_S}])  # bound_counter_calls
        counts = run_until_it_stops_itself(program, self, self.workdir, "wrapped")
        # Acme's learner counter prefixes our learner's `steps`: the limiter's key, past 30.
        self.assertGreater(counts["learner_steps"], 30)

        # Acme saved our learner through its Saveable `save()` when the program stopped; the
        # state restores into a learner of the same builder: more than 30 trained steps.
        import jax

        builder = namespace["builder"]
        learner = builder.make_learner(jax.random.PRNGKey(1), builder.make_networks(), iter(()))
        fresh = learner.get_variables(["policy"])[0]
        restore_acme_checkpoint(learner, self.workdir, "learner", "wrapped")
        self.assertGreater(learner.num_steps, 30)
        trained = learner.get_variables(["policy"])[0]
        leaves = jax.tree_util.tree_leaves(trained)
        self.assertTrue(all(np.all(np.isfinite(x)) for x in leaves))
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(
            jax.tree_util.tree_leaves(fresh), leaves)))

        # The snippet's evaluator (Acme's default_evaluator_factory with builder.make_policy)
        # plays whole Breakout episodes with the trained variables.  Run here, in this
        # thread: how far the program's own evaluator got before the stop depends on load.
        loop = namespace["evaluator"](jax.random.PRNGKey(2), learner, counting.Counter(),
                                      make_actor=namespace["make_actor"])
        for _ in range(2):
            result = loop.run_episode()
            self.assertGreater(result["episode_length"], 0)
            self.assertTrue(np.isfinite(result["episode_return"]))


ONLINE_GAME = "minatar/Asterix"  # the checkpoint's second head (5 actions)


@pytest.fixture(scope="module")
def minatar_checkpoint(tmp_path_factory):
    """A checkpoint with heads for minatar/Breakout and minatar/Asterix."""
    return write_minatar_checkpoint(tmp_path_factory.mktemp("pretrained"))


class DistributedLayoutOnlineTest(unittest.TestCase):
    """Acme's `DistributedLayout` fine-tuning online: Acme's actors (EnvironmentLoop) with
    our adder writing the online table, our learner sampling it through the sample-to-insert
    limiter, starting from a checkpoint with the torso frozen; Acme's evaluator alongside."""

    @pytest.fixture(autouse=True)
    def _inputs(self, minatar_checkpoint, tmp_path):
        self.checkpoint, self.workdir = minatar_checkpoint, str(tmp_path / "acme")

    def test_actors_adder_tables_and_learner_from_the_builder(self):
        import functools

        import jax
        from acme.jax.layouts import distributed_layout

        from scaled_ql.agents.scaled_ql.builder import (
            ActingConfig,
            FinetuneConfig,
            ScaledQLBuilder,
        )
        from scaled_ql.agents.scaled_ql.replay import ReplayConfig
        from scaled_ql.runners.evaluate import load_checkpoint
        from tests.runners.minatar import tiny_minatar_agent

        builder = ScaledQLBuilder(
            tiny_minatar_agent(), (ONLINE_GAME,),
            acting=ActingConfig(variable_update_period=10),
            # Tolerance 0.5: the actor inserts at most 23 transitions ahead of the samples
            # (error buffer 16 x 4 x 0.5 = 32), so its 61 steps need the learner to sample.
            replay=ReplayConfig(max_size=1_000, min_size=16, samples_per_insert=4.0,
                                samples_per_insert_tolerance=0.5, sampler_poll_ms=500,
                                sampler_timeout_ms=60_000),
            finetune=FinetuneConfig(checkpoint=self.checkpoint, freeze_torso=True))
        environment_factory = functools.partial(builder.make_environment, ONLINE_GAME)
        layout = distributed_layout.DistributedLayout(
            seed=0, environment_factory=environment_factory,
            network_factory=builder.make_networks, builder=builder,
            policy_network=functools.partial(builder.make_policy, game=ONLINE_GAME,
                                             evaluation=False),
            num_actors=1, max_number_of_steps=60,
            evaluator_factories=[distributed_layout.default_evaluator_factory(
                environment_factory, builder.make_networks,
                functools.partial(builder.make_policy, game=ONLINE_GAME))],
            checkpointing_config=distributed_layout.CheckpointingConfig(
                directory=self.workdir, add_uid=False))
        program = bound_counter_calls(layout.build())  # as the README's snippet does
        self.assertEqual(set(program.groups),
                         {"replay", "counter", "learner", "evaluator", "actor"})
        counts = run_until_it_stops_itself(program, self, self.workdir, "counter")
        self.assertGreater(counts["actor_steps"], 60)  # Acme's limiter: actor steps

        # Acme saved our learner when the program stopped.  It had trained on batches of
        # transitions that only the actor's adder wrote (61 actor steps need about 140
        # samples through the limiter; prefetching holds at most about 80 of them).
        learner = builder.make_learner(jax.random.PRNGKey(1), builder.make_networks(), iter(()))
        start = learner.get_variables(["policy"])[0]
        restore_acme_checkpoint(learner, self.workdir, "learner", "learner")
        self.assertGreater(learner.num_steps, 0)
        # It started from the checkpoint (make_initial_state), trained its heads, and
        # make_learner froze its torso (FinetuneConfig.freeze_torso).
        trained = learner.get_variables(["policy"])[0]
        pretrained = torso_leaves(load_checkpoint(self.checkpoint).params)
        for name, value in torso_leaves(trained).items():
            np.testing.assert_array_equal(value, pretrained[name])
        self.assertFalse(np.array_equal(trained["heads"]["w"], start["heads"]["w"]))
