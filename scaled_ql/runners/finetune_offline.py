"""Offline fine-tuning of a pre-trained network on a new game from a small RLDS dataset.

    scaled-ql finetune-offline --checkpoint RUN_DIR --game Alien --data DIR --steps N \
        --out RUN_DIR2 [--freeze-torso] [--from-scratch]

One process, the pretraining runner's pieces: the checkpoint's torso is copied into the
network of the new game list (one head, the new game's own action count; see
`agents/scaled_ql/finetune.py`), trained (the head only with `freeze_torso`) with the same loss
on the game's RLDS data, and evaluated on the real game.  The game must belong to the
checkpoint's suite (a MinAtar checkpoint fine-tunes on MinAtar games only; otherwise
`SuiteMismatchError`).  `from_scratch` trains the same
architecture from a random initialisation: the baseline is one flag apart (with `freeze_torso`,
the head on the random torso: the random-features control).

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
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from scaled_ql.agents.scaled_ql.checkpointing import config_to_json, read_run_meta
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.runners.loop import run_guarded
from scaled_ql.runners.offline import run_offline
from scaled_ql.runners.pretrain import resolve_episode_settings
from scaled_ql.runners.run_config import FinetuneStart, OfflineTraining, json_fields
from scaled_ql.runners.summary import PretrainSummary

CURVE_CSV = "learning_curve.csv"
CURVE_PNG = "learning_curve.png"
CURVE_FIELDS = ("step", "env_steps", "mean_return", "min_return", "max_return", "episodes",
                "human_normalized")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneOfflineConfig(OfflineTraining, FinetuneStart):
    """An offline fine-tuning run: `OfflineTraining`'s fields (the run's identity,
    checkpointing, evaluation, data and loop; small data: e.g. `episode_fraction` or
    `checkpoints`, the paper used 1% of a run), `FinetuneStart`'s (the checkpoint and how the
    network starts from it; `run_config`) and these.

    Attributes:
      game: the game to fine-tune on (one head; may be new or one of the checkpoint's games).
      eval_at_start: evaluate the initial network at step 0 [default True: the learning curve
        then shows what fine-tuning adds to the starting point].  With `eval_every` 0 the
        run is evaluated only at the start and the end.
      run_name, method: names in reports (None: derived from the flags, `method_name`).
    """

    game: str
    eval_at_start: bool = True


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
    flat = json_fields(config)
    flat["checkpoint"] = str(pathlib.Path(config.checkpoint).absolute())
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
    from scaled_ql.agents.scaled_ql.builder import ActingConfig, ScaledQLBuilder
    from scaled_ql.agents.scaled_ql.checkpointing import config_from_json
    from scaled_ql.environments.games import get_game

    game = get_game(config.game).name  # unknown game: ValueError before anything heavy
    games = (game,)
    pretrained, _ = read_run_meta(config.checkpoint, config.checkpoint_step)
    agent = resolve_agent(config.agent, config_from_json(pretrained.config))
    builder = ScaledQLBuilder(agent, games, finetune=config.builder_start(),
                              acting=ActingConfig(eval_epsilon=config.eval_epsilon))
    key = jax.random.PRNGKey(config.seed)
    # The checkpoint moved onto the new head list; another suite's checkpoint fails here,
    # before the run directory is made.
    initial_state = builder.make_initial_state(key)
    reused = builder.reused_heads()
    flat = flat_config(config, agent)
    title = f"{game}: {flat['method']} from {pathlib.Path(config.checkpoint).name}"

    def draw_curve(run_dir: pathlib.Path, step: int, episodes: list) -> None:
        write_learning_curve(run_dir, curve_row(game, step, episodes), x="step",
                             title=title)

    return run_offline(
        builder, config, flat, resume=resume, stop=stop, start=start, desc=f"finetune {game}",
        initial_state=initial_state, after_evaluation=draw_curve,
        eval_at_start=config.eval_at_start, extra={
            "finetuned_from": flat["checkpoint"], "pretrained_games": list(pretrained.games),
            "reused_heads": list(reused), "freeze_torso": config.freeze_torso,
            "from_scratch": config.from_scratch})
