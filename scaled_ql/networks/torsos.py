"""Convolutional torsos and the shared representation of the Scaled QL network.

Five trunks, each mapping float images [B, H, W, C] in [0, 1] to a feature map.  For Atari
([84, 84, 4] frames):

- `NatureCNN`: the DQN network of Mnih et al. 2015 (3 convolutions), the classic baseline.
- `ImpalaResNet`: the 15-layer residual network of Espeholt et al. 2018, a stronger baseline.
- `ResNet`: ResNet-18/34 (basic blocks) and ResNet-50/101 (bottleneck blocks) of He et al. 2016
  with GroupNorm in place of BatchNorm, as in Scaled QL (BatchNorm's batch statistics mix games
  and change between the online and target networks).

For MinAtar's [10, 10, 10] object maps, where any downsampling would merge grid cells:

- `MinAtarResNet`: the same recipe without downsampling: a 3x3 stride-1 stem and `num_blocks`
  basic residual blocks with GroupNorm, every layer at full 10x10 resolution.
- `MinAtarDQN`: MinAtar's own network (Young & Tian 2019), the baseline: one 3x3 VALID
  convolution with 16 channels and ReLU (then flatten and a 128-unit layer, set in the config).

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


class GroupNorm(hk.Module):
    """GroupNorm (Wu & He 2018) over [B, H, W, C], computed in float32 whatever the input dtype.

    The parameters are `hk.GroupNorm`'s ('scale' and 'offset', [C]) and so is the function, but
    the statistics are gathered per channel over space first ([B, C] sums of x and x^2, one
    pass) and only then per group, and the output is one `x * a + b` pass with per-example,
    per-channel a and b.  XLA:CPU ran hk.GroupNorm's reductions over a [B, H * W, G, C / G]
    view and their gradients slowly: the MinAtar ResNet's SGD step (32 channels, batch 64) is
    1.19x faster this way (docs/PERFORMANCE.md), and its 5 GroupNorms now cost about 12% of
    the step, a few memory passes each.  The variance is E[x^2] - E[x]^2 (clamped at 0),
    accurate here because the statistics are float32 and the inputs are convolution outputs of
    moderate mean.
    """

    def __init__(self, groups: int, zero_init: bool = False, epsilon: float = 1e-5,
                 name: str | None = None):
        super().__init__(name=name)
        self._groups = groups
        self._zero_init = zero_init
        self._epsilon = epsilon

    def __call__(self, x: jax.Array) -> jax.Array:
        chex.assert_rank(x, 4, custom_message="GroupNorm wants [B, H, W, C]")
        b, c, g = x.shape[0], x.shape[-1], self._groups
        if c % g:
            raise ValueError(f"GroupNorm: {c} channels are not divisible into {g} groups")
        scale = hk.get_parameter("scale", (c,), jnp.float32,
                                 init=jnp.zeros if self._zero_init else jnp.ones)
        offset = hk.get_parameter("offset", (c,), jnp.float32, init=jnp.zeros)
        x32 = x.astype(jnp.float32)
        mean_c = jnp.mean(x32, axis=(1, 2))  # [B, C]
        mean_sq_c = jnp.mean(jnp.square(x32), axis=(1, 2))  # [B, C]
        mean = jnp.mean(mean_c.reshape(b, g, c // g), axis=-1, keepdims=True)  # [B, G, 1]
        mean_sq = jnp.mean(mean_sq_c.reshape(b, g, c // g), axis=-1, keepdims=True)
        inv_std = jax.lax.rsqrt(jnp.maximum(mean_sq - jnp.square(mean), 0.0) + self._epsilon)
        a = (inv_std * scale.reshape(g, c // g)).reshape(b, c)  # [B, C]
        shift = offset - (mean * inv_std * scale.reshape(g, c // g)).reshape(b, c)  # [B, C]
        return (x32 * a[:, None, None, :] + shift[:, None, None, :]).astype(x.dtype)


def group_norm(x: jax.Array, num_groups: int, name: str, zero_init: bool = False) -> jax.Array:
    """GroupNorm computed in float32 whatever the activation dtype.

    Uses gcd(num_groups, channels) groups so that narrow layers (small width multipliers) stay
    valid.  `zero_init` starts the scale at 0, making a residual block the identity at
    initialisation (Goyal et al. 2017), which keeps deep ResNets stable early in training.
    """
    groups = math.gcd(num_groups, x.shape[-1])
    return GroupNorm(groups, zero_init=zero_init, name=name)(x)


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


MINATAR_RESNET_CHANNELS = 32  # MinAtarResNet's width at width_multiplier 1
MINATAR_RESNET_BLOCKS = 2  # its depth when NetworkConfig.num_blocks is None
MINATAR_DQN_CHANNELS = 16  # MinAtar's own network (Young & Tian 2019)


class MinAtarResNet(hk.Module):
    """ResNet for 10x10 inputs: [B, 10, 10, C] -> [B, 10, 10, 32 * width], no downsampling.

    Stem: 3x3 stride-1 SAME convolution, GroupNorm, ReLU; then `num_blocks` basic residual
    blocks (two 3x3 stride-1 convolutions with GroupNorm, post-activation, the last norm's
    scale starting at 0), all at the same width.  MinAtar objects are single grid cells, so
    there is no strided layer or pooling: each layer sees the whole 10x10 grid and the
    receptive field grows by 2 cells per convolution (a 2-block network sees 11x11).
    """

    def __init__(self, width_multiplier: float = 1.0, num_blocks: int = MINATAR_RESNET_BLOCKS,
                 num_groups: int = 32, name: str = "minatar_resnet"):
        super().__init__(name=name)
        self._channels = scale_width(MINATAR_RESNET_CHANNELS, width_multiplier)
        self._num_blocks = num_blocks
        self._num_groups = num_groups

    def __call__(self, x: jax.Array) -> jax.Array:
        c = self._channels
        x = hk.Conv2D(c, 3, 1, padding="SAME", with_bias=False, name="stem_conv")(x)
        x = jax.nn.relu(group_norm(x, self._num_groups, "stem_norm"))
        for block in range(self._num_blocks):
            x = _ResidualBlock(c, 1, False, self._num_groups, name=f"block_{block}")(x)
        return x  # [B, H, W, c]


class MinAtarDQN(hk.Module):
    """MinAtar's DQN convolution (Young & Tian 2019): [B, 10, 10, C] -> [B, 8, 8, 16 * width].

    One 3x3 stride-1 VALID convolution with bias and ReLU.  The rest of MinAtar's network
    (flatten, a 128-unit ReLU layer) is the Torso's 'flatten' reduction and feed-forward layer.
    """

    def __init__(self, width_multiplier: float = 1.0, name: str = "minatar_dqn"):
        super().__init__(name=name)
        self._channels = scale_width(MINATAR_DQN_CHANNELS, width_multiplier)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(hk.Conv2D(self._channels, 3, 1, padding="VALID", name="conv")(x))


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


def make_trunk(torso: str, width_multiplier: float, num_groups: int,
               num_blocks: int | None = None) -> hk.Module:
    """The convolutional trunk named by `torso` (one of NetworkConfig's TORSOS).

    `num_blocks` sets the depth of 'minatar_resnet' (None: MINATAR_RESNET_BLOCKS); the other
    trunks have fixed layouts and take None only.
    """
    if num_blocks is not None and torso != "minatar_resnet":
        raise ValueError(f"torso {torso!r} has a fixed depth; num_blocks must be None, "
                         f"got {num_blocks}")
    if torso == "nature":
        return NatureCNN(width_multiplier)
    if torso == "impala":
        return ImpalaResNet(width_multiplier)
    if torso == "minatar_resnet":
        blocks = MINATAR_RESNET_BLOCKS if num_blocks is None else num_blocks
        return MinAtarResNet(width_multiplier, blocks, num_groups)
    if torso == "minatar_dqn":
        return MinAtarDQN(width_multiplier)
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
        num_blocks: int | None = None,
        name: str = "torso",
    ):
        super().__init__(name=name)
        self._trunk_args = (torso, width_multiplier, num_groups, num_blocks)
        self._spatial_reduction = spatial_reduction
        self._spatial_embedding_features = spatial_embedding_features
        self._feed_forward_size = feed_forward_size
        self._use_feature_norm = use_feature_norm

    def __call__(self, images: jax.Array) -> jax.Array:
        """Float images [B, H, W, C] in [0, 1] -> features [B, D]."""
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
