"""The online fine-tuning program in one process (`test_mt`): real Reverb with a
sample-to-insert limiter, courier, real ALE (Breakout mode 4, difficulty 1), a pre-trained
checkpoint.  Node `run()` methods are disabled; the test drives the nodes through handles."""

import csv
import json
import os
import unittest

import dm_env
import jax
import numpy as np
import pytest

from tests.launchpad_programs.conftest import launch_online_nodes

EVAL = dict(eval_episodes=1, eval_max_episode_frames=400, eval_workers=0)


def online_config(checkpoint: str, out_dir: str, **overrides):
    from scaled_ql.launchpad_programs.finetune_online import FinetuneOnlineConfig

    fields = dict(checkpoint=checkpoint, game="Breakout", mode=4, difficulty=1, out_dir=out_dir,
                  env_steps=60, replay_min_size=16, replay_max_size=1_000,
                  samples_per_insert=4.0, samples_per_insert_tolerance=10.0,
                  variable_update_period=10, eval_every=2, checkpoint_every=2,
                  sampler_poll_ms=1_000, sampler_timeout_ms=60_000,
                  actor_max_episode_frames=2_000, **EVAL)
    fields.update(overrides)
    return FinetuneOnlineConfig(**fields)


def _torso(params):
    return {f"{m}/{n}": np.asarray(v) for m, leaves in params.items() if m.startswith("torso")
            for n, v in leaves.items()}


@pytest.mark.slow
@pytest.mark.usefixtures("program_config")
class FinetuneOnlineProgramTest(unittest.TestCase):
    pretrained_fixture = "pong_breakout_pretrained"  # tests/conftest.py
    make_config = staticmethod(online_config)

    def test_actors_fill_the_table_learner_steps_evaluator_records(self):
        from scaled_ql.launchpad_programs.finetune_online import make_program
        from scaled_ql.runners.evaluate import load_checkpoint

        config = self.config
        program = make_program(config)
        self.assertEqual({label: len(nodes) for label, nodes in program.groups.items()},
                         {"replay": 1, "counter": 1, "learner": 1, "actor": 1, "evaluator": 1,
                          "limiter": 1})
        nodes = launch_online_nodes(program, self)
        learner, actor, evaluator = nodes["learner"], nodes["actor"], nodes["evaluator"]
        limiter, counter = nodes["limiter"], nodes["counter"]

        # The learner starts from the checkpoint: same torso, Breakout's own head reused.
        pretrained = load_checkpoint(self.pretrained)
        start = learner.get_variables(["policy"])[0]
        for name, value in _torso(pretrained.params).items():
            np.testing.assert_array_equal(_torso(start)[name], value)
        n = pretrained.config.network.num_atoms
        np.testing.assert_array_equal(
            start["heads"]["w"][0].reshape(-1, 4, n),
            pretrained.params["heads"]["w"][1].reshape(-1, 6, n)[:, :4])
        self.assertEqual(config.agent, None)  # resolved inside make_program, not in place
        learner.start()  # the round of the initial network (step 0)

        # 40 environment steps on the variant: 40 one-step transitions in the online table.
        played = actor.act(40)
        self.assertEqual((played["steps"], played["items"], played["total_env_steps"]),
                         (40, 40, 40))
        tables = learner.replay_stats()
        online = tables["transitions/Breakout/online"]
        self.assertEqual((online["inserts"], online["current_size"]), (40, 40))

        self.assertEqual(learner.step(), 1)
        self.assertEqual(learner.step(), 2)  # eval_every=2: a round at step 2
        after = learner.get_variables(["policy"])[0]
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(
            jax.tree_util.tree_leaves(start), jax.tree_util.tree_leaves(after))))
        counts = counter.get_counts()
        self.assertEqual((counts["learner_steps"], counts["actor_steps"]), (2, 40))
        # Two batches of 16 were sampled through the rate limiter (prefetch may take more).
        self.assertGreaterEqual(learner.replay_stats()["transitions/Breakout/online"]["samples"],
                                32)

        self.assertEqual(evaluator.evaluate_next()["step"], 0)
        round_2 = evaluator.evaluate_next()
        self.assertEqual((round_2["step"], round_2["env_steps"], round_2["final"]), (2, 40, False))
        self.assertIsNone(evaluator.evaluate_next())

        # The budget (60) stops the actor mid-request.
        played = actor.act(100)
        self.assertEqual((played["steps"], played["total_env_steps"]), (60, 60))
        self.assertEqual(learner.step(), 3)
        self.assertFalse(limiter.check())  # budget spent, final work not done
        self.assertEqual(learner.finish(), 3)
        final = evaluator.evaluate_next()
        self.assertEqual((final["step"], final["env_steps"], final["final"]), (3, 60, True))
        self.assertEqual(learner.status(), {"step": 3, "final_step": 3, "finished": True})
        self.assertTrue(limiter.check())
        mean_returns = limiter.write_summary(3)

        out = config.out_dir
        results = json.load(open(os.path.join(out, "eval_results.json")))
        self.assertEqual([e["step"] for e in results["evaluations"]], [0, 2, 3])
        self.assertEqual(results["run"]["method"], "online_finetune")
        with open(os.path.join(out, "learning_curve.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(int(r["step"]), int(r["env_steps"])) for r in rows],
                         [(0, 0), (2, 40), (3, 60)])
        self.assertAlmostEqual(float(rows[-1]["mean_return"]), mean_returns["Breakout"])
        with open(os.path.join(out, "learning_curve.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        stats = json.load(open(os.path.join(out, "online_stats.json")))
        self.assertEqual(stats["env_steps"], 60)
        self.assertEqual(stats["tables"]["transitions/Breakout/online"]["inserts"], 60)
        self.assertEqual(stats["variant"], {"game": "Breakout", "mode": 4, "difficulty": 1})
        checkpoint = load_checkpoint(out)
        self.assertEqual((checkpoint.meta.games, checkpoint.meta.num_actions),
                         (("Breakout",), (4,)))
        self.assertEqual((checkpoint.meta.step, checkpoint.meta.extra["mode"]), (3, 4))
        self.assertEqual(checkpoint.config.cql_alpha, 0.01)  # the online default
        self.assertEqual(json.load(open(os.path.join(out, "summary.json")))["step"], 3)


def test_bad_variants_and_checkpoints_fail_before_launch(pong_breakout_pretrained, tmp_path):
    from scaled_ql.launchpad_programs.finetune_online import make_program

    pretrained = pong_breakout_pretrained

    with pytest.raises(ValueError, match="Breakout has no mode 3; valid mode values"):
        make_program(online_config(pretrained, str(tmp_path / "a"), mode=3))
    with pytest.raises(ValueError, match="no difficulty 2"):
        make_program(online_config(pretrained, str(tmp_path / "b"), difficulty=2))
    with pytest.raises(FileNotFoundError, match="no checkpoints/ folder"):
        make_program(online_config(str(tmp_path), str(tmp_path / "c")))
    with pytest.raises(ValueError, match="needs offline_data"):
        online_config(pretrained, str(tmp_path / "d"), offline_ratio=0.5)
    with pytest.raises(ValueError, match="Pacman"):
        make_program(online_config(pretrained, str(tmp_path / "e"), game="Pacman", mode=None,
                                   difficulty=None))


def test_adder_writes_n_step_transitions_like_the_data_pipeline():
    import reverb

    from scaled_ql.agents.scaled_ql.adder import TransitionAdder
    from scaled_ql.datasets import ReplayTablesConfig, start_server, table_name

    server = start_server(ReplayTablesConfig(games=("Pong",), max_size=100, min_size_to_sample=1))
    try:
        client = reverb.Client(f"localhost:{server.port}")
        adder = TransitionAdder(client, table_name("Pong"), game_id=0, n_step=2, discount=0.5)
        frames = [np.full((84, 84, 4), i, np.uint8) for i in range(4)]
        adder.add_first(dm_env.restart(frames[0]))
        adder.add(1, dm_env.transition(3.0, frames[1]))  # reward clipped to 1
        adder.add(2, dm_env.transition(-1.0, frames[2]))
        adder.add(0, dm_env.termination(1.0, frames[3]))
        adder.close()
        assert client.server_info()[table_name("Pong")].current_size == 3
        # t=0: 2 steps, r = 1 + 0.5 * -1, bootstrap 0.5^2 from o_2.
        # t=1: 2 steps ending in game over, r = -1 + 0.5 * 1, discount 0.
        # t=2: 1 step (episode end), r = 1, discount 0.
        items = _items_by_first_frame(f"localhost:{server.port}", "Pong")
        expected = {0: (1, 0.5, 0.25, 2), 1: (2, -0.5, 0.0, 3), 2: (0, 1.0, 0.0, 3)}
        for t in range(3):
            sample = items[t]
            action, reward, discount, next_index = expected[t]
            assert int(sample.action) == action
            assert float(sample.reward) == pytest.approx(reward)
            assert float(sample.discount) == pytest.approx(discount)
            assert int(sample.next_observation[0, 0, 0]) == next_index
            assert int(sample.game_id) == 0
    finally:
        server.stop()


def _items_by_first_frame(address: str, game: str) -> dict:
    """The table's items keyed by their observation's first pixel (30 uniform samples)."""
    from scaled_ql.datasets import make_sampler_dataset
    from scaled_ql.types import Transition

    batch = next(make_sampler_dataset(address, (game,), batch_size=30,
                                      rate_limiter_timeout_ms=5_000).as_numpy_iterator())
    return {int(obs[0, 0, 0]): Transition(*(field[i] for field in batch))
            for i, obs in enumerate(batch.observation)}
