"""The online fine-tuning program's own parts (see `finetune_online.py` for the picture): the
run's builder and replay tables, its learner (`Learner`, on the shared `LearnerNode`), what its
actors play (`acting`, for `actor_node.Actor`) and how its evaluator plays
(`evaluation`, for `nodes.Evaluator`).

Every function takes the resolved `FinetuneOnlineConfig` (`online_config.resolve`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from scaled_ql.agents.scaled_ql.replay import DataEnded
from scaled_ql.launchpad_programs import nodes as nodes_lib
from scaled_ql.launchpad_programs import supervision
from scaled_ql.launchpad_programs.actor_node import ActingSpec
from scaled_ql.launchpad_programs.learner_node import LearnerNode
from scaled_ql.launchpad_programs.online_config import FinetuneOnlineConfig, flat_config


def make_builder(config: FinetuneOnlineConfig):
    """The run's `ScaledQLBuilder` (config resolved): every node builds its parts with it.

    Its learner starts from the checkpoint (`FinetuneConfig`); its replay is online: the
    game's online table (sample-to-insert limiter) written by the actors' adders, plus the
    base game's offline table when mixing.  An actor keeps at most one written transition
    unconfirmed (module docstring, Pacing); its writes and the learner's samples wait in
    `sampler_poll_ms` slices, up to `sampler_timeout_ms`.
    """
    from scaled_ql.agents.scaled_ql.builder import ActingConfig, FinetuneConfig, ScaledQLBuilder
    from scaled_ql.agents.scaled_ql.replay import ReplayConfig

    replay = ReplayConfig(
        max_size=config.replay_max_size, min_size=config.replay_min_size,
        samples_per_insert=config.samples_per_insert,
        samples_per_insert_tolerance=config.samples_per_insert_tolerance,
        offline_ratio=config.offline_ratio, offline_max_size=config.offline_replay_size,
        offline_min_size=min(config.replay_min_size, config.offline_replay_size),
        sampler_timeout_ms=config.sampler_timeout_ms, sampler_poll_ms=config.sampler_poll_ms,
        adder_max_in_flight_items=1, adder_timeout_ms=config.sampler_timeout_ms)
    finetune = FinetuneConfig(
        checkpoint=config.checkpoint, checkpoint_step=config.checkpoint_step,
        reuse_heads=not config.fresh_head, from_scratch=config.from_scratch,
        freeze_torso=config.freeze_torso)
    acting = ActingConfig(eval_epsilon=config.eval_epsilon, train_epsilon=config.train_epsilon,
                          variable_update_period=config.variable_update_period)
    return ScaledQLBuilder(config.agent, (config.game,), acting=acting, replay=replay,
                           finetune=finetune)


def offline_feeder_config(config: FinetuneOnlineConfig):
    """The pretraining Feeder's (config, options) for the base game's offline table."""
    from scaled_ql.runners.pretrain import PretrainConfig

    replay = make_builder(config).replay
    pretrain = PretrainConfig(games=(config.game,), data_dir=config.offline_data,
                              out_dir=config.out_dir, steps=1, agent=config.agent,
                              runs=tuple(config.offline_runs),
                              checkpoints=config.offline_checkpoints, seed=config.seed,
                              progress=False)
    return pretrain, nodes_lib.ProgramOptions(
        num_evaluators=0, replay_max_size=replay.offline_max_size,
        replay_min_size=replay.offline_min_size)


@dataclasses.dataclass(frozen=True)
class TableFactory:
    """Picklable `() -> tables` for `lp.ReverbNode`: the builder's tables."""

    config: FinetuneOnlineConfig

    def __call__(self) -> list:
        return make_builder(self.config).make_replay_tables()



# -- nodes ------------------------------------------------------------------------------------


class Learner(LearnerNode):
    """The online program's learner: starts from the checkpoint (the builder's
    `FinetuneConfig`), samples the online (and offline) tables until the environment-step
    budget is spent; its rounds carry the environment steps; `online_stats.json` at the end."""

    ended_by = (DataEnded,)

    def __init__(self, config: FinetuneOnlineConfig, replay, counter, status_dir: str | None,
                 name: str = "learner/0"):
        self._config = config
        self._counter_handle = supervision.stop_aware(counter)
        self._address = replay.server_address
        super().__init__(num_evaluator_groups=config.num_evaluators and 1,
                         checkpoint_every=config.checkpoint_every,
                         sgd_steps_per_call=config.agent.num_sgd_steps_per_step,
                         max_pending_rounds=config.max_pending_rounds, status_dir=status_dir,
                         name=name)

    def _build(self) -> None:
        import jax
        import reverb

        config = self._config
        self._builder = builder = make_builder(config)
        self._pretrained_games = ([] if config.from_scratch
                                  else list(builder.pretrained_meta()[0].games))
        self._reused = builder.reused_heads()
        counter = self._attach(pathlib.Path(config.out_dir), self._counter_handle,
                               config.keep_checkpoints)
        iterator = builder.make_dataset_iterator(reverb.Client(self._address),
                                                 should_end=self.budget_spent,
                                                 should_stop=supervision.stop_requested)
        # The initial state is the builder's: the checkpoint on this game's head list.
        self._learner = builder.make_learner(
            jax.random.PRNGKey(config.seed), builder.make_networks(), iterator,
            counter=counter, logger=self._logger)

    def env_steps(self) -> int:
        return int(self._counter_handle.get_counts().get("actor_steps", 0))

    def budget_spent(self) -> bool:
        return self.env_steps() >= self._config.env_steps

    def _keep_going(self) -> bool:
        return not self.budget_spent()

    def _is_round_step(self, step: int) -> bool:
        every = self._config.eval_every
        return bool(every) and step % every < self._config.agent.num_sgd_steps_per_step

    def _round_payload(self) -> tuple:
        params, info = super()._round_payload()
        return params, {**info, "env_steps": self.env_steps()}

    def _checkpoint_extra(self) -> dict:
        config = self._config
        return {"run_name": config.run_name or config.method_name,
                "finetuned_from": config.checkpoint, "pretrained_games": self._pretrained_games,
                "reused_heads": list(self._reused), "mode": config.mode,
                "difficulty": config.difficulty, "env_steps": self.env_steps(),
                "from_scratch": config.from_scratch, "freeze_torso": config.freeze_torso}

    def start(self) -> None:
        """The evaluation round of the initial network (step 0), if configured."""
        with supervision.guarded(self._status_dir, self._name):
            if self._config.eval_at_start:
                self._publish(0)

    def run(self) -> None:
        self.start()  # guarded itself
        super().run()

    def replay_stats(self) -> dict:
        """Per table: current size, completed inserts and samples (from the Reverb server)."""
        import reverb

        info = reverb.Client(self._address).server_info(timeout=30)
        return {name: {"current_size": int(table.current_size),
                       "inserts": int(table.rate_limiter_info.insert_stats.completed),
                       "samples": int(table.rate_limiter_info.sample_stats.completed)}
                for name, table in info.items()}

    def _before_final_round(self) -> None:
        """online_stats.json: environment and learner steps, the variant, the tables."""
        stats = {"env_steps": self.env_steps(), "learner_steps": int(self._step),
                 "variant": {"game": self._config.game, "mode": self._config.mode,
                             "difficulty": self._config.difficulty},
                 "tables": self.replay_stats()}
        tmp = self._run_dir / "online_stats.json.tmp"
        tmp.write_text(json.dumps(stats, indent=2))
        tmp.replace(self._run_dir / "online_stats.json")


def acting(config: FinetuneOnlineConfig) -> ActingSpec:
    """What the online program's actors play: the variant, with the actors' episode
    settings, within the run's environment-step budget."""
    return ActingSpec(
        make_builder=functools.partial(make_builder, config), game=config.game,
        environment={"mode": config.mode, "difficulty": config.difficulty,
                     "sticky_action_prob": config.actor_sticky_action_prob,
                     "max_episode_frames": config.actor_max_episode_frames},
        env_steps=config.env_steps, seed=config.seed)


def evaluation(config: FinetuneOnlineConfig) -> nodes_lib.EvaluationSpec:
    """The online program's evaluation: the variant, the config's protocol, a learning curve
    against environment steps."""
    from scaled_ql.runners.evaluate import EvalProtocol

    flat = flat_config(config)
    protocol = EvalProtocol(
        episodes=config.eval_episodes, epsilon=config.eval_epsilon,
        sticky_action_prob=config.eval_sticky_action_prob,
        max_episode_frames=config.eval_max_episode_frames, workers=config.eval_workers,
        seed=config.seed, progress=False, mode=config.mode, difficulty=config.difficulty)
    return nodes_lib.EvaluationSpec(
        make_builder=functools.partial(make_builder, config), protocol=protocol,
        out_dir=config.out_dir, run_name=flat["run_name"], method=flat["method"],
        seed=config.seed, config=flat, curve_title=f"{config.variant}: {flat['method']}")
