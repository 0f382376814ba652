"""The learner node: trains, checkpoints, serves variables and schedules evaluation rounds.

See `rounds.py` for how evaluation rounds are scheduled and recorded in order.
"""

import pathlib

from scaled_ql.launchpad_programs import supervision
from scaled_ql.launchpad_programs.nodes import ProgramOptions, is_round_step, make_builder
from scaled_ql.launchpad_programs.rounds import EvaluationRounds
from scaled_ql.runners.pretrain import PretrainConfig


class Learner:
    """The learner node: trains, checkpoints, serves variables and schedules evaluation rounds.

    It is the program's variable source (`get_variables`), and its courier methods
    `next_round`, `may_record`, `round_recorded` and `status` coordinate the evaluators and
    the step limiter.
    """

    def __init__(self, config: PretrainConfig, options: ProgramOptions, resume: bool, replay,
                 counter, name: str = "learner/0"):
        self._config = config
        self._options = options
        self._name = name
        self._rounds = EvaluationRounds(options.num_evaluators)
        self._step = 0
        with supervision.guarded(options.status_dir, name):
            self._build(resume, replay, counter)

    def _build(self, resume: bool, replay, counter) -> None:
        import jax
        from acme.utils import counting

        from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
        from scaled_ql.agents.scaled_ql.learning import init_training_state
        from scaled_ql.runners import run_dir as run_dir_lib
        from scaled_ql.runners.pretrain import make_logger, note_resume

        config = self._config
        self._run_dir = pathlib.Path(config.out_dir).absolute()
        self._builder = builder = make_builder(config, self._options)
        networks = builder.make_networks()
        self._checkpointer = Checkpointer(self._run_dir / run_dir_lib.CHECKPOINT_DIR,
                                          config.keep_checkpoints)
        initial_state, self._start_step = None, 0
        if resume and self._checkpointer.latest_step() is not None:
            template = init_training_state(networks, config.agent, jax.random.PRNGKey(config.seed))
            initial_state, meta = self._checkpointer.restore(
                template, games=builder.games, num_actions=builder.num_actions)
            self._start_step = meta.step
        if resume:
            note_resume(self._run_dir, self._start_step)  # log rows after it are trained again
        # time_delta=0: every step reaches the counter node, so the limiter sees exact counts;
        # the learner counts `steps`, this prefix makes them 'learner_steps' (as in Acme).
        self._counter = counting.Counter(counter, "learner", time_delta=0.0)
        if self._start_step:
            self._counter.increment(steps=self._start_step)
        self._logger, self._csv_file = make_logger(self._run_dir)
        self._learner = builder.make_learner(
            jax.random.PRNGKey(config.seed), networks, builder.make_dataset_iterator(replay),
            counter=self._counter, initial_state=initial_state, logger=self._logger)
        self._step = self._learner.num_steps

    # -- training ------------------------------------------------------------------------------

    def step(self) -> int:
        """One learner update, then the checkpoint and the evaluation round due at its step."""
        with supervision.guarded(self._options.status_dir, self._name):
            self._learner.step()
            self._step = self._learner.num_steps
            per_call = self._config.agent.num_sgd_steps_per_step
            if self._step % self._config.checkpoint_every < per_call:
                self._save()
            if is_round_step(self._config, self._step):
                self._publish(self._step)
            return self._step

    def finish(self) -> int:
        """The final checkpoint and the final evaluation round; returns the final step."""
        with supervision.guarded(self._options.status_dir, self._name):
            self._save()
            self._logger.close()  # flushes learner.csv and the TensorBoard events
            self._csv_file.flush()
            self._publish(self._step, final=True)
            return self._step

    def run(self) -> None:
        supervision.run_learner_node(
            self._options.status_dir, self._name,
            keep_going=lambda: self._step < self._config.steps, step=self.step,
            backlog=self._rounds.waiting, max_backlog=self._options.max_pending_rounds,
            finish=self.finish, close=self._close)

    def _close(self) -> None:
        self._checkpointer.close()
        self._csv_file.close()

    def _save(self) -> None:
        if self._checkpointer.latest_step() == self._step:
            return
        builder = self._builder
        self._checkpointer.save(self._learner.state, games=builder.games,
                                num_actions=builder.num_actions, config=self._config.agent,
                                extra={"run_name": self._config.run_name, "launch": "launchpad",
                                       "resumed_from_step": self._start_step,
                                       "data": "uniform samples of the Reverb tables (no stream "
                                               "position: feeders restart their streams)"})

    # -- variables and evaluation rounds ------------------------------------------------------

    def get_variables(self, names):
        """Acme VariableSource: the current online parameters (numpy) for each name."""
        return self._learner.get_variables(names)

    def _publish(self, step: int, final: bool = False) -> None:
        import jax

        self._rounds.publish(step, lambda: jax.device_get(self._learner.state.params), final)

    def next_round(self, group: int, after_step: int):
        """The first round after `after_step` as (step, params, is_final), or None if none yet."""
        return self._rounds.next_round(group, after_step)

    def may_record(self, group: int, step: int) -> bool:
        """Whether every group has appended the round before `step` (so appending keeps order)."""
        return self._rounds.may_record(group, step)

    def round_recorded(self, group: int, step: int) -> None:
        self._rounds.recorded(group, step)

    def status(self) -> dict:
        """Step, final step (None while training) and whether the run's work is complete."""
        return self._rounds.status(self._step)
