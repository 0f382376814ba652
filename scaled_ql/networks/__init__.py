"""The Scaled QL network (pure JAX/Haiku): torsos, per-game heads, and the factory."""

from scaled_ql.networks.factory import (
    MINATAR_NETWORKS,
    SPATIAL_REDUCTIONS,
    TORSOS,
    NetworkConfig,
    ScaledQLNetworks,
    make_networks,
    parameter_counts,
)
from scaled_ql.networks.heads import (
    MASKED_Q_VALUE,
    MultiGameHeads,
    NetworkOutput,
    make_action_mask,
    masked_expected_q,
)
from scaled_ql.networks.torsos import (
    RESNET_LAYOUTS,
    GroupNorm,
    ImpalaResNet,
    MinAtarDQN,
    MinAtarResNet,
    NatureCNN,
    ResNet,
    SpatialEmbedding,
    Torso,
    feature_norm,
)

__all__ = [
    "MASKED_Q_VALUE",
    "MINATAR_NETWORKS",
    "RESNET_LAYOUTS",
    "SPATIAL_REDUCTIONS",
    "TORSOS",
    "GroupNorm",
    "ImpalaResNet",
    "MinAtarDQN",
    "MinAtarResNet",
    "MultiGameHeads",
    "NatureCNN",
    "NetworkConfig",
    "NetworkOutput",
    "ResNet",
    "ScaledQLNetworks",
    "SpatialEmbedding",
    "Torso",
    "feature_norm",
    "make_action_mask",
    "make_networks",
    "masked_expected_q",
    "parameter_counts",
]
