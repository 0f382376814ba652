"""Evaluation rounds in TensorBoard, beside the learner's metrics.

The training runners write the learner's metrics to `RUN_DIR/logs/tensorboard/` (Acme's
`TFSummaryLogger`); `append_evaluation` calls `write_round` for every round it records in such
a run directory, so TensorBoard shows the evaluation returns against the learner step too:

  evaluation/<game>/mean_return     mean return of the round's episodes of that game
  evaluation/<game>/episodes_cut    how many of them the episode cap cut off (only when > 0)

Written with TensorBoard's own event writer (no TensorFlow import), one event file per call,
named `...evaluation`; a machine without the tensorboard package skips this silently.
"""

import os
import time
from collections.abc import Sequence
from pathlib import Path

from scaled_ql.evaluation.results_format import RESULTS_FILENAME

TENSORBOARD_DIR = Path("logs") / "tensorboard"  # in a run directory, as the runners write it


def run_log_dir(results_file: str | os.PathLike) -> Path | None:
    """The TensorBoard folder of the run that `results_file` belongs to, or None when the
    file is not a run directory's results file or the run writes no TensorBoard logs."""
    path = Path(results_file)
    folder = path.parent / TENSORBOARD_DIR
    return folder if path.name == RESULTS_FILENAME and folder.is_dir() else None


def write_round(log_dir: str | os.PathLike, step: int, episodes: Sequence) -> bool:
    """Writes the scalars of one round (the module docstring) at `step`; returns False when
    tensorboard is not installed.  `episodes`: results.Episode-like (game, episode_return,
    truncated)."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        return False
    by_game: dict[str, list] = {}
    for episode in episodes:
        by_game.setdefault(episode.game, []).append(episode)
    values = []
    for game, played in by_game.items():
        mean = sum(e.episode_return for e in played) / len(played)
        values.append(summary_pb2.Summary.Value(tag=f"evaluation/{game}/mean_return",
                                                simple_value=mean))
        cut = sum(bool(e.truncated) for e in played)
        if cut:
            values.append(summary_pb2.Summary.Value(tag=f"evaluation/{game}/episodes_cut",
                                                    simple_value=cut))
    writer = EventFileWriter(str(log_dir), filename_suffix=".evaluation")
    try:
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                         summary=summary_pb2.Summary(value=values)))
    finally:
        writer.close()
    return True
