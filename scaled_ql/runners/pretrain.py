"""Single-process multi-game pretraining: stream RLDS data, train, evaluate, checkpoint.

    scaled-ql pretrain --data DIR --games Pong,Breakout --torso resnet18 --steps N --out RUN_DIR
    scaled-ql pretrain --data DIR --games minatar/Breakout,minatar/Asterix ...   # MinAtar

One process: a tf.data pipeline reads every game's RLDS episodes and mixes their transitions;
the learner built by `ScaledQLBuilder` trains on them; every `eval_every` steps the current
network plays `eval_episodes` episodes of every game on the real games (ALE or MinAtar, the
games' suite; batched over worker processes), and the returns are appended to
`RUN_DIR/eval_results.json`.  Checkpoints are atomic and resumable (`resume=True`).  SIGINT/SIGTERM save a checkpoint and return; a run
killed outright (SIGKILL, out of memory) resumes from its newest complete checkpoint, losing at
most `checkpoint_every` steps (docs/RELIABILITY.md).

Data position on resume: a tf.data stream cannot be rewound to an exact element, so a resumed
run reseeds the stream with (seed, step): it continues on a fresh shuffle of the same data
rather than replaying the batches it already saw.  Each checkpoint records that position as
`extra.data_seed` (the stream's seed) and `extra.data_batches_read` (batches drawn from it).
"""

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Sequence

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.checkpointing import Checkpointer, config_to_json
from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.runners.evaluate import EvalProtocol, episode_settings, make_evaluator
from scaled_ql.runners.loop import finish, recorded_rounds, run_guarded
from scaled_ql.runners.loop import train as train_loop


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """A single-process pretraining run.

    Attributes:
      games: the training games (heads in this order).
      data_dir: TFDS data_dir with `rlu_atari/<Game>_run_<k>/` datasets (MinAtar games:
        `rlu_minatar/<Game>_run_<k>/`).
      out_dir: the run directory.
      steps: total SGD steps (a resumed run stops at the same total).
      agent: the learner config (network, losses, optimizer, batch size).
      runs: dataset runs to read per game.
      checkpoints: inclusive checkpoint_id range to read (None: all; (0, 9) of 50 is the
        paper's sub-optimal split).
      episode_fraction: fraction of the selected episodes to read.
      shuffle_buffer: transitions in the shuffle buffer.
      cache_data: keep the decoded transitions in memory after the first pass (small datasets
        such as MinAtar's; `datasets.PipelineConfig.cache`).
      eval_every: SGD steps between evaluations (0: only at the end).
      final_eval: evaluate at the end [default True; False with eval_every 0: no evaluation].
      eval_episodes: episodes per game per evaluation.
      eval_epsilon: exploration during evaluation [0.001, Dopamine].
      eval_sticky_action_prob: sticky actions during evaluation [None: the suite's; Atari
        0.25, as the data; MinAtar 0.1].
      eval_max_episode_frames: episode cap in frames [None: the suite's; Atari 108,000 = 30
        minutes of play; MinAtar 10,000 steps].  config.json records the resolved values.
      eval_workers: evaluation worker processes (None: one per core; 0: in this process).
      checkpoint_every: SGD steps between checkpoints (a final one is always written).
      keep_checkpoints: checkpoints kept on disk.
      log_every: SGD steps between updates of the loss on the progress bar (logs/learner.csv
        and TensorBoard get a row at every learner step, each `agent.num_sgd_steps_per_step`
        SGD steps).
      max_consecutive_skips: updates in a row with a non-finite loss or gradient (each one
        skipped and counted) before the run aborts with `NonFiniteLossError`.
      seed: seeds parameters, data order and evaluation.
      run_name: the configuration's name in reports (seeds of one configuration share it).
      method: the method's name in reports ('scaled_ql', 'c51', 'bc', ...).
      progress: show progress bars.
    """

    games: tuple[str, ...]
    data_dir: str
    out_dir: str
    steps: int
    agent: ScaledQLConfig = ScaledQLConfig()
    runs: tuple[int, ...] = (1,)
    checkpoints: tuple[int, int] | None = None
    episode_fraction: float = 1.0
    shuffle_buffer: int = 10_000
    cache_data: bool = False
    eval_every: int = 0
    final_eval: bool = True
    eval_episodes: int = 10
    eval_epsilon: float = 0.001
    eval_sticky_action_prob: float | None = None
    eval_max_episode_frames: int | None = None
    eval_workers: int | None = None
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3
    log_every: int = 100
    max_consecutive_skips: int = 100
    seed: int = 0
    run_name: str = "scaled-ql"
    method: str = "scaled_ql"
    progress: bool = True

    def __post_init__(self):
        if not self.games:
            raise ValueError("PretrainConfig.games: at least one game is needed")
        for name in ("steps", "eval_episodes", "checkpoint_every", "keep_checkpoints",
                     "log_every", "max_consecutive_skips"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"PretrainConfig.eval_every must be >= 0, got {self.eval_every}")
        if not 0.0 <= self.eval_epsilon <= 1.0:
            raise ValueError(f"PretrainConfig.eval_epsilon must be in [0, 1], got {self.eval_epsilon}")


@dataclasses.dataclass(frozen=True)
class PretrainSummary:
    """How a run ended and what its final evaluation scored.

    `stopped_during` says what a signal interrupted ('startup', 'training', 'the evaluation at
    step N', 'the final evaluation'); `checkpoint_step` is the newest complete checkpoint when
    the run ended (None: none); `evaluated_step` the step whose evaluation the scores are of
    (None: the run's `step`, or no evaluation when the scores are empty).
    """

    run_dir: str
    step: int
    stopped_by_signal: int | None
    mean_returns: dict[str, float]
    human_normalized: dict[str, float]
    iqm: float | None  # the IQM every report uses (runs x games; here one run)
    episode_interval: tuple[float, float] | None  # evaluation uncertainty, not a CI over runs
    stopped_during: str | None = None
    checkpoint_step: int | None = None
    evaluated_step: int | None = None


def make_builder(config: PretrainConfig, **builder_kwargs):
    """The run's `ScaledQLBuilder` (the Launchpad program adds its replay settings)."""
    from scaled_ql.agents.scaled_ql.builder import ActingConfig, ScaledQLBuilder

    return ScaledQLBuilder(config.agent, config.games,
                           acting=ActingConfig(eval_epsilon=config.eval_epsilon),
                           max_consecutive_skips=config.max_consecutive_skips,
                           **builder_kwargs)


def make_logger(run_dir: pathlib.Path):
    """Learner metrics to logs/learner.csv and logs/tensorboard; returns (logger, csv file).

    The CSV is flushed after every row, so a killed run's log reaches its last step.
    """
    from acme.utils import loggers
    from acme.utils.loggers import tf_summary

    csv_file = open(run_dir / run_dir_lib.LOG_DIR / run_dir_lib.LEARNER_LOG, "a")  # noqa: SIM115
    logger = loggers.Dispatcher([
        loggers.CSVLogger(csv_file, label="learner", flush_every=1),
        tf_summary.TFSummaryLogger(str(run_dir / run_dir_lib.LOG_DIR / "tensorboard"),
                                   label="learner", steps_key="learner_steps"),
    ])
    return logger, csv_file


def resolve_episode_settings(flat: dict, games: Sequence[str], prefix: str = "eval_") -> dict:
    """Fills `flat[prefix + 'sticky_action_prob']` and `[prefix + 'max_episode_frames']` with
    the suite's defaults where None (so config.json says what a run used, and an Atari run's
    configuration reads as it did before suites existed); returns `flat`."""
    sticky, frames = f"{prefix}sticky_action_prob", f"{prefix}max_episode_frames"
    flat[sticky], flat[frames] = episode_settings(games, flat[sticky], flat[frames])
    return flat


def eval_protocol(config) -> EvalProtocol:
    """The evaluation protocol of a run config with `eval_*` fields (pretraining, fine-tuning)."""
    return EvalProtocol(
        episodes=config.eval_episodes, epsilon=config.eval_epsilon,
        sticky_action_prob=config.eval_sticky_action_prob,
        max_episode_frames=config.eval_max_episode_frames, workers=config.eval_workers,
        seed=config.seed, progress=config.progress)


def summarize(games: Sequence[str], episodes: Sequence, *, reps: int = 2000, seed: int = 0
              ) -> tuple[dict, dict, float | None, tuple[float, float] | None]:
    """Per-game mean return and normalized score, the run's IQM, and its evaluation interval.

    The IQM is the one every report uses (rliable's, over runs x games of per-game mean
    scores; one run here), so a run's closing line and `scaled-ql report` agree.  A single run
    has no run-to-run spread: the interval resamples episodes within each game
    (`stats.run_iqm_with_episode_interval`) and says how sure the evaluation is, not how
    reproducible training is; it is printed as such, never as the IQM's CI.  Games without a
    reference score (Carnival, Pooyan) are left out of the IQM.
    """
    from scaled_ql.evaluation import normalized as normalize
    from scaled_ql.evaluation.stats import run_iqm_with_episode_interval

    returns = {g: [e.episode_return for e in episodes if e.game == g] for g in games}
    mean_returns = {g: float(np.mean(r)) for g, r in returns.items()}
    scores = {g: normalize(g, np.asarray(r)) for g, r in returns.items()}
    normalized = {g: float(np.mean(s)) for g, s in scores.items()}
    scored = [g for g in games if np.isfinite(normalized[g])]
    if not scored:
        return mean_returns, normalized, None, None
    iqm = run_iqm_with_episode_interval([scores[g] for g in scored], reps=reps, seed=seed)
    return mean_returns, normalized, iqm.estimate, (iqm.lower, iqm.upper)


def score_column(games: Sequence[str]) -> str:
    """What the games' normalized score is called: 'human-normalized' (Atari), or
    'reference-normalized' (MinAtar, which has no human scores)."""
    if not games:
        return "human-normalized"
    from scaled_ql.environments import suites

    return suites.suite_of(list(games)).score_name.removesuffix(" score")


def format_table(summary: PretrainSummary) -> str:
    """The per-game table printed at the end of a run (markdown)."""
    if not summary.mean_returns:
        return (f"no evaluation: --eval-every 0 and --no-final-eval (step {summary.step}; "
                "`scaled-ql evaluate --checkpoint RUN_DIR` evaluates it)")
    at = summary.step if summary.evaluated_step is None else summary.evaluated_step
    note = ("" if at == summary.step else
            f"\n\nno final evaluation (--no-final-eval): the scores are of the last evaluation, "
            f"at step {at} of {summary.step}")
    normalized = score_column(summary.mean_returns)
    lines = [f"| game | mean return | {normalized} |", "|---|---:|---:|"]
    for game, value in summary.mean_returns.items():
        norm = summary.human_normalized[game]
        lines.append(f"| {game} | {value:.1f} | {'n/a' if not np.isfinite(norm) else f'{norm:.3f}'} |")
    if summary.iqm is not None:
        lo, hi = summary.episode_interval
        lines.append(f"\nIQM {normalized} at step {at}: {summary.iqm:.3f} (one run; "
                     f"evaluation uncertainty, episodes resampled: {lo:.3f} to {hi:.3f})")
    return "\n".join(lines) + note


def run_pretrain(config: PretrainConfig, *, resume: bool = False) -> PretrainSummary:
    """Trains (or continues) the run described by `config`; returns its final summary.

    SIGINT/SIGTERM at any moment end the run with a summary saying what was saved
    (`runners.loop`); a fresh run that fails or is stopped before its first checkpoint leaves
    no run directory behind.
    """
    return run_guarded(config.out_dir, resume,
                       lambda stop, start: _run_pretrain(config, resume, stop, start))


def _run_pretrain(config: PretrainConfig, resume: bool, stop, start) -> PretrainSummary:
    from scaled_ql.datasets import EpisodeSelection
    from scaled_ql.evaluation import RunInfo, append_evaluation

    # Bad input (unknown games, data selection) fails before the run directory is touched.
    builder = make_builder(config)
    selection = EpisodeSelection(runs=tuple(config.runs), checkpoints=config.checkpoints,
                                 episode_fraction=config.episode_fraction)
    run_dir = start.prepare(flat_config(config))
    networks = builder.make_networks()
    checkpointer = Checkpointer(run_dir / run_dir_lib.CHECKPOINT_DIR, config.keep_checkpoints)
    try:
        initial_state, start_step = None, 0
        if resume and checkpointer.latest_step() is not None:
            from scaled_ql.agents.scaled_ql.learning import init_training_state

            template = init_training_state(networks, config.agent,
                                           jax.random.PRNGKey(config.seed))
            initial_state, meta = checkpointer.restore(template, games=builder.games,
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
            learner = builder.make_learner(jax.random.PRNGKey(config.seed), networks, iterator,
                                           initial_state=initial_state, logger=logger)
            num_params = networks.parameter_counts(learner.state.params)["total_used"]
            run_info = RunInfo(name=config.run_name, method=config.method, seed=config.seed,
                               num_params=int(num_params), config=flat_config(config))
            evaluate = make_evaluator(networks, builder.games, eval_protocol(config),
                                      config.agent.compute_dtype)

            def save(step: int) -> None:
                if checkpointer.latest_step() == step:
                    return
                checkpointer.save(learner.state, games=builder.games,
                                  num_actions=builder.num_actions, config=config.agent, extra={
                                      **data_position(config.seed + start_step, start_step,
                                                      step, learner.steps_per_call),
                                      "run_name": config.run_name})

            def evaluate_and_record(step: int) -> list:
                started = time.time()
                episodes = evaluate(jax.device_get(learner.state.params), step)
                append_evaluation(run_dir, run_info, builder.games, step, episodes,
                                  wall_time=time.time() - started)
                return episodes

            start.phase = "training"
            end = train_loop(
                learner, start_step=start_step, total_steps=config.steps,
                log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                eval_every=config.eval_every, save=save, evaluate=evaluate_and_record,
                progress=config.progress, desc="pretrain", stop=stop,
                final_eval=config.final_eval, recorded=recorded_rounds(run_dir))
        finally:
            csv_file.close()
        start.phase = end.stopped_during or "writing the summary"  # see RunStart
        return finish(run_dir, builder.games, end, config.seed,
                      checkpoint_step=checkpointer.latest_step())
    finally:
        checkpointer.close()


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


def flat_config(config: PretrainConfig) -> dict:
    """The run's configuration as JSON data: the run fields plus `agent` as a nested dict
    (evaluation settings left to the suite resolved: what the run uses)."""
    flat = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "agent"}
    resolve_episode_settings(flat, config.games)
    flat["games"] = list(flat["games"])
    flat["runs"] = list(flat["runs"])
    flat["checkpoints"] = None if flat["checkpoints"] is None else list(flat["checkpoints"])
    flat["agent"] = config_to_json(config.agent)
    return flat


def write_summary(run_dir: pathlib.Path, summary: PretrainSummary) -> None:
    """summary.json (atomic) and summary.md in the run directory."""
    data = dataclasses.asdict(summary)
    data["human_normalized"] = {k: (v if np.isfinite(v) else None)
                                for k, v in summary.human_normalized.items()}
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, run_dir / "summary.json")
    (run_dir / "summary.md").write_text(format_table(summary) + "\n")
