"""Throughput of the data path: RLDS on disk -> batches, Reverb feed / sample, bytes per item.

On real ALE data written by the collector (random policy, so episodes are short; PNG sizes are
those of real frames):

* collect: agent steps/s of `collect_games` (one process per game, wall-clock, incl. startup);
* disk: bytes per stored RLDS step (PNG frame + scalars + TFRecord framing);
* pipeline: transitions/s from the TFDS files to batches through
  `scaled_ql.datasets.pipeline.numpy_iterator` (decode, stack, n-step, mix, shuffle, batch),
  optionally followed by `jax.device_put` (device-ready) and pinned to N cores
  (`pipeline_rate`, run in a child process whose CPU affinity is set before TF starts);
* reverb feed: items/s that `reverb_tables.feed` writes (one `Transition` per item);
* reverb sample: transitions/s the learner-side `ReverbSampler` returns in batches of 256;
* memory: bytes per stored transition of each in-memory store: a Reverb item, measured as the
  size of a Reverb checkpoint of the tables (which writes the chunks as held in memory,
  compressed) over the item count, and a decoded transition in the pipeline's shuffle buffer.
  An item is one stacked transition (observation and next_observation, 2 x 28 KB raw); the
  floor is one 84x84 frame per transition (7,056 bytes; Dopamine's circular buffer: 7,065).

    python -m benchmarks.data_throughput     # writes benchmarks/results/data_throughput.json
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from benchmarks import common

_RESULTS = common.RESULTS_DIR / "data_throughput.json"
_GAMES = ("Pong", "Breakout")
FRAME_FLOOR_BYTES = 84 * 84  # one new frame per transition
DOPAMINE_BYTES_PER_TRANSITION = 7_065  # frame + action, reward, terminal (Dopamine's buffer)


def _timed_batches(iterator, warmup: int, batches: int, to_device: bool = False) -> dict:
    """Transitions per second (wall and per CPU-second) over `batches` after `warmup`."""
    put = None
    if to_device:
        import jax

        put = jax.device_put
    for _ in range(warmup):
        batch = next(iterator)
        if put:
            put(batch)
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _ in range(batches):
        batch = next(iterator)
        if put:
            batch = put(batch)
        count += len(batch.action)
    if put:
        import jax

        jax.block_until_ready(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"transitions_per_s": count / wall, "transitions_per_cpu_s": count / cpu}


def collect(data_dir: str, games=_GAMES, steps: int = 4000) -> dict:
    """Collects `steps` random-policy steps per game into `data_dir`; rates and disk bytes."""
    from scaled_ql.datasets import collect as collect_lib
    from scaled_ql.datasets import rlu_atari

    configs = [collect_lib.CollectConfig(game, num_steps=steps, seed=i)
               for i, game in enumerate(games)]
    start = time.perf_counter()
    collect_lib.collect_games(configs, data_dir, show_progress=False)
    results = {"collect_steps_per_s": len(games) * steps / (time.perf_counter() - start)}
    total_bytes = episodes = 0
    for game in games:
        run = rlu_atari.open_run(game, 1, data_dir=data_dir)
        total_bytes += sum(p.stat().st_size for p in run.shard_paths())
        episodes += sum(s.num_examples for s in run.builder.info.splits.values())
    # RLDS steps = actions + one final observation per episode.
    results["disk_bytes_per_step"] = total_bytes / (len(games) * steps + episodes)
    return results


def _pipeline_config(data_dir: str, games, batch_size: int, shuffle_buffer: int, n_step: int = 1):
    from scaled_ql.datasets import pipeline, transitions

    return pipeline.PipelineConfig(
        games=tuple(games), data_dir=data_dir,
        transition=transitions.TransitionConfig(n_step=n_step),
        batch_size=batch_size, shuffle_buffer=shuffle_buffer)


def pipeline_rate(data_dir: str, games, *, batch_size: int = 32, batches: int = 200,
                  shuffle_buffer: int = 5000, cores: int | None = None,
                  to_device: bool = True, warmup: int | None = None) -> dict:
    """Transitions/s of the single-process data path (disk -> numpy -> device_put), measured
    in a child process pinned to the first `cores` CPUs (None: all)."""
    command = [sys.executable, "-m", "benchmarks.data_throughput", "--child-pipeline",
               "--data-dir", data_dir, "--games", *games, "--batch-size", str(batch_size),
               "--batches", str(batches), "--shuffle-buffer", str(shuffle_buffer)]
    if cores:
        command += ["--cores", str(cores)]
    if to_device:
        command.append("--to-device")
    if warmup is not None:
        command += ["--warmup", str(warmup)]
    result = subprocess.run(command, capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parent.parent)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        raise RuntimeError(f"pipeline child failed ({result.returncode}): "
                           f"{result.stderr.strip()[-1500:]}")
    return json.loads(lines[-1])


def _child_pipeline(args) -> None:
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    from scaled_ql.datasets import pipeline

    config = _pipeline_config(args.data_dir, args.games, args.batch_size, args.shuffle_buffer)
    iterator = pipeline.numpy_iterator(config)
    # Warm up past the shuffle buffer's first fill, so the timed batches are steady state.
    warmup = args.warmup if args.warmup is not None else (
        args.shuffle_buffer // args.batch_size + 5)
    result = _timed_batches(iterator, warmup, args.batches, args.to_device)
    batch = next(iterator)
    result.update(
        cores=len(os.sched_getaffinity(0)), batch_size=args.batch_size, batches=args.batches,
        to_device=args.to_device, warmup_batches=warmup,
        # One decoded transition as it sits in the shuffle buffer (observation and
        # next_observation stacks, scalars).
        shuffle_buffer_bytes_per_transition=sum(
            field.nbytes for field in batch) / args.batch_size)
    print(json.dumps(result), flush=True)


def reverb_memory(data_dir: str, games=_GAMES, batches: int = 40) -> dict:
    """Reverb feed and sample rates and bytes per stored item, on the data in `data_dir`."""
    import reverb

    from scaled_ql.datasets import pipeline, reverb_tables

    results = {}
    tables = reverb_tables.ReplayTablesConfig(games=tuple(games), max_size=100_000,
                                              min_size_to_sample=256)
    server = reverb_tables.start_server(tables)
    try:
        address = reverb_tables.address(server)
        config = pipeline.PipelineConfig(games=tuple(games), data_dir=data_dir, batch_size=1)
        streams = {
            game: list(
                pipeline.game_transition_dataset(config, i, repeat=False).as_numpy_iterator())
            for i, game in enumerate(games)
        }
        start = time.perf_counter()
        fed = sum(reverb_tables.feed(address, game, stream) for game, stream in streams.items())
        results["reverb_feed_items_per_s"] = fed / (time.perf_counter() - start)
        del streams
        results["reverb_items"] = fed
        # A Reverb checkpoint serializes the tables' chunks as stored (compressed) in memory.
        checkpoint = pathlib.Path(reverb.Client(address).checkpoint())
        stored = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
        results["reverb_bytes_per_item"] = stored / fed
        sampler = reverb_tables.ReverbSampler(address, tuple(games), batch_size=256,
                                              rate_limiter_timeout_ms=10_000)
        rate = _timed_batches(sampler, 5, batches)
        results["reverb_sample_transitions_per_s"] = rate["transitions_per_s"]
    finally:
        server.stop()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="collected steps per game")
    parser.add_argument("--batches", type=int, default=40, help="timed batches")
    parser.add_argument("--shuffle-buffer", type=int, default=2048)
    parser.add_argument("--out", type=pathlib.Path, default=_RESULTS)
    # The pinned pipeline child (see `pipeline_rate`).
    parser.add_argument("--child-pipeline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--games", nargs="+", default=list(_GAMES), help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--to-device", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_pipeline:
        _child_pipeline(args)
        return 0

    with tempfile.TemporaryDirectory() as data_dir:
        results = collect(data_dir, _GAMES, args.steps)
        for n_step in (1, 3):
            from scaled_ql.datasets import pipeline

            config = _pipeline_config(data_dir, _GAMES, 256, args.shuffle_buffer, n_step)
            rate = _timed_batches(pipeline.numpy_iterator(config), 5, args.batches)
            results[f"pipeline_transitions_per_s_n{n_step}"] = rate["transitions_per_s"]
        results.update(reverb_memory(data_dir, _GAMES, args.batches))

    results["uncompressed_bytes_per_transition"] = 2 * 84 * 84 * 4 + 4 * 4
    report = {
        "benchmark": "data_throughput",
        "date": common.now(),
        "machine": common.machine(),
        "settings": {
            "games": list(_GAMES),
            "steps_per_game": args.steps,
            "batch_size": 256,
            "shuffle_buffer": args.shuffle_buffer,
            "timed_batches": args.batches,
        },
        "results": results,
    }
    print(f"{'measure':<40}{'value':>14}")
    for name, value in results.items():
        print(f"{name:<40}{value:>14,.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
