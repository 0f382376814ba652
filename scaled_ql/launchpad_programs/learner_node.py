"""The learner nodes: train, checkpoint, serve variables and schedule evaluation rounds.

`LearnerNode` is what every program's learner does around the builder's learner; `Learner` is
the pretraining program's (the online fine-tuning program's is `online_nodes.Learner`).
See `rounds.py` for how evaluation rounds are scheduled and recorded in order.
"""

import pathlib

from scaled_ql.launchpad_programs import supervision
from scaled_ql.launchpad_programs.nodes import ProgramOptions, is_round_step, make_builder
from scaled_ql.launchpad_programs.rounds import EvaluationRounds
from scaled_ql.runners.pretrain import PretrainConfig


class LearnerNode:
    """A program's learner node around the builder's `ScaledQLLearner`.

    It steps the learner while `_keep_going()`, checkpoints every `checkpoint_every` steps and
    at the end, publishes an evaluation round at each `_is_round_step` and a final one, and is
    the program's variable source (`get_variables`, Acme's VariableSource); its courier methods
    `next_round`, `may_record`, `round_recorded` and `status` coordinate the evaluators and the
    limiter.

    A program's learner fills in: `_build` (sets `_builder`, `_learner`, `_checkpointer`,
    `_logger`, `_csv_file`; `_attach` makes the last three), `_keep_going`, `_is_round_step`,
    `_checkpoint_extra` (what its checkpoints record beside the state), and optionally
    `_round_payload` (what a round carries: the parameters and an info dict),
    `_before_final_round` and
    `ended_by` (exceptions of `step` that mean the data ended).
    """

    ended_by: tuple[type[BaseException], ...] = ()

    def __init__(self, *, num_evaluator_groups: int, checkpoint_every: int,
                 sgd_steps_per_call: int, max_pending_rounds: int, status_dir: str | None,
                 name: str):
        self._checkpoint_every = checkpoint_every
        self._per_call = sgd_steps_per_call
        self._max_pending = max_pending_rounds
        self._status_dir = status_dir
        self._name = name
        self._rounds = EvaluationRounds(num_evaluator_groups)
        self._step = 0
        with supervision.guarded(status_dir, name):
            self._build()

    # -- what a program's learner says ---------------------------------------------------------

    def _build(self) -> None:
        raise NotImplementedError

    def _keep_going(self) -> bool:
        raise NotImplementedError

    def _is_round_step(self, step: int) -> bool:
        raise NotImplementedError

    def _checkpoint_extra(self) -> dict:
        raise NotImplementedError

    def _round_payload(self) -> tuple:
        """(parameters as numpy, what else the round records: a dict)."""
        import jax

        return jax.device_get(self._learner.state.params), {}

    def _before_final_round(self) -> None:
        pass

    def _attach(self, run_dir: pathlib.Path, counter, keep_checkpoints: int):
        """The run directory's checkpointer, logger and CSV file; returns the learner's counter.

        time_delta=0: every step reaches the counter node, so the limiter sees exact counts;
        the learner counts `steps`, the prefix makes them 'learner_steps' (as in Acme).
        """
        from acme.utils import counting

        from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
        from scaled_ql.runners import run_dir as run_dir_lib
        from scaled_ql.runners.pretrain import make_logger

        self._run_dir = run_dir
        self._checkpointer = Checkpointer(run_dir / run_dir_lib.CHECKPOINT_DIR, keep_checkpoints)
        self._logger, self._csv_file = make_logger(run_dir)
        return counting.Counter(supervision.stop_aware(counter), "learner", time_delta=0.0)

    # -- training ------------------------------------------------------------------------------

    def step(self) -> int:
        """One learner update, then the checkpoint and the evaluation round due at its step."""
        with supervision.guarded(self._status_dir, self._name):
            self._learner.step()  # an `ended_by` exception propagates: the data ended
            self._step = self._learner.num_steps
            if self._step % self._checkpoint_every < self._per_call:
                self._save()
            if self._is_round_step(self._step):
                self._publish(self._step)
            return self._step

    def finish(self) -> int:
        """The final checkpoint and the final evaluation round; returns the final step."""
        with supervision.guarded(self._status_dir, self._name):
            self._save()
            self._logger.close()  # flushes learner.csv and the TensorBoard events
            self._csv_file.flush()
            self._before_final_round()
            self._publish(self._step, final=True)
            return self._step

    def run(self) -> None:
        supervision.run_learner_node(
            self._status_dir, self._name, keep_going=self._keep_going, step=self.step,
            backlog=self._rounds.waiting, max_backlog=self._max_pending, finish=self.finish,
            close=self._close, ended_by=self.ended_by)

    def _close(self) -> None:
        self._checkpointer.close()
        self._csv_file.close()

    def _save(self) -> None:
        if self._checkpointer.latest_step() == self._step:
            return
        builder = self._builder
        self._checkpointer.save(self._learner.state, games=builder.games,
                                num_actions=builder.num_actions, config=builder.config,
                                extra={"launch": "launchpad", **self._checkpoint_extra()})

    # -- variables and evaluation rounds ------------------------------------------------------

    def get_variables(self, names):
        """Acme VariableSource: the current online parameters (numpy) for each name."""
        return self._learner.get_variables(names)

    def _publish(self, step: int, final: bool = False) -> None:
        self._rounds.publish(step, self._round_payload, final)

    def next_round(self, group: int, after_step: int):
        """The first round after `after_step` as (step, (params, info), is_final), or None if
        none yet (`_round_payload()` at that step)."""
        return self._rounds.next_round(group, after_step)

    def may_record(self, group: int, step: int) -> bool:
        """Whether every group has appended the round before `step` (so appending keeps order)."""
        return self._rounds.may_record(group, step)

    def round_recorded(self, group: int, step: int) -> None:
        self._rounds.recorded(group, step)

    def status(self) -> dict:
        """Step, final step (None while training) and whether the run's work is complete."""
        return self._rounds.status(self._step)


class Learner(LearnerNode):
    """The pretraining program's learner: samples the games' Reverb tables, resumes from the
    run's newest checkpoint, evaluates at the single-process runner's steps."""

    def __init__(self, config: PretrainConfig, options: ProgramOptions, resume: bool, replay,
                 counter, name: str = "learner/0"):
        self._config = config
        self._options = options
        self._resume = resume
        self._replay = replay
        self._counter_handle = counter
        super().__init__(num_evaluator_groups=options.num_evaluators,
                         checkpoint_every=config.checkpoint_every,
                         sgd_steps_per_call=config.agent.num_sgd_steps_per_step,
                         max_pending_rounds=options.max_pending_rounds,
                         status_dir=options.status_dir, name=name)

    def _build(self) -> None:
        import jax

        from scaled_ql.agents.scaled_ql.learning import init_training_state
        from scaled_ql.runners.pretrain import note_resume

        config = self._config
        self._builder = builder = make_builder(config, self._options)
        networks = builder.make_networks()
        counter = self._attach(pathlib.Path(config.out_dir).absolute(), self._counter_handle,
                               config.keep_checkpoints)
        initial_state, self._start_step = None, 0
        if self._resume and self._checkpointer.latest_step() is not None:
            template = init_training_state(networks, config.agent, jax.random.PRNGKey(config.seed))
            initial_state, meta = self._checkpointer.restore(
                template, games=builder.games, num_actions=builder.num_actions)
            self._start_step = meta.step
        if self._resume:
            note_resume(self._run_dir, self._start_step)  # log rows after it are trained again
        if self._start_step:
            counter.increment(steps=self._start_step)
        self._learner = builder.make_learner(
            jax.random.PRNGKey(config.seed), networks,
            builder.make_dataset_iterator(self._replay), counter=counter,
            initial_state=initial_state, logger=self._logger)
        self._step = self._learner.num_steps

    def _keep_going(self) -> bool:
        return self._step < self._config.steps

    def _is_round_step(self, step: int) -> bool:
        return is_round_step(self._config, step)

    def _checkpoint_extra(self) -> dict:
        return {"run_name": self._config.run_name, "resumed_from_step": self._start_step,
                "data": "uniform samples of the Reverb tables (no stream position: feeders "
                        "restart their streams)"}
