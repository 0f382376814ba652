"""Our learner next to d3rlpy's DiscreteCQL (PyTorch), same network and batch, alternating runs.

d3rlpy needs Python 3.11 and torch, which do not fit the project's Python 3.10 stack, so it
runs in its own virtual environment, `benchmarks/.d3rlpy-venv` (created on first use with the
machine's Python 3.11: torch from the local CPU wheel, d3rlpy from the package index), in a
child process (`benchmarks/d3rlpy_child.py`) that rebuilds our network in PyTorch under
d3rlpy's Q-function heads: 'qr' (quantile regression, 51 quantiles per action: distributional
like our C51 heads) and 'mean' (DiscreteCQL's default scalar head).  DiscreteCQL is double DQN
+ CQL(H).  The network (`--network`, `NETWORKS`):

- 'nature': the ALE demo network (Nature CNN, spatial embedding, 256-wide ReLU layer, feature
  norm) on [84, 84, 4] frames, heads for the 3 demo games (18 actions in d3rlpy);
- 'minatar_S' ... 'minatar_XL': `MINATAR_NETWORKS[size]` (the MinAtar ResNet: 3x3 stride-1
  stem and residual blocks with GroupNorm, spatial embedding, shared layer, feature norm) on
  [10, 10, 10] object maps, heads for 4 games of 6 actions.

`ratio_vs_d3rlpy` (the headline) = `ScaledQLLearner.step()` on the demo learner config against
DiscreteCQL as shipped (mean head); `ratio_like_for_like_vs_d3rlpy_qr` = our double-Q update
against the QR head: the same network work and a distributional head on both sides.

Timed blocks alternate between this process (our update) and the child (d3rlpy updates), so
only one of them runs at a time and each gets all cores.  torch gets as many threads as XLA
uses, and `OMP_WAIT_POLICY=PASSIVE`: with OpenMP's default spin-waiting, torch ran 20-50x
slower on this shared, oversubscribed 2-core machine (threads spin at barriers while the
thread they wait for is descheduled); passive waiting is d3rlpy's best setting here.

    python -m benchmarks.d3rlpy_side_by_side [--batch-sizes 32] [--blocks 7]
    python -m benchmarks.d3rlpy_side_by_side --network minatar_M --batch-sizes 64
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

from benchmarks import common

HERE = pathlib.Path(__file__).parent
VENV = HERE / ".d3rlpy-venv"
CHILD = HERE / "d3rlpy_child.py"
TORCH_WHEEL = pathlib.Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
D3RLPY_PIN = "d3rlpy==2.8.1"
_MARKER = ".scaled-ql-bench-installed"


class Unavailable(RuntimeError):
    """d3rlpy cannot run here (no Python 3.11, no torch wheel, install failed)."""


def find_python311() -> str:
    """A Python 3.11 interpreter: $D3RLPY_PYTHON, python3.11, python3, pyenv's 3.11.x."""
    candidates = [os.environ.get("D3RLPY_PYTHON"), shutil.which("python3.11"),
                  shutil.which("python3")]
    pyenv_root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.11*/bin/python3"))
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if version == "True":
            return candidate
    raise Unavailable("no Python 3.11 found (set D3RLPY_PYTHON=/path/to/python3.11)")


def ensure_venv(venv: pathlib.Path = VENV, wheel: pathlib.Path = TORCH_WHEEL) -> pathlib.Path:
    """The venv's python, creating the venv and installing torch + d3rlpy when missing."""
    python = venv / "bin" / "python"
    wanted = f"{wheel.name} {D3RLPY_PIN}\n"
    marker = venv / _MARKER
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if not wheel.exists():
        raise Unavailable(f"torch wheel {wheel} is missing")
    if not python.exists():
        print(f">> creating {venv} (d3rlpy + torch CPU, Python 3.11)", flush=True)
        subprocess.run([find_python311(), "-m", "venv", str(venv)], check=True)
    print(f">> installing {wheel.name} and {D3RLPY_PIN} into {venv}", flush=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel),
                             D3RLPY_PIN], capture_output=True, text=True)
    if result.returncode:
        raise Unavailable(f"pip install failed: {result.stderr.strip()[-2000:]}")
    marker.write_text(wanted)
    return python


class D3rlpyChild:
    """The child process; `run(variant, n)` times n DiscreteCQL updates there."""

    def __init__(self, python: pathlib.Path, batch_size: int, threads: int,
                 variants=("qr", "mean"), num_actions: int = 18, network_args=()):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
        self._process = subprocess.Popen(
            [str(python), str(CHILD), "--batch-size", str(batch_size), "--threads", str(threads),
             "--num-actions", str(num_actions), "--variants", *variants, *network_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env, cwd=HERE)
        self.info = self._read()
        if not self.info.get("ready"):
            raise Unavailable(f"d3rlpy child did not start: {self.info}")

    def _read(self) -> dict:
        while True:
            line = self._process.stdout.readline()
            if not line:
                raise Unavailable(f"d3rlpy child exited (code {self._process.wait()})")
            if line.startswith("{"):
                return json.loads(line)

    def run(self, variant: str, n: int) -> dict:
        self._process.stdin.write(json.dumps({"run": n, "variant": variant}) + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._process.stdin.write('{"quit": true}\n')
                self._process.stdin.flush()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()


NETWORKS = ("nature", "minatar_S", "minatar_M", "minatar_L", "minatar_XL")


def network_setup(network: str) -> dict:
    """Our side (`make_our_runners` arguments) and d3rlpy's (child arguments) of a network.

    'nature': the ALE demo network (Nature CNN, 256-wide layer) for the 3 demo games;
    'minatar_<size>': `MINATAR_NETWORKS[size]` (the MinAtar ResNet) for 4 MinAtar-shaped games
    of 6 actions.
    """
    if network == "nature":
        return {"ours": dict(torso="nature"),
                "child": ["--network", "nature", "--feature-size", "256"],
                "num_actions": common.DEMO_NUM_ACTIONS}
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    from scaled_ql.networks import MINATAR_NETWORKS
    from scaled_ql.networks.torsos import MINATAR_RESNET_CHANNELS, scale_width
    from scaled_ql.types import MINATAR_OBSERVATION

    config = MINATAR_NETWORKS[network.removeprefix("minatar_")]
    channels = scale_width(MINATAR_RESNET_CHANNELS, config.width_multiplier)
    return {"ours": dict(network=config, observation=MINATAR_OBSERVATION),
            "child": ["--network", "minatar_resnet", "--channels", str(channels),
                      "--blocks", str(config.num_blocks), "--groups", str(config.num_groups),
                      "--feature-size", str(config.feed_forward_size)],
            "num_actions": common.MINATAR_NUM_ACTIONS}


def measure(batch_size: int = 32, blocks: int = 7, calls_per_block: int = 6,
            progress=None, network: str = "nature") -> dict:
    """Samples/s of ours and d3rlpy's (median over alternating blocks) and paired ratios, on
    `network` (one of NETWORKS; see `network_setup`)."""
    import functools

    setup = network_setup(network)
    python = ensure_venv()
    threads = common.xla_threads()
    num_actions = setup["num_actions"]
    ours = common.make_our_runners(batch_size=batch_size, num_actions=num_actions,
                                   **setup["ours"])
    runners = {name: ours["runners"][name] for name in ("ours_learner", "ours_update_double_q")}
    child = D3rlpyChild(python, batch_size, threads, num_actions=max(num_actions),
                        network_args=setup["child"])
    try:
        contenders = {**runners,
                      "d3rlpy_qr": functools.partial(child.run, "qr"),
                      "d3rlpy_mean": functools.partial(child.run, "mean")}
        seconds = common.interleaved(contenders, blocks, calls_per_block, progress)
    finally:
        child.close()
    row = {"network": network, "torso": ours["config"].network.torso, "batch_size": batch_size,
           "num_games": len(num_actions), "threads": threads, "blocks": blocks,
           "calls_per_block": calls_per_block, "torch": child.info.get("torch"),
           "d3rlpy": child.info.get("d3rlpy"), "d3rlpy_params": child.info.get("params"),
           **ours["facts"]}
    for name, values in seconds["wall"].items():
        row[f"{name}_samples_per_s"] = batch_size / common.median(values)
        row[f"{name}_samples_per_cpu_s"] = batch_size / common.median(seconds["cpu"][name])
    for variant in ("qr", "mean"):
        row[f"ratio_vs_d3rlpy_{variant}"] = common.paired_ratio(
            seconds, f"d3rlpy_{variant}", "ours_learner")
        row[f"ratio_like_for_like_vs_d3rlpy_{variant}"] = common.paired_ratio(
            seconds, f"d3rlpy_{variant}", "ours_update_double_q")
    # The headline: DiscreteCQL as shipped (its default mean head), which is also the cheaper.
    row["ratio_vs_d3rlpy"] = row["ratio_vs_d3rlpy_mean"]
    row["seconds_per_call"] = seconds
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", choices=NETWORKS, default="nature")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--calls-per-block", type=int, default=6)
    args = parser.parse_args(argv)
    rows = []
    for batch_size in args.batch_sizes:
        try:
            row = measure(batch_size, args.blocks, args.calls_per_block,
                          network=args.network)
        except Unavailable as error:
            print(f"not run: {error}", file=sys.stderr)
            return []
        rows.append(row)
        print(f"{args.network} B{batch_size}: " + ", ".join(
            f"{k.removesuffix('_samples_per_s')} {v:,.0f}" for k, v in row.items()
            if k.endswith("_samples_per_s")) + " samples/s (wall); ours/d3rlpy "
            f"{row['ratio_vs_d3rlpy']['cpu']:.2f}x cpu, {row['ratio_vs_d3rlpy']['wall']:.2f}x "
            "wall (vs DiscreteCQL's default mean head)", flush=True)
    common.write_results("d3rlpy_side_by_side", rows)
    return rows


if __name__ == "__main__":
    main()
