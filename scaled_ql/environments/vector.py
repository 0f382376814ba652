"""Batched evaluation: N episodes of several games with one policy over batched observations.

The games are of one suite (`suites.suite_of`): ALE games through `AtariEnvironment`
(observations uint8 [84, 84, 4]) or MinAtar games through `MinAtarEnvironment` ([10, 10, 10]);
the suite's `ObservationSpec` sizes every buffer, and its defaults (sticky actions, episode
cap) apply unless given.

Episodes run in worker processes (one per CPU core by default).  Each worker holds two
groups of environments ("slots", `slots.SlotGroup`) and writes their observations
into one shared-memory array, so a step moves only actions and a few flags through pipes.
The main process serves each group as soon as it reports: one policy call on that group's
batch of observations, then its actions go back.  Meanwhile the worker steps its other
group, so it never sits waiting for the policy or for the main process to be scheduled, and
there is no barrier across workers: all cores stay busy.  With `num_workers=0` everything
runs in-process, one batch over all slots.

We batch our own `AtariEnvironment` rather than `ale_py.vector_env.AtariVectorEnv`.  Its
frames are the same (grayscale, max of the last two frames, OpenCV `INTER_AREA` to 84x84,
zero-padded stack: bit for bit equal to ours in our tests with sticky actions off), but it
runs one game per instance, has no ALE modes or difficulties, counts its step cap in agent
steps, seeds per instance rather than per episode, and costs about as much CPU per agent
step as our environment (slightly more in our measurements: docs/ENVIRONMENTS.md).

Reproducibility: episode k of game g always gets the same environment seed (derived from
`seed`, the game's name and k) and starts from the state a fresh environment with that seed
starts from (a slot reuses its environment for the next episode of the same game via
`reseed`, which restores exactly that state), so returns do not depend on
the number of workers, the slot layout, or the order of `games` (given a deterministic
policy).

Workers are forked from a multiprocessing fork server (safe when the caller holds JAX/TF
threads), so a script that calls `evaluate_policy` with workers needs the usual
`if __name__ == "__main__":` guard.
"""

import multiprocessing as mp
import os
import time
import zlib
from collections.abc import Callable, Sequence
from multiprocessing import connection, shared_memory

import numpy as np

from scaled_ql.environments import games as games_lib
from scaled_ql.environments import suites
from scaled_ql.environments.slots import EpisodeResult, Item, SlotGroup, worker_main

__all__ = ["EpisodeResult", "episode_seed", "evaluate_policy"]

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]
_GROUPS_PER_WORKER = 2  # Double buffering: one group steps while the other waits for actions.
_WORKER_TIMEOUT_S = 600.0  # No answer from a live worker for this long means it hangs.


def episode_seed(seed: int, game: str, episode: int) -> int:
    """The environment seed of episode `episode` of `game`: independent of scheduling and
    game order."""
    entropy = [seed, zlib.crc32(games_lib.get_game(game).name.encode()), episode]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def evaluate_policy(
    policy: Policy,
    games: Sequence[str],
    num_episodes: int,
    *,
    seed: int = 0,
    sticky_action_prob: float | None = None,
    max_episode_frames: int | None = None,
    num_workers: int | None = None,
    envs_per_worker: int = 16,
    mode: int | None = None,
    difficulty: int | None = None,
    progress: bool = True,
) -> list[EpisodeResult]:
    """Plays `num_episodes` episodes of each game with one batched policy.

    Args:
      policy: `policy(observations, game_ids) -> actions`; observations uint8
        [B, *suite.observation.shape] (Atari [B, 84, 84, 4], MinAtar [B, 10, 10, 10]),
        game_ids int32 [B] indexing `games`, actions int [B] indexing each game's minimal
        action set.  B varies from call to call (a group's running episodes).  Both arrays
        are valid during the call only (they may be views of buffers that the next steps
        overwrite): copy what you keep.  Exploration (e.g. eval epsilon 0.001) is the
        policy's business.
      games: catalogue names of one suite, validated (with close matches) before anything
        starts.
      num_episodes: episodes per game.
      seed: base seed; see `episode_seed`.
      sticky_action_prob, max_episode_frames: as the suite's environment takes them; None:
        the suite's defaults (Atari 0.25 and 108,000 emulator frames, MinAtar 0.1 and 10,000
        steps).
      num_workers: worker processes; None: one per CPU core; 0: run in this process.
      envs_per_worker: environments per worker (split over its two groups); in-process, the
        size of the one batch.
      mode, difficulty: a variant applied to every game (must be valid for each; MinAtar:
        difficulty 1 = difficulty ramping).
      progress: show a tqdm bar over finished episodes.

    Returns:
      One `EpisodeResult` per episode, ordered by game (as in `games`), then episode index.

    Raises:
      ValueError: unknown game, games of two suites, invalid variant, bad counts, or a policy
        returning actions of the wrong shape or outside a game's action set.
      RuntimeError: a worker process failed (with its traceback) or stopped answering.
    """
    infos = [games_lib.get_game(game) for game in games]
    if not infos:
        raise ValueError("games must name at least one game")
    if len({info.name for info in infos}) != len(infos):
        raise ValueError(f"games has duplicates: {list(games)}")
    if num_episodes < 1 or envs_per_worker < 1:
        raise ValueError(
            f"num_episodes and envs_per_worker must be >= 1, got {num_episodes}, {envs_per_worker}"
        )
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    suite = suites.suite_of([info.name for info in infos])
    env_kwargs = {
        "mode": mode,
        "difficulty": difficulty,
        "sticky_action_prob": (suite.default_sticky_action_prob if sticky_action_prob is None
                               else sticky_action_prob),
        "max_episode_frames": (suite.default_max_episode_frames if max_episode_frames is None
                               else max_episode_frames),
    }
    for info in infos:  # Fail here, with the game's name, not inside a worker.
        suite.validate_environment_arguments(info.name, **env_kwargs)

    items = [
        Item(game_id, info.name, episode, episode_seed(seed, info.name, episode))
        for game_id, info in enumerate(infos)
        for episode in range(num_episodes)
    ]
    num_actions = np.array([info.num_actions for info in infos])
    serve = _Server(policy, num_actions, infos)
    from tqdm import tqdm

    with tqdm(total=len(items), desc="evaluation episodes", unit="ep", disable=not progress) as bar:
        shape = suite.observation.shape
        if num_workers == 0:
            results = _run_in_process(serve, items, shape, envs_per_worker, env_kwargs, bar)
        else:
            results = _run_workers(serve, items, shape, num_workers, envs_per_worker, env_kwargs,
                                   bar)
    order = {info.name: i for i, info in enumerate(infos)}
    return sorted(results, key=lambda r: (order[r.game], r.episode))


class _Server:
    """One policy call for one group: its observations and game ids in, its actions out."""

    def __init__(self, policy, num_actions, infos):
        self._policy, self._num_actions, self._infos = policy, num_actions, infos

    def __call__(self, observations: np.ndarray, game_ids: np.ndarray) -> np.ndarray | None:
        """Actions for all slots of a group (0 for idle ones); None when the group is done."""
        if game_ids.min() >= 0:  # Every slot is running (the usual case): no gather, no copy.
            active, batch_ids, batch = None, game_ids, observations
        else:
            active = np.flatnonzero(game_ids >= 0)  # [B] running slots.
            if active.size == 0:
                return None
            batch_ids, batch = game_ids[active], observations[active]
        actions = np.asarray(self._policy(batch, batch_ids))  # [B]
        if actions.shape != batch_ids.shape or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"policy must return integer actions of shape {batch_ids.shape}, got "
                f"{actions.dtype} {actions.shape}"
            )
        bad = (actions < 0) | (actions >= self._num_actions[batch_ids])
        if bad.any():
            first = np.flatnonzero(bad)[0]
            info = self._infos[batch_ids[first]]
            raise ValueError(
                f"policy returned action {actions[first]} for {info.name}, whose minimal "
                f"action set has {info.num_actions} actions"
            )
        if active is None:
            return actions
        slot_actions = np.zeros(len(game_ids), np.int64)  # [slots]
        slot_actions[active] = actions
        return slot_actions


def _run_in_process(serve, items, shape, num_slots, env_kwargs, bar) -> list[EpisodeResult]:
    num_slots = min(num_slots, len(items))
    observations = np.zeros((num_slots, *shape), np.uint8)  # [slots, H, W, C]
    group = SlotGroup(items, num_slots, observations, env_kwargs)
    results = []
    game_ids, finished = group.start()
    while (actions := serve(observations, game_ids)) is not None:
        game_ids, finished = group.step(actions)
        results.extend(finished)
        bar.update(len(finished))
    return results


def _worker_context():
    """Processes forked from a clean fork server that has imported this module once.

    Not plain fork: the caller may hold JAX/TF threads.  Not spawn: each worker would
    re-import the package (about a second); the fork server pays that once per session.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])  # No effect once the server runs.
    return ctx


def _run_workers(serve, items, shape, num_workers, envs_per_worker, env_kwargs, bar):
    # Group g (of num_groups) gets every num_groups-th episode and slots_per_group rows of the
    # shared observations; worker w runs groups w * G .. w * G + G - 1.
    num_workers = min(num_workers, len(items))
    num_groups = num_workers * _GROUPS_PER_WORKER
    slots_per_group = max(
        1, min(envs_per_worker // _GROUPS_PER_WORKER, -(-len(items) // num_groups))
    )
    num_rows = num_groups * slots_per_group
    shm = shared_memory.SharedMemory(create=True, size=num_rows * int(np.prod(shape)))
    observations = np.ndarray((num_rows, *shape), np.uint8, buffer=shm.buf)  # [rows, H, W, C]
    ctx = _worker_context()
    workers: list[_Worker] = []
    try:
        for w in range(num_workers):
            group_items = [
                items[g::num_groups]
                for g in range(w * _GROUPS_PER_WORKER, (w + 1) * _GROUPS_PER_WORKER)
            ]
            workers.append(
                _Worker(
                    ctx,
                    shm.name,
                    shape,
                    num_rows,
                    w * _GROUPS_PER_WORKER * slots_per_group,
                    slots_per_group,
                    group_items,
                    env_kwargs,
                )
            )
        results = []
        while any(worker.expected for worker in workers):
            by_conn = {worker.conn: worker for worker in workers if worker.expected}
            for conn in connection.wait(list(by_conn), timeout=1.0):
                worker = by_conn[conn]
                k, (game_ids, finished) = worker.recv()
                results.extend(finished)
                bar.update(len(finished))
                start = worker.row_offset + k * slots_per_group
                actions = serve(observations[start : start + slots_per_group], game_ids)
                if actions is not None:
                    worker.send(k, actions)
            for worker in by_conn.values():
                worker.check_alive()
        return results
    finally:
        for worker in workers:
            worker.close()
        del observations
        shm.close()
        shm.unlink()


def _worker_entry(*args) -> None:
    """A worker process: `worker_main`, deaf to SIGINT.

    Ctrl-C in a terminal reaches every process of the foreground group; the main process
    decides what it means (the runners stop the evaluation and drop its round) and ends its
    workers through `_Worker.close`, so a worker prints no KeyboardInterrupt traceback.  (SIGTERM
    keeps its default: `terminate()` and the exit of the main process rely on it.)  A worker
    whose main process gave up the evaluation before it started (its shared memory is gone) or
    while it answered (the pipe is closed) ends quietly: nobody is left to tell.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker_main(*args)
    except (FileNotFoundError, BrokenPipeError, ConnectionResetError):
        pass


class _Worker:
    """Main-process handle of one worker process; counts the answers it still owes."""

    def __init__(
        self, ctx, shm_name, shape, num_rows, row_offset, slots_per_group, group_items,
        env_kwargs
    ):
        self.row_offset = row_offset
        self.conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_worker_entry,
            args=(
                child_conn,
                shm_name,
                shape,
                num_rows,
                row_offset,
                slots_per_group,
                group_items,
                env_kwargs,
            ),
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        self.expected = len(group_items)  # One start status per group.
        self._last_heard = time.monotonic()

    def send(self, k: int, actions: np.ndarray) -> None:
        self.conn.send((k, actions))
        self.expected += 1

    def recv(self):
        try:
            kind, k, payload = self.conn.recv()
        except EOFError:
            self._process.join(timeout=5)
            raise RuntimeError(
                f"evaluation worker died (exit code {self._process.exitcode}); if this is a "
                "script, is its entry point guarded by `if __name__ == '__main__':`?"
            ) from None
        if kind == "error":
            raise RuntimeError(f"evaluation worker failed:\n{payload}")
        self.expected -= 1
        self._last_heard = time.monotonic()
        return k, payload

    def check_alive(self) -> None:
        if not self._process.is_alive() and not self.conn.poll():
            raise RuntimeError(f"evaluation worker died (exit code {self._process.exitcode})")
        if self.expected and time.monotonic() - self._last_heard > _WORKER_TIMEOUT_S:
            raise RuntimeError(f"evaluation worker silent for {_WORKER_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self.conn.close()
