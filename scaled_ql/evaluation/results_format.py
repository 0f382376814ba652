"""The evaluation results format: the record types of `eval_results.json` and their JSON
document, validated field by field (`scaled_ql.evaluation.results` reads and writes the files).

A document holds the run's identity and config, the games it is evaluated on, and one entry per
evaluation round: the learner step of the evaluated checkpoint, when the round finished, and
every episode played (game, return, length, frames, whether the frame cap cut it off).
docs/EVALUATION.md documents the format field by field.  Every error names the file (or
`source`) and the field at fault.
"""

import dataclasses
import enum
import math
import os
from typing import Any, Iterable, Mapping, Sequence

RESULTS_FORMAT = "scaled-ql/eval-results"
RESULTS_VERSION = 1
RESULTS_FILENAME = "eval_results.json"


class ResultsFormatError(ValueError):
    """A results file (or the data given to write one) does not follow the format.

    The message starts with the file and the field at fault, e.g.
    `runs/a/eval_results.json: evaluations[2].episodes[0].return: expected a finite number`.
    """


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Who produced the results.

    Attributes:
      name: the configuration's name, shared by every seed of that configuration (e.g.
        "scaled-ql-resnet50"); the report groups runs by it.
      method: the algorithm, e.g. "scaled_ql", "c51", "bc", "dqn_scratch".
      seed: the run's random seed.
      num_params: number of trainable parameters of the evaluated network, or None if
        unknown; the report draws a scaling plot when groups differ in it.
      config: the run's full configuration as JSON-compatible data (for the record; the report
        does not read it).
    """

    name: str
    method: str
    seed: int
    num_params: int | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Episode:
    """One evaluation episode.

    Attributes:
      game: the game's name (the catalogue's spelling, e.g. "MsPacman").
      episode_return: undiscounted sum of raw (unclipped) rewards.
      length: number of agent steps.
      frames: number of emulator frames (agent steps times frame skip).
      truncated: whether the episode cap (`--max-frames`, the suite's 108,000 Atari frames)
        ended the episode before game over: its return is that of an unfinished game.
        Files written before this field existed read as False.
    """

    game: str
    episode_return: float
    length: int
    frames: int
    truncated: bool = False


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation round of one checkpoint.

    Attributes:
      step: the learner step of the evaluated checkpoint.
      wall_time: when the round finished, in seconds since the Unix epoch.
      episodes: every episode played in the round, over all games.
    """

    step: int
    wall_time: float
    episodes: tuple[Episode, ...]


@dataclasses.dataclass(frozen=True)
class EvalResults:
    """The content of one results file (see the module docstring)."""

    run: RunInfo
    games: tuple[str, ...]
    evaluations: tuple[Evaluation, ...] = ()


# ------------------------------------------------------------------------------------------
# To and from JSON data.


def to_json_dict(results: EvalResults, source: str = "<results to write>") -> dict[str, Any]:
    """The JSON document of `results`, validated like a file being read (`source` names it in
    error messages)."""
    data = {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "run": {
            "name": results.run.name,
            "method": results.run.method,
            "seed": _plain(results.run.seed),
            "num_params": _plain(results.run.num_params),
            "config": _jsonable(results.run.config, "run.config"),
        },
        "games": list(results.games),
        "evaluations": [
            {
                "step": _plain(evaluation.step),
                "wall_time": evaluation.wall_time,
                "episodes": [
                    {
                        "game": e.game,
                        "return": e.episode_return,
                        "length": e.length,
                        "frames": e.frames,
                        "truncated": e.truncated,
                    }
                    for e in evaluation.episodes
                ],
            }
            for evaluation in results.evaluations
        ],
    }
    from_json_dict(data, source=source)  # The same checks as on reading.
    return data


def from_json_dict(data: Any, source: str = "<json>") -> EvalResults:
    """Parses and validates a results document; `source` names it in error messages."""
    _check(isinstance(data, dict), source, "<top level>", "expected a JSON object", data)
    _check(data.get("format") == RESULTS_FORMAT, source, "format",
           f"expected {RESULTS_FORMAT!r} (is this a scaled-ql results file?)", data.get("format"))
    version = data.get("version")
    _check(isinstance(version, int) and not isinstance(version, bool), source, "version",
           "expected an integer", version)
    _check(version <= RESULTS_VERSION, source, "version",
           f"this scaled-ql reads versions up to {RESULTS_VERSION}; upgrade scaled-ql", version)
    _check(version >= 1, source, "version", "expected a version >= 1", version)

    run = _field(data, "run", dict, source, "run")
    config = run.get("config", {})
    _check(isinstance(config, dict), source, "run.config", "expected a JSON object", config)
    num_params = run.get("num_params")
    _check(num_params is None or (_is_int(num_params) and num_params > 0), source,
           "run.num_params", "expected a positive integer or null", num_params)
    run_info = RunInfo(
        name=_nonempty_str(_field(run, "name", str, source, "run.name"), source, "run.name"),
        method=_nonempty_str(_field(run, "method", str, source, "run.method"), source,
                             "run.method"),
        seed=_field(run, "seed", int, source, "run.seed"),
        num_params=num_params,
        config=config,
    )

    games = _field(data, "games", list, source, "games")
    _check(len(games) > 0, source, "games", "expected at least one game", games)
    for i, game in enumerate(games):
        _nonempty_str(game, source, f"games[{i}]")
    _check(len(set(games)) == len(games), source, "games", "games must not repeat", games)

    evaluations = []
    last_step = -1
    for i, raw in enumerate(_field(data, "evaluations", list, source, "evaluations")):
        where = f"evaluations[{i}]"
        _check(isinstance(raw, dict), source, where, "expected a JSON object", raw)
        step = _field(raw, "step", int, source, f"{where}.step")
        _check(step >= 0, source, f"{where}.step", "expected a step >= 0", step)
        _check(step > last_step, source, f"{where}.step",
               f"steps must increase from one evaluation to the next (previous: {last_step})",
               step)
        last_step = step
        wall_time = _finite(_field(raw, "wall_time", float, source, f"{where}.wall_time"),
                            source, f"{where}.wall_time")
        episodes = []
        for j, raw_episode in enumerate(_field(raw, "episodes", list, source,
                                               f"{where}.episodes")):
            episodes.append(_parse_episode(raw_episode, games, source, f"{where}.episodes[{j}]"))
        evaluations.append(Evaluation(step, float(wall_time), tuple(episodes)))
    return EvalResults(run=run_info, games=tuple(games), evaluations=tuple(evaluations))


def _parse_episode(raw: Any, games: Sequence[str], source: str, where: str) -> Episode:
    _check(isinstance(raw, dict), source, where, "expected a JSON object", raw)
    game = _field(raw, "game", str, source, f"{where}.game")
    _check(game in games, source, f"{where}.game", f"not one of the run's games {list(games)}",
           game)
    episode_return = _finite(_field(raw, "return", float, source, f"{where}.return"), source,
                             f"{where}.return")
    length = _field(raw, "length", int, source, f"{where}.length")
    frames = _field(raw, "frames", int, source, f"{where}.frames")
    _check(length >= 0, source, f"{where}.length", "expected a length >= 0", length)
    _check(frames >= 0, source, f"{where}.frames", "expected frames >= 0", frames)
    truncated = raw.get("truncated", False)  # absent in files of older versions: not known cut
    _check(isinstance(truncated, bool), source, f"{where}.truncated", "expected true or false",
           truncated)
    return Episode(game, float(episode_return), length, frames, truncated)


def truncation_note(cut: int, total: int, frames: int | None, games: Sequence[str],
                    which: str = "") -> str:
    """The sentence that marks scores with cut-off episodes, e.g. "3 of 10 episodes{which}
    cut at 400 frames by the episode cap, before game over (Pong); their returns are those of
    unfinished games." ("" if `cut` is 0)."""
    if not cut:
        return ""
    return (f"{cut} of {total} episodes{which} cut at {frames or 0:,} frames by the episode cap, "
            f"before game over ({', '.join(games)}); their returns are those of unfinished "
            f"games.")


def episodes_truncation_note(episodes: Iterable[Any]) -> str:
    """`truncation_note` of evaluation episodes (anything with `game`, `frames` and optionally
    `truncated`, as `append_evaluation` takes them)."""
    episodes = list(episodes)
    cut = [e for e in episodes if getattr(e, "truncated", False)]
    return truncation_note(len(cut), len(episodes), max((e.frames for e in cut), default=None),
                           list(dict.fromkeys(e.game for e in cut)))


def _coerce_episode(item: Any, source: str, where: str) -> Episode:
    if isinstance(item, Episode):
        return item
    if isinstance(item, Mapping):
        raw = dict(item)
        if "return" not in raw and "episode_return" in raw:
            raw["return"] = raw.pop("episode_return")
    else:
        names = ("game", "episode_return", "length", "frames")
        missing = [n for n in names if not hasattr(item, n)]
        _check(not missing, source, where,
               f"expected an episode (attributes {names}; missing {missing})", item)
        raw = {"game": item.game, "return": item.episode_return, "length": item.length,
               "frames": item.frames, "truncated": bool(getattr(item, "truncated", False))}
    raw = {k: _plain(v) for k, v in raw.items()}
    return _parse_episode(raw, [raw.get("game")], source, where)  # Game membership: later.


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers (evaluators often produce them)."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def _jsonable(value: Any, where: str) -> Any:
    """A copy of a config as JSON data: dataclasses, tuples, paths, enums and numpy scalars
    become dicts, lists, strings and numbers; anything else unknown is an error."""
    value = _plain(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ResultsFormatError(f"{where}: keys must be strings, got {key!r}")
            out[key] = _jsonable(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no inf/nan; keep the value readable.
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ResultsFormatError(f"{where}: cannot store a {type(value).__name__} as JSON: {value!r}")


# ------------------------------------------------------------------------------------------
# Validation helpers: every message names the file and the field.

_TYPE_NAMES = {dict: "a JSON object", list: "a list", str: "a string", int: "an integer",
               float: "a number"}


def _check(ok: bool, source: str, where: str, problem: str, value: Any) -> None:
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ResultsFormatError(f"{source}: {where}: {problem}, got {shown}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(obj: dict, key: str, kind: type, source: str, where: str) -> Any:
    if key not in obj:
        raise ResultsFormatError(f"{source}: {where}: missing")
    value = obj[key]
    if kind is int:
        ok = _is_int(value)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    _check(ok, source, where, f"expected {_TYPE_NAMES[kind]}", value)
    return value


def _finite(value: float, source: str, where: str) -> float:
    _check(math.isfinite(value), source, where, "expected a finite number", value)
    return value


def _nonempty_str(value: Any, source: str, where: str) -> str:
    _check(isinstance(value, str) and value.strip() != "", source, where,
           "expected a non-empty string", value)
    return value
