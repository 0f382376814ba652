"""`make bench`: every benchmark in one run -> benchmarks/results/latest.json + docs/PERFORMANCE.md.

Sections, in this order (each one's failure is recorded and the others still run):

1. fixes: our update with the network's previous and current formulation (`baselines`);
2. acme: our learner next to Acme 0.4.0's DQN learner (`acme_side_by_side`);
3. d3rlpy: our learner next to d3rlpy's DiscreteCQL (`d3rlpy_side_by_side`; creates its venv);
4. minatar: the MinAtar ResNet learner next to d3rlpy's DiscreteCQL on the same network, and
   the steps/s of every MinAtar network size (`minatar_throughput`);
5. data: RLDS on disk -> device-ready batches on 1 and 2 cores, bytes per stored transition;
6. env: our environment and batched evaluation against raw ALE (`env_throughput`);
7. learner: the sweep over torsos, batch sizes, dtypes and SGD steps per call;
8. gpu: bf16 matmul peak and ResNet-34/50/101 bf16 (only on a GPU).

latest.json holds `learner_vs_acme_ratio`, `learner_vs_d3rlpy_ratio`,
`minatar_learner_vs_d3rlpy_ratio`, `data_over_learner_ratio` and `env_overhead_fraction` from
this run, next to every row measured.  The development machine
is shared, so ratios come from alternating blocks and are medians of per-block CPU-time ratios
(robust to other load); wall-clock ratios are reported next to them.

    python -m benchmarks.run_all            # the full plan: 7 minutes on an idle 2-core CPU,
                                            # 16 under a load average of 10, plus about 5 for
                                            # the MinAtar section (under a load average of 5)
    python -m benchmarks.run_all --quick    # a smaller plan, 1-2 minutes
    python -m benchmarks.run_all --only minatar --merge   # refresh one section, keep the
                                                          # others of latest.json

The first run also builds benchmarks/.d3rlpy-venv (about 2 minutes).
"""

import argparse
import contextlib
import dataclasses
import io
import json
import math
import pathlib
import sys
import tempfile
import time
import traceback

from tqdm import tqdm

from benchmarks import common

ROOT = pathlib.Path(__file__).parent.parent
LATEST = common.RESULTS_DIR / "latest.json"
PERFORMANCE_MD = ROOT / "docs" / "PERFORMANCE.md"
SECTIONS = ("fixes", "acme", "d3rlpy", "minatar", "data", "env", "learner", "gpu")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run measures.  Tuples of dicts are rows: keyword arguments of the measure.

    Attributes:
      name: 'full', 'quick' or 'tiny' (tests).
      fixes: `baselines.measure_fixes` calls.
      acme: `acme_side_by_side.measure` calls; the first (batch 32, 1 SGD step) is the headline.
      d3rlpy: `d3rlpy_side_by_side.measure` calls; the first is the headline.
      minatar: 'd3rlpy': `d3rlpy_side_by_side.measure` calls on a MinAtar network (the first is
        the headline), 'ladder': `minatar_throughput.measure_ladder` arguments.
      data: games, steps per game, and `data_throughput.pipeline_rate` settings.
      data_cores: core counts the data path is pinned to (the first is the headline).
      reverb: also measure Reverb rates and bytes per item.
      env: keyword arguments of `env_throughput.run`.
      learner: `learner_throughput.measure` calls (41 games x 18 actions).
      gpu: `gpu_throughput.measure` arguments.
    """

    name: str
    fixes: tuple = ()
    acme: tuple = ()
    d3rlpy: tuple = ()
    minatar: dict = dataclasses.field(default_factory=dict)
    data: dict = dataclasses.field(default_factory=dict)
    data_cores: tuple = (1, 2)
    reverb: bool = True
    env: dict = dataclasses.field(default_factory=dict)
    learner: tuple = ()
    gpu: dict = dataclasses.field(default_factory=dict)


def _sweep(torso, batches, dtype="float32", sgd_steps=1, iters=3):
    return tuple(dict(torso=torso, batch_size=b, dtype=dtype, sgd_steps=sgd_steps, iters=iters)
                 for b in batches)


PLANS = {
    "full": Plan(
        name="full",
        fixes=(dict(batch_size=32, blocks=7, calls_per_block=6),
               dict(batch_size=32, num_actions=(18,) * 41, blocks=5, calls_per_block=2),
               dict(minatar_size="M", batch_size=64, blocks=7, calls_per_block=4)),
        acme=(dict(batch_size=32, blocks=9, calls_per_block=8),
              dict(batch_size=128, blocks=5, calls_per_block=3),
              dict(batch_size=32, sgd_steps=4, blocks=3, calls_per_block=2)),
        d3rlpy=(dict(batch_size=32, blocks=9, calls_per_block=6),
                dict(batch_size=128, blocks=5, calls_per_block=2)),
        minatar=dict(d3rlpy=(dict(network="minatar_M", batch_size=64, blocks=9,
                                  calls_per_block=6),
                             dict(network="minatar_S", batch_size=64, blocks=5,
                                  calls_per_block=6)),
                     ladder=dict(sizes=("S", "M", "L", "XL", "dqn"), batch_size=64, blocks=3,
                                 calls_per_block=2)),
        data=dict(games=common.DEMO_GAMES, steps=1500, batch_size=32, batches=300,
                  shuffle_buffer=5000),
        env=dict(quick=False),
        learner=(_sweep("nature", (32, 128, 256)) + _sweep("nature", (32,), sgd_steps=4)
                 + _sweep("nature", (32, 128), "bfloat16", iters=2)
                 + _sweep("impala", (32, 128), iters=2)
                 + _sweep("impala", (32,), "bfloat16", iters=1)
                 + _sweep("resnet18", (32,), iters=1) + _sweep("resnet34", (32,), iters=1)),
        gpu=dict(torsos=("resnet34", "resnet50", "resnet101"), batch_size=256),
    ),
    "quick": Plan(
        name="quick",
        fixes=(dict(batch_size=32, blocks=3, calls_per_block=3),
               dict(minatar_size="M", batch_size=64, blocks=3, calls_per_block=3)),
        acme=(dict(batch_size=32, blocks=5, calls_per_block=4),),
        d3rlpy=(dict(batch_size=32, blocks=5, calls_per_block=3),),
        minatar=dict(d3rlpy=(dict(network="minatar_M", batch_size=64, blocks=5,
                                  calls_per_block=3),),
                     ladder=dict(sizes=("S", "M", "dqn"), batch_size=64, blocks=2,
                                 calls_per_block=2)),
        data=dict(games=common.DEMO_GAMES, steps=600, batch_size=32, batches=100,
                  shuffle_buffer=1000),
        reverb=False,
        env=dict(quick=True),
        learner=_sweep("nature", (32,), iters=2) + _sweep("nature", (32,), "bfloat16", iters=1),
        gpu=dict(torsos=("resnet34", "resnet50", "resnet101"), batch_size=256),
    ),
    "tiny": Plan(  # tests: every code path, seconds each
        name="tiny",
        fixes=(dict(batch_size=8, blocks=2, calls_per_block=1),
               dict(minatar_size="S", batch_size=8, blocks=2, calls_per_block=1)),
        acme=(dict(batch_size=8, blocks=2, calls_per_block=1),),
        d3rlpy=(dict(batch_size=8, blocks=2, calls_per_block=1),),
        minatar=dict(d3rlpy=(dict(network="minatar_S", batch_size=8, blocks=2,
                                  calls_per_block=1),),
                     ladder=dict(sizes=("S", "dqn"), batch_size=8, blocks=2, calls_per_block=1)),
        data=dict(games=("Pong", "Breakout"), steps=150, batch_size=8, batches=5,
                  shuffle_buffer=16),
        data_cores=(1,),
        reverb=False,
        env=dict(games=("Pong",), steps_per_block=20, blocks=2, batched_episodes=1,
                 batched_frames=200),
        learner=(dict(torso="nature", batch_size=4, dtype="float32", sgd_steps=1, iters=1,
                      num_games=2, feed_forward_size=32),),
        gpu=dict(torsos=("resnet50",), batch_size=8),
    ),
}


def run_fixes(plan: Plan, progress) -> dict:
    from benchmarks import baselines

    return {"rows": [baselines.measure_fixes(**kw, progress=progress)
                     for kw in plan.fixes]}


def run_acme(plan: Plan, progress) -> dict:
    from benchmarks import acme_side_by_side

    return {"rows": [acme_side_by_side.measure(**kw, progress=progress)
                     for kw in plan.acme]}


def run_d3rlpy(plan: Plan, progress) -> dict:
    from benchmarks import d3rlpy_side_by_side

    return {"rows": [d3rlpy_side_by_side.measure(**kw, progress=progress)
                     for kw in plan.d3rlpy]}


def run_minatar(plan: Plan, progress) -> dict:
    from benchmarks import d3rlpy_side_by_side, minatar_throughput

    return {"rows": [d3rlpy_side_by_side.measure(**kw, progress=progress)
                     for kw in plan.minatar["d3rlpy"]],
            "ladder": minatar_throughput.measure_ladder(**plan.minatar["ladder"],
                                                        progress=progress)}


def run_data(plan: Plan, progress) -> dict:
    from benchmarks import data_throughput

    settings = dict(plan.data)
    games, steps = tuple(settings.pop("games")), settings.pop("steps")
    result = {"games": list(games), "steps_per_game": steps, **settings}
    with tempfile.TemporaryDirectory() as data_dir:
        result.update(data_throughput.collect(data_dir, games, steps))
        progress.update(1)
        for cores in plan.data_cores:
            result[f"cores_{cores}"] = data_throughput.pipeline_rate(
                data_dir, games, cores=cores, **settings)
            progress.update(1)
        if plan.reverb:
            result.update(data_throughput.reverb_memory(data_dir, games))
        progress.update(1)
    first = result[f"cores_{plan.data_cores[0]}"]
    result["memory_bytes_per_transition"] = {
        "floor (one 84x84 frame)": data_throughput.FRAME_FLOOR_BYTES,
        "Dopamine circular buffer": data_throughput.DOPAMINE_BYTES_PER_TRANSITION,
        "pipeline shuffle buffer (decoded Transition)":
            first["shuffle_buffer_bytes_per_transition"],
        **({"Reverb table item (compressed chunk)": result["reverb_bytes_per_item"]}
           if plan.reverb else {}),
    }
    return result


def run_env(plan: Plan, progress) -> dict:
    from benchmarks import env_throughput

    settings = dict(plan.env)
    if hasattr(env_throughput, "run"):  # returns the report without printing or writing it
        result = env_throughput.run(**settings)
    else:  # an older env_throughput: only main(argv), which writes a JSON file
        argv = ["--quick"] if settings.pop("quick", False) else []
        for name, value in settings.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            argv += [f"--{name.replace('_', '-')}", *map(str, values)]
        with tempfile.TemporaryDirectory() as folder:
            out = pathlib.Path(folder) / "env.json"
            with contextlib.redirect_stdout(io.StringIO()):
                env_throughput.main([*argv, "--out", str(out)])
            result = json.loads(out.read_text())
    progress.update(1)
    result["settings_from_plan"] = {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in plan.env.items()}
    return result


def run_learner(plan: Plan, progress) -> dict:
    from benchmarks import learner_throughput

    rows = []
    for kw in plan.learner:
        rows.append(learner_throughput.measure(**kw))
        progress.update(1)
    return {"rows": rows}


def run_gpu(plan: Plan, progress) -> dict:
    from benchmarks import gpu_throughput

    return gpu_throughput.measure(**plan.gpu, progress=progress)


RUNNERS = {"fixes": run_fixes, "acme": run_acme, "d3rlpy": run_d3rlpy, "minatar": run_minatar,
           "data": run_data, "env": run_env, "learner": run_learner, "gpu": run_gpu}


def _units(plan: Plan, section: str) -> int:
    """Progress-bar units of a section (timed blocks, or measurements)."""
    blocks = {"fixes": (plan.fixes, 2), "acme": (plan.acme, 4), "d3rlpy": (plan.d3rlpy, 4)}
    if section in blocks:
        rows, contenders = blocks[section]
        return sum(kw["blocks"] * contenders for kw in rows)
    if section == "minatar":
        ladder = plan.minatar.get("ladder", {})
        return (sum(kw["blocks"] * 4 for kw in plan.minatar.get("d3rlpy", ()))
                + ladder.get("blocks", 0) * len(ladder.get("sizes", ())))
    return {"data": 2 + len(plan.data_cores), "env": 1, "learner": len(plan.learner),
            "gpu": len(plan.gpu.get("torsos", ()))}[section]


def _number(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def headline(sections: dict) -> dict:
    """The issue keys (CPU-time based), their wall-clock twins, and the goals."""
    acme = sections.get("acme", {}).get("rows", [None])[0]
    d3 = sections.get("d3rlpy", {}).get("rows", [None])[0]
    minatar = (sections.get("minatar", {}).get("rows") or [None])[0]
    data, env = sections.get("data", {}), sections.get("env", {})
    gpu = sections.get("gpu", {})
    keys, wall = {}, {}
    keys["learner_vs_acme_ratio"] = acme and acme["ratio_vs_acme"]["cpu"]
    wall["learner_vs_acme_ratio"] = acme and acme["ratio_vs_acme"]["wall"]
    keys["learner_vs_d3rlpy_ratio"] = d3 and d3["ratio_vs_d3rlpy"]["cpu"]
    wall["learner_vs_d3rlpy_ratio"] = d3 and d3["ratio_vs_d3rlpy"]["wall"]
    keys["minatar_learner_vs_d3rlpy_ratio"] = minatar and minatar["ratio_vs_d3rlpy"]["cpu"]
    wall["minatar_learner_vs_d3rlpy_ratio"] = minatar and minatar["ratio_vs_d3rlpy"]["wall"]
    cores = sorted(k for k in data if k.startswith("cores_"))
    if acme and cores:
        first = data[cores[0]]
        keys["data_over_learner_ratio"] = (first["transitions_per_cpu_s"]
                                           / acme["ours_learner_samples_per_cpu_s"])
        for key in cores:
            wall[f"data_over_learner_ratio_{key}"] = (
                data[key]["transitions_per_s"] / acme["ours_learner_samples_per_s"])
        wall["data_over_learner_ratio"] = wall[f"data_over_learner_ratio_{cores[0]}"]
    else:
        keys["data_over_learner_ratio"] = wall["data_over_learner_ratio"] = None
    keys["env_overhead_fraction"] = env.get("env_overhead_fraction")
    wall["env_overhead_fraction"] = None  # env_throughput measures CPU time only
    keys = {k: _number(v) for k, v in keys.items()}
    wall = {k: _number(v) for k, v in wall.items()}

    resnet50 = next((r for r in gpu.get("rows", []) if r["torso"] == "resnet50"), None)
    goals = [
        ("Learner vs Acme DQN learner", "learner_vs_acme_ratio", ">=", 1.3),
        ("Learner vs d3rlpy DiscreteCQL", "learner_vs_d3rlpy_ratio", ">=", 1.5),
        ("MinAtar learner vs d3rlpy DiscreteCQL", "minatar_learner_vs_d3rlpy_ratio", ">=", 1.5),
        ("Data path over learner consumption", "data_over_learner_ratio", ">=", 2.0),
        ("Evaluation overhead over raw ALE", "env_overhead_fraction", "<=", 0.2),
    ]
    table = []
    for name, key, op, target in goals:
        value = keys[key]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        table.append({"goal": name, "key": key, "target": f"{op} {target}", "measured": value,
                      "measured_wall": wall.get(key), "met": met})
    table.append({"goal": "ResNet-50 bf16 step, fraction of bf16 matmul peak (H200)",
                  "key": "gpu_resnet50_fraction_of_peak", "target": ">= 0.4",
                  "measured": resnet50 and resnet50["fraction_of_peak"], "measured_wall": None,
                  "met": None if resnet50 is None else resnet50["fraction_of_peak"] >= 0.4,
                  "note": None if gpu.get("run") else gpu.get("reason", "not run")})
    return {**keys, "wall_clock": wall, "goals": table}


def versions() -> dict:
    from importlib import metadata

    out = {}
    for package in ("jax", "jaxlib", "dm-haiku", "optax", "rlax", "dm-acme", "dm-reverb",
                    "tensorflow-cpu", "ale-py"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def run(plan: Plan, sections=SECTIONS, latest: pathlib.Path = LATEST,
        markdown: pathlib.Path | None = PERFORMANCE_MD, runners=None,
        command: str = "python -m benchmarks.run_all", keep: dict | None = None) -> dict:
    """Runs `sections` of `plan`; writes `latest` (JSON) and `markdown`; returns the results.

    `keep`: the results of an earlier run (latest.json) whose other sections are carried over
    (`kept_sections` records where each came from), so one section can be refreshed alone.
    """
    from benchmarks import report

    runners = {**RUNNERS, **(runners or {})}
    started, load_before = time.time(), common.machine()["load_average_1min"]
    results: dict = {"date": common.now(), "plan": plan.name, "command": command,
                     "machine": common.machine(), "versions": versions(), "sections": {},
                     "errors": {}, "section_seconds": {}}
    for section in sections:
        section_start = time.perf_counter()
        with tqdm(total=_units(plan, section), desc=section, unit="block", leave=False,
                  file=sys.stderr) as progress:
            try:
                results["sections"][section] = runners[section](plan, progress)
            except Exception as error:  # noqa: BLE001 -- recorded; the other sections still run
                results["errors"][section] = f"{type(error).__name__}: {error}"
                traceback.print_exc()
        results["section_seconds"][section] = time.perf_counter() - section_start
        tqdm.write(f"[{section}] done in {results['section_seconds'][section]:.0f} s"
                   + (f" (error: {results['errors'][section]})"
                      if section in results["errors"] else ""), file=sys.stderr)
    if keep:
        results["kept_sections"] = {}
        for section, value in keep.get("sections", {}).items():
            if section in SECTIONS and section not in sections:  # not attempted in this run
                results["sections"][section] = value
                results["kept_sections"][section] = keep.get("kept_sections", {}).get(
                    section, {"date": keep.get("date"), "plan": keep.get("plan")})
        results["sections"] = {k: results["sections"][k] for k in SECTIONS
                               if k in results["sections"]}
    results.update(headline(results["sections"]))
    results["duration_s"] = time.time() - started
    results["load_average_before_after"] = [load_before, common.machine()["load_average_1min"]]
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(report.render(results))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smaller plan (1-2 minutes)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--merge", action="store_true",
                        help="keep the sections of the existing --json that this run skips")
    parser.add_argument("--json", type=pathlib.Path, default=LATEST)
    parser.add_argument("--markdown", type=pathlib.Path, default=PERFORMANCE_MD)
    args = parser.parse_args(argv)
    plan = PLANS["quick" if args.quick else "full"]
    command = "python -m benchmarks.run_all" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    keep = json.loads(args.json.read_text()) if args.merge and args.json.exists() else None
    if args.merge:
        command += " --merge"
    results = run(plan, tuple(args.only or SECTIONS), args.json, args.markdown, command=command,
                  keep=keep)
    print(f"\nwrote {args.json} and {args.markdown} in {results['duration_s'] / 60:.1f} min")
    for goal in results["goals"]:
        value = goal["measured"]
        shown = "n/a" if value is None else f"{value:.3f}"
        status = {True: "met", False: "MISSED", None: goal.get("note") or "not measured"}
        print(f"  {goal['goal']:<58} {goal['target']:>7}  {shown:>7}  {status[goal['met']]}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
