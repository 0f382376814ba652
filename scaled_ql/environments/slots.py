"""Worker side of batched evaluation: groups of environments ("slots") stepped together.

`SlotGroup` plays a fixed list of episodes through a few environments of one game suite
(`AtariEnvironment`s or `MinAtarEnvironment`s, made by `suites.make_environment`), writing
their observations (the suite's `ObservationSpec.shape`) into a (shared-memory) array;
`worker_main` runs up to two groups in a process, stepping whichever group the main process
has sent actions for (see `vector.py`).

Loading a ROM costs ALE ~0.1 s, as much as ~350 agent steps, so a slot keeps its environment
from one episode to the next of the same game and `reseed`s it (~1 ms; the episode is bit for
bit what a new environment with its seed would play), a free slot takes another episode of
the game it already has whenever one is left, and it loads another game only when that adds
parallel work (see `SlotGroup._take`).  (A MinAtar game costs little to create, but the same
rules apply: both environments `reseed` to exactly a fresh environment's state.)
"""

import collections
import dataclasses
import traceback
from multiprocessing import shared_memory

import dm_env
import numpy as np

from scaled_ql.environments import suites

_LAST = dm_env.StepType.LAST


@dataclasses.dataclass(frozen=True)
class EpisodeResult:
    """One finished evaluation episode.

    Attributes:
      game: catalogue name of the game.
      episode_return: undiscounted sum of raw (unclipped) rewards.
      length: agent steps (Atari: each `frame_skip` emulator frames, fewer on the last).
      frames: emulator frames played (MinAtar: the same as `length`).
      episode: index of the episode within its game (0..num_episodes-1).
      seed: the environment seed the episode ran with (reproduces it in a new environment
        of the game, e.g. `suites.make_environment(game, seed=seed, ...)`).
      truncated: whether the frame cap ended the episode rather than game over.
    """

    game: str
    episode_return: float
    length: int
    frames: int
    episode: int = 0
    seed: int = 0
    truncated: bool = False


@dataclasses.dataclass(frozen=True)
class Item:
    game_id: int
    game: str
    episode: int
    seed: int


class SlotGroup:
    """Plays a fixed list of episodes through `num_slots` environments, episode after episode.

    Every slot starts with an episode (while there are enough).  A slot that finishes an
    episode takes the next one of its own game if any is left (and reseeds its environment);
    otherwise it loads the game with the most episodes waiting per slot playing it, or goes
    idle (see `_take`).  Results do not depend on this order: each
    episode has its own seed and starts from the state of a fresh environment.
    """

    def __init__(self, items, num_slots, observations, env_kwargs):
        self._pending: dict[int, collections.deque] = {}  # game_id -> its episodes not started.
        for item in items:
            self._pending.setdefault(item.game_id, collections.deque()).append(item)
        self._playing = collections.Counter()  # game_id -> slots playing it now.
        self._observations = observations  # uint8 [num_slots, *ObservationSpec.shape], shared.
        self._env_kwargs = env_kwargs
        self._envs: list[dm_env.Environment | None] = [None] * num_slots
        self._current: list[Item | None] = [None] * num_slots
        self._returns = [0.0] * num_slots
        self._lengths = [0] * num_slots
        self._game_ids = np.full(num_slots, -1, np.int32)  # -1: the slot has no episodes left.

    def start(self):
        for slot in range(len(self._envs)):
            self._next_episode(slot)
        return self._status([])

    def step(self, actions: np.ndarray):
        finished = []
        for slot, env in enumerate(self._envs):
            if self._current[slot] is None:
                continue
            timestep = env.step(int(actions[slot]))
            self._returns[slot] += float(timestep.reward)
            self._lengths[slot] += 1
            if timestep.step_type == _LAST:
                item = self._current[slot]
                finished.append(
                    EpisodeResult(
                        game=item.game,
                        episode_return=self._returns[slot],
                        length=self._lengths[slot],
                        frames=env.episode_frames,
                        episode=item.episode,
                        seed=item.seed,
                        truncated=bool(timestep.discount > 0),
                    )
                )
                self._next_episode(slot)
            else:
                self._observations[slot] = timestep.observation
        return self._status(finished)

    def _next_episode(self, slot):
        if self._current[slot] is not None:
            self._playing[self._current[slot].game_id] -= 1
            self._current[slot] = None
        env = self._envs[slot]
        item = self._take(env)
        if item is None:
            if env is not None:
                env.close()
            self._envs[slot] = None
            self._game_ids[slot] = -1
            return
        if env is not None and env.game.name == item.game:
            env.reseed(item.seed)
        else:
            if env is not None:
                env.close()
            env = self._envs[slot] = suites.make_environment(
                item.game, seed=item.seed, **self._env_kwargs
            )
        self._current[slot] = item
        self._playing[item.game_id] += 1
        self._game_ids[slot] = item.game_id
        self._observations[slot] = env.reset().observation
        self._returns[slot], self._lengths[slot] = 0.0, 0

    def _take(self, env: dm_env.Environment | None) -> Item | None:
        """The next episode for a slot whose environment (None: none yet) is `env`, if any.

        A slot without an environment (at the start) takes any episode left.  A slot whose
        game has no episode left loads another game only if that game has more episodes
        waiting than slots playing it, and otherwise stays idle, for good (that condition
        cannot come back): the group's slots take turns on one core anyway, so an idle slot
        costs no throughput, only batch size, while a load costs as much as ~350 agent steps.
        """
        if env is None:
            candidates = list(self._pending)
        else:
            own = next((q for q in self._pending.values() if q[0].game == env.game.name), None)
            if own is not None:
                return self._pop(own)
            candidates = [g for g, queue in self._pending.items() if len(queue) > self._playing[g]]
        if not candidates:
            return None
        # The game whose remaining episodes are shared by the fewest slots (first on ties).
        game_id = max(candidates, key=lambda g: len(self._pending[g]) / (1 + self._playing[g]))
        return self._pop(self._pending[game_id])

    def _pop(self, queue: collections.deque) -> Item:
        item = queue.popleft()
        if not queue:
            del self._pending[item.game_id]
        return item

    def _status(self, finished):
        return self._game_ids.copy(), finished  # game_ids[slot] == -1: no episodes left.


def worker_main(conn, shm_name, observation_shape, num_rows, row_offset, slots_per_group,
                group_items, env_kwargs):
    """A worker process: one `SlotGroup` per entry of `group_items`, on consecutive rows of the
    shared uint8 [num_rows, *observation_shape] observations.

    Protocol: first one ("ok", k, status) per group k; then, for each (k, actions) received,
    steps group k and answers ("ok", k, status); None ends the worker.  Errors are sent as
    ("error", -1, traceback) so the main process can raise them.
    """
    shm = shared_memory.SharedMemory(name=shm_name)
    observations = np.ndarray((num_rows, *observation_shape), np.uint8, buffer=shm.buf)
    groups = []
    try:
        for k, items in enumerate(group_items):
            start = row_offset + k * slots_per_group
            rows = observations[start : start + slots_per_group]
            groups.append(SlotGroup(items, slots_per_group, rows, env_kwargs))
        for k, group in enumerate(groups):
            conn.send(("ok", k, group.start()))
        while (message := conn.recv()) is not None:
            k, actions = message
            conn.send(("ok", k, groups[k].step(actions)))
    except Exception:  # noqa: BLE001  (sent to the main process, which raises it)
        conn.send(("error", -1, traceback.format_exc()))
    finally:
        del groups, observations  # Views of the shared buffer must go before it closes.
        shm.close()
