"""Child process of benchmarks/d3rlpy_side_by_side.py: times d3rlpy DiscreteCQL updates.

Runs in the benchmark's own virtual environment (Python 3.11, torch CPU, d3rlpy), never in the
project's: it imports nothing from scaled_ql.  The network is one of ours rebuilt in PyTorch
(`--network`):

- 'nature' (the ALE demo network): the Nature CNN convolutions (32x8/4, 64x4/2, 64x3/1, ReLU)
  on [4, 84, 84] frames / 255;
- 'minatar_resnet' (the MinAtar network): a 3x3 stride-1 stem convolution, GroupNorm, ReLU, then
  `--blocks` residual blocks (3x3 conv, GroupNorm, ReLU, 3x3 conv, GroupNorm with zero-initial
  scale, add, ReLU), all `--channels` wide, on [10, 10, 10] object maps (no scaling: max 1);

then the learned spatial embedding (one map per channel, summed over space), a shared ReLU
layer of `--feature-size` units and feature normalisation to unit L2 norm; then d3rlpy's own
Q-function head for `--num-actions` actions ('qr': quantile regression with `--n-quantiles`
outputs per action, the distributional counterpart of our C51 head; 'mean': one Q-value per
action, DiscreteCQL's default).

Protocol (one JSON object per line): after building and warming up it prints
{"ready": true, ...}; then for each {"run": n, "variant": name} read from stdin it runs n
updates of that variant on one fixed batch and prints {"wall": s, "cpu": s} (seconds for the
n updates); {"quit": true} ends it.
"""

import argparse
import dataclasses
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

import d3rlpy
from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
from d3rlpy.models.torch import Encoder


NETWORKS = {  # name -> (observation shape [C, H, W], the value a frame's pixels are divided by)
    "nature": ((4, 84, 84), 255.0),
    "minatar_resnet": ((10, 10, 10), 1.0),
}


def nature_trunk(in_channels: int, args) -> nn.Module:
    """Nature DQN convolutions: [B, 4, 84, 84] -> [B, 64, 7, 7]."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 8, 4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 1), nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 stride-1 convolutions with GroupNorm, post-activation, identity shortcut."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv_0 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm_0 = nn.GroupNorm(groups, channels)
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm_1 = nn.GroupNorm(groups, channels)
        nn.init.zeros_(self.norm_1.weight)  # the block starts as the identity

    def forward(self, x):
        y = torch.relu(self.norm_0(self.conv_0(x)))
        return torch.relu(x + self.norm_1(self.conv_1(y)))


def minatar_resnet_trunk(in_channels: int, args) -> nn.Module:
    """[B, 10, 10, 10] -> [B, channels, 10, 10]: stem and residual blocks, no downsampling."""
    groups = math.gcd(args.groups, args.channels)
    return nn.Sequential(
        nn.Conv2d(in_channels, args.channels, 3, padding=1, bias=False),
        nn.GroupNorm(groups, args.channels), nn.ReLU(),
        *(ResidualBlock(args.channels, groups) for _ in range(args.blocks)),
    )


TRUNKS = {"nature": nature_trunk, "minatar_resnet": minatar_resnet_trunk}


class SpatialEncoder(Encoder):
    """One of our torsos in PyTorch (NCHW): trunk, spatial embedding, ReLU layer, norm."""

    def __init__(self, observation_shape, args):
        super().__init__()
        self.trunk = TRUNKS[args.network](observation_shape[0], args)
        self.scale = 1.0 / NETWORKS[args.network][1]
        with torch.no_grad():
            _, c, h, w = self.trunk(torch.zeros(1, *observation_shape)).shape  # [1, C, H, W]
        self.embedding = nn.Parameter(torch.randn(c, h, w) / np.sqrt(h * w))
        self.feed_forward = nn.Linear(c, args.feature_size)

    def forward(self, x):
        h = self.trunk(x * self.scale)  # [B, C, H, W]
        h = (h * self.embedding).sum(dim=(2, 3))  # [B, C]
        h = torch.relu(self.feed_forward(h))  # [B, D]
        return h / torch.sqrt((h * h).sum(dim=1, keepdim=True) + 1e-12)


@dataclasses.dataclass()
class SpatialEncoderFactory(EncoderFactory):
    args: argparse.Namespace = None

    def create(self, observation_shape):
        return SpatialEncoder(observation_shape, self.args)

    @staticmethod
    def get_type() -> str:
        return "scaled_ql_spatial"


def make_algo(variant: str, args):
    if variant == "qr":
        q_func = d3rlpy.models.QRQFunctionFactory(n_quantiles=args.n_quantiles)
    else:
        q_func = d3rlpy.models.MeanQFunctionFactory()
    algo = d3rlpy.algos.DiscreteCQLConfig(
        encoder_factory=SpatialEncoderFactory(args),
        q_func_factory=q_func,
        batch_size=args.batch_size,
        learning_rate=2.5e-4,
        target_update_interval=250,
        alpha=0.1,
    ).create(device="cpu:0")
    algo.create_impl(NETWORKS[args.network][0], args.num_actions)
    return algo


def make_batch(args):
    from d3rlpy.dataset import TransitionMiniBatch

    rng = np.random.default_rng(0)
    b = args.batch_size

    def column(values):
        return np.asarray(values, np.float32).reshape(b, 1)

    shape, max_value = NETWORKS[args.network]
    # Frames are uint8 on disk; d3rlpy's replay buffer hands float32 to the learner.
    frames = lambda: rng.integers(0, int(max_value) + 1, (b, *shape)).astype(  # noqa: E731
        np.float32)
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
    parser.add_argument("--network", choices=sorted(NETWORKS), default="nature")
    parser.add_argument("--channels", type=int, default=64, help="minatar_resnet width")
    parser.add_argument("--blocks", type=int, default=2, help="minatar_resnet residual blocks")
    parser.add_argument("--groups", type=int, default=8, help="minatar_resnet GroupNorm groups")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-actions", type=int, default=18)
    parser.add_argument("--n-quantiles", type=int, default=51)
    parser.add_argument("--feature-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["qr", "mean"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    register_encoder_factory(SpatialEncoderFactory)
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
