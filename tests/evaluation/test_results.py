"""The results file format: round trips, append rules, atomic writes, clear validation errors."""

import dataclasses
import json
import multiprocessing
import os
import stat

import numpy as np
import pytest

from scaled_ql.evaluation import results
from scaled_ql.evaluation.results import ResultsFormatError

RUN = results.RunInfo(name="sql-small", method="scaled_ql", seed=3, num_params=1234,
                      config={"torso": "resnet", "lr": 1e-4, "sizes": (1, 2)})
GAMES = ("Breakout", "Pong")


@dataclasses.dataclass(frozen=True)
class FakeEpisodeResult:  # Same attribute names as scaled_ql.environments.vector.EpisodeResult.
    game: str
    episode_return: float
    length: int
    frames: int


def test_append_then_read_round_trips_every_field(tmp_path):
    results.append_evaluation(
        tmp_path, RUN, GAMES, step=0, wall_time=10.0,
        episodes=[FakeEpisodeResult("Breakout", 3.0, 100, 400),
                  {"game": "Pong", "return": -21.0, "length": 50, "frames": 200}])
    results.append_evaluation(
        tmp_path, RUN, GAMES, step=np.int64(500), wall_time=20.0,
        episodes=[{"game": "Pong", "episode_return": np.float32(-5.5), "length": np.int64(70),
                   "frames": 280}])
    loaded = results.read_results(tmp_path)
    assert loaded.run.name == "sql-small" and loaded.run.seed == 3
    assert loaded.run.num_params == 1234
    assert loaded.run.config == {"torso": "resnet", "lr": 1e-4, "sizes": [1, 2]}
    assert loaded.games == GAMES
    assert [e.step for e in loaded.evaluations] == [0, 500]
    assert [e.wall_time for e in loaded.evaluations] == [10.0, 20.0]
    assert loaded.evaluations[0].episodes == (
        results.Episode("Breakout", 3.0, 100, 400), results.Episode("Pong", -21.0, 50, 200))
    assert loaded.evaluations[1].episodes == (results.Episode("Pong", -5.5, 70, 280),)
    raw = json.loads((tmp_path / "eval_results.json").read_text())
    assert raw["format"] == "scaled-ql/eval-results" and raw["version"] == 1
    assert raw["evaluations"][0]["episodes"][0] == {
        "game": "Breakout", "return": 3.0, "length": 100, "frames": 400, "truncated": False}


def _episodes(game, *returns):
    return [{"game": game, "return": r, "length": 1, "frames": 4} for r in returns]


def test_append_same_step_merges_and_earlier_step_drops_the_later_ones(tmp_path):
    for step in (0, 100, 200):
        results.append_evaluation(tmp_path, RUN, GAMES, step, _episodes("Pong", step), 1.0)
    merged = results.append_evaluation(tmp_path, RUN, GAMES, 200, _episodes("Breakout", 7), 2.0)
    assert [e.step for e in merged.evaluations] == [0, 100, 200]
    assert [(e.game, e.episode_return) for e in merged.evaluations[2].episodes] == [
        ("Pong", 200.0), ("Breakout", 7.0)]
    assert merged.evaluations[2].wall_time == 2.0
    # Resumed from the checkpoint at step 100: the evaluation at 200 belongs to the old path.
    resumed = results.append_evaluation(tmp_path, RUN, GAMES, 100, _episodes("Pong", 9), 3.0)
    assert [e.step for e in resumed.evaluations] == [0, 100]
    assert [x.episode_return for x in resumed.evaluations[1].episodes] == [100.0, 9.0]
    assert results.read_results(tmp_path) == resumed


def test_append_refuses_another_run_or_unknown_games(tmp_path):
    results.append_evaluation(tmp_path, RUN, GAMES, 0, _episodes("Pong", 1))
    other = dataclasses.replace(RUN, seed=4)
    with pytest.raises(ResultsFormatError, match=r"eval_results.json.*run\.seed"):
        results.append_evaluation(tmp_path, other, GAMES, 1, _episodes("Pong", 1))
    with pytest.raises(ResultsFormatError, match=r"games: the file lists other games"):
        results.append_evaluation(tmp_path, RUN, ("Pong",), 1, _episodes("Pong", 1))
    with pytest.raises(ResultsFormatError, match=r"episodes\[0\]\.game: not one of"):
        results.append_evaluation(tmp_path, RUN, GAMES, 1, _episodes("Qbert", 1))
    with pytest.raises(ResultsFormatError, match=r"episodes\[0\].*missing"):
        results.append_evaluation(tmp_path, RUN, GAMES, 1, [object()])
    assert [e.step for e in results.read_results(tmp_path).evaluations] == [0]


def test_write_is_atomic_and_a_failed_write_keeps_the_old_file(tmp_path):
    results.append_evaluation(tmp_path, RUN, GAMES, 0, _episodes("Pong", 1))
    before = (tmp_path / "eval_results.json").read_text()
    bad = results.EvalResults(dataclasses.replace(RUN, config={"fn": object()}), GAMES)
    with pytest.raises(ResultsFormatError, match=r"run\.config\.fn: cannot store"):
        results.write_results(tmp_path, bad)
    assert (tmp_path / "eval_results.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_results.json"]  # no lock file


def _valid_document():
    return {
        "format": "scaled-ql/eval-results", "version": 1,
        "run": {"name": "a", "method": "bc", "seed": 0, "num_params": None, "config": {}},
        "games": ["Pong"],
        "evaluations": [{"step": 5, "wall_time": 1.5, "episodes": [
            {"game": "Pong", "return": 1.0, "length": 3, "frames": 12}]}],
    }


@pytest.mark.parametrize("mutate, field, problem", [
    (lambda d: d.update(format="other"), "format", "expected 'scaled-ql/eval-results'"),
    (lambda d: d.update(version=2), "version", "upgrade scaled-ql"),
    (lambda d: d["run"].pop("method"), "run.method", "missing"),
    (lambda d: d["run"].update(seed="0"), "run.seed", "expected an integer"),
    (lambda d: d["run"].update(num_params=0), "run.num_params", "positive integer"),
    (lambda d: d.update(games=["Pong", "Pong"]), "games", "must not repeat"),
    (lambda d: d["evaluations"].append(dict(d["evaluations"][0], step=5)),
     r"evaluations\[1\]\.step", "steps must increase"),
    (lambda d: d["evaluations"][0]["episodes"][0].update({"return": float("nan")}),
     r"evaluations\[0\]\.episodes\[0\]\.return", "finite"),
    (lambda d: d["evaluations"][0]["episodes"][0].update(length=-1),
     r"evaluations\[0\]\.episodes\[0\]\.length", ">= 0"),
    (lambda d: d["evaluations"][0]["episodes"][0].update(game="Qbert"),
     r"evaluations\[0\]\.episodes\[0\]\.game", "not one of the run's games"),
])
def test_read_names_the_file_and_the_field_at_fault(tmp_path, mutate, field, problem):
    document = _valid_document()
    mutate(document)
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsFormatError, match=f"{path}: {field}: .*{problem}"):
        results.read_results(tmp_path)


def test_read_reports_invalid_json_and_missing_files(tmp_path):
    (tmp_path / "eval_results.json").write_text('{"format": ')
    with pytest.raises(ResultsFormatError, match="eval_results.json: not valid JSON"):
        results.read_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="no evaluation results file"):
        results.read_results(tmp_path / "missing")


def test_valid_document_reads(tmp_path):
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(_valid_document()))
    loaded = results.read_results(path)
    assert loaded.run.num_params is None
    assert loaded.evaluations[0].episodes[0] == results.Episode("Pong", 1.0, 3, 12)


def test_truncated_episodes_round_trip_and_old_files_read_as_not_truncated(tmp_path):
    cut = dataclasses.make_dataclass("Cut", [(n, object) for n in (
        "game", "episode_return", "length", "frames", "truncated")])
    loaded = results.append_evaluation(tmp_path, RUN, GAMES, 0, [
        cut("Pong", -3.0, 100, 400, np.bool_(True)),
        FakeEpisodeResult("Breakout", 2.0, 30, 120),  # no `truncated` attribute: not cut
        {"game": "Pong", "return": -1.0, "length": 100, "frames": 400, "truncated": True}])
    assert [e.truncated for e in loaded.evaluations[0].episodes] == [True, False, True]
    raw = json.loads((tmp_path / "eval_results.json").read_text())
    assert [e["truncated"] for e in raw["evaluations"][0]["episodes"]] == [True, False, True]

    old = _valid_document()  # written before the field existed
    assert "truncated" not in old["evaluations"][0]["episodes"][0]
    (tmp_path / "old.json").write_text(json.dumps(old))
    (episode,) = results.read_results(tmp_path / "old.json").evaluations[0].episodes
    assert episode.truncated is False
    old["evaluations"][0]["episodes"][0]["truncated"] = "yes"
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ResultsFormatError, match=r"episodes\[0\]\.truncated: expected true or "
                                                 "false"):
        results.read_results(tmp_path / "old.json")


def test_results_file_has_the_users_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        results.append_evaluation(tmp_path, RUN, GAMES, 0, _episodes("Pong", 1))
        results.append_evaluation(tmp_path, RUN, GAMES, 10, _episodes("Pong", 2))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "eval_results.json").stat().st_mode) == 0o644


def _append_many(run_dir, first_step):
    for step in range(first_step, first_step + 20):
        results.append_evaluation(run_dir, RUN, GAMES, 100, _episodes("Pong", step))


def test_appends_from_several_processes_all_land(tmp_path):
    """The directory lock serializes read-modify-writes of concurrent evaluator processes."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(tmp_path, 1000 * k)) for k in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    (evaluation,) = results.read_results(tmp_path).evaluations
    assert sorted(e.episode_return for e in evaluation.episodes) == [
        float(1000 * k + i) for k in range(3) for i in range(20)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_results.json"]
