"""`scaled-ql report RUN_DIR [RUN_DIR ...] --out DIR`: compare runs in a markdown report.

Reads each run directory's `eval_results.json`, groups seeds by `run.name` and settings
(config.json less seed, paths and execution options: runs of one name with another
`--cql-alpha` are another group, labelled by what differs), and writes
`DIR/report.md` with PNG plots (learning curves, per-game scores, performance profiles,
probability of improvement, scaling) and `DIR/summary.json`.  Scores that include episodes
cut off by the episode cap are marked with a dagger.  See docs/EVALUATION.md.
"""

import argparse
from pathlib import Path

from scaled_ql.cli.common import command


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
                        help="bootstrap repetitions per confidence interval")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    command(parser, run)


def run(args: argparse.Namespace) -> int:
    """Writes the report; prints its path."""
    from scaled_ql.evaluation import write_report

    if args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    print(write_report(args.run_dirs, args.out, reps=args.reps, seed=args.seed))
    return 0
