"""Online fine-tuning on a MinAtar variant in one process (`test_mt`): the same program as for
Atari, on minatar/Asterix with difficulty ramping (`--difficulty 1`), real MinAtar, real Reverb
with a sample-to-insert limiter, starting from a MinAtar checkpoint.  Node `run()` methods are
disabled; the test drives the nodes through handles."""

import csv
import json
import os
import unittest

import jax
import numpy as np
import pytest

from tests.launchpad_programs.conftest import launch_online_nodes
from tests.runners.minatar import PRETRAIN_GAMES, tiny_minatar_agent

GAME = "minatar/Asterix"  # ramps; its head (5 actions) is the checkpoint's second
EVAL = dict(eval_episodes=1, eval_max_episode_frames=300, eval_workers=0)


@pytest.fixture(scope="module")
def minatar_pretrained(minatar_data, tmp_path_factory):
    """A tiny network pre-trained for 2 steps on minatar/Breakout and minatar/Asterix."""
    from scaled_ql.runners import PretrainConfig, run_pretrain

    out = tmp_path_factory.mktemp("minatar_pretrained") / "run"
    run_pretrain(PretrainConfig(games=PRETRAIN_GAMES, data_dir=minatar_data, out_dir=str(out),
                                steps=2, agent=tiny_minatar_agent(), shuffle_buffer=100,
                                checkpoint_every=2, log_every=1, progress=False, **EVAL))
    return str(out)


def online_config(checkpoint: str, out_dir: str, **overrides):
    from scaled_ql.launchpad_programs.finetune_online import FinetuneOnlineConfig

    fields = dict(checkpoint=checkpoint, game=GAME, difficulty=1, out_dir=out_dir,
                  env_steps=50, replay_min_size=16, replay_max_size=1_000,
                  samples_per_insert=4.0, samples_per_insert_tolerance=10.0,
                  variable_update_period=10, eval_every=2, checkpoint_every=2,
                  sampler_poll_ms=1_000, sampler_timeout_ms=60_000, **EVAL)
    fields.update(overrides)
    return FinetuneOnlineConfig(**fields)


@pytest.mark.slow
@pytest.mark.usefixtures("program_config")
class MinAtarFinetuneOnlineProgramTest(unittest.TestCase):
    pretrained_fixture = "minatar_pretrained"
    make_config = staticmethod(online_config)

    def test_difficulty_ramping_variant_through_the_same_program(self):
        from scaled_ql.launchpad_programs.finetune_online import make_program
        from scaled_ql.runners.evaluate import load_checkpoint

        config = self.config
        program = make_program(config)
        nodes = launch_online_nodes(program, self)
        learner, actor, evaluator = nodes["learner"], nodes["actor"], nodes["evaluator"]
        limiter = nodes["limiter"]

        # The learner starts from the MinAtar checkpoint: Asterix's own head, reused.
        pretrained = load_checkpoint(self.pretrained)
        start = learner.get_variables(["policy"])[0]
        n = pretrained.config.network.num_atoms
        np.testing.assert_array_equal(
            start["heads"]["w"][0].reshape(-1, 5, n),
            pretrained.params["heads"]["w"][1].reshape(-1, 5, n))
        learner.start()

        # 30 steps of ramping Asterix: 30 transitions of MinAtar observations in the table.
        played = actor.act(30)
        self.assertEqual((played["steps"], played["items"], played["total_env_steps"]),
                         (30, 30, 30))
        online = learner.replay_stats()["transitions/minatar/Asterix/online"]
        self.assertEqual((online["inserts"], online["current_size"]), (30, 30))
        self.assertEqual(learner.step(), 1)
        self.assertEqual(learner.step(), 2)
        after = learner.get_variables(["policy"])[0]
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(
            jax.tree_util.tree_leaves(start), jax.tree_util.tree_leaves(after))))
        self.assertEqual(evaluator.evaluate_next()["step"], 0)
        self.assertEqual(evaluator.evaluate_next()["step"], 2)

        played = actor.act(100)  # the budget (50) ends it
        self.assertEqual(played["total_env_steps"], 50)
        self.assertEqual(learner.step(), 3)
        self.assertEqual(learner.finish(), 3)
        final = evaluator.evaluate_next()
        self.assertEqual((final["step"], final["env_steps"], final["final"]), (3, 50, True))
        self.assertTrue(limiter.check())
        mean_returns = limiter.write_summary(3)
        self.assertEqual(set(mean_returns), {GAME})

        out = config.out_dir
        stats = json.load(open(os.path.join(out, "online_stats.json")))
        self.assertEqual(stats["variant"], {"game": GAME, "mode": None, "difficulty": 1})
        self.assertEqual(stats["tables"]["transitions/minatar/Asterix/online"]["inserts"], 50)
        flat = json.load(open(os.path.join(out, "config.json")))
        # Actors and evaluators used MinAtar's sticky actions; the actors its episode cap.
        self.assertEqual((flat["actor_sticky_action_prob"], flat["actor_max_episode_frames"],
                          flat["eval_sticky_action_prob"], flat["eval_max_episode_frames"]),
                         (0.1, 10_000, 0.1, 300))
        with open(os.path.join(out, "learning_curve.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(int(r["step"]), int(r["env_steps"])) for r in rows],
                         [(0, 0), (2, 30), (3, 50)])
        checkpoint = load_checkpoint(out)
        self.assertEqual((checkpoint.meta.suite, checkpoint.meta.games,
                          checkpoint.meta.num_actions), ("minatar", (GAME,), (5,)))
        self.assertEqual((checkpoint.meta.extra["difficulty"], checkpoint.meta.step), (1, 3))


def test_minatar_variants_and_suites_are_checked_before_launch(minatar_pretrained, tmp_path):
    from scaled_ql.agents.scaled_ql.checkpointing import SuiteMismatchError
    from scaled_ql.launchpad_programs.finetune_online import make_program

    # minatar/Breakout does not ramp.
    with pytest.raises(ValueError, match="minatar/Breakout has no difficulty 1"):
        make_program(online_config(minatar_pretrained, str(tmp_path / "a"),
                                   game="minatar/Breakout"))
    # A MinAtar checkpoint cannot start an Atari variant.
    with pytest.raises(SuiteMismatchError, match=r"is a checkpoint of the minatar suite.*"
                                                  r"\['Breakout'\] are atari games"):
        make_program(online_config(minatar_pretrained, str(tmp_path / "b"), game="Breakout",
                                   mode=4, difficulty=1))
    assert not (tmp_path / "b").exists()
