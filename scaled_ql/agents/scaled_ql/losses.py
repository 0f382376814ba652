"""Scaled QL losses: per-example pure functions, and the batch loss that combines them.

Per example (vmapped over the batch; `_tm1` is the transition's first state, `_t` the state it
bootstraps from; `action_mask` marks the actions that exist in the example's game):

- `categorical_td_loss`: C51 (Bellemare et al. 2017): cross-entropy between the prediction and
  the target distribution `r + discount * Z(s_t, a*)` projected back onto the support:
  `rlax.categorical_double_q_learning` with a* chosen among the game's valid actions.
- `hl_gauss_td_loss`: HL-Gauss (Farebrother et al. 2024): cross-entropy to a Gaussian of
  width sigma centred on the scalar target `r + discount * Q(s_t, a*)`, integrated over bins.
- `scalar_td_loss`: squared or Huber TD error on the expected Q (ablations):
  `rlax.double_q_learning` with a* chosen among the game's valid actions.
- `cql_loss`: discrete CQL(H) (Kumar et al. 2020): `logsumexp_a Q(s,a) - Q(s, a_data)` over the
  game's valid actions.
- `bc_loss`: behaviour cloning, cross-entropy of softmax(policy_logits) on the data action.

Reward clipping, n-step sums and discounting are done by the data pipeline: a Transition's
`discount` is the whole bootstrap multiplier (gamma^k, or 0 at a terminal).
"""

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import rlax

from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.networks import ScaledQLNetworks
from scaled_ql.networks.heads import masked_expected_q
from scaled_ql.types import ObservationSpec, Transition

Metrics = dict[str, jax.Array]


def masked_argmax(q: jax.Array, action_mask: jax.Array) -> jax.Array:
    """argmax over the valid actions only (padded actions never win, even with huge values)."""
    return jnp.argmax(jnp.where(action_mask, q, -jnp.inf), axis=-1)


def _masked_cross_entropy(logits: jax.Array, label: jax.Array, action_mask: jax.Array):
    """-log softmax(logits over valid actions)[label]; padded actions add nothing."""
    lse = jax.nn.logsumexp(jnp.where(action_mask, logits, -jnp.inf))
    return lse - logits[label]


def _valid_selector(q_t_selector: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Selector values with padded actions at -inf: rlax's argmax then picks `masked_argmax`."""
    return jnp.where(action_mask, q_t_selector, -jnp.inf)


def _check_transition(q_or_logits_tm1, a_tm1, r_t, discount_t, action_mask):
    chex.assert_rank([a_tm1, r_t, discount_t], 0)
    chex.assert_type([a_tm1, r_t, discount_t], [int, float, float])
    chex.assert_type(action_mask, bool)
    chex.assert_equal_shape_prefix([q_or_logits_tm1, action_mask], 1)


def categorical_td_loss(
    logits_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    logits_t: jax.Array,
    q_t_selector: jax.Array,
    action_mask: jax.Array,
    atoms: jax.Array,
) -> jax.Array:
    """C51 cross-entropy for one transition.

    Args:
      logits_tm1: [A, N] online logits at s_tm1.
      a_tm1: [] action taken (valid in the game).
      r_t: [] reward (n-step sum, clipped by the data pipeline).
      discount_t: [] bootstrap multiplier (0 at a terminal).
      logits_t: [A, N] target-network logits at s_t: the distribution bootstrapped from.
      q_t_selector: [A] values choosing a* = argmax over valid actions (the target network's Q
        for C51, the online network's for double Q).
      action_mask: bool [A], valid actions of the game.
      atoms: [N] support.

    Returns:
      [] cross-entropy H(projected target, prediction); no gradient flows into the target.
    """
    chex.assert_equal_shape([logits_tm1, logits_t])
    _check_transition(logits_tm1, a_tm1, r_t, discount_t, action_mask)
    return rlax.categorical_double_q_learning(
        atoms, logits_tm1, a_tm1, r_t, discount_t, atoms, logits_t,
        _valid_selector(q_t_selector, action_mask))


def hl_gauss_target(target: jax.Array, atoms: jax.Array, sigma: float) -> jax.Array:
    """HL-Gauss probabilities [N] of a scalar target on bins centred at `atoms`.

    Bin i spans [atoms_i - w/2, atoms_i + w/2] (w the atom spacing).  Its probability is the
    mass of Normal(target, sigma^2) in the bin, renormalised by the mass inside all bins.  The
    target is first clipped to [atoms_0, atoms_-1].
    """
    chex.assert_rank([target, atoms], [0, 1])
    half_width = 0.5 * (atoms[1] - atoms[0])
    edges = jnp.concatenate([atoms - half_width, atoms[-1:] + half_width])  # [N + 1]
    target = jnp.clip(target, atoms[0], atoms[-1])
    cdf = jax.scipy.special.erf((edges - target) / (jnp.sqrt(2.0) * sigma))  # [N + 1]
    return (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])


def hl_gauss_td_loss(
    logits_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    q_t_selector: jax.Array,
    action_mask: jax.Array,
    atoms: jax.Array,
    sigma: float,
) -> jax.Array:
    """HL-Gauss cross-entropy for one transition.

    Args as `categorical_td_loss`, except `q_t`: [A] target-network expected Q at s_t, and
    `sigma`: the Gaussian's standard deviation (0.75 bin widths in Farebrother et al. 2024).
    """
    chex.assert_rank([logits_tm1, q_t, q_t_selector, atoms], [2, 1, 1, 1])
    _check_transition(logits_tm1, a_tm1, r_t, discount_t, action_mask)
    a_t = masked_argmax(q_t_selector, action_mask)
    target_tm1 = jax.lax.stop_gradient(r_t + discount_t * q_t[a_t])
    probs = jax.lax.stop_gradient(hl_gauss_target(target_tm1, atoms, sigma))  # [N]
    return -jnp.sum(probs * jax.nn.log_softmax(logits_tm1[a_tm1]))


def scalar_td_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    q_t_selector: jax.Array,
    action_mask: jax.Array,
    huber_delta: float | None = None,
) -> jax.Array:
    """0.5 * td^2 (huber_delta None) or Huber(td) on expected Q values, for ablations."""
    _check_transition(q_tm1, a_tm1, r_t, discount_t, action_mask)
    td = rlax.double_q_learning(q_tm1, a_tm1, r_t, discount_t, q_t,
                                _valid_selector(q_t_selector, action_mask))
    if huber_delta is None:
        return 0.5 * jnp.square(td)
    return rlax.huber_loss(td, huber_delta)


def cql_loss(q_tm1: jax.Array, a_tm1: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Discrete CQL(H) regulariser: logsumexp over valid actions of Q(s, .) minus Q(s, a_data).

    Pushes down the soft maximum of Q while pushing up the data action: Q-values of actions
    the dataset does not support cannot be overestimated.  It is >= 0, and 0 only in the limit
    where the data action's Q dominates all others.
    """
    chex.assert_rank([q_tm1, a_tm1], [1, 0])
    chex.assert_equal_shape([q_tm1, action_mask])
    return _masked_cross_entropy(q_tm1, a_tm1, action_mask)


def bc_loss(policy_logits: jax.Array, a_tm1: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Behaviour cloning: -log softmax(policy_logits over valid actions)[a_data].

    The BC baseline uses the expected Q-values as policy logits, so the same network and
    greedy policy serve both methods.  (With these logits the formula equals `cql_loss`; BC
    is the objective alone, Scaled QL adds it to a TD loss.)
    """
    chex.assert_rank([policy_logits, a_tm1], [1, 0])
    chex.assert_equal_shape([policy_logits, action_mask])
    return _masked_cross_entropy(policy_logits, a_tm1, action_mask)


def check_batch(batch: Transition, observation: ObservationSpec) -> None:
    """Trace-time shape/dtype checks of a [B] batch, with messages naming the field.

    `observation` is the spec of the network's suite: observations must be [B, *spec.shape].
    """
    chex.assert_shape(batch.observation, (None, *observation.shape),
                      custom_message=f"{observation.name} observation must be "
                                     f"[B, {', '.join(map(str, observation.shape))}]")
    chex.assert_type(batch.observation, jnp.uint8, custom_message="observation must be uint8")
    chex.assert_equal_shape([batch.observation, batch.next_observation],
                            custom_message="observation and next_observation differ in shape")
    b = batch.observation.shape[0]
    for name in ("action", "reward", "discount", "game_id"):
        chex.assert_shape(getattr(batch, name), (b,), custom_message=f"{name} must be [B={b}]")
    chex.assert_type([batch.action, batch.game_id], int,
                     custom_message="action and game_id must be integers")
    chex.assert_type([batch.reward, batch.discount], float,
                     custom_message="reward and discount must be floats")


LossFn = Callable[[dict, dict, Transition], tuple[jax.Array, Metrics]]
# (logits_tm1 [B, A, N], q_tm1 [B, A], logits_t [B, A, N], q_t [B, A], selector_t [B, A],
#  action [B], reward [B], discount [B], action_mask [B, A], atoms [N]) -> TD loss [B].
BatchTDLoss = Callable[..., jax.Array]


def make_td_loss(config: ScaledQLConfig) -> BatchTDLoss:
    """`config.td_loss` as one batch function over the network's outputs (chosen once)."""

    def c51(logits_tm1, q_tm1, logits_t, q_t, selector_t, a, r, d, mask, atoms):
        del q_tm1, q_t
        return categorical_td_loss(logits_tm1, a, r, d, logits_t, selector_t, mask, atoms)

    def hl_gauss(logits_tm1, q_tm1, logits_t, q_t, selector_t, a, r, d, mask, atoms):
        del q_tm1, logits_t
        sigma = config.hl_gauss_sigma_ratio * (atoms[1] - atoms[0])
        return hl_gauss_td_loss(logits_tm1, a, r, d, q_t, selector_t, mask, atoms, sigma)

    def scalar(logits_tm1, q_tm1, logits_t, q_t, selector_t, a, r, d, mask, atoms):
        del logits_tm1, logits_t, atoms
        delta = config.huber_delta if config.td_loss == "huber" else None
        return scalar_td_loss(q_tm1, a, r, d, q_t, selector_t, mask, delta)

    per_example = {"c51": c51, "hl_gauss": hl_gauss}.get(config.td_loss, scalar)
    return jax.vmap(per_example, in_axes=(0,) * 9 + (None,))


def make_loss_fn(networks: ScaledQLNetworks, config: ScaledQLConfig) -> LossFn:
    """The batch loss `(params, target_params, batch [B]) -> (loss, metrics)`.

    loss = mean_b [td_weight * TD_b + cql_alpha * CQL_b + bc_weight * BC_b].  Terms with weight 0
    are not computed (the BC baseline never evaluates the target network).  Metrics: 'loss',
    'td_loss', 'cql_loss', 'bc_loss' (batch means of unweighted terms present), 'mean_q' (mean
    over examples of the mean Q over valid actions), 'td_loss_sum_per_game' and
    'count_per_game' ([G]: sums per game, so that averages over several steps stay exact).
    """
    num_games = networks.num_games
    dtype = config.compute_dtype
    td_loss = make_td_loss(config)

    def loss_fn(params, target_params, batch: Transition) -> tuple[jax.Array, Metrics]:
        check_batch(batch, networks.observation)
        out_tm1 = networks.apply(params, batch.observation, batch.game_id, dtype)
        mask = out_tm1.action_mask  # [B, A_max]
        atoms = out_tm1.atoms  # [N]
        q_tm1 = masked_expected_q(out_tm1.logits, atoms, mask)  # [B, A_max]
        total = jnp.zeros(batch.reward.shape, jnp.float32)  # [B]
        metrics: Metrics = {}

        if config.td_weight > 0:
            out_t = networks.apply(target_params, batch.next_observation, batch.game_id, dtype)
            q_t = jax.lax.stop_gradient(out_t.q_values)  # [B, A_max]
            selector_t = q_t
            if config.double_q:
                online_t = networks.apply(params, batch.next_observation, batch.game_id, dtype)
                selector_t = jax.lax.stop_gradient(online_t.q_values)
            td = td_loss(out_tm1.logits, q_tm1, out_t.logits, q_t, selector_t, batch.action,
                         batch.reward, batch.discount, mask, atoms)  # [B]
            chex.assert_shape(td, batch.reward.shape)
            total += config.td_weight * td
            one_hot_game = jax.nn.one_hot(batch.game_id, num_games)  # [B, G]
            metrics["td_loss"] = jnp.mean(td)
            metrics["td_loss_sum_per_game"] = td @ one_hot_game  # [G]
            metrics["count_per_game"] = jnp.sum(one_hot_game, axis=0)  # [G]
        if config.cql_alpha > 0:
            cql = jax.vmap(cql_loss)(q_tm1, batch.action, mask)  # [B]
            total += config.cql_alpha * cql
            metrics["cql_loss"] = jnp.mean(cql)
        if config.bc_weight > 0:
            bc = jax.vmap(bc_loss)(q_tm1, batch.action, mask)  # [B]
            total += config.bc_weight * bc
            metrics["bc_loss"] = jnp.mean(bc)

        loss = jnp.mean(total)
        valid = mask.astype(jnp.float32)
        mean_q_per_example = jnp.sum(jnp.where(mask, q_tm1, 0.0), -1) / jnp.sum(valid, -1)
        metrics["mean_q"] = jax.lax.stop_gradient(jnp.mean(mean_q_per_example))
        metrics["loss"] = loss
        return loss, jax.lax.stop_gradient(metrics)

    return loss_fn
