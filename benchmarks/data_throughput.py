"""Throughput of the data path: RLDS on disk -> numpy batches, and Reverb feed / sample.

On real ALE data written by the collector (random policy, so episodes are short; PNG sizes are
those of real frames):

* collect: agent steps/s of `collect_games` (one process per game, wall-clock, incl. startup);
* disk: bytes per stored RLDS step (PNG frame + scalars + TFRecord framing);
* pipeline: transitions/s from the TFDS files to numpy `Transition` batches of 256 through
  `scaled_ql.datasets.pipeline.numpy_iterator` (decode, stack, n-step, mix, shuffle, batch);
* reverb feed: items/s that `reverb_tables.feed` writes (one `Transition` per item);
* reverb sample: transitions/s the learner-side `ReverbSampler` returns in batches of 256;
* reverb memory: bytes per stored item, measured as the size of a Reverb checkpoint of the
  tables (which writes the chunks as they are held in memory, compressed) over the item count;
  an item is one stacked transition (observation and next_observation, 2 x 28 KB raw).

    python -m benchmarks.data_throughput     # writes benchmarks/results/data_throughput.json
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import tempfile
import time

_RESULTS = pathlib.Path(__file__).parent / "results" / "data_throughput.json"
_GAMES = ("Pong", "Breakout")


def _timed_batches(iterator, warmup: int, batches: int) -> float:
    """Transitions per second over `batches` batches after `warmup` batches."""
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        count += len(next(iterator).action)
    return count / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="collected steps per game")
    parser.add_argument("--batches", type=int, default=40, help="timed batches of 256")
    parser.add_argument("--shuffle-buffer", type=int, default=2048)
    parser.add_argument("--out", type=pathlib.Path, default=_RESULTS)
    args = parser.parse_args(argv)

    import reverb

    from scaled_ql.datasets import collect, pipeline, reverb_tables, rlu_atari, transitions

    results: dict = {}
    with tempfile.TemporaryDirectory() as data_dir:
        configs = [
            collect.CollectConfig(game, num_steps=args.steps, seed=i)
            for i, game in enumerate(_GAMES)
        ]
        start = time.perf_counter()
        collect.collect_games(configs, data_dir, show_progress=False)
        results["collect_steps_per_s"] = len(_GAMES) * args.steps / (time.perf_counter() - start)

        total_bytes = episodes = 0
        for game in _GAMES:
            run = rlu_atari.open_run(game, 1, data_dir=data_dir)
            total_bytes += sum(p.stat().st_size for p in run.shard_paths())
            episodes += sum(s.num_examples for s in run.builder.info.splits.values())
        # RLDS steps = actions + one final observation per episode.
        results["disk_bytes_per_step"] = total_bytes / (len(_GAMES) * args.steps + episodes)

        for n_step in (1, 3):
            config = pipeline.PipelineConfig(
                games=_GAMES,
                data_dir=data_dir,
                transition=transitions.TransitionConfig(n_step=n_step),
                batch_size=256,
                shuffle_buffer=args.shuffle_buffer,
            )
            rate = _timed_batches(pipeline.numpy_iterator(config), 5, args.batches)
            results[f"pipeline_transitions_per_s_n{n_step}"] = rate

        tables = reverb_tables.ReplayTablesConfig(
            games=_GAMES, max_size=100_000, min_size_to_sample=256
        )
        server = reverb_tables.start_server(tables)
        address = reverb_tables.address(server)
        config = pipeline.PipelineConfig(games=_GAMES, data_dir=data_dir, batch_size=1)
        streams = {
            game: list(
                pipeline.game_transition_dataset(config, i, repeat=False).as_numpy_iterator()
            )
            for i, game in enumerate(_GAMES)
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
        sampler = reverb_tables.ReverbSampler(
            address, _GAMES, batch_size=256, rate_limiter_timeout_ms=10_000
        )
        results["reverb_sample_transitions_per_s"] = _timed_batches(sampler, 5, args.batches)
        server.stop()

    results["uncompressed_bytes_per_transition"] = 2 * 84 * 84 * 4 + 4 * 4
    report = {
        "benchmark": "data_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
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
