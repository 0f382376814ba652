"""MinAtar learner throughput: SGD steps/s of every network of `MINATAR_NETWORKS`.

The update (`make_update_fn`: C51 + CQL, the demo's learner settings) of each MinAtar network
for 4 games of 6 actions on random [10, 10, 10] object maps, timed in alternating blocks of one
process (so other load on a shared machine hits every size alike); samples per CPU-second are
the comparable numbers, steps/s (wall clock) what a run would see.  The side by side with
d3rlpy's DiscreteCQL on the same network is `d3rlpy_side_by_side.measure(network='minatar_M')`.

    python -m benchmarks.minatar_throughput [--sizes S M L XL dqn] [--batch-size 64]
"""

import argparse
import time

import jax
import numpy as np

from benchmarks import common

SIZES = ("S", "M", "L", "XL", "dqn")


def measure_ladder(sizes=SIZES, batch_size: int = 64, blocks: int = 3,
                   calls_per_block: int = 3, progress=None) -> dict:
    """Steps/s, samples per CPU-second, parameters and FLOPs of each MinAtar network."""
    from scaled_ql.agents.scaled_ql import init_training_state, make_sgd_step
    from scaled_ql.networks import make_networks
    from scaled_ql.types import MINATAR_OBSERVATION

    actions = common.MINATAR_NUM_ACTIONS
    runners, facts = {}, {}
    for size in sizes:
        config = common.minatar_config(size, batch_size)
        networks = make_networks(config.network, actions, MINATAR_OBSERVATION)
        batch = common.random_batch(np.random.default_rng(0), (batch_size,), actions,
                                    MINATAR_OBSERVATION)
        state = init_training_state(networks, config, jax.random.PRNGKey(0))
        counts = networks.parameter_counts(state.params)
        lowered = jax.jit(make_sgd_step(networks, config)).lower(state, batch)
        start = time.perf_counter()
        runners[size] = common.update_runner(networks, config, batch)
        runners[size](1)  # compiles
        facts[size] = {"size": size, "torso": config.network.torso,
                       "params_m": counts["total"] / 1e6, "torso_params_m": counts["torso"] / 1e6,
                       "gflops_per_step": common.xla_flops(lowered) / 1e9,
                       "compile_s": time.perf_counter() - start}
    seconds = common.interleaved(runners, blocks, calls_per_block, progress)
    rows = []
    for size in sizes:
        wall, cpu = common.median(seconds["wall"][size]), common.median(seconds["cpu"][size])
        rows.append({**facts[size], "batch_size": batch_size, "num_games": len(actions),
                     "steps_per_s": 1 / wall, "samples_per_s": batch_size / wall,
                     "samples_per_cpu_s": batch_size / cpu, "cpu_ms_per_step": 1e3 * cpu})
    return {"batch_size": batch_size, "blocks": blocks, "calls_per_block": calls_per_block,
            "rows": rows, "seconds_per_call": seconds}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--calls-per-block", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure_ladder(tuple(args.sizes), args.batch_size, args.blocks,
                            args.calls_per_block)
    print(f"{'size':<5}{'params M':>10}{'steps/s':>9}{'samples/s':>11}{'per CPU-s':>11}"
          f"{'GFLOP/step':>12}")
    for r in result["rows"]:
        print(f"{r['size']:<5}{r['params_m']:>10.3f}{r['steps_per_s']:>9.1f}"
              f"{r['samples_per_s']:>11.0f}{r['samples_per_cpu_s']:>11.0f}"
              f"{r['gflops_per_step']:>12.2f}")
    common.write_results("minatar_throughput", result["rows"])
    return result


if __name__ == "__main__":
    main()
