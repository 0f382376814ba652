"""Scaled Q-Learning (Kumar et al., ICLR 2023): config, losses and the pure update step.

Only the pure-JAX names are re-exported here (importing this package never imports
TensorFlow, Reverb, Launchpad or Acme).  The Acme adapters live in their own modules of this
package and are imported by their full path, e.g. `scaled_ql.agents.scaled_ql.learner`.
"""

from scaled_ql.agents.scaled_ql.config import (
    COMPUTE_DTYPES,
    TD_LOSSES,
    NetworkConfig,
    ScaledQLConfig,
)
from scaled_ql.agents.scaled_ql.learning import (
    TrainingState,
    init_training_state,
    make_optimizer,
    make_sgd_step,
    make_update_fn,
)
from scaled_ql.agents.scaled_ql.losses import (
    bc_loss,
    categorical_td_loss,
    cql_loss,
    hl_gauss_target,
    hl_gauss_td_loss,
    make_loss_fn,
    masked_argmax,
    scalar_td_loss,
)

__all__ = [
    "COMPUTE_DTYPES",
    "TD_LOSSES",
    "NetworkConfig",
    "ScaledQLConfig",
    "TrainingState",
    "bc_loss",
    "categorical_td_loss",
    "cql_loss",
    "hl_gauss_target",
    "hl_gauss_td_loss",
    "init_training_state",
    "make_loss_fn",
    "make_optimizer",
    "make_sgd_step",
    "make_update_fn",
    "masked_argmax",
    "scalar_td_loss",
]
