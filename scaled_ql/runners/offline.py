"""The offline runner: what pretraining and offline fine-tuning share once their learner is
built (`run_offline`), and its pieces (learner log, data errors, data position on resume).

Both runners say what differs (the builder, the configuration written to config.json, the
initial state, what a checkpoint records beside the data position, what happens after an
evaluation round) and hand the rest here: restore-or-init the checkpoint, the training data
with named errors, the learner log, the evaluator, the checkpoint and evaluation closures, the
training loop (`loop.train`) and the summary (`loop.finish`).
"""

import pathlib
from collections.abc import Callable, Mapping, Sequence

import jax

from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer
from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.runners.evaluate import EvalProtocol, make_evaluator
from scaled_ql.runners.loop import RunStart, finish, recorded_rounds
from scaled_ql.runners.loop import train as train_loop
from scaled_ql.runners.run_config import OfflineTraining
from scaled_ql.runners.summary import PretrainSummary


def eval_protocol(config) -> EvalProtocol:
    """The evaluation protocol of a run config with `eval_*` fields (pretraining, fine-tuning)."""
    return EvalProtocol(
        episodes=config.eval_episodes, epsilon=config.eval_epsilon,
        sticky_action_prob=config.eval_sticky_action_prob,
        max_episode_frames=config.eval_max_episode_frames, workers=config.eval_workers,
        seed=config.seed, progress=config.progress)


def run_offline(builder, config: OfflineTraining, flat: Mapping, *, resume: bool,
                stop: run_dir_lib.StopRequested, start: RunStart, desc: str,
                initial_state=None, extra: Mapping | None = None,
                after_evaluation: Callable[[pathlib.Path, int, list], None] | None = None,
                eval_at_start: bool = False) -> PretrainSummary:
    """Trains `builder`'s learner on `config`'s offline data into `config.out_dir`.

    Args:
      builder: the run's `ScaledQLBuilder` (its games and learner config).
      config: the run's config: its data, loop, checkpointing and evaluation parts
        (`run_config.OfflineTraining`).
      flat: the configuration written to config.json (with `run_name` and `method`).
      resume, stop, start: as `loop.run_guarded` hands them to a runner's body.
      desc: the progress bar's label.
      initial_state: the state a fresh run starts from (None: the builder's random
        initialisation); with `resume` the newest checkpoint replaces it.
      extra: what every checkpoint records beside the run name and the data position.
      after_evaluation: called with (run directory, step, episodes) after each recorded
        round.
      eval_at_start: evaluate the initial network at step 0 (a fresh run only).
    """
    from scaled_ql.datasets import EpisodeSelection
    from scaled_ql.evaluation import RunInfo, append_evaluation

    agent = builder.config
    selection = EpisodeSelection(runs=tuple(config.runs), checkpoints=config.checkpoints,
                                 episode_fraction=config.episode_fraction)
    run_dir = start.prepare(flat)
    networks = builder.make_networks()
    key = jax.random.PRNGKey(config.seed)
    checkpointer = Checkpointer(run_dir / run_dir_lib.CHECKPOINT_DIR, config.keep_checkpoints)
    try:
        start_step = 0
        if resume and checkpointer.latest_step() is not None:
            if initial_state is None:
                from scaled_ql.agents.scaled_ql.learning import init_training_state

                initial_state = init_training_state(networks, agent, key)
            initial_state, meta = checkpointer.restore(initial_state, games=builder.games,
                                                       num_actions=builder.num_actions)
            start_step = meta.step
        if resume:
            note_resume(run_dir, start_step)
        iterator = NamedDataErrors(builder.make_offline_dataset_iterator(
            config.data_dir, selection=selection, shuffle_buffer=config.shuffle_buffer,
            seed=config.seed + start_step, cache=config.cache_data), config.data_dir,
            builder.games, config.runs)
        logger, csv_file = make_logger(run_dir)
        try:
            learner = builder.make_learner(key, networks, iterator, initial_state=initial_state,
                                           logger=logger)
            num_params = networks.parameter_counts(learner.state.params)["total_used"]
            run_info = RunInfo(name=flat["run_name"], method=flat["method"], seed=config.seed,
                               num_params=int(num_params), config=dict(flat))
            evaluate = make_evaluator(networks, builder.games, eval_protocol(config),
                                      agent.compute_dtype)

            def save(step: int) -> None:
                if checkpointer.latest_step() == step:
                    return
                checkpointer.save(learner.state, games=builder.games,
                                  num_actions=builder.num_actions, config=agent, extra={
                                      "run_name": flat["run_name"], **(extra or {}),
                                      **data_position(config.seed + start_step, start_step,
                                                      step, learner.steps_per_call)})

            def evaluate_and_record(step: int) -> list:
                # A first signal only sets the flag; the evaluation polls it every environment
                # step and ends there (Stopped), and a complete round is recorded whole.
                with stop.deferred():
                    episodes = evaluate(jax.device_get(learner.state.params), step,
                                        poll=stop.raise_if_stopped)
                    append_evaluation(run_dir, run_info, builder.games, step, episodes)
                    if after_evaluation is not None:
                        after_evaluation(run_dir, step, episodes)
                return episodes

            recorded, episodes = recorded_rounds(run_dir), None
            if eval_at_start and start_step == 0 and 0 not in recorded:
                start.phase = "the evaluation at step 0"
                episodes = evaluate_and_record(0)
            start.phase = "training"
            end = train_loop(
                learner, start_step=start_step, total_steps=config.steps,
                log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                eval_every=config.eval_every, save=save, evaluate=evaluate_and_record,
                progress=config.progress, desc=desc, stop=stop, episodes=episodes,
                final_eval=config.final_eval, recorded=recorded, start=start)
        finally:
            csv_file.close()
        start.phase = end.stopped_during or "writing the summary"  # see RunStart
        return finish(run_dir, builder.games, end, config.seed,
                      checkpoint_step=checkpointer.latest_step())
    finally:
        checkpointer.close()


# Learner writes between two TensorBoard points.  A tf.summary write of the learner's dozen
# scalars costs more than a MinAtar SGD step on a CPU core (docs/REGRESSION_CHECKS.md),
# so TensorBoard gets every 100th write; logs/learner.csv keeps every one.
TENSORBOARD_EVERY = 100


def make_logger(run_dir: pathlib.Path, tensorboard_every: int = TENSORBOARD_EVERY):
    """Learner metrics to logs/learner.csv (every write) and logs/tensorboard (the first of
    every `tensorboard_every` writes); returns (logger, csv file).

    The CSV is flushed after every row, so a killed run's log reaches its last step.
    """
    from acme.utils import loggers
    from acme.utils.loggers import tf_summary

    if tensorboard_every < 1:
        raise ValueError(f"tensorboard_every must be >= 1, got {tensorboard_every}")
    csv_file = open(run_dir / run_dir_lib.LOG_DIR / run_dir_lib.LEARNER_LOG, "a")  # noqa: SIM115
    tensorboard = tf_summary.TFSummaryLogger(str(run_dir / run_dir_lib.LOG_DIR / "tensorboard"),
                                             label="learner", steps_key="learner_steps")
    logger = loggers.Dispatcher([
        loggers.CSVLogger(csv_file, label="learner", flush_every=1),
        loggers.GatedFilter.periodic(tensorboard, interval=tensorboard_every),
    ])
    return logger, csv_file


def note_resume(run_dir: pathlib.Path, start_step: int) -> None:
    """Cuts the learner log back to the resumed checkpoint and says where the run resumes."""
    import sys

    dropped = run_dir_lib.truncate_learner_log(run_dir, start_step)
    where = f"the checkpoint at step {start_step}" if start_step else "step 0 (no checkpoint yet)"
    print(f"resuming {run_dir} from {where}; dropped {dropped} log row(s) after it",
          file=sys.stderr, flush=True)


def data_position(data_seed: int, start_step: int, step: int, steps_per_call: int) -> dict:
    """Where the data stream stands at `step`: its seed and the batches drawn from it.

    The shuffled tf.data stream cannot be rewound, so a resumed run does not replay these
    batches: it reseeds with `seed + step` (see the module docstring).
    """
    return {"data_seed": int(data_seed),
            "data_batches_read": (step - start_step) // steps_per_call,
            "resumed_from_step": int(start_step)}


class NamedDataErrors:
    """Wraps a training-data iterator so that bad data is a `DatasetValidationError` (a
    ValueError: the command line prints it as one line) naming the game, run and shard.

    - a bad value found inside tf.data (a non-finite reward, an action outside the game's
      set): the shards are re-read to find the episode, instead of a TensorFlow traceback;
    - a corrupted or truncated shard: the pipeline's `OSError`, which already names the file.
    """

    def __init__(self, iterator, data_dir: str, games: Sequence[str], runs: Sequence[int]):
        self._iterator = iterator
        self._data_dir = data_dir
        self._games = tuple(games)
        self._runs = tuple(runs)

    def __iter__(self):
        return self

    def __next__(self):
        import tensorflow as tf

        from scaled_ql.datasets.validation import DatasetValidationError

        try:
            return next(self._iterator)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise DatasetValidationError(str(error)) from None
        except tf.errors.InvalidArgumentError as error:
            from scaled_ql.datasets.rlu_atari import open_run
            from scaled_ql.datasets.validation import locate_corruption

            first_line = error.message.splitlines()[0]
            found = locate_corruption([open_run(game, run, data_dir=self._data_dir)
                                       for game in self._games for run in self._runs])
            raise DatasetValidationError(
                f"bad training data: {found or first_line} (`scaled-ql data validate "
                f"{self._data_dir}` checks every shard)") from None
