"""`scaled-ql report RUN_DIR [RUN_DIR ...] --out DIR`: compare runs in a markdown report.

Reads each run directory's `eval_results.json`, groups seeds by `run.name`, and writes
`DIR/report.md` with PNG plots (learning curves, per-game scores, performance profiles,
probability of improvement, scaling) and `DIR/summary.json`.  See docs/EVALUATION.md.
"""

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Adds the `report` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="markdown report + PNG plots comparing runs (IQM, CIs, profiles)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run directory holding eval_results.json (or the file itself)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory for report.md, the PNG plots and summary.json")
    parser.add_argument("--reps", type=int, default=2000,
                        help="bootstrap repetitions per confidence interval (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Writes the report; bad input is reported on stderr with exit status 2."""
    from scaled_ql.evaluation import ResultsFormatError, write_report

    if args.reps < 1:
        print("scaled-ql report: error: --reps must be at least 1", file=sys.stderr)
        return 2
    try:
        path = write_report(args.run_dirs, args.out, reps=args.reps, seed=args.seed)
    except (FileNotFoundError, ResultsFormatError, ValueError) as err:
        print(f"scaled-ql report: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
