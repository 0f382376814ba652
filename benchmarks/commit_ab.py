"""Learner throughput of two commits side by side: is a change a regression?

Checks `--base` out into a temporary git worktree and times the same update step
(`benchmarks.learner_throughput.measure`) with that tree's code and with this working tree's,
in alternating blocks (base, current, base, current, ...), each block a fresh interpreter.
Samples per CPU-second are compared (robust to other load on a shared machine); the result is
the median over blocks of current / base.  Prints a table and writes
benchmarks/results/commit_ab.json.

    python -m benchmarks.commit_ab --base 89071eb                      # nature, batch 32
    python -m benchmarks.commit_ab --base HEAD~3 --torso impala --blocks 5

Both trees run in this checkout's virtual environment; the base tree must have
`benchmarks/learner_throughput.py` with `measure(torso, batch_size, sgd_steps=, iters=)`.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from benchmarks import common

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = common.RESULTS_DIR / "commit_ab.json"
CHILD = """
import json, sys
from benchmarks.learner_throughput import measure
row = measure(sys.argv[1], int(sys.argv[2]), sgd_steps=1, iters=int(sys.argv[3]))
print("ROW " + json.dumps({k: row[k] for k in ("samples_per_s", "samples_per_cpu_s")}))
"""


def time_tree(tree: pathlib.Path, torso: str, batch_size: int, iters: int) -> dict:
    """One block: the update step of `tree`'s code, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, torso, str(batch_size), str(iters)],
                         cwd=tree, env=env, capture_output=True, text=True, check=True).stdout
    rows = [line[4:] for line in out.splitlines() if line.startswith("ROW ")]
    if not rows:
        raise RuntimeError(f"{tree}: the child printed no ROW line:\n{out[-2000:]}")
    return json.loads(rows[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--torso", default="nature")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iters", type=int, default=20, help="timed update calls per block")
    parser.add_argument("--blocks", type=int, default=3, help="blocks per tree (alternating)")
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    commit = common.resolve_commit(ROOT, args.base)
    with tempfile.TemporaryDirectory() as tmp, \
            common.commit_worktree(ROOT, commit, pathlib.Path(tmp) / "base") as base_tree:
        blocks = []
        for i in range(args.blocks):
            base = time_tree(base_tree, args.torso, args.batch_size, args.iters)
            current = time_tree(ROOT, args.torso, args.batch_size, args.iters)
            blocks.append({"base": base, "current": current})
            print(f"block {i + 1}/{args.blocks}: base {base['samples_per_cpu_s']:.1f}, "
                  f"current {current['samples_per_cpu_s']:.1f} samples/CPU-s", flush=True)
    ratios = [b["current"]["samples_per_cpu_s"] / b["base"]["samples_per_cpu_s"] for b in blocks]
    result = {"date": common.now(), "machine": common.machine(), "base": commit,
              "torso": args.torso, "batch_size": args.batch_size, "iters": args.iters,
              "blocks": blocks, "current_over_base_cpu": statistics.median(ratios),
              "load_average": os.getloadavg()}
    print(f"\n{args.torso} batch {args.batch_size}: current / {commit} = "
          f"{result['current_over_base_cpu']:.3f} (median of {len(ratios)} blocks, per CPU-s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
