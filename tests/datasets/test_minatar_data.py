"""MinAtar through the RLDS data path: real play -> TFDS (both layouts) -> transitions -> Reverb,
`scaled-ql collect` / `data info` for MinAtar games, and the errors that keep suites apart."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaled_ql import types
from scaled_ql.datasets import collect, pipeline, reverb_tables, rlds, rlu_atari, transitions
from scaled_ql.datasets import validation
from scaled_ql.environments.minatar_env import MinAtarEnvironment
from scaled_ql.environments.suites import MINATAR
from tests.datasets.helpers import random_episode, reference_transitions

MINATAR_OBS = types.MINATAR_OBSERVATION


def _play(game, seed, num_episodes, *, max_steps=10_000, checkpoints=None):
    """Real MinAtar play with a seeded uniform policy, recorded straight from the timesteps
    (not through the collector): a list of `EpisodeArrays` and the per-step env observations."""
    env = MinAtarEnvironment(game, seed=seed, max_episode_frames=max_steps)
    rng = np.random.default_rng(seed + 1)
    episodes = []
    for i in range(num_episodes):
        timestep = env.reset()
        frames, actions, rewards, discounts = [timestep.observation], [], [], []
        while not timestep.last():
            action = int(rng.integers(env.num_actions))
            timestep = env.step(action)
            frames.append(timestep.observation)
            actions.append(action)
            rewards.append(timestep.reward)
            discounts.append(timestep.discount)
        terminal = bool(timestep.discount == 0.0)
        episodes.append(rlds.EpisodeArrays(
            frames=np.stack(frames),  # [T, 10, 10, 10]
            actions=np.array([*actions, 0], np.int64),
            rewards=np.array([*rewards, 0.0], np.float32),
            discounts=np.array([*discounts, 0.0 if terminal else 1.0], np.float32),
            is_terminal=terminal, episode_id=i,
            checkpoint_id=0 if checkpoints is None else checkpoints[i],
            observation=MINATAR_OBS))
    return episodes


def _write(data_dir, game, episodes, layout=rlds.RLU_ATARI, run=1):
    with rlds.RluAtariWriter(data_dir, game, run, layout=layout,
                             max_episodes_per_shard=2) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return writer.final_dir


def _assert_episode_equal(got, want):
    steps = list(got["steps"])
    num_steps = len(want.frames)
    observed = np.stack([s["observation"] for s in steps])
    assert observed.dtype == np.uint8 and observed.shape == (num_steps, 10, 10, 10)
    np.testing.assert_array_equal(observed, want.frames)
    np.testing.assert_array_equal([s["action"] for s in steps], want.actions)
    np.testing.assert_array_equal([s["reward"] for s in steps], want.rewards)
    np.testing.assert_array_equal([s["discount"] for s in steps], want.discounts)
    assert [bool(s["is_first"]) for s in steps] == [True] + [False] * (num_steps - 1)
    assert [bool(s["is_last"]) for s in steps] == [False] * (num_steps - 1) + [True]
    assert [bool(s["is_terminal"]) for s in steps] == (
        [False] * (num_steps - 1) + [want.is_terminal])
    assert got["episode_id"] == want.episode_id and got["checkpoint_id"] == want.checkpoint_id
    assert got["episode_return"] == pytest.approx(float(want.rewards[:-1].sum()))


def test_minatar_schema_changes_only_the_observation():
    atari, minatar = rlds.episode_features(), rlds.episode_features(MINATAR_OBS)
    frame = minatar["steps"]["observation"]
    assert isinstance(frame, tfds.features.Tensor)
    assert frame.shape == (10, 10, 10) and frame.np_dtype == np.uint8
    assert frame.to_json()["content"]["encoding"] == "zlib"
    for key in ("checkpoint_id", "episode_id", "episode_return"):
        assert minatar[key].get_serialized_info() == atari[key].get_serialized_info()
    for key in ("action", "reward", "discount", "is_first", "is_last", "is_terminal"):
        assert (minatar["steps"][key].get_serialized_info()
                == atari["steps"][key].get_serialized_info())


@pytest.mark.parametrize("layout, stored_as, splits", [
    (rlds.RLU_ATARI, rlds.RLU_MINATAR, {"train"}),
    (rlds.RLU_MINATAR, rlds.RLU_MINATAR, {"train"}),
    (rlds.RLU_ATARI_ORDERED, rlds.RLU_MINATAR_ORDERED, {"checkpoint_00", "checkpoint_01"}),
    (rlds.RLU_MINATAR_ORDERED, rlds.RLU_MINATAR_ORDERED, {"checkpoint_00", "checkpoint_01"}),
])
def test_real_minatar_play_round_trips_through_tfds(tmp_path, layout, stored_as, splits):
    episodes = _play("minatar/Breakout", seed=3, num_episodes=5, checkpoints=[0, 0, 0, 1, 1])
    path = _write(tmp_path, "minatar/Breakout", episodes, layout=layout)
    assert path == tmp_path / stored_as / "Breakout_run_1" / "1.0.0"
    assert not (tmp_path / rlds.RLU_ATARI).exists()

    # Plain TFDS, as for the Atari data: by name in the data_dir, and by folder.
    by_name = tfds.builder(f"{stored_as}/Breakout_run_1", data_dir=str(tmp_path))
    by_folder = tfds.builder_from_directory(str(path))
    for builder in (by_name, by_folder):
        assert builder.info.name == stored_as and builder.info.config_name == "Breakout_run_1"
        assert set(builder.info.splits.keys()) == splits
    read = sorted(tfds.as_numpy(by_name.as_dataset(split="+".join(sorted(splits)))),
                  key=lambda e: e["episode_id"])
    assert len(read) == len(episodes)
    for got, want in zip(read, episodes):
        _assert_episode_equal(got, want)

    # Our readers: by game (any layout name of the kind), by folder, and "auto".
    for how in (layout, rlds.AUTO_LAYOUT):
        run = rlu_atari.open_run("minatar/breakout", 1, data_dir=tmp_path, layout=how)
        assert (run.game, run.layout, run.suite) == ("minatar/Breakout", stored_as, "minatar")
        ids = sorted(int(e["episode_id"]) for e in tfds.as_numpy(run.episodes(
            rlu_atari.EpisodeSelection(checkpoints=(1, 1)))))
        assert ids == [3, 4]
    folder = rlu_atari.open_directory(path)
    assert (folder.game, folder.run, folder.observation) == ("minatar/Breakout", 1, MINATAR_OBS)
    report = validation.inspect_run(folder)  # decodes every frame
    assert report.suite == "minatar" and report.num_steps == sum(len(e.frames) for e in episodes)
    provenance = json.loads((path / rlds.PROVENANCE_FILE).read_text())
    assert provenance["suite"] == "minatar" and provenance["frame_shape"] == [10, 10, 10]


def test_minatar_frames_are_compact_on_disk(tmp_path):
    episodes = _play("minatar/SpaceInvaders", seed=0, num_episodes=4)
    path = _write(tmp_path, "minatar/SpaceInvaders", episodes)
    num_steps = sum(len(e.frames) for e in episodes)
    shard_bytes = sum(p.stat().st_size for p in path.glob("*.tfrecord*"))
    # zlib-encoded frames: ~55 bytes per step measured (raw uint8 frames alone are 1,000).
    assert num_steps > 200 and shard_bytes / num_steps < 150, shard_bytes / num_steps


@pytest.mark.parametrize("stack_size,steps_as_tensors", [(None, False), (2, False), (None, True)])
def test_transitions_of_real_minatar_data_match_numpy_reference(tmp_path, stack_size,
                                                                 steps_as_tensors):
    """n=3 over terminal and truncated (30-step cap) SpaceInvaders episodes with rewards, through
    TFDS; with stack 2 the observation is two frames on the channel axis, oldest first
    ([10, 10, 20]); steps read as nested datasets or as whole-episode tensors."""
    game = "minatar/SpaceInvaders"
    episodes = (_play(game, seed=5, num_episodes=2)
                + _play(game, seed=6, num_episodes=2, max_steps=30))
    episodes = [dataclasses.replace(e, episode_id=i) for i, e in enumerate(episodes)]
    assert {e.is_terminal for e in episodes} == {True, False}
    assert sum(e.rewards.sum() for e in episodes) > 0
    _write(tmp_path, game, episodes)
    config = transitions.TransitionConfig(n_step=3, discount=0.9, stack_size=stack_size)
    run = rlu_atari.open_run(game, 1, data_dir=tmp_path)
    got = list(transitions.game_transitions(
        run.episodes(steps_as_tensors=steps_as_tensors), config, game=game, game_id=2,
        deterministic=True,
        episode_cycle=1).as_numpy_iterator())
    by_id = {e.episode_id: e for e in episodes}
    order = [int(e["episode_id"]) for e in tfds.as_numpy(run.episodes())]
    want = []
    for episode_id in order:
        e = by_id[episode_id]
        want += reference_transitions(e.frames, e.actions, e.rewards, e.is_terminal, n=3,
                                      gamma=0.9, stack=stack_size or 1, clip=True)
    assert len(got) == len(want) == sum(len(e.frames) - 1 for e in episodes)
    for g, w in zip(got, want):
        assert g.observation.shape == (10, 10, 10 * (stack_size or 1))
        np.testing.assert_array_equal(g.observation, w["observation"])
        np.testing.assert_array_equal(g.next_observation, w["next_observation"])
        assert g.action == w["action"] and g.game_id == 2
        assert g.reward == pytest.approx(w["reward"], rel=1e-5, abs=1e-6)
        assert g.discount == pytest.approx(w["discount"], rel=1e-6)
    assert any(w["discount"] == 0.0 for w in want)  # terminal bootstraps are cut
    assert any(w["discount"] == pytest.approx(0.9 ** 3) for w in want)
    assert any(w["reward"] > 0 for w in want)


def test_pipeline_batches_minatar_observations(tmp_path):
    for game, seed in (("minatar/Breakout", 1), ("minatar/Asterix", 2)):
        _write(tmp_path, game, _play(game, seed=seed, num_episodes=3))
    config = pipeline.PipelineConfig(games=("minatar/Breakout", "minatar/Asterix"),
                                     data_dir=str(tmp_path), batch_size=16, shuffle_buffer=32,
                                     seed=0)
    assert config.observation == MINATAR_OBS
    batch = next(pipeline.numpy_iterator(config))
    assert batch.observation.shape == (16, 10, 10, 10) and batch.observation.dtype == np.uint8
    assert batch.observation.max() <= 1

    # cache: the first pass's transitions are kept and replayed in the same order.
    cached = dataclasses.replace(config, cache=True)
    stream = pipeline.game_transition_dataset(cached, 0).as_numpy_iterator()
    one_pass = list(pipeline.game_transition_dataset(cached, 0, repeat=False).as_numpy_iterator())
    first = [next(stream) for _ in one_pass]
    second = [next(stream) for _ in one_pass]
    assert len(one_pass) == sum(len(e.frames) - 1 for e in _play("minatar/Breakout", 1, 3))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.observation, b.observation)
        assert (a.action, a.reward, a.discount) == (b.action, b.reward, b.discount)
    key = lambda t: (t.observation.tobytes(), int(t.action), float(t.reward))  # noqa: E731
    assert sorted(map(key, first)) == sorted(map(key, one_pass))
    assert next(pipeline.numpy_iterator(cached)).observation.shape == (16, 10, 10, 10)
    assert pipeline.available_games(tmp_path, rlds.RLU_MINATAR) == [
        "minatar/Asterix", "minatar/Breakout"]


@pytest.mark.slow
def test_minatar_reverb_table_round_trip(tmp_path):
    games = ("minatar/Breakout", "minatar/Asterix")
    for seed, game in enumerate(games):
        _write(tmp_path, game, _play(game, seed=seed, num_episodes=4))
    config = reverb_tables.ReplayTablesConfig(games=games, max_size=10_000,
                                              min_size_to_sample=5)
    tables = reverb_tables.make_tables(config)
    signature = tables[0].info.signature
    assert signature.observation.shape == (10, 10, 10)
    assert signature == transitions.transition_spec(MINATAR_OBS)
    settings = reverb_tables.table_settings(config)
    assert settings["transitions/minatar/Breakout"]["observation_shape"] == [10, 10, 10]

    server = reverb_tables.start_server(config)
    try:
        address = reverb_tables.address(server)
        data = pipeline.PipelineConfig(games=games, data_dir=str(tmp_path), batch_size=1)
        stored = {}
        for game_id, game in enumerate(games):
            stream = list(pipeline.game_transition_dataset(data, game_id, repeat=False)
                          .as_numpy_iterator())
            assert reverb_tables.feed(address, game, stream) == len(stream)
            stored[game_id] = {(t.observation.tobytes(), t.next_observation.tobytes(),
                                int(t.action), float(t.reward)) for t in stream}
        sampler = reverb_tables.ReverbSampler(address, games, batch_size=32,
                                              rate_limiter_timeout_ms=5_000, seed=0)
        batch = next(sampler)
        assert batch.observation.shape == (32, 10, 10, 10) and batch.observation.dtype == np.uint8
        for i in range(32):
            key = (batch.observation[i].tobytes(), batch.next_observation[i].tobytes(),
                   int(batch.action[i]), float(batch.reward[i]))
            assert key in stored[int(batch.game_id[i])]
    finally:
        server.stop()


def test_online_table_keys_and_mixed_suites_in_reverb_configs():
    online = reverb_tables.ReplayTablesConfig(games=("minatar/Breakout/online",))
    assert online.observation_spec == MINATAR_OBS
    assert reverb_tables.ReplayTablesConfig(games=("Pong/online",)).observation_spec == (
        types.ATARI_OBSERVATION)
    with pytest.raises(ValueError, match="atari: Pong; minatar: minatar/Breakout"):
        reverb_tables.ReplayTablesConfig(games=("Pong", "minatar/Breakout"))
    with pytest.raises(ValueError, match=r"minatar spec; the tables' games \['Pong'\] are atari"):
        reverb_tables.ReplayTablesConfig(games=("Pong",), observation=MINATAR_OBS)


def test_suites_never_mix(tmp_path):
    with pytest.raises(ValueError, match="atari: Breakout; minatar: minatar/Breakout"):
        pipeline.PipelineConfig(games=("Breakout", "minatar/Breakout"))
    with pytest.raises(ValueError, match="layout 'rlu_minatar' holds minatar games only"):
        rlds.RluAtariWriter(tmp_path, "Pong", 1, layout=rlds.RLU_MINATAR)
    with pytest.raises(ValueError, match="layout 'rlu_minatar' holds minatar games only"):
        pipeline.PipelineConfig(games=("Pong",), layout=rlds.RLU_MINATAR)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="minatar frames\\? pass its spec"):
        rlds.EpisodeArrays(rng.integers(0, 2, (4, 10, 10, 10), dtype=np.uint8),
                           np.zeros(4, np.int64), np.zeros(4, np.float32),
                           np.ones(4, np.float32), True, 0, 0)  # Atari spec by default
    with pytest.raises(ValueError, match="frames hold values up to 7; minatar frames hold 0..1"):
        rlds.EpisodeArrays(np.full((3, 10, 10, 10), 7, np.uint8), np.zeros(3, np.int64),
                           np.zeros(3, np.float32), np.ones(3, np.float32), True, 0, 0,
                           observation=MINATAR_OBS)
    with pytest.raises(ValueError, match="Pong run 1: the episode's frames follow the minatar"):
        with rlds.RluAtariWriter(tmp_path, "Pong", 1) as writer:
            writer.add_episode(random_episode(rng, 4, observation=MINATAR_OBS))

    # Only MinAtar data on disk: the ALE game of the same name finds nothing.
    _write(tmp_path, "minatar/Breakout", [random_episode(rng, 5, num_actions=3,
                                                         observation=MINATAR_OBS)])
    with pytest.raises(rlu_atari.DatasetNotFoundError, match="rlu_atari/Breakout_run_1"):
        rlu_atari.open_run("Breakout", 1, data_dir=tmp_path, layout=rlds.AUTO_LAYOUT)
    # A dataset whose recorded suite is not its folder's is refused by every reader.
    path = rlds.dataset_dir(tmp_path, "minatar/Breakout", 1)
    provenance = json.loads((path / rlds.PROVENANCE_FILE).read_text())
    (path / rlds.PROVENANCE_FILE).write_text(json.dumps({**provenance, "suite": "atari"}))
    with pytest.raises(rlu_atari.DatasetSuiteError, match="records atari frames"):
        rlu_atari.open_run("minatar/Breakout", 1, data_dir=tmp_path)
    with pytest.raises(rlu_atari.DatasetSuiteError, match="records atari frames"):
        rlu_atari.open_directory(path)


class _TwoValuedFrames(rlds.EpisodeArrays):
    """Writes a frame value MinAtar never produces (the writer itself refuses it)."""

    def to_rlds(self):
        episode = super().to_rlds()
        episode["steps"]["observation"] = episode["steps"]["observation"].copy()
        episode["steps"]["observation"][2, 0, 0, 0] = 2
        return episode


def test_validation_checks_minatar_frame_values(tmp_path):
    good = random_episode(np.random.default_rng(0), 5, num_actions=3, observation=MINATAR_OBS)
    bad = _TwoValuedFrames(**{f.name: getattr(good, f.name) for f in dataclasses.fields(good)})
    _write(tmp_path, "minatar/Breakout", [good, bad])
    run = rlu_atari.open_run("minatar/Breakout", 1, data_dir=tmp_path)
    validation.inspect_run(run, decode_frames=False)  # metadata and flags are fine
    with pytest.raises(validation.DatasetValidationError,
                       match=r"episode 1: frame at step 2 holds the value 2; minatar frames "
                             r"hold 0\.\.1"):
        validation.inspect_run(run)


@pytest.mark.slow
@pytest.mark.integration
def test_collect_and_data_info_cli_for_minatar(tmp_path):
    """As a user runs it (separate processes): both layouts, then the data is exactly a replay
    of the seeded game and policy that the provenance records."""
    data_dir = tmp_path / "data"
    commands = [
        ["collect", "--games", "minatar/Breakout,minatar/Asterix", "--steps", "120"],
        ["collect", "--games", "minatar/Freeway", "--episodes", "1", "--max-episode-frames",
         "40", "--layout", "rlu_atari_checkpoints_ordered"],
    ]
    for command in commands:
        result = subprocess.run([sys.executable, "-m", "scaled_ql.cli", *command, "--out",
                                 str(data_dir)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    assert (data_dir / "rlu_minatar" / "Breakout_run_1" / "1.0.0").is_dir()
    assert (data_dir / "rlu_minatar_checkpoints_ordered" / "Freeway_run_1" / "1.0.0").is_dir()

    result = subprocess.run([sys.executable, "-m", "scaled_ql.cli", "data", "info",
                             str(data_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for game in ("minatar/Asterix", "minatar/Breakout", "minatar/Freeway"):
        assert game in out
    assert out.count("suite minatar") == 3 and "rlu_minatar_checkpoints_ordered" in out
    assert "bytes per step" in out and "3 dataset(s) OK, 0 failed" in out

    for game in ("minatar/Breakout", "minatar/Asterix"):
        run = rlu_atari.open_run(game, 1, data_dir=data_dir)
        provenance = json.loads(
            (rlds.dataset_dir(data_dir, game, 1) / rlds.PROVENANCE_FILE).read_text())
        assert provenance["sticky_action_prob"] == MINATAR.default_sticky_action_prob
        env = MinAtarEnvironment(game, seed=provenance["seed"])
        policy = collect.UniformRandomPolicy(env.num_actions, provenance["seed"] + 1)
        actions_taken = 0
        for episode in tfds.as_numpy(run.episodes()):  # one shard: file order is play order
            steps = list(episode["steps"])
            timestep = env.reset()
            np.testing.assert_array_equal(steps[0]["observation"], timestep.observation)
            for step, next_step in zip(steps[:-1], steps[1:]):
                action = policy(timestep.observation)
                timestep = env.step(action)
                assert step["action"] == action and step["reward"] == timestep.reward
                np.testing.assert_array_equal(next_step["observation"], timestep.observation)
                actions_taken += 1
            assert bool(steps[-1]["is_terminal"]) == bool(
                timestep.last() and timestep.discount == 0.0)
        assert actions_taken == 120
    freeway = rlu_atari.open_run("minatar/Freeway", 1, data_dir=data_dir, layout="auto")
    report = validation.inspect_run(freeway)
    assert freeway.layout == rlds.RLU_MINATAR_ORDERED and report.num_steps == 41


@pytest.mark.slow
def test_adder_writes_real_minatar_play_into_a_minatar_table():
    """The online path: MinAtar timesteps -> TransitionAdder (n=2) -> Reverb -> sampled items
    equal to the numpy reference of the same episode."""
    import reverb

    from scaled_ql.agents.scaled_ql.adder import TransitionAdder

    game = "minatar/SpaceInvaders"
    (episode,) = _play(game, seed=5, num_episodes=1)
    config = reverb_tables.ReplayTablesConfig(games=(f"{game}/online",), max_size=1_000,
                                              min_size_to_sample=1)
    server = reverb_tables.start_server(config)
    try:
        client = reverb.Client(reverb_tables.address(server))
        table = reverb_tables.table_name(f"{game}/online")
        adder = TransitionAdder(client, table, game_id=0, n_step=2, discount=0.5,
                                observation=MINATAR_OBS)
        # Replay the episode's timesteps (what the actor would see).
        env = MinAtarEnvironment(game, seed=5)
        timestep = env.reset()
        adder.add_first(timestep)
        for action in episode.actions[:-1]:
            timestep = env.step(int(action))
            adder.add(int(action), timestep)
        adder.close()
        assert adder.items_written == len(episode.frames) - 1
        want = reference_transitions(episode.frames, episode.actions, episode.rewards,
                                     episode.is_terminal, n=2, gamma=0.5, stack=1, clip=True)
        by_observation = {}
        for w in want:
            by_observation.setdefault(w["observation"].tobytes(), []).append(w)
        sampler = reverb_tables.ReverbSampler(reverb_tables.address(server), (f"{game}/online",),
                                              batch_size=16, rate_limiter_timeout_ms=5_000)
        batch = next(sampler)
        assert batch.observation.shape == (16, 10, 10, 10)
        for i in range(16):
            candidates = by_observation[batch.observation[i].tobytes()]
            assert any(
                np.array_equal(batch.next_observation[i], w["next_observation"])
                and batch.action[i] == w["action"]
                and batch.reward[i] == pytest.approx(w["reward"])
                and batch.discount[i] == pytest.approx(w["discount"])
                for w in candidates)
        wrong = TransitionAdder(client, table, game_id=0, observation=MINATAR_OBS)
        with pytest.raises(ValueError, match=r"observation is uint8 \(84, 84, 4\); the table "
                                             r"holds minatar observations uint8 \[10, 10, 10\]"):
            wrong.add_first(MinAtarEnvironment(game).reset()._replace(
                observation=np.zeros((84, 84, 4), np.uint8)))
    finally:
        server.stop()
