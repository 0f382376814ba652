"""`scaled-ql data info DIR` and `scaled-ql data validate DIR`: what an RLDS data_dir holds.

Both list every dataset of every layout (`rlds.LAYOUTS`: `rlu_atari...` for ALE games,
`rlu_minatar...` for MinAtar games) with its game suite, size and bytes per RLDS step.  A
dataset that fails its checks is reported as an error line (`scaled-ql data validate: error:
...`) and the others are still checked; the exit status is then 2, as for every user error.
"""

import argparse
import sys

from scaled_ql.cli.common import command


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="inspect and validate rlu_atari-schema datasets (ALE and MinAtar)")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    info = commands.add_parser(
        "info",
        help="per game/run: episodes, steps and returns per checkpoint, bytes on disk",
        description="Reads every episode's metadata and flags (frames are not decoded).",
    )
    info.add_argument("path", help="a TFDS data_dir, or one dataset folder")
    command(info, run_info)
    validate = commands.add_parser(
        "validate",
        help="check schema, shards and every episode (decodes all frames)",
        description="Checks each dataset's schema and shards and decodes every episode and "
                    "frame; a dataset that fails is reported and the others still checked.",
    )
    validate.add_argument("path", help="a TFDS data_dir, or one dataset folder")
    command(validate, run_validate)


def _runs(path: str):
    """Opened datasets under `path` and the unfinished writes found there."""
    import pathlib

    from scaled_ql.datasets.rlu_atari import find_datasets, open_directory

    root = pathlib.Path(path)
    if (root / "dataset_info.json").exists() or root.name.startswith("incomplete."):
        return [open_directory(root)], []
    complete, unfinished = find_datasets(root)
    return [open_directory(p) for p in complete], unfinished


def _inspect(args: argparse.Namespace, decode_frames: bool) -> int:
    import numpy as np

    from scaled_ql.datasets.validation import DatasetValidationError, inspect_run

    path = args.path
    runs, unfinished = _runs(path)
    if not runs:
        raise FileNotFoundError(f"no rlu_atari or rlu_minatar dataset under {path}")
    failed = 0
    width = max(16, *(len(run.game) + 2 for run in runs))
    header = (
        f"{'game':<{width}}{'run':>4}{'ckpt':>6}{'episodes':>10}{'steps':>10}"
        f"{'return mean':>13}{'min':>9}{'max':>9}"
    )
    print(header)
    total_bytes = 0
    for run in runs:
        try:
            report = inspect_run(run, decode_frames=decode_frames)
        except DatasetValidationError as error:
            args.func.error(str(error))
            failed += 1
            continue
        total_bytes += report.bytes_on_disk
        for checkpoint, stats in report.checkpoints.items():
            returns = np.asarray(stats.returns)
            print(
                f"{run.game:<{width}}{run.run:>4}{checkpoint:>6}{stats.episodes:>10}"
                f"{stats.steps:>10}{returns.mean():>13.2f}{returns.min():>9.1f}"
                f"{returns.max():>9.1f}"
            )
        print(
            f"{'':<4}suite {report.suite}, {report.layout}, frames uint8 "
            f"{list(run.observation.frame_shape)}: {report.bytes_on_disk / 2**20:.2f} MiB on disk "
            f"({report.bytes_per_step:.0f} bytes per step) at {report.path}"
        )
    for folder in unfinished:
        print(
            f"WARNING unfinished write (interrupted collection?), ignored: {folder}",
            file=sys.stderr,
        )
    print(
        f"total: {len(runs) - failed} dataset(s) OK, {failed} failed, {total_bytes / 2**20:.2f} MiB"
    )
    return 2 if failed else 0


def run_info(args: argparse.Namespace) -> int:
    return _inspect(args, decode_frames=False)


def run_validate(args: argparse.Namespace) -> int:
    return _inspect(args, decode_frames=True)
