"""Batched evaluation on real ROMs and real MinAtar games: results match single-environment
rollouts, any layout."""

import os
import pathlib
import signal
import subprocess
import sys
import time
from multiprocessing import shared_memory

import numpy as np
import psutil
import pytest

from scaled_ql.environments import AtariEnvironment, get_game
from scaled_ql.environments import vector as vector_module
from scaled_ql.environments.minatar_env import MinAtarEnvironment
from scaled_ql.environments.vector import EpisodeResult, episode_seed, evaluate_policy
from tests.reliability import faults

GAMES = ("Pong", "Breakout")
NUM_ACTIONS = np.array([get_game(g).num_actions for g in GAMES])
CAP = 600  # Emulator frames per episode: 150 agent steps keeps the tests fast.


def pixel_policy(observations: np.ndarray, game_ids: np.ndarray) -> np.ndarray:
    """Deterministic, per-example and observation-dependent, so any divergence shows."""
    assert observations.dtype == np.uint8 and observations.shape[1:] == (84, 84, 4)
    assert game_ids.dtype == np.int32 and game_ids.shape == observations.shape[:1]
    brightness = observations[:, 30:, :, -1].astype(np.int64).sum(axis=(1, 2))  # [B]
    return (brightness // 7) % NUM_ACTIONS[game_ids]


def _single_env_episode(game: str, episode: int, seed: int) -> EpisodeResult:
    """The same episode played by hand in one AtariEnvironment: the independent reference."""
    ale_seed = episode_seed(seed, game, episode)
    env = AtariEnvironment(game, seed=ale_seed, max_episode_frames=CAP)
    timestep, total, length = env.reset(), 0.0, 0
    game_id = np.array([GAMES.index(game)], np.int32)
    while not timestep.last():
        action = pixel_policy(timestep.observation[None], game_id)[0]
        timestep = env.step(action)
        total, length = total + float(timestep.reward), length + 1
    return EpisodeResult(
        game,
        total,
        length,
        env.episode_frames,
        episode,
        ale_seed,
        truncated=bool(timestep.discount > 0),
    )


def test_in_process_results_match_single_environment_rollouts():
    results = evaluate_policy(
        pixel_policy,
        GAMES,
        3,
        seed=4,
        max_episode_frames=CAP,
        num_workers=0,
        envs_per_worker=4,
        progress=False,
    )
    assert [(r.game, r.episode) for r in results] == [(g, e) for g in GAMES for e in range(3)]
    expected = [_single_env_episode(g, e, seed=4) for g in GAMES for e in range(3)]
    assert results == expected
    assert all(r.frames == CAP and r.truncated for r in results)  # 600 frames: no game ends.
    assert len({r.seed for r in results}) == 6


def test_slots_reuse_their_environment_for_more_episodes_of_its_game(monkeypatch):
    """Loading a ROM costs ~0.1 s: 2 slots playing 2 x 3 episodes must load each game once."""
    loads = []
    load_rom = AtariEnvironment._load_rom

    def counting_load_rom(env, seed):
        loads.append(env.game.name)
        load_rom(env, seed)

    monkeypatch.setattr(AtariEnvironment, "_load_rom", counting_load_rom)
    results = evaluate_policy(
        pixel_policy,
        GAMES,
        3,
        seed=5,
        max_episode_frames=CAP,
        num_workers=0,
        envs_per_worker=2,
        progress=False,
    )
    assert sorted(loads) == sorted(GAMES)  # One load per slot; the other episodes reseed.
    monkeypatch.setattr(AtariEnvironment, "_load_rom", load_rom)
    assert results == [_single_env_episode(g, e, seed=5) for g in GAMES for e in range(3)]


@pytest.mark.integration
def test_worker_processes_give_the_same_results_as_in_process():
    kwargs = {"seed": 9, "max_episode_frames": CAP, "progress": False}
    local = evaluate_policy(pixel_policy, GAMES, 3, num_workers=0, envs_per_worker=1, **kwargs)
    workers = evaluate_policy(pixel_policy, GAMES, 3, num_workers=2, envs_per_worker=2, **kwargs)
    assert workers == local


def test_episodes_that_end_early_are_reported_with_discount_zero_endings():
    def noop(observations, game_ids):
        return np.zeros(len(game_ids), np.int64)

    # Pong with NOOP loses 0-21 in about 3,000 frames: a real game over, not the cap.
    (result,) = evaluate_policy(noop, ["Pong"], 1, num_workers=0, progress=False)
    assert result.episode_return == -21.0 and not result.truncated
    assert result.frames < 108_000 and result.length == -(-result.frames // 4)


def test_bad_policy_output_names_the_game():
    def too_large(observations, game_ids):
        return np.full(len(game_ids), 5)  # Valid for Pong (6 actions), not for Breakout (4).

    with pytest.raises(ValueError, match="action 5 for Breakout, whose minimal action set has 4"):
        evaluate_policy(too_large, GAMES, 1, max_episode_frames=CAP, num_workers=0, progress=False)

    def wrong_shape(observations, game_ids):
        return np.zeros((len(game_ids), 1), np.int64)

    with pytest.raises(ValueError, match="integer actions of shape"):
        evaluate_policy(
            wrong_shape, GAMES, 1, max_episode_frames=CAP, num_workers=0, progress=False
        )


def _worker_processes() -> list:
    """Our evaluation workers: children of the multiprocessing fork server we started."""
    return [
        worker
        for child in psutil.Process().children()
        for worker in child.children()
        if worker.status() != psutil.STATUS_ZOMBIE
    ]


def _shared_memory_segments() -> set[str]:
    return {p.name for p in pathlib.Path("/dev/shm").glob("psm_*")}


@pytest.mark.integration
def test_policy_error_with_workers_shuts_down_cleanly(monkeypatch):
    calls, created = [], []

    def broken(observations, game_ids):
        calls.append(len(_worker_processes()))
        raise KeyError("policy bug")

    class RecordingSharedMemory(shared_memory.SharedMemory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self.name.lstrip("/"))

    # Only our own segments: other processes on the machine may add and remove theirs.
    monkeypatch.setattr(vector_module.shared_memory, "SharedMemory", RecordingSharedMemory)
    with pytest.raises(KeyError, match="policy bug"):
        evaluate_policy(broken, GAMES, 2, max_episode_frames=CAP, num_workers=2, progress=False)
    assert calls == [2]  # The error came while both workers were running ...
    assert _worker_processes() == []  # ... and they are gone now,
    assert len(created) == 1 and created[0].startswith("psm_")
    assert not _shared_memory_segments() & set(created)  # ... with their shared memory.


@pytest.mark.parametrize(
    "games, kwargs, message",
    [
        (["Pong", "Pacman"], {}, "Unknown game 'Pacman'. Did you mean 'MsPacman'"),
        (["Breakout", "Pong"], {"mode": 4}, "Pong has no mode 4"),
        (["Pong", "Pong"], {}, "duplicates"),
        ([], {}, "at least one game"),
        (["Pong"], {"sticky_action_prob": 2.0}, "sticky_action_prob"),
    ],
)
def test_bad_arguments_fail_before_any_episode(games, kwargs, message):
    def never_called(observations, game_ids):
        raise AssertionError("the policy must not run")

    with pytest.raises(ValueError, match=message):
        evaluate_policy(never_called, games, 1, num_workers=2, progress=False, **kwargs)


# --- MinAtar: the same evaluation through the suite's environment and observation spec ---

MINATAR_GAMES = ("minatar/Breakout", "minatar/Asterix")
MINATAR_ACTIONS = np.array([get_game(g).num_actions for g in MINATAR_GAMES])


def object_policy(observations: np.ndarray, game_ids: np.ndarray) -> np.ndarray:
    """Deterministic and observation-dependent: a weighted count of the occupied cells."""
    assert observations.dtype == np.uint8 and observations.shape[1:] == (10, 10, 10)
    assert game_ids.dtype == np.int32 and game_ids.shape == observations.shape[:1]
    weights = np.arange(1, 1001, dtype=np.int64).reshape(10, 10, 10)
    return (observations.astype(np.int64) * weights).sum(axis=(1, 2, 3)) % MINATAR_ACTIONS[
        game_ids]


def _single_minatar_episode(game: str, episode: int, seed: int) -> EpisodeResult:
    """One episode in a MinAtarEnvironment with the suite's defaults (sticky actions 0.1,
    10,000-step cap), played by hand: the independent reference."""
    env_seed = episode_seed(seed, game, episode)
    env = MinAtarEnvironment(game, seed=env_seed)
    timestep, total, length = env.reset(), 0.0, 0
    game_id = np.array([MINATAR_GAMES.index(game)], np.int32)
    while not timestep.last():
        timestep = env.step(object_policy(timestep.observation[None], game_id)[0])
        total, length = total + float(timestep.reward), length + 1
    return EpisodeResult(game, total, length, env.episode_frames, episode, env_seed,
                         truncated=bool(timestep.discount > 0))


def test_minatar_in_process_results_match_single_environment_rollouts():
    results = evaluate_policy(object_policy, MINATAR_GAMES, 4, seed=3, num_workers=0,
                              envs_per_worker=3, progress=False)
    expected = [_single_minatar_episode(g, e, seed=3) for g in MINATAR_GAMES for e in range(4)]
    assert results == expected
    assert all(r.frames == r.length and not r.truncated for r in results)
    assert len({r.episode_return for r in results}) > 1  # Not a degenerate policy.
    again = evaluate_policy(object_policy, MINATAR_GAMES, 4, seed=3, num_workers=0,
                            envs_per_worker=1, progress=False)
    assert again == results  # Any slot layout.
    other = evaluate_policy(object_policy, MINATAR_GAMES, 4, seed=4, num_workers=0,
                            progress=False)
    assert [r.seed for r in other] != [r.seed for r in results]


@pytest.mark.integration
def test_minatar_worker_processes_give_the_same_results_as_in_process():
    kwargs = {"seed": 8, "max_episode_frames": 60, "progress": False}
    local = evaluate_policy(object_policy, MINATAR_GAMES, 3, num_workers=0, **kwargs)
    workers = evaluate_policy(object_policy, MINATAR_GAMES, 3, num_workers=2, envs_per_worker=2,
                              **kwargs)
    assert workers == local
    assert all(r.length <= 60 for r in local)


def test_minatar_variant_and_mixed_suites_are_checked_before_any_episode():
    def never_called(observations, game_ids):
        raise AssertionError("the policy must not run")

    with pytest.raises(ValueError, match="different suites .*atari: Pong; minatar: "
                                         "minatar/Breakout"):
        evaluate_policy(never_called, ["Pong", "minatar/Breakout"], 1, progress=False)
    with pytest.raises(ValueError, match="minatar/Breakout has no difficulty 1"):
        evaluate_policy(never_called, ["minatar/Seaquest", "minatar/Breakout"], 1,
                        difficulty=1, num_workers=0, progress=False)

    def noop(observations, game_ids):
        return np.zeros(len(game_ids), np.int64)

    (result,) = evaluate_policy(noop, ["minatar/Seaquest"], 1, difficulty=1,
                                max_episode_frames=5, num_workers=0, progress=False)
    assert result.game == "minatar/Seaquest" and result.length <= 5


# A process that evaluates with workers, then is SIGKILLed mid-evaluation (an evaluator node
# killed): `quiet_third_party` first, as `scaled-ql` does, unless SCALED_QL_QUIET=0 (--verbose).
_KILLED_EVALUATION = """
import numpy as np
from scaled_ql._quiet import quiet_third_party
quiet_third_party()
from scaled_ql.environments.vector import evaluate_policy

if __name__ == "__main__":
    evaluate_policy(lambda obs, ids: np.zeros(len(obs), int), ["minatar/Breakout"], 100000,
                    num_workers=1, envs_per_worker=2, progress=False)
"""


@pytest.mark.parametrize("quiet", ["1", "0"])
def test_killed_mid_evaluation_leaves_no_shared_memory(tmp_path, quiet):
    script = tmp_path / "evaluate.py"
    script.write_text(_KILLED_EVALUATION)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    process = subprocess.Popen([sys.executable, str(script)],
                               env={**env, "SCALED_QL_QUIET": quiet}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    maps = pathlib.Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 120
    segment = None
    while segment is None:  # the observations' shared memory, mapped once workers start
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        segment = next((line.split()[-1] for line in maps.read_text().splitlines()
                        if "/dev/shm/psm_" in line), None)
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    # stderr closes once every process holding it ended: workers, fork server and the
    # resource tracker, which unlinks the segment.
    _, err = process.communicate(timeout=60)
    assert not pathlib.Path(segment).exists()
    assert ("leaked shared_memory" in err) is (quiet == "0"), err
    faults.expect("kill9_evaluation_shared_memory")
