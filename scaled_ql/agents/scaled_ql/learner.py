"""The Scaled QL learner as an Acme `Learner` and `VariableSource`.

It wraps the pure, jitted update of `learning.make_update_fn`: `step()` pulls one batch from
its iterator, runs `config.num_sgd_steps_per_step` SGD steps, counts and logs.  Updates with a
non-finite loss or gradient are skipped inside the jitted step (parameters untouched); after
`max_consecutive_skips` skipped updates in a row the learner raises `NonFiniteLossError` rather
than train on garbage.

Every batch is checked on the host before the update (a few comparisons per example): the
observation's shape and dtype, game ids inside the network's heads and actions inside each
game's minimal action set.  A bad batch is a `ValueError` naming the field, instead of an XLA
shape error or a silently wrong gather.

Thread safety: `get_variables`, `save` and `restore` may be called from other threads (an Acme
evaluator's variable client, a checkpointing schedule) while `step()` runs.  The update donates
the state's buffers, so one lock covers the update call and those three methods: a reader never
sees a donated state, and always gets the state before or after a whole update.  `step()` holds
it only while dispatching the update, not while waiting for its batch.

Stopping: Acme stops a learner by raising `SystemExit` asynchronously in the thread that runs
it (`acme.utils.signals.runtime_terminator`), and a signal handler raises in the main thread;
either can land at any bytecode.  Landing between the update's return (old buffers donated) and
the assignment of its result would leave the learner holding deleted arrays, and every later
`get_variables` (an evaluator) or `save` (the checkpoint at the stop) would fail.  So the update
and the assignment run on the learner's own update thread, and `step()` only waits for them: an
exception raised in the caller interrupts the wait, never the update.
"""

import concurrent.futures
import threading
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from acme import core
from acme.utils import counting, loggers

from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.learning import (
    TrainingState,
    init_training_state,
    make_update_fn,
)
from scaled_ql.networks import ScaledQLNetworks
from scaled_ql.types import ObservationSpec, Transition

POLICY_VARIABLES = "policy"


def _describe_frames(spec: ObservationSpec) -> str:
    """'4 stacked 84x84 grayscale frames' (Atari) or 'one 10x10x10 frame' (MinAtar)."""
    height, width, channels = spec.frame_shape
    frame = f"{height}x{width} grayscale" if channels == 1 else f"{height}x{width}x{channels}"
    if spec.stack_size == 1:
        return f"one {frame} frame"
    return f"{spec.stack_size} stacked {frame} frames"


class NonFiniteLossError(FloatingPointError, ValueError):
    """Too many consecutive updates had a non-finite loss or gradient.

    Also a `ValueError`: the cause is the run's input (its data or its learning rate), so the
    command line reports it as one line naming what to check, like other bad input.
    """


class ScaledQLLearner(core.Learner):
    """Multi-game offline Q-learning (C51 + CQL by default) on batches of `Transition`s."""

    def __init__(
        self,
        networks: ScaledQLNetworks,
        config: ScaledQLConfig,
        iterator: Iterator[Transition],
        random_key: jax.Array,
        *,
        games: Sequence[str] | None = None,
        counter: counting.Counter | None = None,
        logger: loggers.Logger | None = None,
        max_consecutive_skips: int = 100,
        initial_state: TrainingState | None = None,
    ):
        """Creates the learner.

        Args:
          networks: from `scaled_ql.networks.make_networks`.
          config: the learner config.
          iterator: yields Transition batches of `config.batch_size *
            config.num_sgd_steps_per_step` examples ([S*B, ...]; reshaped to [S, B, ...]).
          random_key: initialises parameters unless `initial_state` is given.
          games: game names in head order, used to name per-game metrics.
          counter: counts SGD steps as `steps`, Acme's learner convention: the caller's
            counter prefixes them (`counting.Counter(parent, "learner")`, as Acme's layouts
            pass it: 'learner_steps' in the parent).  Default: a counter prefixed "learner".
          logger: receives the scalar metrics of every step.
          max_consecutive_skips: skipped (non-finite) updates in a row before aborting.
          initial_state: start from this state (a restored checkpoint, a pre-trained network).
        """
        if max_consecutive_skips < 1:
            raise ValueError(f"max_consecutive_skips must be >= 1, got {max_consecutive_skips}")
        self._networks = networks
        self._config = config
        self._iterator = iterator
        self._games = tuple(games) if games is not None else tuple(
            f"game_{g}" for g in range(networks.num_games))
        self._counter = counter or counting.Counter(prefix="learner")
        self._logger = logger or loggers.make_default_logger("learner", asynchronous=False,
                                                             print_fn=lambda *_: None)
        self._max_consecutive_skips = max_consecutive_skips
        self._consecutive_skips = 0
        self._update = make_update_fn(networks, config)
        self._lock = threading.Lock()  # guards self._state: see the module docstring
        self._update_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="scaled_ql_update")  # see "Stopping" in the module docstring
        self._state = initial_state if initial_state is not None else init_training_state(
            networks, config, random_key)
        self.last_metrics: dict[str, float] = {}

    @property
    def state(self) -> TrainingState:
        """The live device state, for the thread that calls `step()` (which donates it); other
        threads use `save()`."""
        return self._state

    @property
    def steps_per_call(self) -> int:
        """SGD steps one `step()` takes (config.num_sgd_steps_per_step)."""
        return self._config.num_sgd_steps_per_step

    @property
    def num_steps(self) -> int:
        """SGD steps taken so far (skipped ones included)."""
        with self._lock:
            return int(jax.device_get(self._state.step))

    def _reshape(self, batch: Transition) -> Transition:
        steps, size = self._config.num_sgd_steps_per_step, self._config.batch_size
        batch = Transition(*batch)
        leading = np.shape(batch.observation)[0] if np.ndim(batch.observation) else 0
        if leading != steps * size:
            raise ValueError(
                f"the learner's iterator yielded {leading} transitions; it needs batch_size x "
                f"num_sgd_steps_per_step = {size} x {steps} = {steps * size}")
        self._check_batch(batch)
        return jax.tree_util.tree_map(lambda x: np.reshape(x, (steps, size, *np.shape(x)[1:])),
                                      batch)

    def _check_batch(self, batch: Transition) -> None:
        """Raises ValueError naming the first field of `batch` that the network cannot take."""
        spec = self._networks.observation
        expected = (np.shape(batch.observation)[0], *spec.shape)
        for name in ("observation", "next_observation"):
            value = getattr(batch, name)
            dtype = np.dtype(getattr(value, "dtype", None) or np.asarray(value).dtype)
            if np.shape(value) != expected or dtype != np.uint8:
                raise ValueError(
                    f"batch {name} is {dtype} {tuple(np.shape(value))}; the network takes "
                    f"uint8 [B, {', '.join(map(str, spec.shape))}] ({_describe_frames(spec)})")
        num_actions = np.asarray(self._networks.num_actions)
        game_id = np.asarray(batch.game_id)
        bad_game = (game_id < 0) | (game_id >= len(num_actions))
        if np.any(bad_game):
            raise ValueError(
                f"batch game_id {game_id[bad_game][0]} is outside [0, {len(num_actions)}): "
                f"this network has heads for {list(self._games)}")
        action = np.asarray(batch.action)
        limit = num_actions[game_id]
        bad_action = (action < 0) | (action >= limit)
        if np.any(bad_action):
            i = int(np.flatnonzero(bad_action)[0])
            raise ValueError(
                f"batch action {action[i]} for {self._games[game_id[i]]} is outside its minimal "
                f"action set [0, {limit[i]})")

    def _apply_update(self, batch: Transition):
        with self._lock:
            self._state, metrics = self._update(self._state, batch)
        return metrics

    def step(self) -> None:
        batch = self._reshape(next(self._iterator))
        metrics = self._update_thread.submit(self._apply_update, batch).result()
        metrics = jax.device_get(metrics)
        skipped = int(metrics["num_skipped_in_call"])
        self._consecutive_skips = (
            self._consecutive_skips + skipped if skipped == self._config.num_sgd_steps_per_step
            else 0)
        if self._consecutive_skips >= self._max_consecutive_skips:
            raise NonFiniteLossError(
                f"{self._consecutive_skips} consecutive updates had a non-finite loss or "
                f"gradient (last finite parameters kept, step {int(metrics['step'])}); "
                "check the data for NaN/inf rewards or lower the learning rate")
        counts = self._counter.increment(steps=self._config.num_sgd_steps_per_step)
        self.last_metrics = self._flatten(metrics)
        self._logger.write({**counts, **self.last_metrics})

    def _flatten(self, metrics) -> dict[str, float]:
        flat = {}
        for name, value in metrics.items():
            value = np.asarray(value)
            if value.ndim == 0:
                flat[name] = value.item()
            elif name in ("td_loss_per_game", "count_per_game"):
                for game, v in zip(self._games, value):
                    flat[f"{name}/{game}"] = float(v)
        return flat

    def get_variables(self, names: Sequence[str]) -> list:
        """`'policy'` (or any name): the online parameters, as numpy arrays (thread-safe)."""
        with self._lock:
            params = jax.device_get(self._state.params)
        return [params for _ in names]

    def save(self) -> TrainingState:
        """The whole training state as numpy arrays (thread-safe)."""
        with self._lock:
            return jax.device_get(self._state)

    def restore(self, state: TrainingState) -> None:
        """Continues from `state` (e.g. from `save()`); thread-safe."""
        with self._lock:
            self._state = TrainingState(*state)
