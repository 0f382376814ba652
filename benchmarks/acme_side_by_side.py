"""Our learner next to Acme 0.4.0's JAX DQN learner, same network and batch, in one process.

Acme 0.4.0 ships a categorical double-Q loss, `acme.agents.jax.dqn.losses.
PrioritizedCategoricalDoubleQLearning` (rlax.categorical_double_q_learning with importance
weights), and `learning_lib.SGDLearner` (the machinery `DQNLearner` is built on: jitted SGD step,
`rlax.periodic_update` target refresh, prefetching iterator, counter and logger).  We give that
learner *our* Haiku network (Nature CNN torso, per-game C51 heads; the observation is the pair
(frames, game_id)), the same optimizer (global-norm clipping + Adam) and the same random batch,
then time, in alternating blocks:

* `ours_learner`: `ScaledQLLearner.step()` on the demo config (C51 + CQL; the target network
  selects the bootstrap action, as in Dopamine's C51: 2 network passes per step, online
  forward+backward on s and target forward on s'); it fetches the metrics to host every step;
* `ours_update`: the bare jitted update (`make_update_fn`) of the same config: the difference
  to `ours_learner` is what the learner's per-step host fetch costs;
* `ours_update_double_q`: the same with `double_q=True` (the online network also runs on s' to
  select a*): the same network work as Acme's double-Q loss, i.e. like for like;
* `acme_learner`: Acme's `SGDLearner.step()` with the categorical double-Q loss.

`learner_vs_acme_ratio` (run_all) = ours_learner / acme_learner in samples/s: our learner as
configured against Acme's as shipped, same network, batch and optimizer.  Part of it is our
loss doing one network pass less; `ratio_like_for_like_vs_acme` (ours_update_double_q) removes
that and measures only the update code and learner machinery.  With several SGD steps per call
(`--sgd-steps`), Acme scans over them (`jax.lax.scan`, slow on XLA:CPU) and we unroll.

    python -m benchmarks.acme_side_by_side [--batch-sizes 32 128] [--blocks 7]
"""

import argparse

import jax
import numpy as np

from benchmarks import common


def _acme_batch(batch, num_steps: int):
    """Our Transition [S, B] -> the reverb.ReplaySample [S*B] Acme's learner consumes."""
    import reverb
    from acme import types as acme_types

    flat = jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    size = flat.action.shape[0]
    data = acme_types.Transition(
        observation=(flat.observation, flat.game_id),
        action=flat.action,
        reward=flat.reward,
        discount=np.ones(size, np.float32),  # Acme multiplies by its own discount (0.99)
        next_observation=(flat.next_observation, flat.game_id),
        extras=(),
    )
    info = reverb.SampleInfo(
        key=np.arange(size, dtype=np.uint64),
        probability=np.full(size, 1e-3, np.float64),
        table_size=np.full(size, 1000, np.int64),
        priority=np.ones(size, np.float64),
    )
    return reverb.ReplaySample(info=info, data=data)


def make_acme_learner(networks, config, batch):
    """Acme 0.4.0's SGDLearner + categorical double-Q loss on our network; iterates `batch`."""
    import itertools

    from acme.agents.jax.dqn import learning_lib, losses
    from acme.jax import networks as networks_lib
    from acme.utils import loggers

    from scaled_ql.agents.scaled_ql.learning import make_optimizer

    def apply(params, observation):
        frames, game_id = observation
        out = networks.apply(params, frames, game_id, config.compute_dtype)
        return out.q_values, out.logits, out.atoms

    network = networks_lib.FeedForwardNetwork(init=networks.init, apply=apply)
    loss_fn = losses.PrioritizedCategoricalDoubleQLearning(
        discount=config.discount, importance_sampling_exponent=0.2, max_abs_reward=1.0)
    return learning_lib.SGDLearner(
        network=network,
        loss_fn=loss_fn,
        optimizer=make_optimizer(config),
        data_iterator=itertools.repeat(_acme_batch(batch, config.num_sgd_steps_per_step)),
        target_update_period=config.target_update_period,
        random_key=jax.random.PRNGKey(0),
        logger=loggers.NoOpLogger(),
        num_sgd_steps_per_step=config.num_sgd_steps_per_step,
    )


def measure(torso: str = "nature", batch_size: int = 32, sgd_steps: int = 1, blocks: int = 7,
            calls_per_block: int = 8, compute_dtype: str = "float32", progress=None) -> dict:
    """Samples/s of each contender (median over interleaved blocks) and the paired ratios."""
    ours = common.make_our_runners(torso, batch_size, sgd_steps, compute_dtype)
    acme = make_acme_learner(ours["networks"], ours["config_double_q"], ours["batch"])

    def run_acme(n):
        for _ in range(n):
            acme.step()
        jax.block_until_ready(acme._state.params)  # noqa: SLF001 (Acme exposes no accessor)

    run_acme(2)  # compile and warm up
    contenders = {**ours["runners"], "acme_learner": run_acme}
    seconds = common.interleaved(contenders, blocks, calls_per_block, progress)
    samples = batch_size * sgd_steps
    row = {"torso": torso, "batch_size": batch_size, "sgd_steps_per_call": sgd_steps,
           "dtype": compute_dtype, "num_games": len(common.DEMO_NUM_ACTIONS), "blocks": blocks,
           "calls_per_block": calls_per_block, **ours["facts"]}
    for name, values in seconds["wall"].items():
        row[f"{name}_samples_per_s"] = samples / common.median(values)
        row[f"{name}_samples_per_cpu_s"] = samples / common.median(seconds["cpu"][name])
    row["ratio_vs_acme"] = common.paired_ratio(seconds, "acme_learner", "ours_learner")
    row["ratio_like_for_like_vs_acme"] = common.paired_ratio(
        seconds, "acme_learner", "ours_update_double_q")
    row["learner_overhead_fraction"] = {
        clock: value - 1 for clock, value in
        common.paired_ratio(seconds, "ours_learner", "ours_update").items()
        if clock in ("wall", "cpu")}
    row["seconds_per_call"] = seconds
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torso", default="nature")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--sgd-steps", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--calls-per-block", type=int, default=8)
    args = parser.parse_args(argv)
    rows = []
    for batch_size in args.batch_sizes:
        row = measure(args.torso, batch_size, args.sgd_steps, args.blocks, args.calls_per_block)
        rows.append(row)
        print(f"{args.torso} B{batch_size} S{args.sgd_steps}: " + ", ".join(
            f"{k.removesuffix('_samples_per_s')} {v:,.0f}" for k, v in row.items()
            if k.endswith("_samples_per_s")) + " samples/s; ours/acme "
            f"{row['ratio_vs_acme']['wall']:.2f}x wall, {row['ratio_vs_acme']['cpu']:.2f}x cpu "
            f"(like for like {row['ratio_like_for_like_vs_acme']['wall']:.2f}x / "
            f"{row['ratio_like_for_like_vs_acme']['cpu']:.2f}x)", flush=True)
    common.write_results("acme_side_by_side", rows)
    return rows


if __name__ == "__main__":
    main()
