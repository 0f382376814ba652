"""Convolutional torsos and the shared representation of the Scaled QL network.

Three families, each mapping float images [B, 84, 84, 4] in [0, 1] to a feature map:

- `NatureCNN`: the DQN network of Mnih et al. 2015 (3 convolutions), the classic baseline.
- `ImpalaResNet`: the 15-layer residual network of Espeholt et al. 2018, a stronger baseline.
- `ResNet`: ResNet-18/34 (basic blocks) and ResNet-50/101 (bottleneck blocks) of He et al. 2016
  with GroupNorm in place of BatchNorm, as in Scaled QL (BatchNorm's batch statistics mix games
  and change between the online and target networks).

`Torso` wraps one of them with the rest of the shared representation: a spatial reduction (the
paper's learned spatial embedding by default), a shared feed-forward layer and feature
normalization.  Every convolution's width scales with `width_multiplier`.
"""

import math
from collections.abc import Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp

# ResNet layouts: blocks per stage and whether the blocks are bottlenecks (He et al. 2016).
RESNET_LAYOUTS: dict[str, tuple[tuple[int, ...], bool]] = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
}
_RESNET_STAGE_CHANNELS = (64, 128, 256, 512)
_BOTTLENECK_EXPANSION = 4


def scale_width(channels: int, width_multiplier: float) -> int:
    """Channel count of a layer whose published width is `channels`."""
    return max(1, round(channels * width_multiplier))


def group_norm(x: jax.Array, num_groups: int, name: str, zero_init: bool = False) -> jax.Array:
    """GroupNorm computed in float32 whatever the activation dtype.

    Uses gcd(num_groups, channels) groups so that narrow layers (small width multipliers) stay
    valid.  `zero_init` starts the scale at 0, making a residual block the identity at
    initialisation (Goyal et al. 2017), which keeps deep ResNets stable early in training.
    """
    groups = math.gcd(num_groups, x.shape[-1])
    scale_init = jnp.zeros if zero_init else jnp.ones
    norm = hk.GroupNorm(groups=groups, scale_init=scale_init, name=name)
    return norm(x.astype(jnp.float32)).astype(x.dtype)


def space_to_depth_conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    """The VALID convolution of x [B, H, W, C] with w [k, k, C, O] at `stride`, as a stride-1
    convolution over stride x stride blocks: same result, faster on XLA:CPU.

    Each block of stride x stride pixels becomes one pixel of stride^2 * C channels, and the
    kernel is rearranged to match ([k/s, k/s, s^2 C, O]).  XLA:CPU runs the strided form's input
    gradient (a convolution with input dilation) on a slow generic path: 15 ms against 2.5 ms
    for the forward pass of the Nature CNN's second layer at batch 32 on 2 cores; the blocked
    form needs neither dilation nor strides (and the stride-4 first layer's forward pass ran
    1.7x faster blocked).  Requires k divisible by the stride.
    """
    s = stride
    k = w.shape[0]
    if w.shape[1] != k or k % s:
        raise ValueError(f"space_to_depth_conv needs a square kernel divisible by the stride, "
                         f"got kernel {w.shape[:2]} and stride {s}")
    b, h, width, c = x.shape
    out_h, out_w = (h - k) // s + 1, (width - k) // s + 1
    used_h, used_w = (out_h - 1) * s + k, (out_w - 1) * s + k  # rows/columns the kernel reads
    x = x[:, :used_h, :used_w]
    x = x.reshape(b, used_h // s, s, used_w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, used_h // s, used_w // s, s * s * c)  # [B, H/s, W/s, s*s*C]
    w = w.reshape(k // s, s, k // s, s, c, -1).transpose(0, 2, 1, 3, 4, 5)
    w = w.reshape(k // s, k // s, s * s * c, -1)  # [k/s, k/s, s*s*C, O]
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


class ValidConv2D(hk.Module):
    """A VALID 2-D convolution with bias, parameterised exactly like `hk.Conv2D` (same names
    'w' [k, k, C, O] and 'b' [O], same initialisation), computed by `space_to_depth_conv`."""

    def __init__(self, output_channels: int, kernel: int, stride: int, name: str):
        super().__init__(name=name)
        self._output_channels = output_channels
        self._kernel = kernel
        self._stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:
        w_shape = (self._kernel, self._kernel, x.shape[-1], self._output_channels)
        stddev = 1.0 / math.sqrt(math.prod(w_shape[:-1]))  # hk.Conv2D's default (fan-in)
        w = hk.get_parameter("w", w_shape, x.dtype,
                             init=hk.initializers.TruncatedNormal(stddev=stddev))
        b = hk.get_parameter("b", (self._output_channels,), x.dtype, init=jnp.zeros)
        return space_to_depth_conv(x, w, self._stride) + b


class NatureCNN(hk.Module):
    """Nature DQN convolutions: [B, 84, 84, C] -> [B, 7, 7, 64 * width].

    The parameters are those of three `hk.Conv2D`s; the strided layers run space-to-depth
    (`space_to_depth_conv`), which alone made the demo learner's SGD step about 1.35x faster on
    2 CPU cores.
    """

    def __init__(self, width_multiplier: float = 1.0, name: str = "nature_cnn"):
        super().__init__(name=name)
        self._width = width_multiplier

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (channels, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            conv = ValidConv2D(scale_width(channels, self._width), kernel, stride,
                               name=f"conv_{i}")
            x = jax.nn.relu(conv(x))
        return x


class ImpalaResNet(hk.Module):
    """IMPALA ResNet: 3 stacks of (conv, max-pool, 2 residual blocks) -> [B, 11, 11, 32 * w]."""

    def __init__(self, width_multiplier: float = 1.0, channels: Sequence[int] = (16, 32, 32),
                 name: str = "impala_resnet"):
        super().__init__(name=name)
        self._channels = tuple(scale_width(c, width_multiplier) for c in channels)

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, channels in enumerate(self._channels):
            x = hk.Conv2D(channels, 3, name=f"stack_{i}_conv")(x)
            x = hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
            for j in range(2):
                y = hk.Conv2D(channels, 3, name=f"stack_{i}_block_{j}_conv_0")(jax.nn.relu(x))
                y = hk.Conv2D(channels, 3, name=f"stack_{i}_block_{j}_conv_1")(jax.nn.relu(y))
                x = x + y
        return jax.nn.relu(x)


class _ResidualBlock(hk.Module):
    """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) block with GroupNorm, post-activation."""

    def __init__(self, channels: int, stride: int, bottleneck: bool, num_groups: int, name: str):
        super().__init__(name=name)
        self._channels = channels
        self._stride = stride
        self._bottleneck = bottleneck
        self._num_groups = num_groups

    def __call__(self, x: jax.Array) -> jax.Array:
        c, s, g = self._channels, self._stride, self._num_groups
        out_channels = c * _BOTTLENECK_EXPANSION if self._bottleneck else c
        shortcut = x
        if s != 1 or x.shape[-1] != out_channels:
            shortcut = hk.Conv2D(out_channels, 1, s, with_bias=False, name="shortcut_conv")(x)
            shortcut = group_norm(shortcut, g, "shortcut_norm")
        if self._bottleneck:
            layers = ((c, 1, 1), (c, 3, s), (out_channels, 1, 1))
        else:
            layers = ((c, 3, s), (c, 3, 1))
        for i, (channels, kernel, stride) in enumerate(layers):
            x = hk.Conv2D(channels, kernel, stride, with_bias=False, name=f"conv_{i}")(x)
            last = i == len(layers) - 1
            x = group_norm(x, g, f"norm_{i}", zero_init=last)
            if not last:
                x = jax.nn.relu(x)
        return jax.nn.relu(x + shortcut)


class ResNet(hk.Module):
    """ResNet-18/34/50/101 with GroupNorm: [B, 84, 84, C] -> [B, 3, 3, 512 or 2048 (* width)].

    Stem: 7x7/2 convolution, GroupNorm, ReLU, 3x3/2 max-pool; then four stages (strides 1, 2,
    2, 2) of 64, 128, 256, 512 channels (x4 at a bottleneck's output).
    """

    def __init__(self, layout: str, width_multiplier: float = 1.0, num_groups: int = 32,
                 name: str = "resnet"):
        super().__init__(name=name)
        if layout not in RESNET_LAYOUTS:
            raise ValueError(f"unknown ResNet layout {layout!r}, expected {list(RESNET_LAYOUTS)}")
        self._blocks, self._bottleneck = RESNET_LAYOUTS[layout]
        self._width = width_multiplier
        self._num_groups = num_groups

    def __call__(self, x: jax.Array) -> jax.Array:
        x = hk.Conv2D(scale_width(64, self._width), 7, 2, with_bias=False, name="stem_conv")(x)
        x = jax.nn.relu(group_norm(x, self._num_groups, "stem_norm"))
        x = hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
        for stage, (num_blocks, channels) in enumerate(zip(self._blocks, _RESNET_STAGE_CHANNELS)):
            for block in range(num_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = _ResidualBlock(scale_width(channels, self._width), stride, self._bottleneck,
                                   self._num_groups, name=f"stage_{stage}_block_{block}")(x)
        return x


class SpatialEmbedding(hk.Module):
    """The paper's learned spatial embedding, replacing average pooling.

    The final feature map [B, H, W, C] is multiplied element-wise by learned parameters
    [H, W, C, K] and summed over space, giving [B, C * K].  Unlike average pooling, each channel
    keeps *where* it fired (a learned weighting per position), which matters on Atari.
    """

    def __init__(self, num_features: int = 1, name: str = "spatial_embedding"):
        super().__init__(name=name)
        self._num_features = num_features

    def __call__(self, feature_map: jax.Array) -> jax.Array:
        chex.assert_rank(feature_map, 4, custom_message="SpatialEmbedding wants [B, H, W, C]")
        _, h, w, c = feature_map.shape
        embedding = hk.get_parameter(
            "embedding", (h, w, c, self._num_features), jnp.float32,
            init=hk.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(h * w)),
        ).astype(feature_map.dtype)
        out = jnp.einsum("bhwc,hwck->bck", feature_map, embedding)  # [B, C, K]
        return out.reshape(out.shape[0], c * self._num_features)  # [B, C * K]


def feature_norm(features: jax.Array, epsilon: float = 1e-6) -> jax.Array:
    """Scales each row to unit L2 norm (DR3's feature normalization), computed in float32.

    `epsilon` keeps an all-zero row (every ReLU off) at zero instead of dividing by zero.
    """
    x = features.astype(jnp.float32)
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + epsilon**2)
    return (x / norm).astype(features.dtype)


def make_trunk(torso: str, width_multiplier: float, num_groups: int) -> hk.Module:
    """The convolutional trunk named by `torso` (one of NetworkConfig's TORSOS)."""
    if torso == "nature":
        return NatureCNN(width_multiplier)
    if torso == "impala":
        return ImpalaResNet(width_multiplier)
    return ResNet(torso, width_multiplier, num_groups)


class Torso(hk.Module):
    """The shared representation: trunk -> spatial reduction -> feed-forward -> feature norm.

    Everything here is shared by all games; fine-tuning freezes this module (parameters under
    'torso/') and trains only (new) heads.
    """

    def __init__(
        self,
        torso: str,
        width_multiplier: float,
        num_groups: int,
        spatial_reduction: str,
        spatial_embedding_features: int,
        feed_forward_size: int | None,
        use_feature_norm: bool,
        name: str = "torso",
    ):
        super().__init__(name=name)
        self._trunk_args = (torso, width_multiplier, num_groups)
        self._spatial_reduction = spatial_reduction
        self._spatial_embedding_features = spatial_embedding_features
        self._feed_forward_size = feed_forward_size
        self._use_feature_norm = use_feature_norm

    def __call__(self, images: jax.Array) -> jax.Array:
        """Float images [B, 84, 84, C] in [0, 1] -> features [B, D]."""
        x = make_trunk(*self._trunk_args)(images)  # [B, H, W, C]
        if self._spatial_reduction == "spatial_embedding":
            x = SpatialEmbedding(self._spatial_embedding_features)(x)  # [B, C * K]
        elif self._spatial_reduction == "avg_pool":
            x = jnp.mean(x, axis=(1, 2))  # [B, C]
        else:
            x = x.reshape(x.shape[0], -1)  # [B, H * W * C]
        if self._feed_forward_size is not None:
            x = jax.nn.relu(hk.Linear(self._feed_forward_size, name="feed_forward")(x))  # [B, D]
        if self._use_feature_norm:
            x = feature_norm(x)
        return x
