"""docs/PERFORMANCE.md from the results of `benchmarks.run_all` (tables, goals, commands)."""

import math


def _f(value, digits: int = 0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _x(value) -> str:
    return _f(value, 2, "x")


def _table(header: list[str], rows: list[list]) -> str:
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _status(goal: dict) -> str:
    if goal["met"] is None:
        return goal.get("note") or "not measured"
    return "**met**" if goal["met"] else "**missed**"


def _machine(results: dict) -> str:
    m = results["machine"]
    load = results.get("load_average_before_after", [None, None])
    rows = [["CPU", f"{m.get('cpu')}, {m.get('usable_cores')} usable cores "
                    f"({m.get('physical_cores', '?')} physical), {m.get('memory_gib', '?')} GiB"],
            ["OS / Python", f"{m.get('platform')} / Python {m.get('python')}"],
            ["JAX device", m.get("jax_device")],
            ["load average (1 min) before / after", f"{_f(load[0], 1)} / {_f(load[1], 1)} "
             f"(the machine is shared with other jobs)"],
            ["versions", ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())]]
    return _table(["", ""], rows)


def _goals(results: dict) -> str:
    rows = []
    for goal in results["goals"]:
        digits = 3 if "fraction" in goal["key"] else 2
        rows.append([goal["goal"], f"`{goal['key']}`", goal["target"],
                     _f(goal["measured"], digits), _f(goal["measured_wall"], digits),
                     _status(goal)])
    return _table(["goal", "key", "target", "measured (CPU time)", "wall clock", "status"], rows)


def _acme(section: dict) -> str:
    rows = []
    for r in section.get("rows", []):
        rows.append([f"nature, {r['num_games']} games", r["batch_size"], r["sgd_steps_per_call"],
                     _f(r["ours_learner_samples_per_s"]), _f(r["ours_update_samples_per_s"]),
                     _f(r["ours_update_double_q_samples_per_s"]),
                     _f(r["acme_learner_samples_per_s"]),
                     _x(r["ratio_vs_acme"]["cpu"]), _x(r["ratio_vs_acme"]["wall"]),
                     _x(r["ratio_like_for_like_vs_acme"]["cpu"]),
                     _x(r["ratio_like_for_like_vs_acme"]["wall"]),
                     _f(100 * r["learner_overhead_fraction"]["cpu"], 1, "%")])
    return _table(["network", "batch", "SGD steps / call", "ours: learner", "ours: update",
                   "ours: update, double Q", "Acme learner", "ours / Acme (CPU)", "(wall)",
                   "like for like (CPU)", "(wall)", "learner host-fetch cost (CPU)"], rows)


def _d3rlpy(section: dict) -> str:
    rows = []
    for r in section.get("rows", []):
        rows.append([r.get("network", "nature"), r["batch_size"], r["threads"],
                     _f(r["ours_learner_samples_per_s"]),
                     _f(r["ours_update_double_q_samples_per_s"]), _f(r["d3rlpy_qr_samples_per_s"]),
                     _f(r["d3rlpy_mean_samples_per_s"]),
                     _x(r["ratio_vs_d3rlpy"]["cpu"]),
                     _x(r["ratio_vs_d3rlpy"]["wall"]),
                     _x(r["ratio_like_for_like_vs_d3rlpy_qr"]["cpu"]),
                     _x(r["ratio_like_for_like_vs_d3rlpy_qr"]["wall"])])
    return _table(["network", "batch", "threads", "ours: learner", "ours: update, double Q",
                   "d3rlpy QR head", "d3rlpy mean head", "ours / d3rlpy, mean head (CPU)",
                   "(wall)", "double Q vs QR, like for like (CPU)", "(wall)"], rows)


def _fixes(section: dict) -> str:
    rows = []
    for r in section.get("rows", []):
        rows.append([f"{r.get('torso', 'nature')}, {r['num_games']} games", r["batch_size"],
                     _f(r["before_samples_per_s"]), _f(r["after_samples_per_s"]),
                     _f(r["before_samples_per_cpu_s"]), _f(r["after_samples_per_cpu_s"]),
                     _x(r["speedup"]["cpu"]), _x(r["speedup"]["wall"])])
    return _table(["network", "batch", "before: samples/s", "after: samples/s",
                   "before: samples per CPU-s", "after: samples per CPU-s", "speedup (CPU)",
                   "(wall)"], rows)


def _learner(section: dict) -> str:
    rows = []
    for r in section.get("rows", []):
        rows.append([r["torso"], r["batch_size"], r["dtype"], r["sgd_steps_per_call"],
                     _f(r["params_m"], 1), _f(r["ms_per_step"]), _f(r["samples_per_s"]),
                     _f(r["samples_per_cpu_s"]), _f(r["gflops_per_step"], 1),
                     _f(1e3 * r["achieved_tflops"], 1), _f(r["compile_s"])])
    return _table(["torso", "batch", "dtype", "SGD steps / call", "params (M)", "ms / SGD step",
                   "samples/s", "samples per CPU-s", "GFLOP / step (XLA)", "achieved GFLOP/s",
                   "compile s"], rows)


def _minatar_ladder(section: dict) -> str:
    ladder = section.get("ladder", {})
    rows = [[r["size"], r["torso"], _f(r["params_m"], 3), _f(r["torso_params_m"], 3),
             _f(r["gflops_per_step"], 2), _f(r["steps_per_s"], 1), _f(r["samples_per_s"]),
             _f(r["samples_per_cpu_s"]), _f(r["cpu_ms_per_step"], 1)]
            for r in ladder.get("rows", [])]
    if not rows:
        return "_not measured_"
    return _table(["`MINATAR_NETWORKS`", "torso", "params (M)", "torso params (M)",
                   "GFLOP / SGD step (XLA)", "SGD steps/s (wall)", "samples/s (wall)",
                   "samples per CPU-s", "CPU-ms / step"], rows)


def _data(section: dict, acme: dict | None) -> str:
    if not section:
        return "_not measured_"
    learner = acme["ours_learner_samples_per_s"] if acme else None
    learner_cpu = acme["ours_learner_samples_per_cpu_s"] if acme else None
    rows = []
    for key in sorted(k for k in section if k.startswith("cores_")):
        r = section[key]
        rows.append([r["cores"], _f(r["transitions_per_s"]), _f(r["transitions_per_cpu_s"]),
                     _x(learner and r["transitions_per_s"] / learner),
                     _x(learner_cpu and r["transitions_per_cpu_s"] / learner_cpu)])
    text = (f"Games {', '.join(section['games'])}, {section['steps_per_game']:,} random-policy "
            f"steps each, collected from real ALE at {_f(section.get('collect_steps_per_s'))} "
            f"steps/s; {_f(section.get('disk_bytes_per_step'))} bytes per RLDS step on disk. "
            f"Batches of {section.get('batch_size')} through the demo's pipeline (shuffle buffer "
            f"{section.get('shuffle_buffer'):,}), then `jax.device_put`; the demo learner "
            f"consumed {_f(learner)} samples/s ({_f(learner_cpu)} per CPU-second) in the same "
            "run.\n\n")
    text += _table(["cores", "transitions/s (wall)", "transitions per CPU-s",
                    "over learner (wall)", "over learner (CPU)"], rows)
    memory = section.get("memory_bytes_per_transition", {})
    floor = memory.get("floor (one 84x84 frame)")
    text += "\n\nBytes per stored transition, in memory:\n\n" + _table(
        ["store", "bytes / transition", "x floor"],
        [[name, _f(value), _x(floor and value / floor)] for name, value in memory.items()])
    if "reverb_sample_transitions_per_s" in section:
        text += (f"\n\nReverb: fed {_f(section['reverb_feed_items_per_s'])} items/s, sampled "
                 f"{_f(section['reverb_sample_transitions_per_s'])} transitions/s in batches of "
                 "256.")
    return text


def _env(section: dict) -> str:
    if not section:
        return "_not measured_"
    kinds = [("raw", "raw ALE"), ("raw_screens", "+ screen reads"), ("floor", "floor"),
             ("env", "ours")]
    kinds = [(k, name) for k, name in kinds
             if all(f"{k}_steps_per_s" in g for g in section.get("single", {}).values())]
    rows = []
    for game, g in section.get("single", {}).items():
        rows.append([game, *(_f(g[f"{k}_steps_per_s"]) for k, _ in kinds),
                     _f(100 * (g["raw_steps_per_s"] / g["env_steps_per_s"] - 1), 1, "%")])
    totals = {"raw": "raw_ale_steps_per_s", "raw_screens": "raw_ale_with_screens_steps_per_s",
              "floor": "floor_steps_per_s", "env": "single_env_steps_per_s"}
    rows.append(["all", *(_f(section.get(totals[k])) for k, _ in kinds),
                 _f(100 * section["env_overhead_fraction"], 1, "%")])
    text = ("Agent steps (4 frames each) per CPU-second of one process, interleaved blocks, "
            "median (`benchmarks/env_throughput.py`; floor = raw ALE + the screen reads, max and "
            "INTER_AREA resize the data's preprocessing needs):\n\n"
            + _table(["game", *(name for _, name in kinds), "ours over raw ALE"], rows))
    batched = section.get("batched", {})
    if isinstance(batched, dict):  # {'in_process': ..., 'workers': ...}
        batched = list(batched.values())
    rows = []
    for b in batched:
        label = "in-process" if b.get("workers", 0) == 0 else f"{b['workers']} workers"
        rows.append([label, _f(b.get("steps_per_s")), _f(b.get("steps_per_cpu_s")),
                     _f(b.get("cores_used"), 2),
                     _f(b.get("overhead_fraction") and 100 * b["overhead_fraction"], 1, "%")])
    if rows:
        text += ("\n\nBatched evaluation (`evaluate_policy`, random policy, all games; overhead "
                 "= CPU per agent step over raw ALE's, ROM loads and episode starts "
                 "included):\n\n" + _table(["evaluation", "agent steps/s (wall)",
                                          "agent steps per CPU-s", "cores used",
                                          "overhead over raw ALE"], rows))
    vector = section.get("ale_vector_env")
    if vector:
        text += (f"\n\nFor context, ale_py's `AtariVectorEnv` ({vector['game']}, "
                 f"{vector['num_envs']} envs): {_f(vector.get('steps_per_s'))} agent steps/s "
                 f"wall, {_f(vector.get('steps_per_cpu_s'))} per CPU-second.")
    return text


def _gpu(section: dict) -> str:
    from benchmarks import gpu_throughput  # imports this module's helpers

    if not section:
        return "_not measured_"
    text = gpu_throughput.markdown(section)
    recorded = None if section.get("run") else gpu_throughput.last_recorded()
    if recorded is not None:
        name, result = recorded
        text += (f"\n\nThe last recorded GPU run (`benchmarks/results/{name}`, "
                 "`python -m benchmarks.gpu_throughput` on a machine with a GPU):\n\n"
                 + gpu_throughput.markdown(result))
    return text


HOW_TO_READ = """\
The development machine has 2 cores shared with other jobs (see the load average above), so
absolute wall-clock rates move from run to run.  Every comparison therefore runs its contenders
in alternating timed blocks (same process, or this process and a child that waits while the
other runs), in a rotating order, and reports medians over blocks.  The headline ratios are
medians of per-block **CPU-time** ratios: CPU seconds per sample hardly change with other load
(per-block spread about 2%, against 3-5x for wall clock under a load average of 8), while
wall-clock ratios are shown next to them.  Samples/s columns are wall clock (median block).
"""

FIXES_TEXT = """\
Profiling the demo learner's step (XLA's per-op trace, `--xla_cpu_enable_xprof_traceme`) showed
two costs that had nothing to do with the arithmetic (issue 9), and profiling the MinAtar
ResNet's step a third (issue 15):

1. **Strided convolutions.**  XLA:CPU computes the input gradient of a strided convolution (a
   convolution with input dilation) on a slow generic path: 15 ms against 2.5 ms for the forward
   pass of the Nature CNN's second layer at batch 32, and the stride-4 first layer's forward
   pass ran at 20 GFLOP/s against 35-70 for the others.  The Nature CNN now runs its strided
   layers as stride-1 convolutions over space-to-depth blocks (`torsos.space_to_depth_conv`:
   same parameters, same outputs to float rounding).
2. **Per-game heads.**  The heads computed every game's logits ([B, G, K]) and gathered each
   example's own; XLA then produced the [G, D, K] weight gradient transposed and spent more on
   copying it back (inside gradient clipping) than on the matmul itself.  The heads now spread
   each example's features into its game's slot ([B, G * D], zeros elsewhere) and do one matmul
   with the heads stacked as [G * D, K], a free reshape of the same parameter: same FLOPs, no
   gather, no transposed gradient.
3. **GroupNorm** (issue 15, profiling the MinAtar ResNet's step: `MINATAR_NETWORKS['M']`, 32
   channels, batch 64, CPU time in alternating blocks).  The step took 52.7 ms: 46.3 without
   any GroupNorm, 9.0 with the stem alone and 3.0 with no trunk at all (heads, loss, Adam), so
   the 3x3 convolutions are about three quarters of it.  They are compute-bound and already in
   XLA:CPU's fastest form for 10x10 maps (1.8 ms forward, 1.8 ms input gradient, 2.3 ms
   weight gradient per 32-channel layer, 50-65 GFLOP per CPU-second); im2col + matmul, nine
   shifted matmuls and Winograd F(2x2, 3x3) were all slower, and so was the weight gradient as
   a matmul.  `hk.GroupNorm` reduced over a [B, H * W, G, C / G] view, which XLA:CPU (and its
   gradient) ran slowly; `torsos.GroupNorm` gathers the statistics per channel over space
   first, then per group, and normalises in one `x * a + b` pass: the same function and
   parameters, a few memory passes per norm (12% of the step for its 5 norms).  The Atari
   ResNets use it too.

These change how the network is computed, so Acme's learner, which runs the same network, gains
as much as ours: the ratio to Acme does not move, the ratio to d3rlpy and absolute throughput
do.  The table measures the update before and after, alternating in this run
(`benchmarks/baselines.py` keeps the previous formulation for this purpose).
"""


def _kept(kept: dict) -> str:
    """The sections carried over from earlier runs (`run_all --merge`) and when they ran."""
    return ("Carried over from earlier runs (`--merge`): " + "; ".join(
        f"{name} ({info.get('date')}, plan `{info.get('plan')}`)" for name, info in kept.items())
        + ".  Ratios are within-section comparisons, so sections of different runs do not "
        "mix; the machine section describes this run.\n")


def render(results: dict) -> str:
    sections = results["sections"]
    acme_rows = sections.get("acme", {}).get("rows", [])
    acme = acme_rows[0] if acme_rows else None
    parts = [
        "# Performance\n",
        f"Generated by `make bench` (`{results['command']}`) on {results['date']} (UTC), plan "
        f"`{results['plan']}`, {results['duration_s'] / 60:.1f} minutes.  Rerun to refresh; do "
        "not edit by hand.  Raw numbers, per-block seconds included: "
        "`benchmarks/results/latest.json`.\n",
        *([_kept(results["kept_sections"])] if results.get("kept_sections") else []),
        "## Machine\n", _machine(results) + "\n",
        "## How to read these numbers\n", HOW_TO_READ,
        "## Goals\n", _goals(results) + "\n",
        "## Learner side by side: Acme 0.4.0's DQN learner\n",
        "Same Haiku network (our demo network: Nature CNN, spatial embedding, 256-wide layer, "
        "feature norm, per-game C51 heads for Pong, Breakout and Boxing), same random batch, "
        "same optimizer (global-norm clipping + Adam), one process, alternating blocks.  "
        "Acme: `acme.agents.jax.dqn.learning_lib.SGDLearner` (the learner `DQNLearner` builds "
        "on) with Acme 0.4.0's own categorical double-Q loss, "
        "`PrioritizedCategoricalDoubleQLearning` (rlax C51 double Q, importance weights).  "
        "Ours: `ScaledQLLearner` on the demo config (C51 + CQL, the target network selects the "
        "bootstrap action as in Dopamine's C51: one network pass fewer than double Q); "
        "'update' is the bare jitted update; 'double Q' switches `double_q=True`, the same "
        "network work as Acme's loss (like for like).  Samples/s (wall clock):\n",
        _acme(sections.get("acme", {})) + "\n",
        "'learner host-fetch cost' is `ScaledQLLearner.step()` against the bare update on the "
        "same config: what fetching the metrics to host every step costs.\n",
        "## Learner side by side: d3rlpy DiscreteCQL (PyTorch)\n",
        "The same demo network rebuilt in PyTorch (`benchmarks/d3rlpy_child.py`) under "
        "d3rlpy 2.8.1's DiscreteCQL (double DQN + CQL) with its QR head (51 quantiles x 18 "
        "actions, distributional like our C51 heads) and its default mean head, torch CPU, as "
        "many threads as XLA uses and `OMP_WAIT_POLICY=PASSIVE` (OpenMP's default "
        "spin-waiting made torch 20-50x slower on this oversubscribed machine).  Alternating "
        "blocks between this process and d3rlpy's; samples/s (wall clock):\n",
        _d3rlpy(sections.get("d3rlpy", {})) + "\n",
        "## MinAtar learner side by side: d3rlpy DiscreteCQL (PyTorch)\n",
        "The MinAtar network (`MINATAR_NETWORKS['M']`: `minatar_resnet`, 32 channels, 2 residual "
        "blocks with GroupNorm, no downsampling, spatial embedding, 128-wide layer, feature "
        "norm, C51 heads for 4 games of 6 actions) on random [10, 10, 10] object maps, and the "
        "same network rebuilt in PyTorch under d3rlpy's DiscreteCQL (QR head with 51 quantiles "
        "x 6 actions, and the default mean head), exactly as the ALE comparison above; the "
        "first row is the headline `minatar_learner_vs_d3rlpy_ratio`.  Samples/s (wall "
        "clock):\n",
        _d3rlpy(sections.get("minatar", {})) + "\n",
        "Every MinAtar network size (docs/NETWORKS.md), our bare update (C51 + CQL, the demo's "
        "learner settings), 4 games of 6 actions, the sizes timed in alternating blocks of one "
        "process:\n",
        _minatar_ladder(sections.get("minatar", {})) + "\n",
        "## What moved: performance fixes\n", FIXES_TEXT,
        _fixes(sections.get("fixes", {})) + "\n",
        "## Learner sweep\n",
        "Our update (`make_update_fn`: C51 + CQL, 41 games x 18 actions: the paper's pool with "
        "every head padded to 18 actions), random batches, the timed calls after a compile "
        "call (one timed segment per row, so these wall-clock rates carry the machine's load "
        "of the moment); FLOPs per SGD step from XLA's cost analysis of the lowered step.  Cut "
        "to fit the run: "
        "ResNet-18/34 at batch 32 in float32 only, IMPALA up to batch 128, bfloat16 for Nature "
        "and IMPALA only (XLA:CPU has no fast bfloat16 convolutions, so bfloat16 is a GPU "
        "setting), several SGD steps per call for Nature only.\n",
        _learner(sections.get("learner", {})) + "\n",
        "## Data path\n", _data(sections.get("data", {}), acme) + "\n",
        "## Environment\n", _env(sections.get("env", {})) + "\n",
        "## GPU\n", _gpu(sections.get("gpu", {})) + "\n",
        "## Commands\n",
        "```\nmake bench                                   # python -m benchmarks.run_all: "
        "everything, writes this file\npython -m benchmarks.run_all --quick          # smaller "
        "plan, a few minutes\npython -m benchmarks.run_all --only acme d3rlpy\n"
        "python -m benchmarks.acme_side_by_side       # each benchmark alone\n"
        "python -m benchmarks.d3rlpy_side_by_side\n"
        "python -m benchmarks.d3rlpy_side_by_side --network minatar_M --batch-sizes 64\n"
        "python -m benchmarks.minatar_throughput      # every MinAtar network size\n"
        "python -m benchmarks.learner_throughput "
        "--quick\npython -m benchmarks.data_throughput\npython -m benchmarks.env_throughput\n"
        "python -m benchmarks.gpu_throughput          # on a GPU machine\n```\n",
    ]
    if results.get("errors"):
        parts += ["## Errors in this run\n", _table(
            ["section", "error"], [[k, v.replace("|", "/")[:300]]
                                   for k, v in results["errors"].items()]) + "\n"]
    seconds = results.get("section_seconds", {})
    parts.append("Section times: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
                 + ".\n")
    return "\n".join(parts)
