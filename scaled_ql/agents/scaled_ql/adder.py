"""An Acme adder that writes one game's online experience into its Reverb table as n-step
`Transition`s, the same items the offline feeders write (`scaled_ql.datasets.feed`).

The environment already produces the observation the learner wants (the game suite's
`types.ObservationSpec.shape`: `AtariEnvironment` stacks frames into uint8 [84, 84, 4],
`MinAtarEnvironment` gives uint8 [10, 10, 10]); given `observation`, the adder checks every
observation against it before writing, with an error naming the table, instead of Reverb's
signature error.  For each step t the adder writes

    Transition(observation=o_t, action=a_t,
               reward=sum_{i<k} gamma^i clip(r_{t+i}),
               discount=gamma^k * prod_{i<k} d_{t+i},      # 0 after a game over
               next_observation=o_{t+k}, game_id)

with k = n, or fewer at the end of an episode, exactly as `datasets.transitions` builds them
from RLDS episodes (a truncated episode, discount 1 at the frame cap, is bootstrapped from).

Writes go through a `reverb.TrajectoryWriter`; with a `SampleToInsertRatio` table they block
while the learner lags.  Each wait is bounded: every `poll_ms` the adder asks `should_stop()`
and gives up with `AdderStopped` when it says so (the program is ending), and after
`timeout_ms` in total it raises `TimeoutError` instead of hanging.
"""

import collections
import time
from collections.abc import Callable

import dm_env
import numpy as np

from scaled_ql import types


class AdderStopped(RuntimeError):
    """A blocked write was abandoned because the program is stopping."""


class TransitionAdder:
    """Acme adder interface (`add_first`, `add`, `reset`) writing n-step Transitions."""

    def __init__(self, client, table: str, *, game_id: int, n_step: int = 1,
                 discount: float = 0.99, clip_rewards: bool = True,
                 max_in_flight_items: int = 32, poll_ms: int = 1_000,
                 timeout_ms: int | None = 600_000,
                 should_stop: Callable[[], bool] | None = None,
                 observation: types.ObservationSpec | None = None):
        """Creates the adder.

        Args:
          client: a `reverb.Client`.
          table: the Reverb table (e.g. `datasets.table_name(game)`).
          game_id: the game's head index, written into every Transition.
          n_step, discount, clip_rewards: as `TransitionConfig` (the learner's data settings).
          max_in_flight_items: items written but not yet confirmed by the server.
          poll_ms: how often a blocked write checks `should_stop`.
          timeout_ms: the longest a write may block in total (None: no limit).
          should_stop: returns True when blocked writes should be abandoned.
          observation: the table's observation spec (the game suite's, e.g.
            `suites.suite_of(game).observation`); None writes observations unchecked.
        """
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {discount}")
        self._client = client
        self._table = table
        self._game_id = np.int32(game_id)
        self._n = n_step
        self._gamma = float(discount)
        self._clip = clip_rewards
        self._max_in_flight = max_in_flight_items
        self._poll_ms = poll_ms
        self._timeout_ms = timeout_ms
        self._should_stop = should_stop or (lambda: False)
        self._spec = observation
        self._writer = client.trajectory_writer(num_keep_alive_refs=1)
        self._window: collections.deque = collections.deque()  # (o_t, a_t, r_t, d_t)
        self._observation = None
        self.items_written = 0

    # -- the Acme adder interface -----------------------------------------------------------

    def add_first(self, timestep: dm_env.TimeStep) -> None:
        if not timestep.first():
            raise ValueError("add_first needs the FIRST timestep of an episode")
        self._window.clear()
        self._observation = self._checked(timestep.observation)

    def add(self, action, next_timestep: dm_env.TimeStep, extras=()) -> None:
        del extras
        if self._observation is None:
            raise ValueError("add() before add_first(): no episode in progress")
        reward = float(next_timestep.reward or 0.0)
        if self._clip:
            reward = float(np.clip(reward, -1.0, 1.0))
        discount = float(1.0 if next_timestep.discount is None else next_timestep.discount)
        self._window.append((self._observation, int(action), reward, discount))
        self._observation = self._checked(next_timestep.observation)
        if len(self._window) == self._n:
            self._write_first()
        if next_timestep.last():
            while self._window:
                self._write_first()
            self._observation = None
            self._wait(0)  # an episode's items are on the server before the next starts

    def reset(self) -> None:
        self._window.clear()
        self._observation = None

    # -- writing ------------------------------------------------------------------------------

    def _checked(self, observation) -> np.ndarray:
        """The observation as uint8; raises unless it is `observation.shape` (when given)."""
        if self._spec is not None:
            got = np.asarray(observation)
            if got.dtype != np.uint8 or got.shape != self._spec.shape:
                raise ValueError(
                    f"{self._table}: observation is {got.dtype} {got.shape}; the table holds "
                    f"{self._spec.name} observations {self._spec.describe()}")
        return np.asarray(observation, np.uint8)

    def _write_first(self) -> None:
        """Writes the transition starting at the oldest step of the window, then drops it."""
        observation, action, _, _ = self._window[0]
        reward, multiplier = 0.0, 1.0
        for _, _, r, d in self._window:
            reward += multiplier * r
            multiplier *= self._gamma * d  # gamma^k * prod(d): 0 once the game is over
        transition = types.Transition(
            observation=observation, action=np.int32(action), reward=np.float32(reward),
            discount=np.float32(multiplier), next_observation=self._observation,
            game_id=self._game_id)
        self._writer.append(transition)
        item = types.Transition(*(column[-1] for column in self._writer.history))
        self._writer.create_item(self._table, priority=1.0, trajectory=item)
        self.items_written += 1
        self._window.popleft()
        self._wait(self._max_in_flight)

    def _wait(self, max_pending: int) -> None:
        import reverb

        started = time.monotonic()
        while True:
            try:
                self._writer.flush(block_until_num_items=max_pending, timeout_ms=self._poll_ms)
                return
            except reverb.errors.DeadlineExceededError:
                if self._should_stop():
                    raise AdderStopped(f"write to {self._table} abandoned: stopping") from None
                waited_ms = 1000 * (time.monotonic() - started)
                if self._timeout_ms is not None and waited_ms > self._timeout_ms:
                    raise TimeoutError(
                        f"writes to Reverb table {self._table} blocked for {waited_ms:.0f} ms: "
                        "is the learner sampling (sample-to-insert rate limiter)?") from None

    def flush(self) -> None:
        """Blocks until every item written so far is on the server (bounded like writes)."""
        self._wait(0)

    def close(self) -> None:
        try:
            self._writer.end_episode(clear_buffers=True, timeout_ms=self._poll_ms)
        except Exception:  # noqa: BLE001 -- closing while stopping: pending items may be lost
            pass
        self._writer.close()
