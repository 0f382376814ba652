"""GPU: the Scaled QL learner's SGD steps/s on the ALE ResNets, as a fraction of the bf16 peak.

Runs only when JAX's first device is a GPU; otherwise it reports "not run: no GPU on this
machine".  It imports only the pure-JAX core (networks, losses, update step: no TF, Reverb or
Acme), so it runs on a machine with a newer JAX and only the small pure-Python packages the core
needs (benchmarks/gpu_requirements.txt: the set checked with jax 0.11.2).

1. Peak: the best FLOP/s of `jnp.dot` on square bfloat16 matrices of random values (float32
   accumulation) over a few sizes: the *measured* peak, which is what a training step can hope
   to approach.  The chip's datasheet dense bf16 rate is recorded beside it where known.
2. For each (batch size, compute dtype, torso), in that priority order: the learner's update
   (`make_update_fn`: C51 + CQL, 41 games x 18 actions, one SGD step per call, the state donated
   from call to call) on one random batch.  The first call compiles (`compile_s`); after two
   warm-up calls, `segments` timed segments of back-to-back calls (each long enough to swamp
   dispatch noise) give the median seconds per SGD step and the spread.  FLOPs per step come
   from XLA's cost analysis of the SGD step lowered for the CPU (a count of the program, not a
   timing) at the first batch size of each (torso, dtype), scaled linearly to the other batch
   sizes (the optimizer's batch-independent FLOPs are under 0.1% of a step), so
   fraction_of_peak = (FLOPs / seconds per step) / measured peak.
   float32 runs at JAX's default matmul precision (on Hopper: TF32 tensor-core math).

A configuration that does not fit (out of memory, or the `--budget-s` time budget for starting
new ones) is listed under 'not_run' with the reason; the rows are written after each one.

    python -m benchmarks.gpu_throughput                          # results/gpu_throughput.json
    python -m benchmarks.gpu_throughput --batch-sizes 256 1024 --dtypes bfloat16 float32 \\
        --budget-s 320 --out gpu.json --markdown gpu.md            # as recorded on an H100
    python -m benchmarks.gpu_throughput ... --resume gpu.json --out gpu2.json   # the rest

A recorded run is kept as benchmarks/results/gpu_<kind>_<date>.json (with hand-written 'notes');
`make bench` on a machine without a GPU shows the newest one under its GPU section.
"""

import argparse
import json
import math
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from benchmarks.report import _f, _table

NOT_RUN = "not run: no GPU on this machine"
TORSOS = ("resnet18", "resnet34", "resnet50", "resnet101")
# Dense bf16 tensor-core rate of the datasheet (TFLOP/s, no sparsity), by device_kind substring;
# the first match wins.
DATASHEET_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4),
                         ("A100", 312.0))
RECORDED_PATTERN = "gpu_*.json"  # committed runs in benchmarks/results/


def _time_calls(fn, args, iters: int) -> float:
    """Seconds per call after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(iters):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / iters


def datasheet_bf16_tflops(device_kind: str) -> float | None:
    """The datasheet's dense bf16 TFLOP/s of `device_kind` (e.g. 'NVIDIA H100 80GB HBM3')."""
    return next((v for k, v in DATASHEET_BF16_TFLOPS if k in device_kind), None)


def matmul_peak(sizes=(4096, 8192, 16384), iters: int = 20) -> dict:
    """Best measured bf16 matmul FLOP/s over `sizes` (square N x N @ N x N, random values)."""
    dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    per_size = {}
    for n in sizes:
        key_a, key_b = jax.random.split(jax.random.PRNGKey(n))
        a = jax.random.normal(key_a, (n, n), jnp.bfloat16)
        b = jax.random.normal(key_b, (n, n), jnp.bfloat16)
        per_size[n] = 2 * n**3 / _time_calls(dot, (a, b), iters) / 1e12
        del a, b
    best = max(per_size, key=per_size.get)
    return {"peak_tflops": per_size[best], "best_size": best,
            "tflops_per_size": {str(n): v for n, v in per_size.items()}}


def _setup(torso: str, batch_size: int, dtype: str, num_games: int, num_actions: int,
           network_kwargs: dict | None):
    """(config, networks, batch on the device) of one configuration."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig
    from scaled_ql.networks import make_networks

    config = ScaledQLConfig(network=NetworkConfig(torso=torso, **(network_kwargs or {})),
                            batch_size=batch_size, compute_dtype=dtype)
    actions = [num_actions] * num_games
    networks = make_networks(config.network, actions)
    batch = jax.device_put(common.random_batch(np.random.default_rng(batch_size), (batch_size,),
                                               actions))
    return config, networks, batch


def step_flops(torso: str, batch_size: int, dtype: str, *, num_games: int = 41,
               num_actions: int = 18, network_kwargs: dict | None = None) -> float:
    """FLOPs of one SGD step from XLA's cost analysis of the lowered (unoptimised) step."""
    from scaled_ql.agents.scaled_ql import init_training_state, make_sgd_step

    config, networks, batch = _setup(torso, batch_size, dtype, num_games, num_actions,
                                     network_kwargs)
    # Lowered for the CPU (inputs placed there): the count is the program's, whatever runs it,
    # and on jax 0.11.2 a step lowered for the GPU reported no 'flops' (H100 run, 2026-11-26).
    cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    state = jax.eval_shape(lambda: init_training_state(networks, config, jax.random.PRNGKey(0)))
    state = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=cpu), state)
    batch = jax.device_put(jax.device_get(batch), cpu)
    return common.xla_flops(jax.jit(make_sgd_step(networks, config)).lower(state, batch))


def training_step(torso: str, batch_size: int, peak_tflops: float, *, dtype: str = "bfloat16",
                  flops_per_sample: float | None = None, segments: int = 5,
                  min_calls: int = 3, segment_s: float = 0.3, num_games: int = 41,
                  num_actions: int = 18, network_kwargs: dict | None = None) -> dict:
    """SGD steps/s and samples/s of the learner's update for one configuration.

    Args:
      torso, batch_size, dtype: the configuration (41 x 18 heads unless told otherwise).
      peak_tflops: the measured bf16 matmul peak the achieved rate is divided by.
      flops_per_sample: FLOPs of one SGD step per example; None lowers this configuration's
        step to count them.
      segments: timed segments after warm-up; the row reports their median.
      min_calls, segment_s: calls per segment: enough to last `segment_s` seconds, at least
        `min_calls`.
    """
    from scaled_ql.agents.scaled_ql import init_training_state, make_update_fn

    if flops_per_sample is None:
        flops_per_sample = step_flops(torso, batch_size, dtype, num_games=num_games,
                                      num_actions=num_actions,
                                      network_kwargs=network_kwargs) / batch_size
    config, networks, batch = _setup(torso, batch_size, dtype, num_games, num_actions,
                                     network_kwargs)
    state = init_training_state(networks, config, jax.random.PRNGKey(0))
    params_m = networks.parameter_counts(state.params)["total"] / 1e6
    update = make_update_fn(networks, config)
    holder = [state]

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            holder[0], metrics = update(holder[0], batch)
        if not np.isfinite(float(metrics["loss"])):  # fetching the loss waits for the last step
            raise FloatingPointError(f"{torso} {dtype} B{batch_size}: non-finite loss")
        return time.perf_counter() - start

    compile_s = run(1)
    warm = run(2) / 2
    calls = max(min_calls, min(200, math.ceil(segment_s / max(warm, 1e-6))))
    per_step = [run(calls) / calls for _ in range(segments)]
    seconds = statistics.median(per_step)
    flops = flops_per_sample * batch_size
    achieved = flops / seconds / 1e12
    return {"torso": torso, "batch_size": batch_size, "dtype": dtype, "params_m": params_m,
            "sgd_steps_per_s": 1 / seconds, "samples_per_s": batch_size / seconds,
            "ms_per_step": 1e3 * seconds, "ms_per_step_min": 1e3 * min(per_step),
            "ms_per_step_max": 1e3 * max(per_step), "calls_per_segment": calls,
            "segments": segments, "compile_s": compile_s,
            "gflops_per_step": flops / 1e9, "achieved_tflops": achieved,
            "fraction_of_peak": achieved / peak_tflops}


def _is_out_of_memory(error: Exception) -> bool:
    text = f"{type(error).__name__}: {error}"
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def measure(torsos=TORSOS, batch_size: int = 256, matmul_sizes=(4096, 8192, 16384),
            iters: int = 3, force: bool = False, progress=None, *, batch_sizes=None,
            dtypes=("bfloat16",), budget_s: float | None = None, on_update=None,
            num_games: int = 41, num_actions: int = 18,
            network_kwargs: dict | None = None, resume: dict | None = None) -> dict:
    """The GPU section: {'run': False, 'reason': ...} without a GPU (unless `force`, which runs
    the same code on whatever device there is, for tests).

    Configurations run in the order batch size, dtype, torso (`batch_sizes` defaults to
    `(batch_size,)`), so a time budget cuts the largest batches first.  `budget_s`: no new
    configuration starts once the time since the start plus the last duration of the same
    torso (times 1.2) would pass it.  `on_update(result)` is called after each configuration
    (to write partial results).  `iters`: at least this many calls per timed segment.
    `resume`: an earlier result of the same device whose rows are kept (marked 'resumed_from'
    with its date) instead of being measured again; their FLOPs are filled in when missing.
    """
    device = jax.devices()[0]
    if device.platform != "gpu" and not force:
        return {"run": False, "reason": NOT_RUN, "device": f"{device.platform}"}
    start = time.perf_counter()
    peak = matmul_peak(matmul_sizes)
    datasheet = datasheet_bf16_tflops(device.device_kind)
    result = {"run": True, "device": f"{device.platform}: {device.device_kind}",
              "jax": jax.__version__, "versions": _versions(), **peak,
              "datasheet_bf16_tflops": datasheet, "num_games": num_games,
              "num_actions": num_actions, "rows": [], "not_run": []}
    flops_per_sample: dict[tuple[str, str], float] = {}
    last_seconds: dict[str, float] = {}
    done = set()
    if resume is not None:
        if resume.get("device") != result["device"]:
            raise ValueError(f"resume: the earlier run is on {resume.get('device')!r}, "
                             f"this one on {result['device']!r}")
        result["resumed"] = {"date": resume.get("date"), "peak_tflops": resume["peak_tflops"]}
        for row in resume["rows"]:
            result["rows"].append({**row, "resumed_from": resume.get("date")})
            done.add((row["torso"], row["batch_size"], row["dtype"]))
    for batch in (batch_sizes or (batch_size,)):
        for dtype in dtypes:
            for torso in torsos:
                config = {"torso": torso, "batch_size": batch, "dtype": dtype}
                if (torso, batch, dtype) in done:
                    continue
                elapsed = time.perf_counter() - start
                if budget_s is not None and elapsed + 1.2 * last_seconds.get(torso, 0) > budget_s:
                    result["not_run"].append({**config, "reason": f"time budget {budget_s:.0f} s"})
                    continue
                began = time.perf_counter()
                try:
                    key = (torso, dtype)
                    if key not in flops_per_sample:
                        flops_per_sample[key] = step_flops(
                            torso, batch, dtype, num_games=num_games, num_actions=num_actions,
                            network_kwargs=network_kwargs) / batch
                    row = training_step(torso, batch, peak["peak_tflops"], dtype=dtype,
                                        flops_per_sample=flops_per_sample[key], min_calls=iters,
                                        num_games=num_games, num_actions=num_actions,
                                        network_kwargs=network_kwargs)
                    if datasheet:
                        row["fraction_of_datasheet_peak"] = row["achieved_tflops"] / datasheet
                    result["rows"].append(row)
                except Exception as error:  # noqa: BLE001 - recorded, the next one still runs
                    if not _is_out_of_memory(error):
                        raise
                    result["not_run"].append({**config, "reason": "out of memory"})
                last_seconds[torso] = time.perf_counter() - began
                jax.clear_caches()
                if progress is not None:
                    progress.update(1)
                if on_update is not None:
                    on_update(result)
    for row in result["rows"]:  # resumed rows without FLOPs
        if math.isfinite(row.get("gflops_per_step", math.nan)):
            continue
        key = (row["torso"], row["dtype"])
        if key not in flops_per_sample:
            flops_per_sample[key] = step_flops(
                row["torso"], row["batch_size"], row["dtype"], num_games=num_games,
                num_actions=num_actions, network_kwargs=network_kwargs) / row["batch_size"]
        # A resumed row is set against the peak measured in its own run.
        _set_flops(row, flops_per_sample[key] * row["batch_size"],
                   result["resumed"]["peak_tflops"] if "resumed_from" in row
                   else peak["peak_tflops"], datasheet)
        if on_update is not None:
            on_update(result)
    result["seconds"] = time.perf_counter() - start
    return result


def _set_flops(row: dict, flops: float, peak_tflops: float, datasheet: float | None) -> None:
    seconds = row["ms_per_step"] / 1e3
    row["gflops_per_step"] = flops / 1e9
    row["achieved_tflops"] = flops / seconds / 1e12
    row["fraction_of_peak"] = row["achieved_tflops"] / peak_tflops
    if datasheet:
        row["fraction_of_datasheet_peak"] = row["achieved_tflops"] / datasheet


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("jax", "jaxlib", "dm-haiku", "optax", "chex", "rlax", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def markdown(result: dict) -> str:
    """The GPU section as markdown: when, where and how it ran, the peak, one table row per
    configuration, what was not run, and the run's `notes` (written by hand into a recorded
    result) if any."""
    if not result.get("run"):
        return f"{result.get('reason')} (JAX device: {result.get('device')})."
    datasheet = result.get("datasheet_bf16_tflops")
    rows = [[r["torso"] + (" *" if "resumed_from" in r else ""), _f(r.get("params_m"), 1),
             r["batch_size"], r.get("dtype", "bfloat16"), _f(r.get("sgd_steps_per_s"), 1),
             _f(r["samples_per_s"]), _f(r["ms_per_step"], 2),
             (f"{_f(r['ms_per_step_min'], 2)}-{_f(r['ms_per_step_max'], 2)}"
              if "ms_per_step_min" in r else "n/a"),
             _f(r["gflops_per_step"], 0), _f(r["achieved_tflops"], 1),
             _f(100 * r["fraction_of_peak"], 1, "%"),
             _f(100 * r["fraction_of_datasheet_peak"], 1, "%")
             if "fraction_of_datasheet_peak" in r else "n/a",
             _f(r.get("compile_s"), 0)] for r in result["rows"]]
    versions = ", ".join(f"{k} {v}" for k, v in (result.get("versions") or {}).items() if v)
    text = ""
    if result.get("date"):
        text += f"Run {result['date']}"
        text += f" on {result['machine']}" if result.get("machine") else ""
        text += f"; `{result['command']}`" if result.get("command") else ""
        text += ".\n\n"
    text += (f"{result['device']}, JAX {result['jax']}"
             + (f" ({versions})" if versions else "")
             + f", {result.get('num_games', 41)} games x {result.get('num_actions', 18)} actions"
             f": measured bf16 matmul peak {_f(result['peak_tflops'], 1)} TFLOP/s "
             f"(N = {result['best_size']})"
             + (f"; datasheet dense bf16 {_f(datasheet, 1)} TFLOP/s" if datasheet else "")
             + ".\n\n"
             + _table(["torso", "params (M)", "batch", "dtype", "SGD steps/s", "samples/s",
                       "ms / step", "range (ms)", "GFLOP / step", "TFLOP/s",
                       "of measured peak", "of datasheet peak", "compile s"], rows))
    resumed = result.get("resumed")
    if resumed:
        text += ("\n\n\\* measured in an earlier call on the same kind of device "
                 f"({resumed['date']}, measured peak {_f(resumed['peak_tflops'], 1)} TFLOP/s, "
                 "against which its fractions are taken), kept by `--resume`.")
    skipped = result.get("not_run") or []
    if skipped:
        text += "\n\nNot run: " + "; ".join(
            f"{s['torso']} {s['dtype']} B{s['batch_size']} ({s['reason']})" for s in skipped) + "."
    if result.get("notes"):
        text += "\n\n" + "\n\n".join(result["notes"])
    return text


def last_recorded(results_dir: pathlib.Path = common.RESULTS_DIR) -> tuple[str, dict] | None:
    """(file name, contents) of the newest recorded GPU run (`gpu_*.json` with 'run' true) in
    `results_dir`, or None."""
    runs = []
    for path in results_dir.glob(RECORDED_PATTERN):
        result = json.loads(path.read_text())
        if result.get("run"):
            runs.append((result.get("date", ""), path.name, result))
    if not runs:
        return None
    _, name, result = max(runs, key=lambda run: run[:2])
    return name, result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16"],
                        choices=("bfloat16", "float32"))
    parser.add_argument("--torsos", nargs="+", default=list(TORSOS))
    parser.add_argument("--iters", type=int, default=3, help="least calls per timed segment")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no configuration that would end after this many seconds")
    parser.add_argument("--out", type=pathlib.Path,
                        default=common.RESULTS_DIR / "gpu_throughput.json")
    parser.add_argument("--markdown", type=pathlib.Path, default=None)
    parser.add_argument("--resume", type=pathlib.Path, default=None,
                        help="an earlier --out of this device: keep its rows, run the rest")
    args = parser.parse_args(argv)
    command_args = sys.argv[1:] if argv is None else list(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    date = common.now()

    def write(result: dict) -> None:
        args.out.write_text(json.dumps({"date": date, "command": "python -m "
                                        "benchmarks.gpu_throughput " + " ".join(command_args),
                                        **result}, indent=2) + "\n")
        if args.markdown is not None:
            args.markdown.write_text(markdown(result) + "\n")

    printed = [0]

    def progress(result: dict) -> None:
        write(result)
        for row in result["rows"][printed[0]:]:
            if "resumed_from" in row:
                continue
            print(f"{row['torso']:<10} {row['dtype']:<9} B{row['batch_size']:<5} "
                  f"{row['sgd_steps_per_s']:8.1f} steps/s {row['samples_per_s']:9,.0f} "
                  f"samples/s {row['achieved_tflops']:6.1f} TFLOP/s "
                  f"({row['fraction_of_peak']:.0%} of peak), compile {row['compile_s']:.0f} s",
                  flush=True)
        printed[0] = len(result["rows"])

    result = measure(args.torsos, batch_sizes=args.batch_sizes, dtypes=args.dtypes,
                     iters=args.iters, budget_s=args.budget_s, on_update=progress,
                     resume=json.loads(args.resume.read_text()) if args.resume else None)
    write(result)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
