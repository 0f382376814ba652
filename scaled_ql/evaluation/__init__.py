"""Evaluation: results files, normalized scores (human-normalized for ALE games, DQN-normalized
for MinAtar games), rliable statistics, plots, reports.

Imports only numpy, rliable and matplotlib (and the plain-data game catalogue and suites,
lazily), so a report can be made on any machine that has the results files.
"""

from scaled_ql.evaluation.report import write_report
from scaled_ql.evaluation.results import RESULTS_FILENAME
from scaled_ql.evaluation.results import RESULTS_FORMAT
from scaled_ql.evaluation.results import RESULTS_VERSION
from scaled_ql.evaluation.results import Episode
from scaled_ql.evaluation.results import EvalResults
from scaled_ql.evaluation.results import Evaluation
from scaled_ql.evaluation.results import ResultsFormatError
from scaled_ql.evaluation.results import RunInfo
from scaled_ql.evaluation.results import append_evaluation
from scaled_ql.evaluation.results import read_results
from scaled_ql.evaluation.results import results_path
from scaled_ql.evaluation.results import write_results
from scaled_ql.evaluation.runs import RunGroup
from scaled_ql.evaluation.runs import group_runs
from scaled_ql.evaluation.runs import load_runs
from scaled_ql.evaluation.scores import ScoreScale
from scaled_ql.evaluation.scores import human_normalized
from scaled_ql.evaluation.scores import normalize
from scaled_ql.evaluation.scores import normalized
from scaled_ql.evaluation.scores import score_scale
from scaled_ql.evaluation.stats import Curve
from scaled_ql.evaluation.stats import Interval
from scaled_ql.evaluation.stats import aggregate_curve
from scaled_ql.evaluation.stats import aggregate_scores
from scaled_ql.evaluation.stats import performance_profiles
from scaled_ql.evaluation.stats import probability_of_improvement

__all__ = [
    "RESULTS_FILENAME",
    "RESULTS_FORMAT",
    "RESULTS_VERSION",
    "Curve",
    "Episode",
    "EvalResults",
    "Evaluation",
    "Interval",
    "ResultsFormatError",
    "RunGroup",
    "RunInfo",
    "ScoreScale",
    "aggregate_curve",
    "aggregate_scores",
    "append_evaluation",
    "group_runs",
    "human_normalized",
    "load_runs",
    "normalize",
    "normalized",
    "performance_profiles",
    "probability_of_improvement",
    "read_results",
    "results_path",
    "score_scale",
    "write_report",
    "write_results",
]
