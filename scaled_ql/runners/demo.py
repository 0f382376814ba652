"""`make demo`: the whole pipeline at laptop scale, on data it makes itself from real ALE games.

1. collect: play each demo game with a uniform-random policy on real ALE and write RLDS datasets
   in the rlu_atari schema (`scaled_ql.datasets.collect_games`, games in parallel processes);
2. pretrain: one multi-game Scaled QL network (C51 + CQL, per-game heads) through the same
   single-process runner as `scaled-ql pretrain`, evaluated periodically on real ALE;
3. report: the per-game table of returns and human-normalized scores with the IQM, learning
   curves and score plots (`scaled_ql.evaluation.write_report`).

The defaults finish in about 4 minutes on a 2-core machine without a GPU.  With random-policy
data and a few thousand SGD steps, do not expect the paper's scores (the greedy policy of a
network trained on random play often does worse than the random play itself, e.g. never
pressing FIRE in Breakout): the demo shows that every stage runs on real games and real data
formats, and how to read its output.  The closing table puts the data's own score next to the
agent's for that reason.
"""

import dataclasses
import pathlib
import shutil

DEMO_GAMES = ("Pong", "Breakout", "Boxing")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The demo's sizes.

    Attributes:
      out_dir: everything goes here: data/, run/, report/.
      games: the demo games (from the 41 training games of the paper's pool).
      collect_steps: environment steps collected per game.
      train_steps: SGD steps of pretraining.
      eval_every: SGD steps between evaluations (the learning curve's resolution).
      eval_episodes: episodes per game per evaluation.
      eval_max_episode_frames: evaluation episode cap (frames), short to keep the demo quick.
      batch_size: transitions per SGD step.
      seed: the seed of everything.
      progress: show progress bars.
    """

    out_dir: str = "demo_out"
    games: tuple[str, ...] = DEMO_GAMES
    collect_steps: int = 6_000
    train_steps: int = 3_000
    eval_every: int = 1_000
    eval_episodes: int = 2
    eval_max_episode_frames: int = 8_000
    batch_size: int = 32
    seed: int = 0
    progress: bool = True


def demo_agent_config(batch_size: int):
    """A small Scaled QL network: Nature CNN torso + spatial embedding + feature norm."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig

    return ScaledQLConfig(
        network=NetworkConfig(torso="nature", feed_forward_size=256, num_groups=8),
        batch_size=batch_size, learning_rate=2.5e-4, target_update_period=250)


def behaviour_returns(data_dir: str, games: tuple[str, ...]) -> dict[str, float]:
    """Mean episode return of each game's collected data: the behaviour policy's score."""
    import numpy as np

    from scaled_ql.datasets import inspect_run, open_run

    means = {}
    for game in games:
        report = inspect_run(open_run(game, 1, data_dir=data_dir), decode_frames=False)
        returns = [r for stats in report.checkpoints.values() for r in stats.returns]
        means[game] = float(np.mean(returns))
    return means


def format_demo_table(summary, behaviour: dict[str, float]) -> str:
    """The demo's closing table: the data's (behaviour policy's) return next to the agent's."""
    import numpy as np

    lines = ["| game | data (random policy) return | agent return | agent human-normalized |",
             "|---|---:|---:|---:|"]
    for game, value in summary.mean_returns.items():
        norm = summary.human_normalized[game]
        lines.append(f"| {game} | {behaviour[game]:.1f} | {value:.1f} | "
                     f"{'n/a' if not np.isfinite(norm) else f'{norm:.3f}'} |")
    if summary.iqm is not None:
        lo, hi = summary.iqm_ci
        lines.append(f"\nagent IQM human-normalized: {summary.iqm:.3f} (95% CI {lo:.3f} to "
                     f"{hi:.3f}) after {summary.step} SGD steps")
    return "\n".join(lines)


def run_demo(config: DemoConfig) -> tuple:
    """Runs the three stages; returns the training summary, the report's path and the
    behaviour policy's mean return per game."""
    from scaled_ql.datasets import CollectConfig, collect_games
    from scaled_ql.evaluation import write_report
    from scaled_ql.runners.pretrain import PretrainConfig, run_pretrain

    out = pathlib.Path(config.out_dir).absolute()
    data_dir, run_dir, report_dir = out / "data", out / "run", out / "report"
    print(f"[1/3] collecting {config.collect_steps} steps per game of {', '.join(config.games)} "
          f"from real ALE (uniform-random policy) into {data_dir}")
    if data_dir.exists():
        shutil.rmtree(data_dir)
    collect_games([CollectConfig(game=game, num_steps=config.collect_steps, seed=config.seed + i)
                   for i, game in enumerate(config.games)], str(data_dir))

    print(f"[2/3] pretraining one network on {len(config.games)} games for "
          f"{config.train_steps} SGD steps into {run_dir}")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    summary = run_pretrain(PretrainConfig(
        games=config.games, data_dir=str(data_dir), out_dir=str(run_dir),
        steps=config.train_steps, agent=demo_agent_config(config.batch_size),
        shuffle_buffer=5_000, eval_every=config.eval_every, eval_episodes=config.eval_episodes,
        eval_max_episode_frames=config.eval_max_episode_frames,
        checkpoint_every=config.eval_every, seed=config.seed, run_name="demo-scaled-ql-nature",
        progress=config.progress))

    print(f"[3/3] writing the report into {report_dir}")
    report = write_report([run_dir], report_dir, reps=500, seed=config.seed)
    behaviour = behaviour_returns(str(data_dir), config.games)
    with open(report, "a") as f:
        f.write("\n## The data's own score\n\n" + format_demo_table(summary, behaviour) + "\n")
    return summary, report, behaviour


def main(config: DemoConfig) -> int:
    summary, report, behaviour = run_demo(config)
    print()
    print(format_demo_table(summary, behaviour))
    print()
    print(f"report:        {report}")
    print(f"run directory: {summary.run_dir}")
    return 0
