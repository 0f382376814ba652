"""Random-policy scores of the MinAtar games: the zero of the MinAtar normalized score; and
the scores of constant policies, a reference for agents whose policy ignores the screen.

A uniformly random agent over each game's minimal action set plays `--episodes` episodes of
every MinAtar game through `MinAtarEnvironment` with the suite's protocol (sticky actions 0.1,
difficulty 0 = no ramping unless `--difficulty 1`, episodes capped at 10,000 steps).  Episode
k of a game runs with the environment seed `vector.episode_seed(seed, game, k)` (what
`evaluate_policy` uses) and draws its actions from a generator seeded with the same number, so
every number here can be reproduced episode by episode.

Prints a table (mean return with its standard error, standard deviation, median, mean episode
length, and agent steps per second, wall-clock and CPU, of the whole loop: environment and
random policy) and writes benchmarks/results/minatar_random_scores[_difficulty1].json.

    python -m benchmarks.minatar_random_scores                  # 1,000 episodes per game
    python -m benchmarks.minatar_random_scores --difficulty 1   # the ramping games, ramping on
    python -m benchmarks.minatar_random_scores --constant-actions --episodes 200 \
        --max-episode-frames 2500 --games minatar/Freeway minatar/SpaceInvaders
                                  # every action of the minimal set played always, capped as
                                  # the study evaluates (minatar_constant_action_scores.json)

The catalogue's `random_score` of each MinAtar game (scaled_ql/environments/games.py) is the
mean return of the default run (seed 0, 1,000 episodes, difficulty 0).
"""

import argparse
import json
import sys
import time

import numpy as np

from benchmarks import common
from scaled_ql.environments import games as games_lib
from scaled_ql.environments.minatar_env import MinAtarEnvironment
from scaled_ql.environments.suites import MINATAR
from scaled_ql.environments.vector import episode_seed

DEFAULT_EPISODES = 1000


def play_episode(env: MinAtarEnvironment, seed: int,
                 action: int | None = None) -> tuple[float, int]:
    """(return, length) of one episode of uniformly random actions, or of `action` (an index
    into the minimal action set) at every step; `seed` seeds both the environment (`reseed`,
    also its sticky actions) and the action generator."""
    env.reseed(seed)
    actions = np.random.default_rng(seed)
    timestep, total, length = env.reset(), 0.0, 0
    while not timestep.last():
        timestep = env.step(int(actions.integers(env.num_actions)) if action is None
                            else action)
        total += float(timestep.reward)
        length += 1
    return total, length


def measure_game(game: str, episodes: int, *, seed: int = 0, difficulty: int = 0,
                 action: int | None = None,
                 max_episode_frames: int = MINATAR.default_max_episode_frames) -> dict:
    """The random agent's statistics on one game, or those of the constant policy `action`
    (see the module docstring)."""
    env = MinAtarEnvironment(game, difficulty=difficulty,
                             sticky_action_prob=MINATAR.default_sticky_action_prob,
                             max_episode_frames=max_episode_frames)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(episodes):
        returns[k], lengths[k] = play_episode(env, episode_seed(seed, game, k), action)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = int(lengths.sum())
    return {
        "game": env.game.name,
        "policy": "random" if action is None else f"action {action}",
        "normalized_mean": float(games_lib.normalized_score(env.game.name, returns.mean())),
        "difficulty": difficulty,
        "episodes": episodes,
        "mean_return": float(returns.mean()),
        "stderr_return": float(returns.std(ddof=1) / np.sqrt(episodes)) if episodes > 1 else 0.0,
        "std_return": float(returns.std(ddof=1)) if episodes > 1 else 0.0,
        "median_return": float(np.median(returns)),
        "max_return": float(returns.max()),
        "mean_length": float(lengths.mean()),
        "truncated_episodes": int((lengths >= env.max_episode_frames).sum()),
        "agent_steps": steps,
        "steps_per_second_wall": steps / wall,
        "steps_per_cpu_second": steps / cpu if cpu > 0 else float("nan"),
    }


def format_table(rows: list[dict]) -> str:
    header = ("game", "policy", "difficulty", "episodes", "mean return", "+- s.e.",
              "normalized", "std", "median", "mean length", "steps/s", "steps/CPU-s")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        lines.append(" | ".join((
            r["game"], r["policy"], str(r["difficulty"]), f"{r['episodes']:,}",
            f"{r['mean_return']:.3f}", f"{r['stderr_return']:.3f}",
            f"{r['normalized_mean']:.3f}",
            f"{r['std_return']:.3f}", f"{r['median_return']:g}",
            f"{r['mean_length']:.1f}", f"{r['steps_per_second_wall']:,.0f}",
            f"{r['steps_per_cpu_second']:,.0f}")))
    return "\n".join(f"| {line} |" for line in lines)


def run(episodes: int = DEFAULT_EPISODES, *, seed: int = 0, difficulty: int = 0,
        games: tuple[str, ...] | None = None, constant_actions: bool = False,
        max_episode_frames: int = MINATAR.default_max_episode_frames) -> dict:
    """The report as a dict (settings, machine, one row per game, or per game and action with
    `constant_actions`); prints and writes nothing.  With `difficulty=1`, only the games that
    ramp (`GameInfo.difficulties`) are played."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    names = [games_lib.get_game(g).name for g in (games or games_lib.MINATAR_GAMES)]
    names = [g for g in names if difficulty in games_lib.get_game(g).difficulties]
    if not names:
        raise ValueError(f"no MinAtar game among {games} has difficulty {difficulty}")
    policies = {g: (range(games_lib.get_game(g).num_actions) if constant_actions else (None,))
                for g in names}
    rows = [measure_game(g, episodes, seed=seed, difficulty=difficulty, action=action,
                         max_episode_frames=max_episode_frames)
            for g in names for action in policies[g]]
    return {
        "date": common.now(),
        "machine": common.machine(),
        "settings": {
            "policy": ("each action of the minimal action set, at every step"
                       if constant_actions else "uniform over the minimal action set"),
            "episodes_per_game": episodes,
            "seed": seed,
            "difficulty": difficulty,
            "sticky_action_prob": MINATAR.default_sticky_action_prob,
            "max_episode_frames": max_episode_frames,
            "episode_seeds": "scaled_ql.environments.vector.episode_seed(seed, game, k)",
        },
        "rows": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                        help=f"episodes per game (default {DEFAULT_EPISODES})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", type=int, choices=(0, 1), default=0,
                        help="1: difficulty ramping on (Asterix, Seaquest, SpaceInvaders only)")
    parser.add_argument("--games", nargs="+", help="default: all five MinAtar games")
    parser.add_argument("--constant-actions", action="store_true",
                        help="play each action of the minimal set at every step instead")
    parser.add_argument("--max-episode-frames", type=int,
                        default=MINATAR.default_max_episode_frames,
                        help="episode cap in steps (the study evaluates with 2,500)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.episodes, seed=args.seed, difficulty=args.difficulty,
                 games=tuple(args.games) if args.games else None,
                 constant_actions=args.constant_actions,
                 max_episode_frames=args.max_episode_frames)
    report["command"] = "python -m benchmarks.minatar_random_scores " + " ".join(
        sys.argv[1:] if argv is None else argv)
    print(format_table(report["rows"]))
    if not args.no_write:
        suffix = f"_difficulty{args.difficulty}" if args.difficulty else ""
        kind = "constant_action" if args.constant_actions else "random"
        out = common.RESULTS_DIR / f"minatar_{kind}_scores{suffix}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
