"""Worker side of batched evaluation: groups of environments ("slots") stepped together.

`SlotGroup` plays a fixed list of episodes through a few `AtariEnvironment`s, writing their
observations into a (shared-memory) array; `worker_main` runs up to two groups in a process,
stepping whichever group the main process has sent actions for (see `vector.py`).
"""

import dataclasses
import traceback
from multiprocessing import shared_memory

import numpy as np

from scaled_ql.environments.atari import FRAME_SIZE, STACK_SIZE, AtariEnvironment

OBS_SHAPE = (FRAME_SIZE, FRAME_SIZE, STACK_SIZE)


@dataclasses.dataclass(frozen=True)
class EpisodeResult:
    """One finished evaluation episode.

    Attributes:
      game: catalogue name of the game.
      episode_return: undiscounted sum of raw (unclipped) rewards.
      length: agent steps (each `frame_skip` emulator frames, fewer on the last).
      frames: emulator frames played.
      episode: index of the episode within its game (0..num_episodes-1).
      seed: the ALE seed the episode ran with (reproduces it in an `AtariEnvironment`).
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
    """Steps a fixed list of episodes through `num_slots` environments, episode after episode."""

    def __init__(self, items, num_slots, observations, env_kwargs):
        # Slot s plays items s, s + num_slots, s + 2 * num_slots, ...
        self._queues = [list(items[s::num_slots]) for s in range(num_slots)]
        self._observations = observations  # uint8 [num_slots, 84, 84, 4], shared.
        self._env_kwargs = env_kwargs
        self._envs: list[AtariEnvironment | None] = [None] * num_slots
        self._current: list[Item | None] = [None] * num_slots
        self._returns = [0.0] * num_slots
        self._lengths = [0] * num_slots

    def start(self):
        for slot in range(len(self._queues)):
            self._next_episode(slot)
        return self._status([])

    def step(self, actions: np.ndarray):
        finished = []
        for slot, env in enumerate(self._envs):
            if env is None:
                continue
            timestep = env.step(int(actions[slot]))
            self._returns[slot] += float(timestep.reward)
            self._lengths[slot] += 1
            if timestep.last():
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
        if self._envs[slot] is not None:
            self._envs[slot].close()
        self._envs[slot], self._current[slot] = None, None
        if not self._queues[slot]:
            return
        item = self._current[slot] = self._queues[slot].pop(0)
        env = self._envs[slot] = AtariEnvironment(item.game, seed=item.seed, **self._env_kwargs)
        self._observations[slot] = env.reset().observation
        self._returns[slot], self._lengths[slot] = 0.0, 0

    def _status(self, finished):
        game_ids = np.array([-1 if it is None else it.game_id for it in self._current], np.int32)
        return game_ids, finished  # game_ids[slot] == -1: the slot has no episodes left.


def worker_main(conn, shm_name, num_rows, row_offset, slots_per_group, group_items, env_kwargs):
    """A worker process: one `SlotGroup` per entry of `group_items`, on consecutive rows.

    Protocol: first one ("ok", k, status) per group k; then, for each (k, actions) received,
    steps group k and answers ("ok", k, status); None ends the worker.  Errors are sent as
    ("error", -1, traceback) so the main process can raise them.
    """
    shm = shared_memory.SharedMemory(name=shm_name)
    observations = np.ndarray((num_rows, *OBS_SHAPE), np.uint8, buffer=shm.buf)
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
