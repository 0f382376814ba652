"""The pure Scaled QL update: training state, SGD step, and the jitted data-parallel update.

Free of Acme: the Acme Learner wraps `make_update_fn`.  One update call runs
`num_sgd_steps_per_step` SGD steps (`jax.lax.scan` on accelerators, unrolled on CPU); each step

1. computes `td_weight * TD + cql_alpha * CQL + bc_weight * BC` and its gradient,
2. applies Adam after global-norm clipping, unless the loss or gradient is non-finite, in which
   case parameters and optimizer state are kept and `num_skipped_updates` is incremented (the
   Learner decides when too many skips should abort the run); with `frozen_torso_steps` the
   torso's gradient is zeroed (before the clipping) for that many applied steps, and the
   torso then gets an Adam of its own that starts there (`make_optimizer`),
3. refreshes the target parameters every `target_update_period` steps
   (`optax.periodic_update`).

Data parallelism: `make_update_fn` jits the update over a 1-D device mesh; the batch is split
along its batch axis across devices and the state is replicated.  XLA inserts the gradient
all-reduce, so the math is the same as on one device with the whole batch.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.finetune import is_torso_module
from scaled_ql.agents.scaled_ql.losses import Metrics, make_loss_fn
from scaled_ql.networks import ScaledQLNetworks
from scaled_ql.types import Transition

DATA_AXIS = "data"
MAX_CPU_UNROLL = 8


class TrainingState(NamedTuple):
    """Everything the update step reads and writes.

    Attributes:
      params: online network parameters (float32).
      target_params: target network parameters (float32).
      opt_state: optax state of `make_optimizer(config)`.
      step: int32 [], SGD steps attempted so far (skipped ones included).
      rng_key: PRNG key, split once per step (reserved for stochastic losses/augmentation).
      num_skipped_updates: int32 [], steps whose loss or gradient was non-finite.
    """

    params: optax.Params
    target_params: optax.Params
    opt_state: optax.OptState
    step: jax.Array
    rng_key: jax.Array
    num_skipped_updates: jax.Array


def make_optimizer(config: ScaledQLConfig) -> optax.GradientTransformation:
    """Adam (learning_rate, adam_eps) after global-norm clipping at max_grad_norm.

    With `config.frozen_torso_steps` = N > 0: for the first N updates the torso's gradient is
    zero before the clipping, so those steps are exactly those of a frozen torso (the norm is
    the other modules'); from update N + 1 the torso trains with its own Adam, whose moments
    and bias correction start there, as a fresh optimizer's would.  (One Adam shared with the
    heads would have counted N steps already: for N in the hundreds its bias correction would
    then make the torso's first updates several times too large.)

    With `config.torso_learning_rate_scale` = s != 1 the torso's Adam has step size
    learning_rate * s (the clipping still sees every module's gradient).  With neither, one
    Adam over every parameter: the optimizer state of every run made before them.
    """
    adam = optax.adam(config.learning_rate, eps=config.adam_eps)
    clip = () if np.isinf(config.max_grad_norm) else (
        optax.clip_by_global_norm(config.max_grad_norm),)
    steps, scale = config.frozen_torso_steps, config.torso_learning_rate_scale
    if steps == 0 and scale == 1.0:
        return optax.chain(*clip, adam) if clip else adam
    torso_adam = adam if scale == 1.0 else optax.adam(config.learning_rate * scale,
                                                      eps=config.adam_eps)
    probe = () if steps == 0 else (optax.multi_transform(
        {"torso": starting_after(steps, optax.identity()), "other": optax.identity()},
        torso_labels),)
    torso = torso_adam if steps == 0 else starting_after(steps, torso_adam)
    return optax.chain(*probe, *clip,
                       optax.multi_transform({"torso": torso, "other": adam}, torso_labels))


def torso_labels(params) -> dict:
    """'torso' for every leaf of a torso module of `params`, 'other' for the rest."""
    labels = {}
    for module, leaves in params.items():
        label = "torso" if is_torso_module(module) else "other"
        labels[module] = jax.tree_util.tree_map(lambda _, label=label: label, leaves)
    return labels


class StartingAfterState(NamedTuple):
    """`starting_after`'s state: updates seen (saturating) and the inner transformation's."""

    count: jax.Array
    inner: optax.OptState


def starting_after(num_steps: int, inner: optax.GradientTransformation
                   ) -> optax.GradientTransformation:
    """`inner` from its (num_steps + 1)-th update on: zero updates before, during which its
    state stays the initial one, so it starts as if created then."""

    def init(params):
        return StartingAfterState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        new_updates, new_inner = inner.update(updates, state.inner, params)
        waiting = state.count < num_steps
        updates = jax.tree_util.tree_map(
            lambda u: jnp.where(waiting, jnp.zeros_like(u), u), new_updates)
        inner_state = jax.tree_util.tree_map(
            lambda old, new: jnp.where(waiting, old, new), state.inner, new_inner)
        return updates, StartingAfterState(optax.safe_int32_increment(state.count), inner_state)

    return optax.GradientTransformation(init, update)


def init_training_state(
    networks: ScaledQLNetworks, config: ScaledQLConfig, key: jax.Array, params=None
) -> TrainingState:
    """Fresh parameters, or `params` (e.g. a pre-trained network moved onto new heads:
    `finetune.rehead_params`), with target = online, a fresh optimizer state, step 0.

    `key` splits into (initialisation key, the state's rng_key); the first goes unused when
    `params` are given.
    """
    init_key, state_key = jax.random.split(key)
    if params is None:
        params = networks.init(init_key)
    else:
        params = jax.tree_util.tree_map(jnp.asarray, params)
    return TrainingState(
        params=params,
        # A copy, not an alias: the update donates the state's buffers, and XLA refuses to
        # donate one buffer twice.
        target_params=jax.tree_util.tree_map(jnp.copy, params),
        opt_state=make_optimizer(config).init(params),
        step=jnp.zeros((), jnp.int32),
        rng_key=state_key,
        num_skipped_updates=jnp.zeros((), jnp.int32),
    )


def _where_tree(condition: jax.Array, new, old):
    return jax.tree_util.tree_map(lambda n, o: jnp.where(condition, n, o), new, old)


def make_sgd_step(
    networks: ScaledQLNetworks, config: ScaledQLConfig
) -> Callable[[TrainingState, Transition], tuple[TrainingState, Metrics]]:
    """The pure (un-jitted) SGD step: (state, batch [B]) -> (state, metrics)."""
    loss_fn = make_loss_fn(networks, config)
    optimizer = make_optimizer(config)

    def sgd_step(state: TrainingState, batch: Transition) -> tuple[TrainingState, Metrics]:
        grads, metrics = jax.grad(loss_fn, has_aux=True)(
            state.params, state.target_params, batch)
        grad_norm = optax.global_norm(grads)
        finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        updates, new_opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        params = _where_tree(finite, new_params, state.params)
        opt_state = _where_tree(finite, new_opt_state, state.opt_state)
        step = state.step + 1
        target_params = optax.periodic_update(
            params, state.target_params, step, config.target_update_period)
        rng_key, _ = jax.random.split(state.rng_key)
        new_state = TrainingState(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            step=step,
            rng_key=rng_key,
            num_skipped_updates=state.num_skipped_updates + (~finite).astype(jnp.int32),
        )
        metrics = dict(metrics, grad_norm=grad_norm, skipped=(~finite).astype(jnp.float32))
        return new_state, metrics

    return sgd_step


def _summarise(stacked: Metrics) -> Metrics:
    """Per-step metrics [S, ...] -> one update's metrics (means; exact per-game averages)."""
    out = {k: jnp.mean(v, axis=0) for k, v in stacked.items()
           if k not in ("td_loss_sum_per_game", "count_per_game", "skipped")}
    out["num_skipped_in_call"] = jnp.sum(stacked["skipped"]).astype(jnp.int32)
    if "count_per_game" in stacked:
        counts = jnp.sum(stacked["count_per_game"], axis=0)  # [G]
        sums = jnp.sum(stacked["td_loss_sum_per_game"], axis=0)  # [G]
        out["td_loss_per_game"] = sums / jnp.maximum(counts, 1.0)  # [G], 0 for absent games
        out["count_per_game"] = counts
    return out


def donation_is_safe(devices: Sequence[jax.Device]) -> bool:
    """Whether the update may donate its input state's buffers (reuse them for its output).

    Not on CPU with JAX's persistent compilation cache on (`JAX_COMPILATION_CACHE_DIR`, or
    `jax_compilation_cache_dir`): with jax 0.4.30, an executable with donated inputs that a
    process loads back from the cache computes wrong results there.  Measured: a jitted
    `p - lr * g` with its input donated leaves `p` unchanged in every process after the first
    (tests/agents/scaled_ql/test_learning.py runs our update in two processes).  Without
    donation the update keeps one more copy of the state in memory and is correct with the
    cache.  Accelerators, where the state's memory matters, keep donating (not checked there).
    """
    cache_on = bool(jax.config.jax_compilation_cache_dir)
    return not (cache_on and all(d.platform == "cpu" for d in devices))


def make_update_fn(
    networks: ScaledQLNetworks,
    config: ScaledQLConfig,
    devices: Sequence[jax.Device] | None = None,
) -> Callable[[TrainingState, Transition], tuple[TrainingState, Metrics]]:
    """The jitted, data-parallel update: (state, batch) -> (state, metrics).

    Args:
      networks: from `make_networks`.
      config: the learner config.
      devices: devices to split the batch over; default all local devices.

    Returns:
      `update(state, batch)`.  `batch` is a Transition whose fields have leading axes
      `[num_sgd_steps_per_step, B]` (or just `[B]` when num_sgd_steps_per_step == 1), with B
      divisible by the number of devices.  The returned state is replicated over the devices
      (the input state is donated, except where `donation_is_safe` says no: do not reuse it).
      Metrics: the means over the call's SGD steps of 'loss', the unweighted terms
      ('td_loss', 'cql_loss', 'bc_loss': those with a positive weight), 'mean_q', 'grad_norm';
      'td_loss_per_game' [G] (mean TD loss of each game's examples in this call, 0 if none)
      and 'count_per_game' [G]; 'num_skipped_in_call'; and from the new state 'step' and
      'num_skipped_updates'.
    """
    devices = list(devices if devices is not None else jax.local_devices())
    mesh = Mesh(np.asarray(devices), (DATA_AXIS,))
    replicated = NamedSharding(mesh, PartitionSpec())
    split_batch = NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))  # [S, B, ...] over B
    sgd_step = make_sgd_step(networks, config)
    num_steps = config.num_sgd_steps_per_step
    observation_shape = tuple(networks.observation.shape)
    # XLA:CPU runs the convolutions inside a while loop (what lax.scan lowers to, even with
    # unroll=True) far slower than in straight-line code: 800+ ms against 60-90 ms per SGD step
    # for the Nature CNN at batch 32 on 2 cores (benchmarks/learner_throughput.py).  On CPU
    # up to MAX_CPU_UNROLL steps are unrolled in Python (compile time grows with S); longer
    # chains and accelerators keep the compact scan.
    unroll = num_steps <= MAX_CPU_UNROLL and all(d.platform == "cpu" for d in devices)

    def _update(state: TrainingState, batch: Transition) -> tuple[TrainingState, Metrics]:
        if unroll:
            per_step = []
            for i in range(num_steps):  # straight-line code: S copies of the step
                state, metrics = sgd_step(state, jax.tree_util.tree_map(lambda x: x[i], batch))
                per_step.append(metrics)
            stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_step)
        else:
            state, stacked = jax.lax.scan(sgd_step, state, batch)
        metrics = _summarise(stacked)
        metrics["step"] = state.step
        metrics["num_skipped_updates"] = state.num_skipped_updates
        return state, metrics

    jitted = jax.jit(_update, in_shardings=(replicated, split_batch),
                     out_shardings=(replicated, replicated),
                     donate_argnums=0 if donation_is_safe(devices) else ())

    def update(state: TrainingState, batch: Transition) -> tuple[TrainingState, Metrics]:
        batch = Transition(*batch)
        if np.ndim(batch.observation) == 4 and num_steps == 1:
            batch = jax.tree_util.tree_map(lambda x: x[None], batch)  # [B] -> [1, B]
        shape = np.shape(batch.observation)
        if len(shape) != 5 or shape[0] != num_steps or shape[2:] != observation_shape:
            one = ", ".join(map(str, observation_shape))
            raise ValueError(
                f"batch.observation has shape {shape}; expected [num_sgd_steps_per_step="
                f"{num_steps}, B, {one}]" + (f" or [B, {one}]" if num_steps == 1 else "")
                + f" ({networks.observation.name} observations)")
        if shape[1] % len(devices):
            raise ValueError(f"batch size {shape[1]} is not divisible by the {len(devices)} "
                             "devices it is split over")
        state = jax.device_put(state, replicated)
        return jitted(state, batch)

    return update
