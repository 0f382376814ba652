"""Run directories -> groups of seeds -> arrays of mean returns, ready for the statistics.

Grouping rule.  Runs with the same `run.name` are seeds of one configuration and form one
group, labelled by that name.  Runs of a group must agree on the method, the number of
parameters and the list of games (otherwise the name was reused by mistake, and the error
names the two run files); their seeds must differ (the same run given twice is an error).
Groups keep the order in which their first run was given.

Alignment.  A run's score on a game at a step is the mean return of that game's episodes in
the evaluation at that step.  A group's curves use the steps at which *every* run evaluated
*every* game (runs that stopped early, or a round still being written, leave out the later
steps); its final score is at the last such step.  `RunGroup.dropped_steps` counts what was
left out, so the report can say so.
"""

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from scaled_ql.evaluation import results as results_lib


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A results file and its content."""

    path: Path
    results: results_lib.EvalResults


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """The seeds of one configuration, aligned on their common evaluation steps.

    Attributes:
      label: the runs' `run.name`.
      method: their method.
      num_params: their parameter count (None if unknown).
      games: their games, in the order of the results files.
      runs: the runs, sorted by seed.
      steps: [S] the steps at which every run evaluated every game (may be empty).
      returns: [R, G, S] mean episode return of run r on game g at steps[s].
      num_episodes: [R, G, S] how many episodes each mean is over.
      dropped_steps: distinct evaluation steps of the runs that are not in `steps`.
    """

    label: str
    method: str
    num_params: int | None
    games: tuple[str, ...]
    runs: tuple[LoadedRun, ...]
    steps: np.ndarray
    returns: np.ndarray
    num_episodes: np.ndarray
    dropped_steps: int

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.results.run.seed for run in self.runs)

    @property
    def final_step(self) -> int | None:
        """The last step every run evaluated on every game (None if there is none)."""
        return int(self.steps[-1]) if len(self.steps) else None

    @property
    def final_returns(self) -> np.ndarray:
        """[R, G] mean returns at `final_step`."""
        if not len(self.steps):
            raise ValueError(f"group {self.label!r} has no step that every run evaluated on "
                             f"every game")
        return self.returns[:, :, -1]


def load_runs(run_dirs: Sequence[str | os.PathLike]) -> list[LoadedRun]:
    """Reads the results file of each run directory (or results file path), in order."""
    if not run_dirs:
        raise ValueError("no run directories given")
    loaded = []
    for run_dir in run_dirs:
        path = results_lib.results_path(run_dir)
        loaded.append(LoadedRun(path=path, results=results_lib.read_results(path)))
    return loaded


def _mean_returns(results: results_lib.EvalResults) -> dict[int, dict[str, tuple[float, int]]]:
    """step -> game -> (mean return, number of episodes), for games with episodes."""
    table: dict[int, dict[str, tuple[float, int]]] = {}
    for evaluation in results.evaluations:
        by_game: dict[str, list[float]] = {}
        for episode in evaluation.episodes:
            by_game.setdefault(episode.game, []).append(episode.episode_return)
        table[evaluation.step] = {g: (float(np.mean(v)), len(v)) for g, v in by_game.items()}
    return table


def group_runs(runs: Sequence[LoadedRun]) -> list[RunGroup]:
    """Groups runs by `run.name` and aligns each group (see the module docstring)."""
    by_name: dict[str, list[LoadedRun]] = {}
    for run in runs:
        by_name.setdefault(run.results.run.name, []).append(run)
    return [_make_group(name, members) for name, members in by_name.items()]


def _make_group(name: str, members: list[LoadedRun]) -> RunGroup:
    first = members[0]
    seen_seeds: dict[int, Path] = {}
    for run in members:
        for field in ("method", "num_params"):
            a, b = getattr(first.results.run, field), getattr(run.results.run, field)
            if a != b:
                raise results_lib.ResultsFormatError(
                    f"{run.path}: run.{field}: {b!r}, but {first.path} of the same run.name "
                    f"{name!r} has {a!r}; runs of one name are seeds of one configuration "
                    f"(give the other configuration another run.name)")
        if run.results.games != first.results.games:
            raise results_lib.ResultsFormatError(
                f"{run.path}: games: {list(run.results.games)}, but {first.path} of the same "
                f"run.name {name!r} has {list(first.results.games)}")
        seed = run.results.run.seed
        if seed in seen_seeds:
            raise results_lib.ResultsFormatError(
                f"{run.path}: run.seed: {seed} again ({seen_seeds[seed]} has the same "
                f"run.name {name!r} and seed); was a run given twice?")
        seen_seeds[seed] = run.path
    members = sorted(members, key=lambda run: run.results.run.seed)
    games = first.results.games
    tables = [_mean_returns(run.results) for run in members]
    all_steps = set().union(*(table.keys() for table in tables))
    complete = sorted(
        step for step in all_steps
        if all(step in table and all(g in table[step] for g in games) for table in tables)
    )
    shape = (len(members), len(games), len(complete))
    returns, counts = np.zeros(shape), np.zeros(shape, dtype=np.int64)
    for r, table in enumerate(tables):
        for s, step in enumerate(complete):
            for g, game in enumerate(games):
                returns[r, g, s], counts[r, g, s] = table[step][game]
    return RunGroup(
        label=name,
        method=first.results.run.method,
        num_params=first.results.run.num_params,
        games=games,
        runs=tuple(members),
        steps=np.asarray(complete, dtype=np.int64),
        returns=returns,
        num_episodes=counts,
        dropped_steps=len(all_steps) - len(complete),
    )
