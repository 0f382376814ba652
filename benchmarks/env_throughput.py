"""Agent steps per second of `AtariEnvironment` next to raw `ALEInterface` stepping.

Measured in one run, side by side, on the same games, seeds and random actions:

* raw ALE: `act()` 4 times per agent step (sticky actions 0.25), nothing else: the floor;
* raw ALE + screens: the same plus the two `getScreenGrayscale` reads any max-pooling
  preprocessing needs (shows how much of our overhead is just reading the screen);
* ours: `AtariEnvironment.step` (max-pool, INTER_AREA resize, frame stack, dm_env timestep);
* batched: `evaluate_policy` with a random policy, in-process and with one worker per core
  (wall-clock, all games together), next to `ale_py.vector_env.AtariVectorEnv` for context
  (its C++ preprocessing is not the one the data was recorded with, so we do not use it).

Single-environment timings use process CPU time, interleaved in short blocks and summarised
by the median over blocks, so other processes on a busy machine disturb them little; the
batched ones are wall-clock by nature.  `env_overhead_fraction` = CPU time per agent step of
ours / raw ALE - 1, over all games.

    python -m benchmarks.env_throughput            # writes benchmarks/results/env_throughput.json
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import threading
import time

import numpy as np
import psutil

from scaled_ql.environments import AtariEnvironment, get_game
from scaled_ql.environments.vector import evaluate_policy

_RESULTS = pathlib.Path(__file__).parent / "results" / "env_throughput.json"


def _raw_ale(game: str, seed: int):
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.25)
    ale.setInt("frame_skip", 1)
    ale.setInt("max_num_frames_per_episode", 0)
    ale.loadROM(ale_py.roms.get_rom_path(get_game(game).rom_id))
    return ale


def _raw_block(ale, action_set, actions, with_screens: bool) -> float:
    """CPU seconds for len(actions) agent steps of bare ALE (4 frames each)."""
    screens = np.zeros((2, *ale.getScreenDims()), np.uint8)
    start = time.process_time()
    for index in actions:
        action = action_set[index]
        for frame in range(4):
            ale.act(action)
            if with_screens and frame >= 2:
                ale.getScreenGrayscale(screens[frame - 2])
        if ale.game_over():
            ale.reset_game()
    return time.process_time() - start


def _env_block(env: AtariEnvironment, actions) -> float:
    """CPU seconds for len(actions) agent steps of our environment (auto-resets on LAST)."""
    start = time.process_time()
    for action in actions:
        env.step(action)
    return time.process_time() - start


def measure_single(games, steps_per_block: int, blocks: int, seed: int) -> dict:
    per_game = {}
    for game in games:
        ale = _raw_ale(game, seed)
        action_set = ale.getMinimalActionSet()
        env = AtariEnvironment(game, seed=seed)
        env.reset()
        rng = np.random.default_rng(seed)
        times = {"raw": [], "raw_screens": [], "env": []}
        for _ in range(blocks):
            actions = rng.integers(len(action_set), size=steps_per_block)
            times["raw"].append(_raw_block(ale, action_set, actions, with_screens=False))
            times["raw_screens"].append(_raw_block(ale, action_set, actions, with_screens=True))
            times["env"].append(_env_block(env, actions))
        per_game[game] = {
            f"{kind}_steps_per_s": steps_per_block / float(np.median(t))
            for kind, t in times.items()
        }
    return per_game


def _random_policy(games, seed):
    num_actions = np.array([get_game(g).num_actions for g in games])
    rng = np.random.default_rng(seed)

    def policy(observations, game_ids):
        return rng.integers(num_actions[game_ids])  # [B]

    return policy


def _tree_cpu_seconds() -> dict[int, float]:
    """CPU seconds so far of this process and all its descendants, by pid."""
    me = psutil.Process()
    seconds = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return seconds


def measure_batched(games, episodes: int, frames: int, workers: int, seed: int) -> dict:
    """Wall-clock agent steps/s of `evaluate_policy` over all games at once, and the cores used.

    Worker processes exit before we could read their final CPU times, so a thread samples the
    process tree every 0.1 s; `cores_used` = CPU seconds of the tree / wall seconds.
    """
    last: dict[int, float] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            last.update(_tree_cpu_seconds())
            time.sleep(0.1)

    before = _tree_cpu_seconds()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    results = evaluate_policy(
        _random_policy(games, seed),
        games,
        episodes,
        seed=seed,
        max_episode_frames=frames,
        num_workers=workers,
        progress=False,
    )
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    cpu = sum(v - before.get(pid, 0.0) for pid, v in last.items())
    steps = sum(r.length for r in results)
    return {
        "workers": workers,
        "agent_steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "cores_used": cpu / seconds,
    }


def measure_vector_env(game: str, num_envs: int, steps: int, seed: int) -> dict:
    """Wall-clock agent steps/s (summed over envs) of ale_py's AtariVectorEnv, for context."""
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(
        get_game(game).rom_id,
        num_envs,
        num_threads=num_envs,
        repeat_action_probability=0.25,
        noop_max=0,
        reward_clipping=False,
    )
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = env.single_action_space.n
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(n, size=num_envs))
    seconds = time.perf_counter() - start
    env.close()
    return {"game": game, "num_envs": num_envs, "steps_per_s": steps * num_envs / seconds}


def _machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", default=["Pong", "Breakout", "MsPacman", "Seaquest"])
    parser.add_argument("--steps-per-block", type=int, default=400)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--batched-episodes", type=int, default=8, help="per game")
    parser.add_argument("--batched-frames", type=int, default=4_000, help="episode frame cap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=_RESULTS)
    args = parser.parse_args(argv)
    for game in args.games:
        get_game(game)  # Fail fast, before any measurement.

    load_before = os.getloadavg()
    single = measure_single(args.games, args.steps_per_block, args.blocks, args.seed)
    raw_s = sum(1 / g["raw_steps_per_s"] for g in single.values())
    screens_s = sum(1 / g["raw_screens_steps_per_s"] for g in single.values())
    env_s = sum(1 / g["env_steps_per_s"] for g in single.values())
    # Start the workers' fork server (a one-off ~1 s per session) outside the timings.
    evaluate_policy(
        _random_policy(args.games[:1], 0),
        args.games[:1],
        1,
        max_episode_frames=8,
        num_workers=1,
        progress=False,
    )
    batched = [
        measure_batched(args.games, args.batched_episodes, args.batched_frames, w, args.seed)
        for w in (0, os.cpu_count() or 1)
    ]
    vector = measure_vector_env(args.games[0], os.cpu_count() or 1, 1_000, args.seed)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "games": args.games,
        "single": single,
        "env_overhead_fraction": env_s / raw_s - 1,
        "env_overhead_fraction_vs_raw_with_screens": env_s / screens_s - 1,
        "single_env_steps_per_s": len(single) / env_s,
        "raw_ale_steps_per_s": len(single) / raw_s,
        "batched": batched,
        "ale_vector_env": vector,
    }

    print(f"{'game':<12} {'raw ALE':>10} {'raw+screens':>12} {'ours':>10} {'overhead':>9}")
    for game, g in single.items():
        overhead = g["raw_steps_per_s"] / g["env_steps_per_s"] - 1
        print(
            f"{game:<12} {g['raw_steps_per_s']:>10,.0f} {g['raw_screens_steps_per_s']:>12,.0f} "
            f"{g['env_steps_per_s']:>10,.0f} {overhead:>9.1%}"
        )
    print(
        f"{'all':<12} {report['raw_ale_steps_per_s']:>10,.0f} {len(single) / screens_s:>12,.0f} "
        f"{report['single_env_steps_per_s']:>10,.0f} {report['env_overhead_fraction']:>9.1%}"
    )
    print("(agent steps per CPU-second of one process; overhead = ours vs raw ALE)")
    for b in batched:
        label = "in-process" if b["workers"] == 0 else f"{b['workers']} workers"
        print(
            f"evaluate_policy, {label:<11}: {b['steps_per_s']:>8,.0f} agent steps/s (wall), "
            f"{b['cores_used']:.2f} cores used"
        )
    print(
        f"AtariVectorEnv ({vector['game']}, {vector['num_envs']} envs): "
        f"{vector['steps_per_s']:>8,.0f} agent steps/s (wall; different preprocessing)"
    )
    print(f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
