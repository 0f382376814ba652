"""One whole offline run of two commits side by side: what a change does to a study's run.

`commit_ab` times the update step alone; a run also reads its data, logs every step, evaluates
and checkpoints.  This benchmark times the command itself, `scaled-ql pretrain` with the
study's size-M settings (scripts/study.py: the MinAtar ResNet at width 0.5, batch 32, CQL 0.1,
10 evaluation episodes per game), at `--base` (checked out into a temporary git worktree) and
at this working tree, in alternating blocks (base, current, base, current, ...), each a fresh
process on the same data.  Both wall time and CPU time (the child's user + system) are
compared; the result is the median over blocks of current / base.  Prints a table and writes
benchmarks/results/run_ab.json.

    python -m benchmarks.run_ab --base 0a118c8                    # 2,000 steps, 2 evaluations
    python -m benchmarks.run_ab --base HEAD~2 --steps 4000 --blocks 3

The data is a small `scaled-ql collect` of the four pre-training games (online C51, 20,000
steps per game by default), made once in a temporary folder unless `--data` names one.  Both
trees run in this checkout's virtual environment.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = common.RESULTS_DIR / "run_ab.json"
GAMES = "minatar/Breakout,minatar/SpaceInvaders,minatar/Asterix,minatar/Seaquest"
CLI = [sys.executable, "-m", "scaled_ql.cli"]


def run_flags(steps: int, eval_every: int) -> list[str]:
    """`scaled-ql pretrain`'s flags of the study's size-M Scaled QL run (scripts/study.py)."""
    return ["--games", GAMES, "--checkpoints", "0-1", "--steps", str(steps),
            "--torso", "minatar_resnet", "--width", "0.5", "--num-blocks", "1",
            "--feed-forward-size", "256", "--num-groups", "8", "--no-feature-norm",
            "--cache-data", "--batch-size", "32", "--learning-rate", "0.001",
            "--target-update-period", "500", "--n-step", "3", "--cql-alpha", "0.1",
            "--eval-every", str(eval_every), "--eval-episodes", "10",
            "--eval-max-frames", "2500", "--eval-workers", "0",
            "--checkpoint-every", str(eval_every), "--seed", "0", "--no-progress"]


def collect(data: pathlib.Path, steps: int) -> None:
    subprocess.run([*CLI, "collect", "--games", GAMES, "--steps", str(steps), "--policy",
                    "online_c51", "--layout", "rlu_atari_checkpoints_ordered", "--out",
                    str(data), "--workers", "2", "--seed", "0"],
                   cwd=ROOT, check=True, capture_output=True)


def time_tree(tree: pathlib.Path, data: pathlib.Path, out: pathlib.Path, flags) -> dict:
    """One block: the run with `tree`'s code in a fresh process; its wall and CPU seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*CLI, "pretrain", "--data", str(data), *flags, "--out", str(out)],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: the run exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--steps", type=int, default=2000, help="SGD steps per run")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=2, help="blocks per tree (alternating)")
    parser.add_argument("--data", type=pathlib.Path, default=None,
                        help="an rlu_minatar_checkpoints_ordered data dir of the four games "
                             "(default: collect one)")
    parser.add_argument("--collect-steps", type=int, default=20000,
                        help="environment steps per game of the collected data")
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    commit = common.resolve_commit(ROOT, args.base)
    flags = run_flags(args.steps, args.eval_every)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        data = args.data or tmp / "data"
        if args.data is None:
            print(f"collecting {args.collect_steps:,} steps per game into {data}", flush=True)
            collect(data, args.collect_steps)
        with common.commit_worktree(ROOT, commit, tmp / "base") as base_tree:
            blocks = []
            for i in range(args.blocks):
                base = time_tree(base_tree, data, tmp / f"base{i}", flags)
                current = time_tree(ROOT, data, tmp / f"current{i}", flags)
                blocks.append({"base": base, "current": current})
                print(f"block {i + 1}/{args.blocks}: base {base['wall_s']:.1f} s "
                      f"({base['cpu_s']:.1f} CPU-s), current {current['wall_s']:.1f} s "
                      f"({current['cpu_s']:.1f} CPU-s)", flush=True)
    wall = statistics.median(b["current"]["wall_s"] / b["base"]["wall_s"] for b in blocks)
    cpu = statistics.median(b["current"]["cpu_s"] / b["base"]["cpu_s"] for b in blocks)
    result = {"date": common.now(), "machine": common.machine(), "base": commit,
              "steps": args.steps, "eval_every": args.eval_every, "command": flags,
              "blocks": blocks, "current_over_base_wall": round(wall, 3),
              "current_over_base_cpu": round(cpu, 3), "load_average": os.getloadavg()}
    print(f"\n| tree | wall s (median) | CPU s (median) |\n|---|---:|---:|")
    for side in ("base", "current"):
        print(f"| {side} | {statistics.median(b[side]['wall_s'] for b in blocks):.1f} | "
              f"{statistics.median(b[side]['cpu_s'] for b in blocks):.1f} |")
    print(f"\nstudy run of {args.steps:,} steps: current / {commit} = {wall:.3f} wall, "
          f"{cpu:.3f} CPU (median of {len(blocks)} blocks)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
