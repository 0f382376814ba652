"""Child process of benchmarks/d3rlpy_side_by_side.py: times d3rlpy DiscreteCQL updates.

Runs in the benchmark's own virtual environment (Python 3.11, torch CPU, d3rlpy), never in the
project's: it imports nothing from scaled_ql.  The network is our demo network rebuilt in
PyTorch: the Nature CNN convolutions (32x8/4, 64x4/2, 64x3/1, ReLU), the learned spatial
embedding (one [7, 7] map per channel, summed over space), a shared ReLU layer of
`--feature-size` units and feature normalisation to unit L2 norm; then d3rlpy's own Q-function
head for `--num-actions` actions ('qr': quantile regression with `--n-quantiles` outputs per
action, the distributional counterpart of our C51 head; 'mean': one Q-value per action,
DiscreteCQL's default).

Protocol (one JSON object per line): after building and warming up it prints
{"ready": true, ...}; then for each {"run": n, "variant": name} read from stdin it runs n
updates of that variant on one fixed batch and prints {"wall": s, "cpu": s} (seconds for the
n updates); {"quit": true} ends it.
"""

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import torch
from torch import nn

import d3rlpy
from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
from d3rlpy.models.torch import Encoder


class NatureSpatialEncoder(Encoder):
    """Our demo torso in PyTorch (NCHW): convolutions, spatial embedding, ReLU layer, norm."""

    def __init__(self, observation_shape, feature_size: int):
        super().__init__()
        channels = observation_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 8, 4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 1), nn.ReLU(),
        )
        with torch.no_grad():
            _, c, h, w = self.convs(torch.zeros(1, *observation_shape)).shape  # [1, 64, 7, 7]
        self.embedding = nn.Parameter(torch.randn(c, h, w) / np.sqrt(h * w))
        self.feed_forward = nn.Linear(c, feature_size)

    def forward(self, x):
        h = self.convs(x / 255.0)  # [B, 64, 7, 7]
        h = (h * self.embedding).sum(dim=(2, 3))  # [B, 64]
        h = torch.relu(self.feed_forward(h))  # [B, D]
        return h / torch.sqrt((h * h).sum(dim=1, keepdim=True) + 1e-12)


@dataclasses.dataclass()
class NatureSpatialEncoderFactory(EncoderFactory):
    feature_size: int = 256

    def create(self, observation_shape):
        return NatureSpatialEncoder(observation_shape, self.feature_size)

    @staticmethod
    def get_type() -> str:
        return "scaled_ql_nature_spatial"


def make_algo(variant: str, args):
    if variant == "qr":
        q_func = d3rlpy.models.QRQFunctionFactory(n_quantiles=args.n_quantiles)
    else:
        q_func = d3rlpy.models.MeanQFunctionFactory()
    algo = d3rlpy.algos.DiscreteCQLConfig(
        encoder_factory=NatureSpatialEncoderFactory(feature_size=args.feature_size),
        q_func_factory=q_func,
        batch_size=args.batch_size,
        learning_rate=2.5e-4,
        target_update_interval=250,
        alpha=0.1,
    ).create(device="cpu:0")
    algo.create_impl((4, 84, 84), args.num_actions)
    return algo


def make_batch(args):
    from d3rlpy.dataset import TransitionMiniBatch

    rng = np.random.default_rng(0)
    b = args.batch_size

    def column(values):
        return np.asarray(values, np.float32).reshape(b, 1)

    # Frames are uint8 on disk; d3rlpy's replay buffer hands float32 to the learner.
    frames = lambda: rng.integers(0, 256, (b, 4, 84, 84)).astype(np.float32)  # noqa: E731
    return TransitionMiniBatch(
        observations=frames(),
        actions=column(rng.integers(0, args.num_actions, b)),
        rewards=column(rng.uniform(-1, 1, b)),
        next_observations=frames(),
        next_actions=column(rng.integers(0, args.num_actions, b)),
        terminals=column(np.zeros(b)),
        intervals=column(np.ones(b)),
        transitions=[],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-actions", type=int, default=18)
    parser.add_argument("--n-quantiles", type=int, default=51)
    parser.add_argument("--feature-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["qr", "mean"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    register_encoder_factory(NatureSpatialEncoderFactory)
    torch.manual_seed(0)
    batch = make_batch(args)
    algos = {variant: make_algo(variant, args) for variant in args.variants}
    params = {v: sum(p.numel() for p in a.impl.q_function.parameters())
              for v, a in algos.items()}
    for algo in algos.values():
        for _ in range(3):
            algo.update(batch)
    print(json.dumps({"ready": True, "torch": torch.__version__, "d3rlpy": d3rlpy.__version__,
                      "threads": torch.get_num_threads(), "params": params}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        algo = algos[request["variant"]]
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(request["run"]):
            metrics = algo.update(batch)
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                          "loss": float(metrics["loss"])}), flush=True)


if __name__ == "__main__":
    main()
