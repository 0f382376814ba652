"""The pretraining program in one process (`test_mt`): real Reverb, courier, RLDS data and ALE.

Node `run()` methods are disabled; the test drives the nodes through their courier handles,
as Launchpad's own `consumer_producers/launch_test.py` does.
"""

import json
import os
import unittest

import jax
import numpy as np
import pytest

from tests.launchpad_programs.conftest import GAMES, tiny_config


@pytest.fixture
def program_config(rlds_data_dir, tmp_path, request):
    request.cls.config = tiny_config(rlds_data_dir, str(tmp_path / "run"))


def _assert_same_tree(test, a, b):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    test.assertEqual(tree_a, tree_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.usefixtures("program_config")
class PretrainProgramTest(unittest.TestCase):

    def test_learner_steps_and_evaluators_follow(self):
        import launchpad as lp

        from scaled_ql.evaluation import read_results
        from scaled_ql.launchpad_programs import make_program

        config = self.config
        program = make_program(config, num_feeders=2, num_evaluators=2, replay_min_size=16,
                               replay_max_size=2_000, sampler_timeout_ms=30_000)
        self.assertEqual(
            {label: len(nodes) for label, nodes in program.groups.items()},
            {"replay": 1, "counter": 1, "feeder": 2, "learner": 1, "evaluator": 2, "limiter": 1})
        for label in ("feeder", "learner", "evaluator", "limiter"):
            for node in program.groups[label]:
                node.disable_run()
        lp.launch(program, launch_type="test_mt", test_case=self)  # also checks pickling

        handle = lambda label, i=0: program.groups[label][i].create_handle().dereference()
        learner, limiter, counter = handle("learner"), handle("limiter"), handle("counter")
        evaluators = [handle("evaluator", 0), handle("evaluator", 1)]

        # Each feeder owns one game: 40 transitions each reach the game's table.
        self.assertEqual(handle("feeder", 0).feed(40), {"Pong": 40})
        self.assertEqual(handle("feeder", 1).feed(40), {"Breakout": 40})
        # Pacing: a table below max_size (2,000) may take a full chunk (256) more.
        self.assertEqual(handle("feeder", 0).budget(), {"Pong": 256})

        before = learner.get_variables(["policy"])[0]
        self.assertIsNone(evaluators[0].fetch_round())  # nothing published before training
        self.assertEqual(learner.step(), 1)
        self.assertEqual(learner.step(), 2)  # eval_every=2: a round at step 2
        after = learner.get_variables(["policy"])[0]
        changed = [not np.array_equal(x, y) for x, y in zip(
            jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after))]
        self.assertTrue(any(changed), "two learner steps left every parameter unchanged")
        self.assertEqual(counter.get_counts()["learner_steps"], 2)

        for evaluator in evaluators:
            self.assertEqual(evaluator.fetch_round(), 2)
            _assert_same_tree(self, evaluator.parameters(), after)
        self.assertEqual(sorted(evaluators[0].evaluate_round()), ["Pong"])
        # Order barrier: no group may append a later round before group 1 appends round 2.
        self.assertFalse(learner.may_record(0, 4))
        self.assertEqual(sorted(evaluators[1].evaluate_round()), ["Breakout"])
        self.assertTrue(learner.may_record(0, 4))

        self.assertEqual(learner.step(), 3)
        self.assertEqual(learner.step(), 4)
        self.assertFalse(limiter.check())  # steps reached, final work not done yet
        self.assertEqual(learner.finish(), 4)  # final checkpoint + final round
        self.assertEqual(evaluators[1].fetch_round(), 4)
        final = learner.get_variables(["policy"])[0]
        _assert_same_tree(self, evaluators[1].parameters(), final)
        for evaluator in evaluators[::-1]:
            if evaluator is evaluators[0]:
                self.assertEqual(evaluator.fetch_round(), 4)
            evaluator.evaluate_round()
        status = learner.status()
        self.assertEqual(status, {"step": 4, "final_step": 4, "finished": True})
        self.assertTrue(limiter.check())

        # Results: rounds at 2 and 4, each with one episode of every game (two groups merged).
        results = read_results(config.out_dir)
        self.assertEqual([e.step for e in results.evaluations], [2, 4])
        for evaluation in results.evaluations:
            self.assertEqual(sorted(e.game for e in evaluation.episodes), sorted(GAMES))
        # Checkpoints at 2 and 4 (checkpoint_every=2 and the final one).
        ckpt_dir = os.path.join(config.out_dir, "checkpoints")
        self.assertEqual(sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit()), [2, 4])

        mean_returns = limiter.write_summary(4)
        summary = json.loads(open(os.path.join(config.out_dir, "summary.json")).read())
        self.assertEqual(summary["step"], 4)
        self.assertEqual(sorted(summary["mean_returns"]), sorted(GAMES))
        final_round = results.evaluations[-1].episodes
        for game in GAMES:
            expected = np.mean([e.episode_return for e in final_round if e.game == game])
            self.assertAlmostEqual(mean_returns[game], expected)
            self.assertAlmostEqual(summary["mean_returns"][game], expected)


def test_make_program_rejects_bad_layouts(rlds_data_dir, tmp_path):
    from scaled_ql.launchpad_programs import make_program

    config = tiny_config(rlds_data_dir, str(tmp_path / "run"))
    with pytest.raises(ValueError, match="num_feeders=3"):
        make_program(config, num_feeders=3)
    with pytest.raises(ValueError, match="num_evaluators"):
        make_program(config, num_evaluators=-1)
    with pytest.raises(ValueError, match="replay_min_size"):
        make_program(config, replay_min_size=10, replay_max_size=5)


def test_split_games_contiguous_and_even():
    from scaled_ql.launchpad_programs.nodes import split_games

    games = ("A", "B", "C", "D", "E")
    assert [len(g) for g in split_games(games, 2, "n")] in ([2, 3], [3, 2])
    assert split_games(games, 5, "n") == [(g,) for g in games]
    assert sum(split_games(games, 3, "n"), ()) == games
