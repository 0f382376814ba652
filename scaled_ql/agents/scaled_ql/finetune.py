"""Fine-tuning a pre-trained Scaled QL network: new heads for a new game list, a frozen torso.

Pure JAX (no TF / Reverb / Launchpad / Acme), like the rest of the core.

Re-heading.  A network's parameters are a Haiku dict: modules under 'torso/...' are the shared
representation, 'heads' holds every game's head padded to A_max actions
(`w: [G, D, A_max * N]`, `b: [G, A_max * N]`, action-major: index a * N + n).  Adding a game
with another action count therefore means building the network of the *new* game list
(`make_networks(config, new_num_actions, observation=...)` with the checkpoint's observation
spec: the new games must belong to the checkpoint's suite), initialising it, and copying into it

- the whole torso (shapes must match: same NetworkConfig), and
- the head of every new game that the checkpoint already has a head for, when heads are
  reused (online fine-tuning on a variant of a training game); its A real actions are copied,
  the padding of the new layout keeps its fresh initialisation (padding never gets gradient).

Freezing the torso.  `freeze_torso(networks)` returns the same networks whose `apply` wraps the
torso parameters in `jax.lax.stop_gradient`.  Their gradient is then exactly zero, so the
unchanged update step of `learning.py` leaves them bit-for-bit unchanged: global-norm clipping
scales a zero vector to zero, and Adam's moments of a zero gradient stay zero, so its update
is 0 / (sqrt(0) + eps) = 0 (the same argument the heads module makes for padded actions).  XLA
also drops the torso's backward pass.  `trainable_mask` / `make_partitioned_optimizer` give the
equivalent optimizer-side partition (optax.multi_transform) for code that owns its optimizer.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import numpy as np
import optax

from scaled_ql import types
from scaled_ql.networks import ScaledQLNetworks, make_networks
from scaled_ql.networks.factory import HEADS_MODULE, TORSO_MODULE, NetworkConfig

__all__ = [
    "HeadMismatchError",
    "freeze_torso",
    "head_params",
    "is_torso_module",
    "make_partitioned_optimizer",
    "rehead_params",
    "torso_params",
    "trainable_mask",
]


class HeadMismatchError(ValueError):
    """Parameters do not fit the game list / network they are being moved into."""


def is_torso_module(module: str) -> bool:
    """Whether a Haiku module name belongs to the shared torso ('torso' or 'torso/...')."""
    return module == TORSO_MODULE or module.startswith(TORSO_MODULE + "/")


def torso_params(params: Mapping) -> dict:
    """The torso modules of `params` (a new dict sharing the arrays)."""
    return {m: dict(leaves) for m, leaves in params.items() if is_torso_module(m)}


def head_params(params: Mapping, games: Sequence[str], num_actions: Sequence[int],
                num_atoms: int, game: str) -> dict[str, np.ndarray]:
    """One game's head without padding: {'w': [D, A, N], 'b': [A, N]} (numpy)."""
    if game not in games:
        raise HeadMismatchError(f"no head for {game}; the parameters have heads for {list(games)}")
    g = list(games).index(game)
    heads = params[HEADS_MODULE]
    max_actions = int(max(num_actions))
    w = np.asarray(heads["w"])[g].reshape(-1, max_actions, num_atoms)  # [D, A_max, N]
    b = np.asarray(heads["b"])[g].reshape(max_actions, num_atoms)  # [A_max, N]
    a = int(num_actions[g])
    return {"w": w[:, :a], "b": b[:a]}


def rehead_params(
    params: Mapping,
    *,
    network: NetworkConfig,
    source_games: Sequence[str],
    source_num_actions: Sequence[int],
    games: Sequence[str],
    num_actions: Sequence[int],
    key: jax.Array,
    reuse_heads: bool = True,
    observation: types.ObservationSpec = types.ATARI_OBSERVATION,
) -> tuple[ScaledQLNetworks, dict, tuple[str, ...]]:
    """Moves pre-trained parameters into the network of another game list.

    Args:
      params: the pre-trained online parameters (heads for `source_games`).
      network: the NetworkConfig both networks share (the checkpoint's).
      source_games, source_num_actions: the checkpoint's heads, in order.
      games, num_actions: the new network's heads, in order.
      key: initialises the new network (its fresh heads and head padding).
      reuse_heads: copy the head of every new game the checkpoint has a head for; False
        starts every head fresh (only the torso is transferred).
      observation: the observation spec of the checkpoint's suite, which both networks read
        (the caller checks that `games` belong to that suite: `checkpointing.check_suite`).

    Returns:
      (networks of the new game list, their parameters, the games whose head was copied).

    Raises:
      HeadMismatchError: the torso does not fit `network`, a reused game has another action
        count, or the game lists are malformed.
    """
    source_games, games = tuple(source_games), tuple(games)
    if len(source_games) != len(source_num_actions) or len(games) != len(num_actions):
        raise HeadMismatchError("each game list needs exactly one action count per game")
    if len(set(games)) != len(games):
        raise HeadMismatchError(f"games must be distinct, got {list(games)}")
    networks = make_networks(network, num_actions, observation=observation)
    fresh = jax.device_get(networks.init(key))
    source = jax.device_get(dict(params))

    fresh_torso, source_torso = torso_params(fresh), torso_params(source)
    if set(fresh_torso) != set(source_torso):
        raise HeadMismatchError(
            "the pre-trained torso has other modules than this NetworkConfig builds "
            f"(checkpoint: {sorted(source_torso)[:4]}..., network: {sorted(fresh_torso)[:4]}...)")
    new = {}
    for module, leaves in fresh_torso.items():
        for name, value in leaves.items():
            old = source_torso[module].get(name)
            if old is None or np.shape(old) != np.shape(value):
                raise HeadMismatchError(
                    f"torso parameter {module}/{name}: checkpoint "
                    f"{None if old is None else np.shape(old)} vs network {np.shape(value)} "
                    "(another torso, width or feature size?)")
        new[module] = {name: np.array(value, copy=True)
                       for name, value in source_torso[module].items()}

    heads = {name: np.array(value, copy=True) for name, value in fresh[HEADS_MODULE].items()}
    num_atoms = network.num_atoms
    max_actions = int(max(num_actions))
    reused = []
    for g, game in enumerate(games):
        if not reuse_heads or game not in source_games:
            continue
        s = source_games.index(game)
        if int(source_num_actions[s]) != int(num_actions[g]):
            raise HeadMismatchError(
                f"{game}: the checkpoint's head has {source_num_actions[s]} actions, the new "
                f"network {num_actions[g]} (full vs minimal action set?)")
        old = head_params(source, source_games, source_num_actions, num_atoms, game)
        if old["w"].shape[0] != heads["w"].shape[1]:
            raise HeadMismatchError(f"{game}: head feature size {old['w'].shape[0]} vs "
                                    f"{heads['w'].shape[1]}")
        a = int(num_actions[g])
        w = heads["w"][g].reshape(-1, max_actions, num_atoms)  # [D, A_max, N], a view
        b = heads["b"][g].reshape(max_actions, num_atoms)  # [A_max, N], a view
        w[:, :a] = old["w"]
        b[:a] = old["b"]
        reused.append(game)
    new[HEADS_MODULE] = heads
    return networks, new, tuple(reused)


def freeze_torso(networks: ScaledQLNetworks) -> ScaledQLNetworks:
    """The same networks with no gradient flowing into the torso parameters (see module doc)."""
    inner_apply = networks.apply

    def apply(params, observation, game_id, compute_dtype: str = "float32"):
        params = {module: (jax.tree_util.tree_map(jax.lax.stop_gradient, leaves)
                           if is_torso_module(module) else leaves)
                  for module, leaves in params.items()}
        return inner_apply(params, observation, game_id, compute_dtype)

    return dataclasses.replace(networks, apply=apply)


def trainable_mask(params: Mapping, freeze_torso: bool) -> dict:
    """A pytree of bools like `params`: False for frozen (torso) leaves when `freeze_torso`."""
    return {module: jax.tree_util.tree_map(
        lambda _: not (freeze_torso and is_torso_module(module)), leaves)
        for module, leaves in params.items()}


def make_partitioned_optimizer(optimizer: optax.GradientTransformation, params: Mapping,
                               freeze_torso: bool) -> optax.GradientTransformation:
    """`optimizer` on trainable leaves, zero updates (and no state) on frozen ones."""
    mask = trainable_mask(params, freeze_torso)
    labels = jax.tree_util.tree_map(lambda trainable: "train" if trainable else "freeze", mask)
    return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, labels)
