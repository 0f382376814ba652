"""Evaluation rounds recorded in a run directory with TensorBoard logs reach TensorBoard."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scaled_ql.evaluation import RunInfo, append_evaluation
from scaled_ql.evaluation.tensorboard import TENSORBOARD_DIR

RUN = RunInfo(name="sql", method="scaled_ql", seed=0)
GAMES = ("Pong", "minatar/Breakout")


def episode(game, value, truncated=False):
    return {"game": game, "return": value, "length": 10, "frames": 40, "truncated": truncated}


def scalars(log_dir):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    # One event file per round: the accumulator reads them in file-name order, which is not
    # the order of the rounds (names end in a per-process counter: "...10" sorts before "...9").
    return {tag: sorted((e.step, e.value) for e in events.Scalars(tag))
            for tag in events.Tags()["scalars"]}


def test_each_round_goes_to_the_runs_tensorboard_folder(tmp_path):
    log_dir = tmp_path / TENSORBOARD_DIR
    log_dir.mkdir(parents=True)
    append_evaluation(tmp_path, RUN, GAMES, 100, [episode("Pong", -21.0), episode("Pong", -19.0)])
    append_evaluation(tmp_path, RUN, GAMES, 100, [episode("minatar/Breakout", 2.0, True)])
    append_evaluation(tmp_path, RUN, GAMES, 200, [episode("Pong", -15.0)])
    assert scalars(log_dir) == {
        "evaluation/Pong/mean_return": [(100, -20.0), (200, -15.0)],
        "evaluation/minatar/Breakout/mean_return": [(100, 2.0)],
        "evaluation/minatar/Breakout/episodes_cut": [(100, 1.0)],
    }


def test_no_tensorboard_folder_no_events(tmp_path):
    append_evaluation(tmp_path, RUN, GAMES, 0, [episode("Pong", 1.0)])
    append_evaluation(tmp_path / "elsewhere.json", RUN, GAMES, 0, [episode("Pong", 1.0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.json", "eval_results.json"]
    (tmp_path / TENSORBOARD_DIR).mkdir(parents=True)
    append_evaluation(tmp_path / "evaluate_step0.json", RUN, GAMES, 0, [episode("Pong", 1.0)])
    assert list((tmp_path / TENSORBOARD_DIR).iterdir()) == []  # only the run's own results
