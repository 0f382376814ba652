"""Helpers shared by the benchmarks: the demo-scale learner config, random batches, machine facts,
and interleaved timing (the machines are shared, so contenders are timed in alternating blocks
and compared by the median over blocks)."""

import contextlib
import datetime
import os
import pathlib
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from scaled_ql.types import ATARI_OBSERVATION, ObservationSpec, Transition

RESULTS_DIR = pathlib.Path(__file__).parent / "results"
# The three games of `make demo` and their minimal action counts (Pong, Breakout, Boxing).
DEMO_GAMES = ("Pong", "Breakout", "Boxing")
DEMO_NUM_ACTIONS = (6, 4, 18)
# MinAtar benchmarks: 4 games with MinAtar's largest action set (Seaquest's 6), so every head
# is as wide as any MinAtar game needs.
MINATAR_NUM_ACTIONS = (6, 6, 6, 6)


def demo_config(torso: str = "nature", batch_size: int = 32, **overrides):
    """The learner of `make demo` (scaled_ql.runners.demo.demo_agent_config) at any torso/batch."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig

    network = NetworkConfig(torso=torso, feed_forward_size=256, num_groups=8)
    return ScaledQLConfig(**{"network": network, "batch_size": batch_size,
                             "learning_rate": 2.5e-4, "target_update_period": 250, **overrides})


def minatar_config(size: str = "M", batch_size: int = 64, **overrides):
    """The demo's learner settings on the MinAtar network `MINATAR_NETWORKS[size]`."""
    from scaled_ql.networks import MINATAR_NETWORKS

    return demo_config(batch_size=batch_size, **{"network": MINATAR_NETWORKS[size], **overrides})


def random_batch(rng: np.random.Generator, leading: Sequence[int], num_actions: Sequence[int],
                 observation: ObservationSpec = ATARI_OBSERVATION) -> Transition:
    """A Transition batch of random frames (values 0..max_value of the suite's spec); each
    example's action is valid in its game."""
    leading = tuple(leading)
    game_id = rng.integers(0, len(num_actions), leading).astype(np.int32)
    action = (rng.integers(0, 1 << 30, leading) % np.asarray(num_actions)[game_id]).astype(np.int32)

    def frames():
        return rng.integers(0, observation.max_value + 1, (*leading, *observation.shape),
                            dtype=np.uint8)

    return Transition(
        observation=frames(),
        action=action,
        reward=rng.uniform(-1, 1, leading).astype(np.float32),
        discount=np.full(leading, 0.99, np.float32),
        next_observation=frames(),
        game_id=game_id,
    )


def xla_flops(computation) -> float:
    """FLOPs from XLA's cost analysis of a lowered or compiled computation (nan if unavailable).

    A compiled computation counts what runs after XLA's optimisations; a lowered one counts the
    program as written, without the cost of compiling it (within ~10% for our update step)."""
    analysis = computation.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", float("nan")))


def interleaved(contenders: dict[str, Callable[[int], dict | None]], blocks: int,
                calls_per_block: int, progress=None) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each contender, one value per block, wall-clock and CPU.

    Each contender is `run(n)`: it makes n calls and waits for the last result (so
    asynchronous dispatch overlaps within a block as it would in a training loop).  A
    contender running in another process returns its own {'wall': s, 'cpu': s} for the n
    calls; otherwise this process's wall-clock and CPU time are taken.  Every block times
    `calls_per_block` calls of every contender, in an order that rotates from block to block,
    so slow phases of a shared machine hit all contenders alike.

    Returns:
      {'wall': {name: [seconds per call, per block]}, 'cpu': {...}}.
    """
    names = list(contenders)
    seconds: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in names},
                                                  "cpu": {n: [] for n in names}}
    for block in range(blocks):
        order = names[block % len(names):] + names[:block % len(names)]
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            reported = contenders[name](calls_per_block)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if reported is not None:
                wall, cpu = reported["wall"], reported["cpu"]
            seconds["wall"][name].append(wall / calls_per_block)
            seconds["cpu"][name].append(cpu / calls_per_block)
            if progress is not None:
                progress.update(1)
    return seconds


def paired_ratio(seconds: dict, slower: str, faster: str) -> dict:
    """How many times faster `faster` is than `slower`: medians of the per-block time ratios,
    wall-clock (the headline) and CPU time (robust to other load on a shared machine)."""
    out = {}
    for clock in ("wall", "cpu"):
        ratios = [s / f for s, f in zip(seconds[clock][slower], seconds[clock][faster])]
        out[clock] = median(ratios)
        if clock == "wall":
            out["wall_min"], out["wall_max"] = min(ratios), max(ratios)
    return out


def update_runner(networks, config, batch) -> Callable[[int], None]:
    """`run(n)`: n calls of our jitted update on `batch`, from a fresh state (kept between
    calls), waiting for the last one."""
    import jax

    from scaled_ql.agents.scaled_ql import init_training_state, make_update_fn

    update = make_update_fn(networks, config)
    holder = [init_training_state(networks, config, jax.random.PRNGKey(0))]

    def run(n):
        state = holder[0]
        for _ in range(n):
            state, metrics = update(state, batch)
        jax.block_until_ready(metrics["loss"])
        holder[0] = state

    return run


def write_results(name: str, rows) -> pathlib.Path:
    """benchmarks/results/<name>.json with the date and machine next to the rows."""
    import json

    out = RESULTS_DIR / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": now(), "machine": machine(), "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return out


def make_our_runners(torso: str = "nature", batch_size: int = 32, sgd_steps: int = 1,
                     compute_dtype: str = "float32",
                     num_actions: Sequence[int] = DEMO_NUM_ACTIONS, network=None,
                     observation: ObservationSpec = ATARI_OBSERVATION) -> dict:
    """Our contenders on the demo learner config, compiled and warmed up.

    `network` (a NetworkConfig) replaces the demo's network (then `torso` is not used), and
    `observation` is the spec of the batches (MinAtar's for a MinAtar network).

    Returns a dict with 'runners' ({'ours_learner': ScaledQLLearner.step, 'ours_update': the
    bare jitted update, 'ours_update_double_q': the same with double_q=True}, each `run(n)`),
    'networks', 'config', 'config_double_q', 'batch' ([S, B]) and 'facts' (FLOPs, params).
    """
    import itertools

    import jax
    from acme.utils import loggers

    from scaled_ql.agents.scaled_ql import init_training_state, make_sgd_step
    from scaled_ql.agents.scaled_ql.learner import ScaledQLLearner
    from scaled_ql.networks import make_networks

    settings = dict(num_sgd_steps_per_step=sgd_steps, compute_dtype=compute_dtype,
                    **({"network": network} if network is not None else {}))
    base = demo_config(torso, batch_size, **settings)
    double = demo_config(torso, batch_size, double_q=True, **settings)
    networks = make_networks(base.network, num_actions, observation)
    batch = random_batch(np.random.default_rng(0), (sgd_steps, batch_size), num_actions,
                         observation)

    def bare(config):
        return update_runner(networks, config, batch)

    flat = jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    learner = ScaledQLLearner(networks, base, itertools.repeat(flat), jax.random.PRNGKey(0),
                              logger=loggers.NoOpLogger())  # as Acme's learner gets

    def run_learner(n):
        for _ in range(n):
            learner.step()

    runners = {"ours_learner": run_learner, "ours_update": bare(base),
               "ours_update_double_q": bare(double)}
    for run in runners.values():  # compile and warm up
        run(2)
    state = init_training_state(networks, base, jax.random.PRNGKey(0))
    one = jax.tree_util.tree_map(lambda x: x[0], batch)
    facts = {"params_m": networks.parameter_counts(state.params)["total"] / 1e6}
    for name, config in (("ours", base), ("ours_double_q", double)):
        compiled = jax.jit(make_sgd_step(networks, config)).lower(state, one).compile()
        facts[f"gflops_per_sgd_step_{name}"] = xla_flops(compiled) / 1e9
    return {"runners": runners, "networks": networks, "config": base,
            "config_double_q": double, "batch": batch, "facts": facts}


def xla_threads() -> int:
    """Threads XLA:CPU runs a computation on: one per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict:
    """CPU model, core counts, memory, OS, Python and JAX versions, load average."""
    import jax

    facts = {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": xla_threads()}
    try:  # psutil is not on the lent accelerator machines
        import psutil

        facts["physical_cores"] = psutil.cpu_count(logical=False)
        facts["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    device = jax.devices()[0]
    return {
        **facts,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_device": f"{device.platform}: {device.device_kind}",
        "load_average_1min": os.getloadavg()[0],
    }


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def resolve_commit(root: pathlib.Path, ref: str) -> str:
    """The short hash of commit `ref` of the repository at `root` (ValueError if none)."""
    found = subprocess.run(["git", "rev-parse", "--short", "--verify", "--quiet",
                            f"{ref}^{{commit}}"], cwd=root, capture_output=True, text=True)
    if found.returncode != 0:
        raise ValueError(f"--base: {ref!r} is not a commit of {root}")
    return found.stdout.strip()


@contextlib.contextmanager
def commit_worktree(root: pathlib.Path, commit: str, path: pathlib.Path) -> Iterator[pathlib.Path]:
    """`commit` checked out at `path` (a detached git worktree of `root`), removed on exit:
    the base side of the A/B benchmarks."""
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=root,
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root,
                       capture_output=True)
