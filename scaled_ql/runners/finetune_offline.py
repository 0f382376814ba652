"""Offline fine-tuning of a pre-trained network on a new game from a small RLDS dataset.

    scaled-ql finetune-offline --checkpoint RUN_DIR --game Alien --data DIR --steps N \
        --out RUN_DIR2 [--freeze-torso | --from-scratch]

One process, the pretraining runner's pieces: the checkpoint's torso is copied into the
network of the new game list (one head, the new game's own action count; see
`agents/scaled_ql/finetune.py`), trained (the head only with `freeze_torso`) with the same loss
on the game's RLDS data, and evaluated on the real game.  The game must belong to the
checkpoint's suite (a MinAtar checkpoint fine-tunes on MinAtar games only; otherwise
`SuiteMismatchError`).  `from_scratch` trains the same
architecture from a random initialisation: the baseline is one flag apart.

Output (the run-directory layout of `run_dir.py`, plus the learning curve):

    RUN_DIR2/config.json, checkpoints/, logs/learner.csv, eval_results.json, summary.*,
             learning_curve.csv   one row per evaluation round (step 0 = before fine-tuning)
             learning_curve.png   mean return against gradient steps

Checkpoints record the new head list, so they load like any other run (`scaled-ql evaluate`).
"""

import csv
import dataclasses
import os
import pathlib
import time
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.checkpointing import (
    Checkpointer,
    config_to_json,
    read_run_meta,
)
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.runners.evaluate import make_evaluator
from scaled_ql.runners.loop import finish, recorded_rounds, run_guarded
from scaled_ql.runners.loop import train as train_loop
from scaled_ql.runners.pretrain import PretrainSummary, eval_protocol, resolve_episode_settings

CURVE_CSV = "learning_curve.csv"
CURVE_PNG = "learning_curve.png"
CURVE_FIELDS = ("step", "env_steps", "mean_return", "min_return", "max_return", "episodes",
                "human_normalized")


@dataclasses.dataclass(frozen=True)
class FinetuneOfflineConfig:
    """An offline fine-tuning run.

    Attributes:
      checkpoint: run directory of the pre-trained network (its latest checkpoint unless
        `checkpoint_step`).
      game: the game to fine-tune on (one head; may be new or one of the checkpoint's games).
      data_dir: TFDS data_dir with `rlu_atari/<game>_run_<k>/` (the small dataset; MinAtar
        games: `rlu_minatar/...`).
      out_dir: the fine-tuning run directory.
      steps: SGD steps.
      agent: the learner config; None takes the checkpoint's.  Its network must be the
        checkpoint's (the torso is copied), the loss and optimizer settings may differ.
      freeze_torso: train only the head; the torso stays bit-for-bit the pre-trained one.
      from_scratch: random initialisation of the same architecture (the baseline); the
        checkpoint then only provides the architecture and default learner config.
      fresh_head: when `game` already has a head in the checkpoint, start it fresh anyway
        [default False: reuse it].
      checkpoint_step: which checkpoint of `checkpoint` to load (None: the latest).
      runs, checkpoints, episode_fraction, shuffle_buffer, cache_data: which data and how it is
        read, as in PretrainConfig
        (small data: e.g. `episode_fraction` or `checkpoints`; the paper used 1% of a run).
      eval_every: SGD steps between evaluations (0: only at the start and the end).
      eval_at_start: evaluate the initial network at step 0 [default True: the learning curve
        then shows what fine-tuning adds to the starting point].
      final_eval: evaluate at the end [default True].
      eval_episodes, eval_epsilon, eval_sticky_action_prob, eval_max_episode_frames,
        eval_workers: the evaluation protocol, as in PretrainConfig (None: the suite's).
      checkpoint_every, keep_checkpoints, log_every, seed, progress: as in PretrainConfig.
      run_name, method: names in reports (None: derived from the flags).
    """

    checkpoint: str
    game: str
    data_dir: str
    out_dir: str
    steps: int
    agent: ScaledQLConfig | None = None
    freeze_torso: bool = False
    from_scratch: bool = False
    fresh_head: bool = False
    checkpoint_step: int | None = None
    runs: tuple[int, ...] = (1,)
    checkpoints: tuple[int, int] | None = None
    episode_fraction: float = 1.0
    shuffle_buffer: int = 10_000
    cache_data: bool = False
    eval_every: int = 0
    eval_at_start: bool = True
    final_eval: bool = True
    eval_episodes: int = 10
    eval_epsilon: float = 0.001
    eval_sticky_action_prob: float | None = None
    eval_max_episode_frames: int | None = None
    eval_workers: int | None = None
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3
    log_every: int = 100
    seed: int = 0
    run_name: str | None = None
    method: str | None = None
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "eval_episodes", "checkpoint_every", "keep_checkpoints",
                     "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneOfflineConfig.{name} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"FinetuneOfflineConfig.eval_every must be >= 0, got "
                             f"{self.eval_every}")
        if self.from_scratch and self.freeze_torso:
            raise ValueError("FinetuneOfflineConfig: --freeze-torso with --from-scratch would "
                             "train a head on a random, frozen torso; choose one")

    @property
    def method_name(self) -> str:
        if self.method:
            return self.method
        if self.from_scratch:
            return "scratch"
        return "finetune_frozen_torso" if self.freeze_torso else "finetune"


# -- loading ----------------------------------------------------------------------------------


def resolve_agent(agent: ScaledQLConfig | None, pretrained: ScaledQLConfig) -> ScaledQLConfig:
    """The fine-tuning learner config: `agent` (checked against the checkpoint's network) or
    the checkpoint's own config."""
    if agent is None:
        return pretrained
    if agent.network != pretrained.network:
        raise ValueError(
            "the fine-tuning network must be the pre-trained one (its torso is copied): "
            f"checkpoint {pretrained.network}, requested {agent.network}")
    return agent


# -- learning curve ---------------------------------------------------------------------------


def curve_row(game: str, step: int, episodes: Sequence, env_steps: int | None = None) -> dict:
    """One learning-curve row from an evaluation round's episodes of `game`."""
    from scaled_ql.evaluation import human_normalized

    returns = np.asarray([e.episode_return for e in episodes if e.game == game], np.float64)
    norm = float(np.mean(human_normalized(game, returns))) if len(returns) else float("nan")
    return {"step": int(step), "env_steps": "" if env_steps is None else int(env_steps),
            "mean_return": float(np.mean(returns)), "min_return": float(np.min(returns)),
            "max_return": float(np.max(returns)), "episodes": int(len(returns)),
            "human_normalized": "" if not np.isfinite(norm) else norm}


def read_curve(run_dir: str | os.PathLike) -> list[dict]:
    path = pathlib.Path(run_dir) / CURVE_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_learning_curve(run_dir: str | os.PathLike, row: Mapping, *, x: str = "step",
                         title: str = "") -> pathlib.Path:
    """Appends `row` to learning_curve.csv (replacing rows at or after its step) and redraws
    learning_curve.png: mean return (min-max band over episodes) against `x` ('step' for
    gradient steps, 'env_steps' for environment steps)."""
    run_dir = pathlib.Path(run_dir)
    rows = [r for r in read_curve(run_dir) if int(r["step"]) < int(row["step"])]
    rows.append({k: row[k] for k in CURVE_FIELDS})
    tmp = run_dir / (CURVE_CSV + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, run_dir / CURVE_CSV)
    return plot_learning_curve(run_dir / CURVE_PNG, rows, x=x, title=title)


def plot_learning_curve(path: pathlib.Path, rows: Sequence[Mapping], *, x: str,
                        title: str) -> pathlib.Path:
    """Draws the rows of a learning curve (Agg canvas, no pyplot state) to `path` as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xs = np.asarray([float(r[x]) for r in rows])
    mean = np.asarray([float(r["mean_return"]) for r in rows])
    low = np.asarray([float(r["min_return"]) for r in rows])
    high = np.asarray([float(r["max_return"]) for r in rows])
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(xs, mean, marker="o", label="mean return")
    ax.fill_between(xs, low, high, alpha=0.2, linewidth=0, label="min-max over episodes")
    ax.set_xlabel("Environment steps" if x == "env_steps" else "Gradient steps")
    ax.set_ylabel("Episode return")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


# -- the run ----------------------------------------------------------------------------------


def flat_config(config: FinetuneOfflineConfig, agent: ScaledQLConfig) -> dict:
    """The run's configuration as JSON data (agent resolved)."""
    flat = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name != "agent"}
    flat["checkpoint"] = str(pathlib.Path(config.checkpoint).absolute())
    flat["runs"] = list(flat["runs"])
    flat["checkpoints"] = None if flat["checkpoints"] is None else list(flat["checkpoints"])
    flat["agent"] = config_to_json(agent)
    flat["method"] = config.method_name
    flat["run_name"] = config.run_name or config.method_name
    return resolve_episode_settings(flat, (config.game,))


def run_finetune_offline(config: FinetuneOfflineConfig, *, resume: bool = False
                         ) -> PretrainSummary:
    """Fine-tunes (or continues fine-tuning) as described by `config`; returns the summary.

    Signals and failed starts are handled as in `run_pretrain` (`loop.run_guarded`).
    """
    return run_guarded(config.out_dir, resume,
                       lambda stop, start: _run_finetune_offline(config, resume, stop, start))


def _run_finetune_offline(config: FinetuneOfflineConfig, resume: bool, stop, start
                          ) -> PretrainSummary:
    from scaled_ql.agents.scaled_ql.builder import (
        ActingConfig,
        FinetuneConfig,
        ScaledQLBuilder,
    )
    from scaled_ql.agents.scaled_ql.checkpointing import config_from_json
    from scaled_ql.environments.games import get_game

    game = get_game(config.game).name  # unknown game: ValueError before anything heavy
    games = (game,)
    finetune = FinetuneConfig(checkpoint=config.checkpoint,
                              checkpoint_step=config.checkpoint_step,
                              reuse_heads=not config.fresh_head,
                              from_scratch=config.from_scratch, freeze_torso=config.freeze_torso)
    pretrained, _ = read_run_meta(config.checkpoint, config.checkpoint_step)
    agent = resolve_agent(config.agent, config_from_json(pretrained.config))
    builder = ScaledQLBuilder(agent, games, finetune=finetune,
                              acting=ActingConfig(eval_epsilon=config.eval_epsilon))
    key = jax.random.PRNGKey(config.seed)
    # The checkpoint moved onto the new head list; another suite's checkpoint fails here,
    # before the run directory is made.
    initial_state = builder.make_initial_state(key)
    reused = builder.reused_heads()
    flat = flat_config(config, agent)
    run_dir = start.prepare(flat)
    networks = builder.make_networks()
    checkpointer = Checkpointer(run_dir / run_dir_lib.CHECKPOINT_DIR, config.keep_checkpoints)
    try:
        return _train(config, resume, stop, start, run_dir, checkpointer, builder, networks,
                      initial_state, key, agent, flat, pretrained, reused, game)
    finally:
        checkpointer.close()


def _train(config, resume, stop, start, run_dir, checkpointer, builder, networks,
           initial_state, key, agent, flat, pretrained, reused, game) -> PretrainSummary:
    """The part of `run_finetune_offline` after the run directory is prepared."""
    from scaled_ql.datasets import EpisodeSelection
    from scaled_ql.evaluation import RunInfo, append_evaluation
    from scaled_ql.runners.pretrain import (
        NamedDataErrors,
        data_position,
        make_logger,
        note_resume,
    )

    games = (game,)
    start_step = 0
    if resume and checkpointer.latest_step() is not None:
        initial_state, meta = checkpointer.restore(initial_state, games=games,
                                                   num_actions=builder.num_actions)
        start_step = meta.step
    if resume:
        note_resume(run_dir, start_step)
    selection = EpisodeSelection(runs=tuple(config.runs), checkpoints=config.checkpoints,
                                 episode_fraction=config.episode_fraction)
    iterator = NamedDataErrors(builder.make_offline_dataset_iterator(
        config.data_dir, selection=selection, shuffle_buffer=config.shuffle_buffer,
        seed=config.seed + start_step, cache=config.cache_data), config.data_dir, games,
        config.runs)
    logger, csv_file = make_logger(run_dir)
    # make_learner freezes the torso (finetune.freeze_torso); `networks` evaluate.
    learner = builder.make_learner(key, networks, iterator, initial_state=initial_state,
                                   logger=logger)
    num_params = networks.parameter_counts(learner.state.params)["total_used"]
    run_info = RunInfo(name=flat["run_name"], method=flat["method"], seed=config.seed,
                       num_params=int(num_params), config=flat)
    protocol = eval_protocol(config)
    evaluate = make_evaluator(networks, games, protocol, agent.compute_dtype)
    title = f"{game}: {flat['method']} from {pathlib.Path(config.checkpoint).name}"

    def save(step: int) -> None:
        if checkpointer.latest_step() == step:
            return
        checkpointer.save(learner.state, games=games, num_actions=builder.num_actions,
                          config=agent, extra={
                              "run_name": flat["run_name"], "finetuned_from": flat["checkpoint"],
                              "pretrained_games": list(pretrained.games),
                              "reused_heads": list(reused), "freeze_torso": config.freeze_torso,
                              "from_scratch": config.from_scratch,
                              **data_position(config.seed + start_step, start_step, step,
                                              learner.steps_per_call)})

    def evaluate_and_record(step: int) -> list:
        started = time.time()
        episodes = evaluate(jax.device_get(learner.state.params), step)
        append_evaluation(run_dir, run_info, games, step, episodes,
                          wall_time=time.time() - started)
        write_learning_curve(run_dir, curve_row(game, step, episodes), x="step", title=title)
        return episodes

    recorded = recorded_rounds(run_dir)
    try:
        episodes = None
        if config.eval_at_start and start_step == 0 and 0 not in recorded:
            start.phase = "the evaluation at step 0"
            episodes = evaluate_and_record(0)
        start.phase = "training"
        end = train_loop(
            learner, start_step=start_step, total_steps=config.steps, log_every=config.log_every,
            checkpoint_every=config.checkpoint_every, eval_every=config.eval_every, save=save,
            evaluate=evaluate_and_record, progress=config.progress, desc=f"finetune {game}",
            stop=stop, episodes=episodes, final_eval=config.final_eval, recorded=recorded)
    finally:
        csv_file.close()
    start.phase = end.stopped_during or "writing the summary"  # see RunStart
    return finish(run_dir, games, end, config.seed, checkpoint_step=checkpointer.latest_step())
