"""Run directories -> groups of seeds -> arrays of mean returns, ready for the statistics.

Grouping rule.  Runs with the same `run.name` *and the same settings* are seeds of one
configuration and form one group.  A run's settings are its recorded `run.config` (the run's
config.json) less what does not define the method: the seed, paths (`out_dir`, `data_dir`,
`checkpoint`, ...) and how the run was executed (workers, progress bars, logging and
checkpoint periods, and what a resumed run may extend: its step budget and evaluation period;
`NOT_SETTINGS`).  So runs that share a name but differ in, say,
`--cql-alpha` are two groups, labelled by the name plus the settings that tell them apart
(`scaled_ql-resnet18 (cql_alpha=0.1)`); a name with one configuration is labelled by the name
alone.  Runs of a group must agree on the method, the number of parameters and the list of
games (otherwise the name was reused by mistake, and the error names the two run files); their
seeds must differ (the same run given twice is an error).  Groups keep the order in which
their first run was given.

Alignment.  A run's score on a game at a step is the mean return of that game's episodes in
the evaluation at that step.  A group's curves use the steps at which *every* run evaluated
*every* game (runs that stopped early, or a round still being written, leave out the later
steps); its final score is at the last such step.  One exception: runs that end by a budget
of environment steps (online fine-tuning: their config records `env_steps`) end at learner
steps that differ by a few from seed to seed (Reverb's rate limiter), so their final rounds
are at slightly different steps.  When every run of such a group has a round after the last
common step and the runs' last rounds lie within `FINAL_STEP_TOLERANCE` of each other, each
run's last round is its final score, at the largest of those steps (`RunGroup.final_steps`
gives their range).  A run that stopped early has no round after the last common step, so it
still ends the group's curve there.  `RunGroup.dropped_steps` counts what was left out, so the
report can say so.
"""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from scaled_ql.evaluation import results as results_lib

# How far apart (relative to the largest) the runs' last rounds may be and still make one final
# point: online runs of 20,000 environment steps end at learner steps such as 4,719 and 4,720.
FINAL_STEP_TOLERANCE = 0.01

# Config keys (the last part of a dotted key) that do not define a configuration: the seed,
# names and paths, and how a run was executed rather than what it computes.
NOT_SETTINGS = frozenset({
    "seed", "run_name", "name", "out_dir", "out", "data_dir", "data", "checkpoint",
    "offline_data", "progress", "no_progress", "verbose", "func", "resume", "overwrite",
    "workers", "eval_workers", "num_evaluators", "cache_data", "log_every",
    "checkpoint_every", "keep_checkpoints", "max_consecutive_skips", "max_pending_rounds",
    "sampler_poll_ms", "sampler_timeout_ms", "launch",
    # What `--resume` may change (the runners' RESUMABLE_CHANGES): a resumed run's results file
    # keeps the config of its first round, so these would split one run's seeds in two.  Runs
    # of other lengths are still compared fairly: groups align on the steps all runs evaluated.
    "steps", "eval_every", "final_eval", "timeout",
})

@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A results file and its content."""

    path: Path
    results: results_lib.EvalResults


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """The seeds of one configuration, aligned on their common evaluation steps.

    Attributes:
      label: the runs' `run.name`, followed by the settings that tell this group from other
        groups of the same name (`name (cql_alpha=0.1)`).
      method: their method.
      num_params: their parameter count (None if unknown).
      games: their games, in the order of the results files.
      runs: the runs, sorted by seed.
      steps: [S] the steps at which every run evaluated every game (may be empty), then,
        when `final_steps` is set, the largest of the runs' last steps (their final rounds).
      returns: [R, G, S] mean episode return of run r on game g at steps[s].
      num_episodes: [R, G, S] how many episodes each mean is over.
      num_truncated: [R, G, S] how many of those episodes the frame cap cut off.
      truncated_frames: the most frames a cut-off episode at `steps` played (the cap), or None
        if none was cut off.
      dropped_steps: distinct evaluation steps of the runs that are not in `steps`.
      final_steps: (first, last) of the runs' own last steps when the final point takes each
        run's last round (module docstring); None when every run's final round is at
        `final_step`.
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
    num_truncated: np.ndarray
    truncated_frames: int | None
    final_steps: tuple[int, int] | None = None

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.results.run.seed for run in self.runs)

    @property
    def final_step(self) -> int | None:
        """The step of the group's final point: the last step every run evaluated on every game,
        or the largest of the runs' last steps when `final_steps` is set (None if there is
        none)."""
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


class _Cell(NamedTuple):
    """One run's episodes of one game at one step, summed up."""

    mean_return: float
    episodes: int
    truncated: int
    truncated_frames: int  # the most frames of a truncated episode (0: none truncated)


def _cells(results: results_lib.EvalResults) -> dict[int, dict[str, _Cell]]:
    """step -> game -> its episodes summed up, for games with episodes."""
    table: dict[int, dict[str, _Cell]] = {}
    for evaluation in results.evaluations:
        by_game: dict[str, list[results_lib.Episode]] = {}
        for episode in evaluation.episodes:
            by_game.setdefault(episode.game, []).append(episode)
        table[evaluation.step] = {
            game: _Cell(float(np.mean([e.episode_return for e in episodes])), len(episodes),
                        sum(e.truncated for e in episodes),
                        max((e.frames for e in episodes if e.truncated), default=0))
            for game, episodes in by_game.items()}
    return table


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that define a run's configuration: its config flattened to dotted keys
    (`agent.cql_alpha`), less `NOT_SETTINGS` (seed, paths, execution), with the
    `ADDED_SETTINGS` that a run recorded before they existed lacks."""
    flat: dict[str, Any] = {}

    def visit(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                visit(item, f"{key}.{name}" if key else str(name))
        elif key.rsplit(".", 1)[-1] not in NOT_SETTINGS:
            flat[key] = value

    visit(with_added_settings(config), "")
    return flat


# Settings added to config.json after runs were recorded, with the value that does what the
# code did before them (ScaledQLConfig's default; tests/evaluation checks they agree): a run
# whose config lacks one is read as having that value, so it stays a seed of the runs made
# since (here) and resumes (`runners.run_dir.check_resume`).
ADDED_SETTINGS = {"agent.frozen_torso_steps": 0, "agent.torso_learning_rate_scale": 1.0}


def with_added_settings(config: Mapping[str, Any]) -> dict:
    """A run's config (config.json) with the `ADDED_SETTINGS` it lacks, each filled in only
    where its parent (`agent`) is recorded."""
    config = dict(config)
    for key, value in ADDED_SETTINGS.items():
        parent, name = key.split(".", 1)
        if isinstance(config.get(parent), Mapping) and name not in config[parent]:
            config[parent] = {**config[parent], name: value}
    return config


def _differences(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in all `configs`, in first-seen order."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    return [k for k in keys
            if len({json.dumps(c[k], sort_keys=True, default=str) if k in c else None
                    for c in configs}) > 1]


def _label(name: str, config: dict[str, Any], differing: list[str], limit: int = 3) -> str:
    """`name (key=value, ...)` for the differing keys (by their last part when that is
    unambiguous), at most `limit` of them shown."""
    if not differing:
        return name
    short = [k.rsplit(".", 1)[-1] for k in differing]
    shown = [f"{s if short.count(s) == 1 else k}={config.get(k, 'unset')}"
             for k, s in zip(differing, short)]
    more = f", +{len(shown) - limit} more" if len(shown) > limit else ""
    return f"{name} ({', '.join(shown[:limit])}{more})"


def group_runs(runs: Sequence[LoadedRun]) -> list[RunGroup]:
    """Groups runs by `run.name` and settings and aligns each group (see the module
    docstring)."""
    by_key: dict[tuple[str, str], list[LoadedRun]] = {}
    configs: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        config = settings(run.results.run.config)
        key = (run.results.run.name, json.dumps(config, sort_keys=True, default=str))
        by_key.setdefault(key, []).append(run)
        configs[key] = config
    groups = []
    for key, members in by_key.items():
        name = key[0]
        same_name = [configs[k] for k in by_key if k[0] == name]
        label = _label(name, configs[key], _differences(same_name))
        groups.append(_make_group(name, label, members))
    return groups


def _make_group(name: str, label: str, members: list[LoadedRun]) -> RunGroup:
    first = members[0]
    seen_seeds: dict[int, Path] = {}
    for run in members:
        for field in ("method", "num_params"):
            a, b = getattr(first.results.run, field), getattr(run.results.run, field)
            if a != b:
                raise results_lib.ResultsFormatError(
                    f"{run.path}: run.{field}: {b!r}, but {first.path} of the same run.name "
                    f"{name!r} and settings has {a!r}; runs of one name are seeds of one "
                    f"configuration (give the other configuration another run.name)")
        if run.results.games != first.results.games:
            raise results_lib.ResultsFormatError(
                f"{run.path}: games: {list(run.results.games)}, but {first.path} of the same "
                f"run.name {name!r} and settings has {list(first.results.games)}")
        seed = run.results.run.seed
        if seed in seen_seeds:
            raise results_lib.ResultsFormatError(
                f"{run.path}: run.seed: {seed} again ({seen_seeds[seed]} has the same "
                f"run.name {name!r}, settings and seed); was a run given twice?")
        seen_seeds[seed] = run.path
    members = sorted(members, key=lambda run: run.results.run.seed)
    games = first.results.games
    tables = [_cells(run.results) for run in members]
    all_steps = set().union(*(table.keys() for table in tables))
    # Each run's complete rounds: those in which it evaluated every game.
    rounds = [{step for step, cells in table.items() if all(g in cells for g in games)}
              for table in tables]
    complete = sorted(set.intersection(*rounds))
    lasts = (_last_rounds_together(rounds, complete)
             if all(_has_env_step_budget(run) for run in members) else [])
    columns = [[step] * len(tables) for step in complete] + ([lasts] if lasts else [])
    shape = (len(members), len(games), len(columns))
    returns = np.zeros(shape)
    counts, truncated = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    truncated_frames = 0
    for r, table in enumerate(tables):
        for s, steps in enumerate(columns):
            for g, game in enumerate(games):
                cell = table[steps[r]][game]
                returns[r, g, s], counts[r, g, s] = cell.mean_return, cell.episodes
                truncated[r, g, s] = cell.truncated
                truncated_frames = max(truncated_frames, cell.truncated_frames)
    return RunGroup(
        label=label,
        method=first.results.run.method,
        num_params=first.results.run.num_params,
        games=games,
        runs=tuple(members),
        steps=np.asarray(complete + ([max(lasts)] if lasts else []), dtype=np.int64),
        returns=returns,
        num_episodes=counts,
        dropped_steps=len(all_steps - set(complete) - set(lasts)),
        num_truncated=truncated,
        truncated_frames=truncated_frames or None,
        final_steps=(min(lasts), max(lasts)) if lasts else None,
    )


def _has_env_step_budget(run: LoadedRun) -> bool:
    """Whether the run ends by a number of environment steps (its config has `env_steps`)."""
    return any(key.rsplit(".", 1)[-1] == "env_steps" for key in settings(run.results.run.config))


def _last_rounds_together(rounds: list[set[int]], complete: list[int]) -> list[int]:
    """Each run's last complete round (`rounds`: every run's), when every run has one after
    the last common step and they lie within FINAL_STEP_TOLERANCE of each other; else []."""
    lasts = [max(steps, default=None) for steps in rounds]
    after = complete[-1] if complete else -1
    if any(last is None or last <= after for last in lasts):
        return []
    if min(lasts) < max(lasts) * (1.0 - FINAL_STEP_TOLERANCE):
        return []
    return lasts
