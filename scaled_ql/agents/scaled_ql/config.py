"""Configuration of the Scaled QL network and learner (frozen dataclasses, validated).

Every knob of PAPER.md is a field.  Defaults tagged [paper] come from Kumar et al. (ICLR 2023);
[default] marks our choice where the paper is silent, with the public code it is taken from
(Dopamine `labs/offline_rl` and batch_rl gin files, Acme, Farebrother et al. 2024).
"""

import dataclasses
import math

from scaled_ql.networks.factory import NetworkConfig

__all__ = ["COMPUTE_DTYPES", "EVAL_EPSILON", "TD_LOSSES", "NetworkConfig", "ScaledQLConfig"]

TD_LOSSES = ("c51", "hl_gauss", "mse", "huber")
COMPUTE_DTYPES = ("float32", "bfloat16")
# Exploration of evaluation policies: Dopamine's evaluation epsilon, the default of every
# evaluation protocol (runs, `scaled-ql evaluate`, online fine-tuning's evaluator).
EVAL_EPSILON = 0.001


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"ScaledQLConfig.{field}: {message}")


@dataclasses.dataclass(frozen=True)
class ScaledQLConfig:
    """The learner: loss terms, optimizer, target network, update-step layout.

    The loss per transition is
    `td_weight * TD + cql_alpha * CQL(H) + bc_weight * BC`, averaged over the batch.

    Attributes:
      network: the NetworkConfig.
      td_loss: 'c51' [paper: distributional TD with cross-entropy], 'hl_gauss' (Farebrother
        et al. 2024, "Stop Regressing"), or scalar 'mse' / 'huber' TD on the expected Q
        (ablations).
      hl_gauss_sigma_ratio: HL-Gauss sigma as a multiple of the bin width [0.75, Farebrother
        et al. 2024].
      huber_delta: threshold of the Huber TD loss [default 1.0, Dopamine DQN].
      double_q: select the bootstrap action with the online network (double DQN) instead of the
        target network [default False: Dopamine C51 and batch_rl use the target network].
      td_weight: weight of the TD term [default 1.0; 0 for the BC baseline].
      cql_alpha: weight of the discrete CQL(H) term logsumexp_a Q(s,a) - Q(s,a_data)
        [default 0.1, Dopamine `labs/offline_rl` CQL; original Atari CQL used 1.0 to 4.0].
      bc_weight: weight of a behaviour-cloning cross-entropy on softmax(Q) [default 0.0;
        1.0 with td_weight=0, cql_alpha=0 is the BC baseline].
      learning_rate: Adam step size [default 6.25e-5, Dopamine offline configs].
      adam_eps: Adam epsilon [default 3.125e-4 = 0.01 / 32, Dopamine offline configs].
      max_grad_norm: global-norm gradient clipping [default 10.0, our guard rail: Dopamine does
        not clip, Acme's DQNConfig.max_gradient_norm defaults to inf].  math.inf disables.
      frozen_torso_steps: the first this many SGD steps (applied ones) train every module but
        the torso, which then trains with an Adam of its own that starts at that point:
        linear probing, then fine-tuning (LP-FT, Kumar et al. 2022, for a pre-trained torso
        under a new head) [default 0: the torso trains from the first step].
      torso_learning_rate_scale: the torso's Adam step size is learning_rate times this, the
        heads' is learning_rate: a pre-trained torso under a new head moves slower than the
        head (discriminative fine-tuning, Howard & Ruder 2018) [default 1.0: one step size].
      target_update_period: SGD steps between target-network refreshes [default 2000,
        Dopamine offline configs].
      batch_size: global batch (all devices), games mixed [default 256; paper used TPU pods
        with at most 4 transitions per core].
      num_sgd_steps_per_step: SGD steps per jitted update call (jax.lax.scan) [default 1].
      compute_dtype: 'float32' or 'bfloat16' activations; parameters, optimizer state and the
        loss stay float32 [default 'float32'].
      discount: per-step discount gamma [default 0.99, Dopamine].  Used by the data pipeline
        (the loss reads the full bootstrap multiplier from each Transition).
      n_step: return horizon [default 1, Dopamine offline C51].  Data pipeline.
      reward_clip: rewards clipped to [-reward_clip, reward_clip] [paper: rewards clipped;
        1.0 as in DQN].  Data pipeline.
    """

    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    td_loss: str = "c51"
    hl_gauss_sigma_ratio: float = 0.75
    huber_delta: float = 1.0
    double_q: bool = False
    td_weight: float = 1.0
    cql_alpha: float = 0.1
    bc_weight: float = 0.0
    learning_rate: float = 6.25e-5
    adam_eps: float = 3.125e-4
    max_grad_norm: float = 10.0
    frozen_torso_steps: int = 0
    torso_learning_rate_scale: float = 1.0
    target_update_period: int = 2000
    batch_size: int = 256
    num_sgd_steps_per_step: int = 1
    compute_dtype: str = "float32"
    discount: float = 0.99
    n_step: int = 1
    reward_clip: float = 1.0

    def __post_init__(self):
        _require(
            isinstance(self.network, NetworkConfig),
            "network",
            f"must be a NetworkConfig, got {type(self.network).__name__}",
        )
        _require(self.td_loss in TD_LOSSES, "td_loss",
                 f"got {self.td_loss!r}, expected one of {TD_LOSSES}")
        _require(self.hl_gauss_sigma_ratio > 0, "hl_gauss_sigma_ratio", "must be > 0")
        _require(self.huber_delta > 0, "huber_delta", "must be > 0")
        for name in ("td_weight", "cql_alpha", "bc_weight"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, name, f"must be >= 0, got {value}")
        _require(
            self.td_weight + self.cql_alpha + self.bc_weight > 0,
            "td_weight/cql_alpha/bc_weight",
            "at least one loss weight must be positive",
        )
        _require(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.adam_eps > 0, "adam_eps", f"must be > 0, got {self.adam_eps}")
        _require(self.max_grad_norm > 0, "max_grad_norm", "must be > 0 (math.inf disables)")
        _require(self.frozen_torso_steps >= 0, "frozen_torso_steps",
                 f"must be >= 0, got {self.frozen_torso_steps}")
        _require(math.isfinite(self.torso_learning_rate_scale)
                 and self.torso_learning_rate_scale > 0, "torso_learning_rate_scale",
                 f"must be > 0 and finite, got {self.torso_learning_rate_scale} (a torso that "
                 "does not train: freeze it, `finetune.freeze_torso` / --freeze-torso)")
        _require(self.target_update_period >= 1, "target_update_period", "must be >= 1")
        _require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.num_sgd_steps_per_step >= 1, "num_sgd_steps_per_step", "must be >= 1")
        _require(
            self.compute_dtype in COMPUTE_DTYPES,
            "compute_dtype",
            f"got {self.compute_dtype!r}, expected one of {COMPUTE_DTYPES}",
        )
        _require(0 <= self.discount <= 1, "discount", f"must be in [0, 1], got {self.discount}")
        _require(self.n_step >= 1, "n_step", f"must be >= 1, got {self.n_step}")
        _require(self.reward_clip > 0, "reward_clip", "must be > 0 (math.inf disables)")
