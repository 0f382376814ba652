"""How often a fine-tuned network's greedy policy takes each action on its game.

Plays `--episodes` episodes of `--game` with each run's latest checkpoint (epsilon 0, the
suite's sticky actions, episodes capped at `--max-episode-frames`) and prints, per run, the
returns and the fraction of steps on each action of the minimal set.  A policy that takes
one action nearly always is close to that constant policy, whose score
`python -m benchmarks.minatar_random_scores --constant-actions` measures.

    .venv/bin/python scripts/greedy_actions.py --game minatar/Freeway \\
        study_out/runs/finetune_offline/Freeway_frozen_torso/seed0 ...
"""

import argparse
import collections
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def action_fractions(run_dir: str, game: str, episodes: int, max_episode_frames: int,
                     seed: int = 1) -> tuple[list[float], list[float]]:
    """(returns, fraction of steps per action index) of `run_dir`'s greedy policy on `game`."""
    from scaled_ql.agents.scaled_ql.actor import CheckpointPolicy
    from scaled_ql.environments.minatar_env import MinAtarEnvironment

    env = MinAtarEnvironment(game, seed=seed, max_episode_frames=max_episode_frames)
    num_actions = env.action_spec().num_values
    policy = CheckpointPolicy(num_actions, 0, checkpoint=run_dir, game=game, epsilon=0.0)
    counts, returns = collections.Counter(), []
    for _ in range(episodes):
        timestep, total = env.reset(), 0.0
        while not timestep.last():
            action = policy(timestep.observation)
            counts[action] += 1
            timestep = env.step(action)
            total += float(timestep.reward)
        returns.append(total)
    steps = sum(counts.values())
    return returns, [counts[a] / steps for a in range(num_actions)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories with checkpoints")
    parser.add_argument("--game", required=True, help="a MinAtar game, e.g. minatar/Freeway")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--max-episode-frames", type=int, default=2500)
    args = parser.parse_args(argv)
    from scaled_ql._quiet import quiet_third_party

    quiet_third_party()
    print("| run | returns | fraction of steps per action |")
    print("|---|---|---|")
    for run in args.runs:
        returns, fractions = action_fractions(run, args.game, args.episodes,
                                              args.max_episode_frames)
        print(f"| {run} | {', '.join(f'{r:g}' for r in returns)} | "
              + " ".join(f"{a}: {f:.2f}" for a, f in enumerate(fractions)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
