"""Per-game policies over the multi-game network, and the Acme actor that runs them.

A policy acts with one game's head: greedy over that game's minimal action set, except with
probability epsilon a uniformly random valid action.  Evaluation uses a small epsilon (0.001 by
default, Dopamine's evaluation epsilon); data collection and online fine-tuning a larger one.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from acme.agents.jax import actor_core, actors

from scaled_ql.agents.scaled_ql.config import EVAL_EPSILON  # noqa: F401 (re-exported)
from scaled_ql.agents.scaled_ql.learner import POLICY_VARIABLES
from scaled_ql.agents.scaled_ql.losses import masked_argmax
from scaled_ql.agents.scaled_ql.variable_client import VariableClient
from scaled_ql.networks import ScaledQLNetworks


# (params, key, observation uint8 [B, *networks.observation.shape], game_id int32 [B])
#   -> action int32 [B]   (Atari: [B, 84, 84, 4]; MinAtar: [B, 10, 10, 10])
MultiGamePolicy = Callable[[dict, jax.Array, jax.Array, jax.Array], jax.Array]
# (params, key, observation uint8 [B, *networks.observation.shape]) -> action int32 [B];
# Acme's FeedForwardPolicy
FeedForwardPolicy = Callable[[dict, jax.Array, jax.Array], jax.Array]


def make_multi_game_policy(networks: ScaledQLNetworks, epsilon: float,
                           compute_dtype: str = "float32") -> MultiGamePolicy:
    """Epsilon-greedy over each example's own game (mixed-game batches welcome)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    num_actions = jnp.asarray(networks.num_actions, jnp.int32)  # [G]

    def policy(params, key, observation, game_id):
        output = networks.apply(params, observation, game_id, compute_dtype)
        greedy = masked_argmax(output.q_values, output.action_mask)  # [B]
        explore_key, action_key = jax.random.split(key)
        # Uniform over the game's valid actions: floor(u * A_g), u in [0, 1).
        uniform = jax.random.uniform(action_key, game_id.shape)
        random_action = jnp.floor(uniform * num_actions[game_id]).astype(jnp.int32)
        explore = jax.random.uniform(explore_key, game_id.shape) < epsilon
        return jnp.where(explore, random_action, greedy.astype(jnp.int32))

    return policy


def make_policy(networks: ScaledQLNetworks, game_id: int, epsilon: float,
                compute_dtype: str = "float32") -> FeedForwardPolicy:
    """Acme-style feed-forward policy for one game: (params, key, observation [B]) -> action."""
    if not 0 <= game_id < networks.num_games:
        raise ValueError(f"game_id {game_id} is not one of the network's {networks.num_games} "
                         "games")
    multi_game = make_multi_game_policy(networks, epsilon, compute_dtype)

    def policy(params, key, observation):
        game_ids = jnp.full(observation.shape[:1], game_id, jnp.int32)  # [B]
        return multi_game(params, key, observation, game_ids)

    return policy


def make_actor(policy: FeedForwardPolicy, random_key: jax.Array, *,
               variable_source=None, adder=None, variable_update_period: int = 1000,
               ) -> actors.GenericActor:
    """An Acme `GenericActor` running `policy`, pulling 'policy' parameters from a source
    (with this package's `VariableClient`: a fetch left waiting on a stopped learner does not
    keep the process from exiting)."""
    variable_client = None
    if variable_source is not None:
        variable_client = VariableClient(
            variable_source, POLICY_VARIABLES, update_period=variable_update_period)
        variable_client.update_and_wait()
    core = actor_core.batched_feed_forward_to_actor_core(policy)
    return actors.GenericActor(core, random_key, variable_client, adder=adder, backend="cpu")


class CheckpointPolicy:
    """Epsilon-greedy with a saved network's head for one game: a collection behaviour policy.

    `scaled-ql collect --policy checkpoint --checkpoint RUN_DIR [--epsilon E]` builds it in each
    collection process (`scaled_ql.datasets.collect` names it by import path).  Episodes are
    stamped with `checkpoint_id` (which policy snapshot made them, as in rlu_atari).
    """

    def __init__(self, num_actions: int, seed: int, *, checkpoint: str, game: str,
                 epsilon: float = 0.01, checkpoint_id: int = 0):
        from scaled_ql.agents.scaled_ql.checkpointing import load_checkpoint

        loaded = load_checkpoint(checkpoint)
        if game not in loaded.meta.games:
            raise ValueError(f"checkpoint {checkpoint} has no head for {game}; its games are "
                             f"{list(loaded.meta.games)}")
        head = loaded.meta.games.index(game)
        if loaded.meta.num_actions[head] != num_actions:
            raise ValueError(f"checkpoint {checkpoint}: the {game} head has "
                             f"{loaded.meta.num_actions[head]} actions, the environment "
                             f"{num_actions}")
        self.checkpoint_id = checkpoint_id
        self._params = loaded.params
        self._policy = jax.jit(make_policy(loaded.networks, head, epsilon,
                                           loaded.config.compute_dtype))
        self._key = jax.random.PRNGKey(seed)

    def __call__(self, observation) -> int:
        self._key, key = jax.random.split(self._key)
        return int(self._policy(self._params, key, observation[None])[0])
