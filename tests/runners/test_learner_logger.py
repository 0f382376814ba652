"""The learner's logger: every write reaches logs/learner.csv, every `tensorboard_every`-th
reaches TensorBoard (a tf.summary write costs more than a MinAtar SGD step)."""

import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from scaled_ql.runners import run_dir as run_dir_lib
from scaled_ql.runners.offline import make_logger


def test_csv_gets_every_write_and_tensorboard_every_nth(tmp_path):
    (tmp_path / run_dir_lib.LOG_DIR).mkdir()
    logger, csv_file = make_logger(tmp_path, tensorboard_every=3)
    for step in range(1, 8):
        logger.write({"learner_steps": step, "loss": step / 10})
    logger.close()
    csv_file.close()

    with open(tmp_path / run_dir_lib.LOG_DIR / run_dir_lib.LEARNER_LOG) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["learner_steps"]) for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [float(r["loss"]) for r in rows] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])

    events = EventAccumulator(str(tmp_path / run_dir_lib.LOG_DIR / "tensorboard"))
    events.Reload()
    points = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
              for e in events.Tensors("learner/Loss")]
    assert [s for s, _ in points] == [1, 4, 7]
    assert [v for _, v in points] == pytest.approx([0.1, 0.4, 0.7])


def test_tensorboard_every_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="tensorboard_every must be >= 1, got 0"):
        make_logger(tmp_path, tensorboard_every=0)
