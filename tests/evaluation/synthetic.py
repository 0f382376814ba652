"""Synthetic run directories in the results format, for the evaluation tests."""

from pathlib import Path
from typing import Sequence

import numpy as np

from scaled_ql.environments.games import get_game
from scaled_ql.evaluation import results


def write_synthetic_run(
    run_dir: Path,
    *,
    name: str,
    seed: int,
    games: Sequence[str],
    level: float,
    steps: Sequence[int] = (0, 1000, 2000, 3000),
    episodes_per_game: int = 3,
    method: str = "scaled_ql",
    num_params: int | None = None,
    config: dict | None = None,
    truncated_every: int = 0,
) -> Path:
    """A run whose normalized score (human-normalized; DQN-normalized for MinAtar games) on
    each game rises linearly to about `level` (with seeded noise), written one evaluation at a
    time through `append_evaluation`.  `config` is recorded as the run's config (default: a
    torso and the games); with `truncated_every` k > 0 every k-th episode is marked as cut off
    by a 400-frame cap."""
    rng = np.random.default_rng(seed)
    run = results.RunInfo(name=name, method=method, seed=seed, num_params=num_params,
                          config=config or {"torso": "resnet", "games": list(games)})
    count = 0
    for k, step in enumerate(steps):
        episodes = []
        for game in games:
            info = get_game(game)
            random_score = 0.0 if np.isnan(info.random_score) else info.random_score
            human_score = (info.human_score if info.human_score is not None
                           else random_score + 1000.0)
            for _ in range(episodes_per_game):
                count += 1
                cut = truncated_every > 0 and count % truncated_every == 0
                fraction = level * (k + 1) / len(steps) + rng.normal(0.0, 0.1)
                episodes.append({
                    "game": game,
                    "return": random_score + fraction * (human_score - random_score),
                    "length": 100 + k,
                    "frames": 400 if cut else 4 * (100 + k),
                    "truncated": cut,
                })
        results.append_evaluation(run_dir, run, games, step, episodes, wall_time=1.0e9 + step)
    return results.results_path(run_dir)
