"""Agent steps per second of our Atari environments next to raw `ALEInterface` stepping.

One run measures, side by side, on the same games, seeds and random actions:

* raw ALE: `act()` 4 times per agent step (ALE `frame_skip` 1, sticky actions 0.25), one
  `game_over()` per step, `reset_game()` on game over, nothing else.  This is the reference
  the overhead is measured against.  (ALE's own `frame_skip=4`, one `act()` per step, is
  measured too, for context: it cannot serve DQN preprocessing, which needs the screen of the
  step's second-to-last frame, and it saves only the three extra Python calls.
  `color_averaging` is a different preprocessing, an average instead of a max.)
* floor: raw ALE plus the preprocessing the data requires, in bare numpy/OpenCV with
  preallocated buffers: the two `getScreenGrayscale` reads, `np.maximum`, and
  `cv2.resize(INTER_AREA)` to 84x84.  No implementation of that preprocessing can be cheaper
  than this (the resize must stay OpenCV's `INTER_AREA`, bit for bit), so it bounds what any
  environment can reach;
* ours: `AtariEnvironment.step` (all of the above, plus the frame stack, the episode logic and
  a `dm_env.TimeStep`);
* batched: `evaluate_policy` with a random policy over all games, in-process and with one
  worker per core, including everything an evaluation pays: ROM loads (~0.1 s each in ALE),
  episode starts, the policy calls, and (with workers) the pipes and the main process;
* `ale_py.vector_env.AtariVectorEnv` (C++ threads, same frames as ours), for context.

Definitions (all CPU time, so other load on the machine disturbs them little):

* single-environment timings: process CPU seconds per agent step, measured in short blocks
  interleaved across the variants, median over blocks, summed over games (every game
  weighs the same);
* `env_overhead_fraction` = CPU per agent step of ours / raw ALE - 1;
  `floor_overhead_fraction` = floor / raw ALE - 1 (what the required preprocessing alone
  costs); `env_overhead_over_floor_fraction` = ours / floor - 1 (what our code adds);
* `batched_overhead_fraction` = CPU seconds per agent step of the in-process
  `evaluate_policy` run / raw ALE - 1, the raw reference weighted by the run's agent steps
  per game; `batched_stepping_overhead_fraction` the same without the episode starts;
  `workers.overhead_fraction` the same with workers, counting the CPU of every process of
  the run (sampled every 0.1 s).  Wall-clock steps/s are reported as well.

    python -m benchmarks.env_throughput           # writes benchmarks/results/env_throughput.json
    python -m benchmarks.env_throughput --quick   # ~1 minute

`run(quick=False) -> dict` returns the same report without printing or writing it.
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

import cv2
import numpy as np
import psutil

from scaled_ql.environments import AtariEnvironment, get_game
from scaled_ql.environments import slots as slots_module
from scaled_ql.environments.vector import evaluate_policy

_RESULTS = pathlib.Path(__file__).parent / "results" / "env_throughput.json"
_GAMES = ("Pong", "Breakout", "MsPacman", "Seaquest")
_QUICK_GAMES = ("Pong", "MsPacman")
_KINDS = ("raw", "raw_internal_skip", "raw_screens", "floor", "env")


def _raw_ale(game: str, seed: int, frame_skip: int = 1):
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.25)
    ale.setInt("frame_skip", frame_skip)
    ale.setInt("max_num_frames_per_episode", 0)
    ale.setBool("color_averaging", False)
    ale.loadROM(ale_py.roms.get_rom_path(get_game(game).rom_id))
    ale.reset_game()
    return ale


def _raw_block(ale, action_set, actions) -> float:
    """CPU seconds for len(actions) agent steps of bare ALE: 4 `act()` each."""
    start = time.process_time()
    for index in actions:
        action = action_set[index]
        ale.act(action)
        ale.act(action)
        ale.act(action)
        ale.act(action)
        if ale.game_over():
            ale.reset_game()
    return time.process_time() - start


def _raw_internal_skip_block(ale, action_set, actions) -> float:
    """CPU seconds for len(actions) agent steps of ALE with its own frame_skip=4."""
    start = time.process_time()
    for index in actions:
        ale.act(action_set[index])
        if ale.game_over():
            ale.reset_game()
    return time.process_time() - start


def _raw_screens_block(ale, action_set, actions, buffers) -> float:
    """As `_raw_block`, plus the two grayscale screen reads any max-pooling needs."""
    old, new = buffers[0], buffers[1]
    start = time.process_time()
    for index in actions:
        action = action_set[index]
        ale.act(action)
        ale.act(action)
        ale.act(action)
        ale.getScreenGrayscale(old)
        ale.act(action)
        ale.getScreenGrayscale(new)
        if ale.game_over():
            ale.reset_game()
    return time.process_time() - start


def _floor_block(ale, action_set, actions, buffers) -> float:
    """As `_raw_screens_block`, plus the max and the INTER_AREA resize: the floor."""
    old, new, maxed, frame = buffers
    start = time.process_time()
    for index in actions:
        action = action_set[index]
        ale.act(action)
        ale.act(action)
        ale.act(action)
        ale.getScreenGrayscale(old)
        ale.act(action)
        ale.getScreenGrayscale(new)
        np.maximum(old, new, out=maxed)
        cv2.resize(maxed, (84, 84), dst=frame, interpolation=cv2.INTER_AREA)
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
    """Agent steps per CPU-second of each variant, per game (medians of interleaved blocks)."""
    per_game = {}
    for game in games:
        raw = _raw_ale(game, seed)
        internal = _raw_ale(game, seed, frame_skip=4)
        screens = _raw_ale(game, seed)
        floor = _raw_ale(game, seed)
        env = AtariEnvironment(game, seed=seed)
        env.reset()
        action_set = raw.getMinimalActionSet()
        height, width = raw.getScreenDims()
        buffers = [np.zeros((height, width), np.uint8) for _ in range(3)]
        buffers.append(np.zeros((84, 84), np.uint8))
        rng = np.random.default_rng(seed)
        times = {kind: [] for kind in _KINDS}
        for _ in range(blocks):
            actions = rng.integers(len(action_set), size=steps_per_block)
            times["raw"].append(_raw_block(raw, action_set, actions))
            times["raw_internal_skip"].append(
                _raw_internal_skip_block(internal, action_set, actions)
            )
            times["raw_screens"].append(_raw_screens_block(screens, action_set, actions, buffers))
            times["floor"].append(_floor_block(floor, action_set, actions, buffers))
            times["env"].append(_env_block(env, actions))
        per_game[game] = {
            f"{kind}_steps_per_s": steps_per_block / float(np.median(t))
            for kind, t in times.items()
        }
    return per_game


def _random_policy(games, seed):
    """Uniform random actions: a few microseconds per call, so the policy costs ~nothing."""
    num_actions = np.array([get_game(g).num_actions for g in games])
    rng = np.random.default_rng(seed)

    def policy(observations, game_ids):
        return (rng.random(len(game_ids)) * num_actions[game_ids]).astype(np.int64)  # [B]

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


def _steps_by_game(results) -> dict[str, int]:
    steps: dict[str, int] = {}
    for r in results:
        steps[r.game] = steps.get(r.game, 0) + r.length
    return steps


def measure_in_process(games, episodes: int, frames: int, seed: int) -> dict:
    """CPU per agent step of `evaluate_policy(num_workers=0)`, and how much went to starts.

    Episode starts (ROM loads, reseeds, `reset_game`) are timed by wrapping
    `SlotGroup._next_episode` (called once per episode), ROM loads counted by wrapping
    `AtariEnvironment._load_rom`; both wrappers cost microseconds per episode.
    """
    starts = {"cpu": 0.0, "rom_loads": 0}
    next_episode, load_rom = slots_module.SlotGroup._next_episode, AtariEnvironment._load_rom

    def timed_next_episode(group, slot):
        start = time.process_time()
        next_episode(group, slot)
        starts["cpu"] += time.process_time() - start

    def counted_load_rom(env, rom_seed):
        starts["rom_loads"] += 1
        load_rom(env, rom_seed)

    slots_module.SlotGroup._next_episode = timed_next_episode
    AtariEnvironment._load_rom = counted_load_rom
    try:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        results = evaluate_policy(
            _random_policy(games, seed),
            games,
            episodes,
            seed=seed,
            max_episode_frames=frames,
            num_workers=0,
            progress=False,
        )
        cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    finally:
        slots_module.SlotGroup._next_episode = next_episode
        AtariEnvironment._load_rom = load_rom
    steps = sum(r.length for r in results)
    return {
        "workers": 0,
        "episodes": len(results),
        "agent_steps": steps,
        "steps_by_game": _steps_by_game(results),
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "steps_per_cpu_s": steps / cpu,
        "steps_per_s": steps / wall,
        "episode_start_cpu_seconds": starts["cpu"],
        "rom_loads": starts["rom_loads"],
        "stepping_steps_per_cpu_s": steps / (cpu - starts["cpu"]),
    }


def measure_workers(games, episodes: int, frames: int, workers: int, seed: int) -> dict:
    """Wall-clock agent steps/s of `evaluate_policy` with workers, and the CPU of all processes.

    Worker processes exit before we could read their final CPU times, so a thread samples the
    process tree every 0.1 s (the last 0.1 s of a worker can go uncounted).
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
        "episodes": len(results),
        "agent_steps": steps,
        "steps_by_game": _steps_by_game(results),
        "wall_seconds": seconds,
        "cpu_seconds": cpu,
        "steps_per_s": steps / seconds,
        "steps_per_cpu_s": steps / cpu,
        "cores_used": cpu / seconds,
    }


def measure_vector_env(game: str, num_envs: int, steps: int, seed: int) -> dict:
    """ale_py's AtariVectorEnv on one game: CPU (all its threads) and wall per agent step."""
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(
        get_game(game).rom_id,
        num_envs,
        num_threads=min(num_envs, os.cpu_count() or 1),
        repeat_action_probability=0.25,
        noop_max=0,
        use_fire_reset=False,
        reward_clipping=False,
    )
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = env.single_action_space.n
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(n, size=num_envs))
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    env.close()
    return {
        "game": game,
        "num_envs": num_envs,
        "steps_per_s": steps * num_envs / wall,
        "steps_per_cpu_s": steps * num_envs / cpu,
    }


def _machine() -> dict:
    import ale_py

    from benchmarks.common import cpu_model

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ale_py": ale_py.__version__,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
    }


def _weighted_raw_seconds(single: dict, steps_by_game: dict) -> float:
    """Raw ALE CPU seconds for the given agent steps per game (the batched run's mix)."""
    return sum(steps / single[game]["raw_steps_per_s"] for game, steps in steps_by_game.items())


def run(
    quick: bool = False,
    *,
    games=None,
    steps_per_block: int | None = None,
    blocks: int | None = None,
    batched_episodes: int | None = None,
    batched_frames: int | None = None,
    workers: int | None = None,
    seed: int = 0,
) -> dict:
    """Measures everything (see the module docstring); returns the report as a dict.

    `quick=True` (about a minute): two games, fewer and shorter blocks, a smaller batched run.
    Explicit arguments override either preset.
    """
    games = list(games or (_QUICK_GAMES if quick else _GAMES))
    for game in games:
        get_game(game)  # Fail fast, before any measurement.
    steps_per_block = steps_per_block or (200 if quick else 400)
    blocks = blocks or (5 if quick else 9)
    batched_episodes = batched_episodes or (2 if quick else 8)
    batched_frames = batched_frames or (2_000 if quick else 4_000)
    workers = workers or os.cpu_count() or 1

    load_before = os.getloadavg()[0]
    single = measure_single(games, steps_per_block, blocks, seed)
    seconds = {
        kind: sum(1 / g[f"{kind}_steps_per_s"] for g in single.values()) for kind in _KINDS
    }
    in_process = measure_in_process(games, batched_episodes, batched_frames, seed)
    raw_in_process = _weighted_raw_seconds(single, in_process["steps_by_game"])
    in_process["overhead_fraction"] = in_process["cpu_seconds"] / raw_in_process - 1
    in_process["stepping_overhead_fraction"] = (
        in_process["cpu_seconds"] - in_process["episode_start_cpu_seconds"]
    ) / raw_in_process - 1
    # Start the workers' fork server (a one-off ~1 s per session) outside the timings.
    evaluate_policy(
        _random_policy(games[:1], 0), games[:1], 1, max_episode_frames=8, num_workers=1,
        progress=False,
    )
    with_workers = measure_workers(games, batched_episodes, batched_frames, workers, seed)
    with_workers["overhead_fraction"] = (
        with_workers["cpu_seconds"] / _weighted_raw_seconds(single, with_workers["steps_by_game"])
        - 1
    )
    vector_envs = 4 if quick else 16
    vector_steps = max(10, min(300, steps_per_block * blocks // vector_envs))
    vector = measure_vector_env(games[0], vector_envs, vector_steps, seed)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "quick": quick,
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "games": games,
        "settings": {
            "steps_per_block": steps_per_block,
            "blocks": blocks,
            "batched_episodes_per_game": batched_episodes,
            "batched_max_episode_frames": batched_frames,
            "seed": seed,
        },
        "single": single,
        "raw_ale_steps_per_s": len(games) / seconds["raw"],
        "raw_ale_internal_skip_steps_per_s": len(games) / seconds["raw_internal_skip"],
        "raw_ale_with_screens_steps_per_s": len(games) / seconds["raw_screens"],
        "floor_steps_per_s": len(games) / seconds["floor"],
        "single_env_steps_per_s": len(games) / seconds["env"],
        "env_overhead_fraction": seconds["env"] / seconds["raw"] - 1,
        "floor_overhead_fraction": seconds["floor"] / seconds["raw"] - 1,
        "env_overhead_over_floor_fraction": seconds["env"] / seconds["floor"] - 1,
        "batched_steps_per_cpu_s": in_process["steps_per_cpu_s"],
        "batched_overhead_fraction": in_process["overhead_fraction"],
        "batched_stepping_overhead_fraction": in_process["stepping_overhead_fraction"],
        "batched_workers_steps_per_s": with_workers["steps_per_s"],
        "batched": {"in_process": in_process, "workers": with_workers},
        "ale_vector_env": vector,
    }


def print_report(report: dict) -> None:
    header = (
        "game", "raw ALE", "ALE skip=4", "+screens", "floor", "ours", "ours/raw", "ours/floor"
    )
    print("{:<12} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}".format(*header))

    def row(name, g):
        raw, env, floor = g["raw_steps_per_s"], g["env_steps_per_s"], g["floor_steps_per_s"]
        print(
            f"{name:<12} {raw:>9,.0f} {g['raw_internal_skip_steps_per_s']:>10,.0f} "
            f"{g['raw_screens_steps_per_s']:>9,.0f} {floor:>9,.0f} {env:>9,.0f} "
            f"{raw / env - 1:>+9.1%} {floor / env - 1:>+10.1%}"
        )

    for game, g in report["single"].items():
        row(game, g)
    row(
        "all",
        {
            "raw_steps_per_s": report["raw_ale_steps_per_s"],
            "raw_internal_skip_steps_per_s": report["raw_ale_internal_skip_steps_per_s"],
            "raw_screens_steps_per_s": report["raw_ale_with_screens_steps_per_s"],
            "floor_steps_per_s": report["floor_steps_per_s"],
            "env_steps_per_s": report["single_env_steps_per_s"],
        },
    )
    print(
        "(agent steps per CPU-second of one process; floor = raw ALE + 2 screen reads + max + "
        "INTER_AREA resize)"
    )
    print(
        f"env_overhead_fraction {report['env_overhead_fraction']:.3f}   "
        f"floor_overhead_fraction {report['floor_overhead_fraction']:.3f}   "
        f"env_overhead_over_floor_fraction {report['env_overhead_over_floor_fraction']:.3f}"
    )
    local, workers = report["batched"]["in_process"], report["batched"]["workers"]
    print(
        f"evaluate_policy in-process: {local['steps_per_cpu_s']:,.0f} agent steps/CPU-s "
        f"(overhead {local['overhead_fraction']:.1%}; without episode starts "
        f"{local['stepping_overhead_fraction']:.1%}); {local['episodes']} episodes, "
        f"{local['rom_loads']} ROM loads, starts {local['episode_start_cpu_seconds']:.1f} "
        f"CPU-s of {local['cpu_seconds']:.1f}; {local['steps_per_s']:,.0f} steps/s wall"
    )
    print(
        f"evaluate_policy, {workers['workers']} workers: {workers['steps_per_s']:,.0f} agent "
        f"steps/s wall, {workers['cores_used']:.2f} cores used, "
        f"{workers['steps_per_cpu_s']:,.0f} steps/CPU-s "
        f"(overhead {workers['overhead_fraction']:.1%})"
    )
    vector = report["ale_vector_env"]
    print(
        f"AtariVectorEnv ({vector['game']}, {vector['num_envs']} envs): "
        f"{vector['steps_per_cpu_s']:,.0f} agent steps/CPU-s, {vector['steps_per_s']:,.0f} wall"
    )
    load = report["load_average_before_after"]
    print(f"load average before/after: {load[0]:.2f} / {load[1]:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--games", nargs="+")
    parser.add_argument("--steps-per-block", type=int)
    parser.add_argument("--blocks", type=int)
    parser.add_argument("--batched-episodes", type=int, help="per game")
    parser.add_argument("--batched-frames", type=int, help="episode frame cap")
    parser.add_argument("--workers", type=int, help="default: one per core")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=_RESULTS)
    args = parser.parse_args(argv)
    report = run(
        args.quick,
        games=args.games,
        steps_per_block=args.steps_per_block,
        blocks=args.blocks,
        batched_episodes=args.batched_episodes,
        batched_frames=args.batched_frames,
        workers=args.workers,
        seed=args.seed,
    )
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
