"""GPU: bf16 matmul peak, and ResNet-34/50/101 bf16 training samples/s as a fraction of it.

Runs only when JAX's first device is a GPU; otherwise it reports "not run: no GPU on this
machine".  It imports only the pure-JAX core (networks, losses, update step: no TF, Reverb or
Acme), so it runs on the lent accelerator machines, which have a newer JAX and only the small
pure-Python wheels carried there.

1. Peak: the best FLOP/s of `jnp.dot` on square bfloat16 matrices (float32 accumulation) over a
   few sizes: the *measured* peak, which is what a training step can hope to approach.
2. For each torso: our update (C51 + CQL, 41 games x 18 actions, compute_dtype bfloat16, one
   SGD step per call) at the given batch; FLOPs per step from XLA's cost analysis, so
   fraction_of_peak = (FLOPs per step / seconds per step) / measured peak.

    python -m benchmarks.gpu_throughput [--batch-size 256]   # writes results/gpu_throughput.json
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common

NOT_RUN = "not run: no GPU on this machine"
TORSOS = ("resnet34", "resnet50", "resnet101")


def _time_calls(fn, args, iters: int) -> float:
    """Seconds per call after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(iters):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / iters


def matmul_peak(sizes=(4096, 8192, 16384), iters: int = 20) -> dict:
    """Best measured bf16 matmul FLOP/s over `sizes` (square N x N @ N x N)."""
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


def training_step(torso: str, batch_size: int, peak_tflops: float, *, iters: int = 10,
                  num_games: int = 41, num_actions: int = 18) -> dict:
    """bf16 samples/s of our update for `torso` and its fraction of the measured peak."""
    from scaled_ql.agents.scaled_ql import (
        NetworkConfig,
        ScaledQLConfig,
        init_training_state,
        make_sgd_step,
        make_update_fn,
    )
    from scaled_ql.networks import make_networks

    config = ScaledQLConfig(network=NetworkConfig(torso=torso), batch_size=batch_size,
                            compute_dtype="bfloat16")
    actions = [num_actions] * num_games
    networks = make_networks(config.network, actions)
    state = init_training_state(networks, config, jax.random.PRNGKey(0))
    batch = jax.device_put(common.random_batch(np.random.default_rng(0), (batch_size,), actions))
    flops = common.xla_flops(jax.jit(make_sgd_step(networks, config)).lower(state, batch).compile())
    update = make_update_fn(networks, config)
    holder = [state]

    def step():
        holder[0], metrics = update(holder[0], batch)
        return metrics["loss"]

    seconds = _time_calls(step, (), iters)
    achieved = flops / seconds / 1e12
    return {"torso": torso, "batch_size": batch_size, "dtype": "bfloat16",
            "samples_per_s": batch_size / seconds, "ms_per_step": 1e3 * seconds,
            "gflops_per_step": flops / 1e9, "achieved_tflops": achieved,
            "fraction_of_peak": achieved / peak_tflops}


def measure(torsos=TORSOS, batch_size: int = 256, matmul_sizes=(4096, 8192, 16384),
            iters: int = 10, force: bool = False, progress=None) -> dict:
    """The GPU section: {'run': False, 'reason': ...} without a GPU (unless `force`, which runs
    the same code on whatever device there is, for tests)."""
    device = jax.devices()[0]
    if device.platform != "gpu" and not force:
        return {"run": False, "reason": NOT_RUN, "device": f"{device.platform}"}
    peak = matmul_peak(matmul_sizes)
    rows = []
    for torso in torsos:
        rows.append(training_step(torso, batch_size, peak["peak_tflops"], iters=iters))
        if progress is not None:
            progress.update(1)
    return {"run": True, "device": f"{device.platform}: {device.device_kind}",
            "jax": jax.__version__, **peak, "rows": rows}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--torsos", nargs="+", default=list(TORSOS))
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args(argv)
    result = measure(args.torsos, args.batch_size, iters=args.iters)
    if not result["run"]:
        print(result["reason"])
    else:
        print(f"{result['device']}: measured bf16 matmul peak {result['peak_tflops']:.1f} "
              f"TFLOP/s (N={result['best_size']})")
        for row in result["rows"]:
            print(f"{row['torso']:<10} B{row['batch_size']}: {row['samples_per_s']:,.0f} "
                  f"samples/s, {row['achieved_tflops']:.1f} TFLOP/s = "
                  f"{row['fraction_of_peak']:.0%} of peak")
    out = common.RESULTS_DIR / "gpu_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": common.now(), **result}, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
