"""`make_networks`: the Scaled QL network as a pair of pure functions, plus parameter counts.

    observation uint8 [B, H, W, C] --/max_value--> Torso (trunk, spatial reduction, feed-forward,
    feature norm) --> features [B, D] --> MultiGameHeads --> logits [B, A_max, N]

The observation's shape and scale come from the game suite's `ObservationSpec` (Atari: uint8
[84, 84, 4] in 0..255; MinAtar: [10, 10, 10] in 0..1).

Parameters are a Haiku dict whose top-level module names separate the parts: everything under
'torso/' is the shared representation, 'heads' holds the per-game heads.  Fine-tuning freezes
the first and adds a head; `parameter_counts` reports both.
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from scaled_ql.networks.heads import (
    MultiGameHeads,
    NetworkOutput,
    make_action_mask,
    masked_expected_q,
)
from scaled_ql.networks.torsos import Torso
from scaled_ql.types import ATARI_OBSERVATION, ObservationSpec

TORSOS = ("nature", "impala", "resnet18", "resnet34", "resnet50", "resnet101",
          "minatar_resnet", "minatar_dqn")
SPATIAL_REDUCTIONS = ("spatial_embedding", "avg_pool", "flatten")
HEADS_MODULE = "heads"
_COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
TORSO_MODULE = "torso"


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"NetworkConfig.{field}: {message}")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The Q-network: torso -> spatial reduction -> shared layer -> feature norm -> game heads.

    Attributes:
      torso: one of `TORSOS`.  For Atari's 84x84 frames: 'nature' is the Nature DQN CNN,
        'impala' the IMPALA ResNet (Espeholt et al. 2018), 'resnet18/34/50/101' the ResNets of
        He et al. 2016 with GroupNorm [paper: the scaling study goes IMPALA -> ResNet-34 -> 50
        -> 101; default 'resnet101', its largest].  For MinAtar's 10x10 maps:
        'minatar_resnet', the same recipe without downsampling (3x3 stride-1 stem, `num_blocks`
        residual blocks with GroupNorm, 32 channels at width 1; sizes in `MINATAR_NETWORKS`),
        and 'minatar_dqn', MinAtar's own network (Young & Tian 2019: one 3x3 convolution with
        16 channels; with spatial_reduction='flatten' and feed_forward_size=128 it is their
        network, `MINATAR_NETWORKS['dqn']`).
      width_multiplier: scales every convolution's channel count (rounded, at least 1).
        1.0 is the published width of each torso [default].
      num_blocks: residual blocks of 'minatar_resnet' (its depth); None means 2 [default,
        the 2-block network of the issue's speed probe].  The other torsos have fixed layouts
        and require None.
      num_groups: GroupNorm groups for the ResNets [paper: GroupNorm instead of BatchNorm;
        32 groups as in Wu & He 2018, default].  A layer with fewer channels, or a channel count
        not divisible by it, uses gcd(num_groups, channels) groups.
      spatial_reduction: how the final [H, W, C] map becomes a vector.  'spatial_embedding'
        [paper]: multiplied element-wise by learned [H, W, C, K] parameters and summed over
        space, giving C * K features; 'avg_pool': mean over space; 'flatten': the Nature DQN way.
      spatial_embedding_features: K above [default 1: the paper's description, one learned
        map per channel].
      feed_forward_size: width of the shared feed-forward layer (ReLU) after the reduction;
        None disables it [paper: present; 512 as in Nature DQN / Dopamine, default].
      feature_norm: scale the shared representation to unit L2 norm before the heads
        [paper, from DR3].
      num_atoms: atoms of the categorical return distribution [default 51, Dopamine C51].
      v_min: lowest atom [default -10, Dopamine/batch_rl C51 gin files].
      v_max: highest atom [default 10, same source].
    """

    torso: str = "resnet101"
    width_multiplier: float = 1.0
    num_blocks: int | None = None
    num_groups: int = 32
    spatial_reduction: str = "spatial_embedding"
    spatial_embedding_features: int = 1
    feed_forward_size: int | None = 512
    feature_norm: bool = True
    num_atoms: int = 51
    v_min: float = -10.0
    v_max: float = 10.0

    def __post_init__(self):
        _require(self.torso in TORSOS, "torso", f"got {self.torso!r}, expected one of {TORSOS}")
        _require(
            math.isfinite(self.width_multiplier) and self.width_multiplier > 0,
            "width_multiplier",
            f"must be a positive number, got {self.width_multiplier}",
        )
        _require(
            self.num_blocks is None or (self.torso == "minatar_resnet" and self.num_blocks >= 1),
            "num_blocks",
            f"must be None, or >= 1 with torso 'minatar_resnet' (the only torso of variable "
            f"depth), got {self.num_blocks} with torso {self.torso!r}",
        )
        _require(self.num_groups >= 1, "num_groups", f"must be >= 1, got {self.num_groups}")
        _require(
            self.spatial_reduction in SPATIAL_REDUCTIONS,
            "spatial_reduction",
            f"got {self.spatial_reduction!r}, expected one of {SPATIAL_REDUCTIONS}",
        )
        _require(
            self.spatial_embedding_features >= 1,
            "spatial_embedding_features",
            f"must be >= 1, got {self.spatial_embedding_features}",
        )
        _require(
            self.feed_forward_size is None or self.feed_forward_size >= 1,
            "feed_forward_size",
            f"must be None (off) or >= 1, got {self.feed_forward_size}",
        )
        _require(self.num_atoms >= 2, "num_atoms", f"must be >= 2, got {self.num_atoms}")
        _require(
            self.v_min < self.v_max,
            "v_min/v_max",
            f"need v_min < v_max, got v_min={self.v_min}, v_max={self.v_max}",
        )


    @property
    def atoms(self) -> jax.Array:
        """float32 [num_atoms]: the evenly spaced support v_min ... v_max."""
        return jnp.linspace(self.v_min, self.v_max, self.num_atoms, dtype=jnp.float32)


# The MinAtar network sizes (docs/NETWORKS.md lists their parameter counts): a ladder of the
# 'minatar_resnet' torso by width (channels = 32 * width_multiplier), depth (num_blocks) and the
# shared layer's width, and MinAtar's own DQN network as the baseline.  8 GroupNorm groups so
# that the narrowest layer (16 channels) still normalises 2 channels per group.  Use one as is
# or with `dataclasses.replace(MINATAR_NETWORKS["M"], num_atoms=...)`.
MINATAR_NETWORKS: dict[str, NetworkConfig] = {
    "S": NetworkConfig(torso="minatar_resnet", width_multiplier=0.5, num_blocks=2,
                       num_groups=8, feed_forward_size=64),
    "M": NetworkConfig(torso="minatar_resnet", width_multiplier=1.0, num_blocks=2,
                       num_groups=8, feed_forward_size=128),
    "L": NetworkConfig(torso="minatar_resnet", width_multiplier=3.0, num_blocks=4,
                       num_groups=8, feed_forward_size=256),
    "XL": NetworkConfig(torso="minatar_resnet", width_multiplier=6.0, num_blocks=6,
                        num_groups=8, feed_forward_size=512),
    "dqn": NetworkConfig(torso="minatar_dqn", spatial_reduction="flatten",
                         feed_forward_size=128, feature_norm=False),
}

Params = hk.Params


@dataclasses.dataclass(frozen=True)
class ScaledQLNetworks:
    """The network of one run (fixed game list) as pure functions.

    Attributes:
      config: the NetworkConfig it was built from.
      num_actions: minimal action count of each game, in the run's game order.
      observation: the suite's ObservationSpec: `init` builds for `observation.shape`, and
        `apply` divides the uint8 input by `observation.max_value`.
      init: key -> params (float32).
      apply: (params, observation uint8 [B, H, W, C], game_id int32 [B], compute_dtype=
        'float32') -> NetworkOutput.  With compute_dtype='bfloat16' the torso runs in bfloat16
        on a bfloat16 copy of its parameters (gradients still reach the float32 ones); the
        heads and all outputs stay float32.
    """

    config: NetworkConfig
    num_actions: tuple[int, ...]
    observation: ObservationSpec
    init: Callable[[jax.Array], Params]
    apply: Callable[..., NetworkOutput]

    @property
    def num_games(self) -> int:
        return len(self.num_actions)

    @property
    def max_actions(self) -> int:
        return max(self.num_actions)

    @property
    def atoms(self) -> jax.Array:
        return self.config.atoms

    def parameter_counts(self, params: Params) -> dict[str, int]:
        """Parameter counts per part; see `parameter_counts`."""
        return parameter_counts(params, self.num_actions, self.config.num_atoms)


def parameter_counts(params: Params, num_actions: Sequence[int], num_atoms: int) -> dict[str, int]:
    """Counts parameters per part of the network.

    Returns:
      'trunk' (convolutions and norms), 'spatial_embedding', 'feed_forward', 'torso' (their
      sum: the shared representation), 'heads' (as stored, padded to A_max actions),
      'heads_used' (only the real actions of each game: what an unpadded implementation would
      hold), 'total' (torso + heads as stored) and 'total_used' (torso + heads_used).
    """
    counts = {"trunk": 0, "spatial_embedding": 0, "feed_forward": 0, "heads": 0}
    for module, leaves in params.items():
        size = sum(math.prod(v.shape) for v in leaves.values())
        path = [part for part in module.split("/") if part != "~"]  # e.g. torso/feed_forward
        if path[0] == HEADS_MODULE:
            counts["heads"] += size
            feature_size = leaves["w"].shape[1]
        elif path[0] != TORSO_MODULE:
            raise ValueError(f"parameter module {module!r} is neither torso nor heads")
        elif len(path) > 1 and path[1] in ("spatial_embedding", "feed_forward"):
            counts[path[1]] += size
        else:
            counts["trunk"] += size
    counts["torso"] = counts["trunk"] + counts["spatial_embedding"] + counts["feed_forward"]
    counts["heads_used"] = sum(a * num_atoms * (feature_size + 1) for a in num_actions)
    counts["total"] = counts["torso"] + counts["heads"]
    counts["total_used"] = counts["torso"] + counts["heads_used"]
    return counts


def _forward(observation: jax.Array, game_id: jax.Array, *, config: NetworkConfig,
             num_actions: tuple[int, ...], spec: ObservationSpec,
             compute_dtype: jnp.dtype) -> NetworkOutput:
    shape = ", ".join(map(str, spec.shape))
    chex.assert_shape(observation, (None, *spec.shape),
                      custom_message=f"{spec.name} observation must be [B, {shape}]")
    chex.assert_type(observation, jnp.uint8)
    chex.assert_shape(game_id, (observation.shape[0],), custom_message="game_id must be [B]")
    chex.assert_type(game_id, int)
    images = jnp.asarray(observation).astype(compute_dtype) / spec.max_value  # in [0, 1]
    features = Torso(
        config.torso,
        config.width_multiplier,
        config.num_groups,
        config.spatial_reduction,
        config.spatial_embedding_features,
        config.feed_forward_size,
        config.feature_norm,
        config.num_blocks,
        name=TORSO_MODULE,
    )(images)  # [B, D]
    heads = MultiGameHeads(num_actions, config.num_atoms, name=HEADS_MODULE)
    logits = heads(features.astype(jnp.float32), game_id)  # [B, A_max, N], float32
    atoms = config.atoms
    action_mask = make_action_mask(game_id, num_actions)  # [B, A_max]
    q_values = masked_expected_q(logits, atoms, action_mask)  # [B, A_max]
    return NetworkOutput(q_values=q_values, logits=logits, atoms=atoms, action_mask=action_mask)


def _cast_torso(params: Params, dtype: jnp.dtype) -> Params:
    """A copy of `params` with the torso's floating-point leaves cast to `dtype`."""
    return {
        module: leaves if module == HEADS_MODULE else jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, leaves)
        for module, leaves in params.items()
    }


def make_networks(config: NetworkConfig, num_actions: Sequence[int],
                  observation: ObservationSpec = ATARI_OBSERVATION) -> ScaledQLNetworks:
    """Builds the network for games whose minimal action counts are `num_actions`.

    Args:
      config: the NetworkConfig.
      num_actions: num_actions[g] is the minimal action count of game g (the run's game order).
      observation: the games' suite's ObservationSpec (`suites.suite_of(games).observation`);
        Atari's by default.

    Returns:
      ScaledQLNetworks with pure `init(key)` and `apply(params, observation, game_id)`.
    """
    num_actions = tuple(int(a) for a in num_actions)
    if not num_actions or min(num_actions) < 1:
        raise ValueError(f"num_actions must list >= 1 action per game, got {num_actions}")
    transforms = {
        name: hk.without_apply_rng(hk.transform(functools.partial(
            _forward, config=config, num_actions=num_actions,
            spec=observation, compute_dtype=dtype)))
        for name, dtype in _COMPUTE_DTYPES.items()
    }

    def init(key: jax.Array) -> Params:
        dummy = jnp.zeros((1, *observation.shape), jnp.uint8)  # uint8 [1, H, W, C]
        return transforms["float32"].init(key, dummy, jnp.zeros((1,), jnp.int32))

    def apply(params: Params, observation: jax.Array, game_id: jax.Array,
              compute_dtype: str = "float32") -> NetworkOutput:
        if compute_dtype not in transforms:
            raise ValueError(
                f"compute_dtype must be one of {list(transforms)}, got {compute_dtype!r}")
        if compute_dtype != "float32":
            params = _cast_torso(params, _COMPUTE_DTYPES[compute_dtype])
        return transforms[compute_dtype].apply(params, observation, game_id)

    return ScaledQLNetworks(config=config, num_actions=num_actions, observation=observation,
                            init=init, apply=apply)
