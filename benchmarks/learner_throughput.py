"""Learner throughput: samples/s of the Scaled QL update step per torso and batch size.

For each (torso, batch size) it builds the network for `--num-games` games of `--num-actions`
actions (41 x 18 = the paper's game pool with every head padded to the full Atari action set),
compiles the update, times `--iters` calls after one warm-up call, and reads the FLOPs of one
SGD step from XLA's cost analysis (of the lowered, unoptimised step), so that achieved FLOP/s
can be set against the device's peak (`--peak-tflops` adds a utilisation column).  Prints a
table and writes benchmarks/results/learner_throughput.json.

    python -m benchmarks.learner_throughput --quick        # ~1 minute on a 2-core CPU
    python -m benchmarks.learner_throughput                # every torso, more batch sizes
"""

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from benchmarks import common
from scaled_ql.agents.scaled_ql import (
    NetworkConfig,
    ScaledQLConfig,
    init_training_state,
    make_sgd_step,
    make_update_fn,
)
from scaled_ql.networks import make_networks

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                       "learner_throughput.json")
QUICK = {"nature": (32, 128), "impala": (32,)}
FULL = {"nature": (32, 128, 256), "impala": (32, 128, 256), "resnet18": (32, 128),
        "resnet34": (32, 128), "resnet50": (32, 128), "resnet101": (32, 128)}


def measure(torso: str, batch_size: int, *, sgd_steps: int = 1, dtype: str = "float32",
            num_games: int = 41, num_actions: int = 18, iters: int = 3,
            peak_tflops: float = 0.0, feed_forward_size: int = 512) -> dict:
    """Samples/s (wall-clock and per CPU-second) of one update config, FLOPs, compile time."""
    config = ScaledQLConfig(
        network=NetworkConfig(torso=torso, feed_forward_size=feed_forward_size),
        batch_size=batch_size, num_sgd_steps_per_step=sgd_steps, compute_dtype=dtype)
    actions = [num_actions] * num_games
    networks = make_networks(config.network, actions)
    state = init_training_state(networks, config, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    step_batch = common.random_batch(rng, (batch_size,), actions)
    # XLA's cost analysis of one SGD step as lowered (before optimisation passes): compiling
    # the step a second time just for its cost analysis took minutes for the ResNets on 2 cores.
    flops = common.xla_flops(jax.jit(make_sgd_step(networks, config)).lower(state, step_batch))
    update = make_update_fn(networks, config)
    batch = jax.device_put(common.random_batch(rng, (sgd_steps, batch_size), actions))
    start = time.perf_counter()
    state, metrics = update(state, batch)  # compiles
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        state, metrics = update(state, batch)
    jax.block_until_ready(metrics)
    steps = iters * sgd_steps
    seconds_per_step = (time.perf_counter() - wall) / steps
    cpu_per_step = (time.process_time() - cpu) / steps
    counts = networks.parameter_counts(state.params)
    row = dict(torso=torso, batch_size=batch_size, dtype=dtype, sgd_steps_per_call=sgd_steps,
               num_games=num_games, num_actions=num_actions, iters=iters,
               params_m=counts["total"] / 1e6, torso_params_m=counts["torso"] / 1e6,
               ms_per_step=1e3 * seconds_per_step, samples_per_s=batch_size / seconds_per_step,
               samples_per_cpu_s=batch_size / cpu_per_step,
               gflops_per_step=flops / 1e9, achieved_tflops=flops / seconds_per_step / 1e12,
               compile_s=compile_s)
    if peak_tflops:
        row["utilisation"] = row["achieved_tflops"] / peak_tflops
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 small torsos, 1 SGD step x 2 calls: ~1 minute on a 2-core CPU")
    parser.add_argument("--torsos", nargs="*", help="override the torso list")
    parser.add_argument("--batch-sizes", nargs="*", type=int, help="override the batch sizes")
    parser.add_argument("--num-games", type=int, default=41)
    parser.add_argument("--num-actions", type=int, default=18)
    parser.add_argument("--sgd-steps", type=int, default=2, help="SGD steps per update call")
    parser.add_argument("--iters", type=int, default=3, help="timed update calls")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="device peak (TFLOP/s) for a utilisation column")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sgd_steps, args.iters = 1, 2
    plan = dict(QUICK if args.quick else FULL)
    if args.torsos:
        plan = {t: plan.get(t, (32,)) for t in args.torsos}
    if args.batch_sizes:
        plan = {t: tuple(args.batch_sizes) for t in plan}

    rows = []
    header = (f"{'torso':<10}{'batch':>6}{'params M':>10}{'ms/step':>10}{'samples/s':>11}"
              f"{'GFLOP/step':>12}{'TFLOP/s':>9}{'compile s':>10}")
    print(f"device: {jax.devices()[0].device_kind} x{jax.local_device_count()}, "
          f"dtype {args.dtype}, {args.num_games} games x {args.num_actions} actions")
    print(header)
    for torso, batch_sizes in plan.items():
        for batch_size in batch_sizes:
            row = measure(torso, batch_size, sgd_steps=args.sgd_steps, dtype=args.dtype,
                          num_games=args.num_games, num_actions=args.num_actions,
                          iters=args.iters, peak_tflops=args.peak_tflops)
            rows.append(row)
            print(f"{torso:<10}{batch_size:>6}{row['params_m']:>10.1f}{row['ms_per_step']:>10.1f}"
                  f"{row['samples_per_s']:>11.0f}{row['gflops_per_step']:>12.1f}"
                  f"{row['achieved_tflops']:>9.3f}{row['compile_s']:>10.1f}", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(benchmark="learner_throughput",
                       device=jax.devices()[0].device_kind,
                       num_devices=jax.local_device_count(), jax_version=jax.__version__,
                       machine=platform.machine(), cpu_count=os.cpu_count(),
                       quick=args.quick, args=vars(args), rows=rows), f, indent=2)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
