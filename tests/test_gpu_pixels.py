"""scripts/gpu_pixels.py: the export, the numpy transitions against the library's, a tiny
train + report on CPU.

The data is real: a few hundred steps of Breakout played by the library's collector.
"""

import json

import numpy as np
import pytest

from tests.conftest import load_script

GAME = "Breakout"


@pytest.fixture(scope="module")
def gpu_pixels():
    return load_script("gpu_pixels")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """500 random-policy steps of Breakout; episodes capped at 1,200 frames (300 steps), so
    the data holds game overs, frame-cap truncations and the budget's truncated last one."""
    from scaled_ql.datasets.collect import CollectConfig, collect_run

    path = tmp_path_factory.mktemp("gpu_pixels_data")
    collect_run(CollectConfig(GAME, num_steps=500, seed=3, max_episode_frames=1_200), path)
    return path


@pytest.fixture(scope="module")
def episodes(gpu_pixels, data_dir):
    return gpu_pixels.read_episodes(data_dir, GAME)


def library_transitions(data_dir, n_step):
    """The library's transitions of every episode, in file order, as numpy arrays."""
    from scaled_ql.datasets import TransitionConfig, episode_transitions, open_run

    fields = {name: [] for name in ("observation", "action", "reward", "discount",
                                    "next_observation")}
    config = TransitionConfig(n_step=n_step)
    for episode in open_run(GAME, 1, data_dir=str(data_dir)).episodes(steps_as_tensors=True):
        for transition in episode_transitions(episode, config, game_id=0, num_actions=4,
                                              game=GAME).as_numpy_iterator():
            for name in fields:
                fields[name].append(getattr(transition, name))
    return {name: np.stack(values) for name, values in fields.items()}


def test_export_holds_every_step_and_round_trips(gpu_pixels, episodes, tmp_path):
    assert episodes.frames.shape == (episodes.starts[-1], 84, 84, 1)
    assert episodes.num_episodes >= 2 and len(episodes.frames) == 500 + episodes.num_episodes
    ends = episodes.is_terminal[episodes.starts[1:] - 1]
    assert ends.any() and not ends.all()  # game overs and truncations both present
    # An episode's return is the sum of its rewards (the last step's reward is meaningless).
    for e in range(episodes.num_episodes):
        first, end = episodes.starts[e], episodes.starts[e + 1]
        assert episodes.episode_returns[e] == pytest.approx(episodes.rewards[first:end - 1].sum())
    np.testing.assert_array_equal(episodes.complete_returns(), episodes.episode_returns[ends])

    path = tmp_path / "Breakout.npz"
    episodes.save(path)
    loaded = gpu_pixels.EpisodeArrays.load(path)
    assert loaded.game == GAME
    for name in ("frames", "actions", "rewards", "is_terminal", "starts", "episode_returns"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(episodes, name))


def test_inconsistent_arrays_are_refused(gpu_pixels, episodes, tmp_path):
    with pytest.raises(gpu_pixels.ExportError, match="actions has"):
        gpu_pixels.EpisodeArrays(episodes.frames, episodes.actions[:-1], episodes.rewards,
                                 episodes.is_terminal, episodes.starts,
                                 episodes.episode_returns, GAME)
    with pytest.raises(gpu_pixels.ExportError, match="starts must rise"):
        gpu_pixels.EpisodeArrays(episodes.frames, episodes.actions, episodes.rewards,
                                 episodes.is_terminal, episodes.starts[:-1],
                                 episodes.episode_returns[:-1], GAME)
    path = tmp_path / "partial.npz"
    np.savez_compressed(path, frames=episodes.frames, game=np.asarray(GAME))
    with pytest.raises(gpu_pixels.ExportError, match="missing"):
        gpu_pixels.EpisodeArrays.load(path)


@pytest.mark.parametrize("n_step", [1, 3])
def test_table_builds_the_library_transitions(gpu_pixels, episodes, data_dir, n_step):
    expected = library_transitions(data_dir, n_step)
    table = gpu_pixels.TransitionTable.build(episodes, n_step=n_step)
    assert len(table) == len(expected["action"]) == len(episodes.frames) - episodes.num_episodes
    got = gpu_pixels.gather(gpu_pixels.padded_frames(episodes.frames), table,
                            np.arange(len(table)))
    np.testing.assert_array_equal(got.observation, expected["observation"])
    np.testing.assert_array_equal(got.next_observation, expected["next_observation"])
    np.testing.assert_array_equal(got.action, expected["action"])
    np.testing.assert_allclose(got.reward, expected["reward"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(got.discount, expected["discount"], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(got.game_id, np.zeros(len(table), np.int32))
    assert got.observation.shape[1:] == (84, 84, 4) and got.observation.dtype == np.uint8
    # The data has episode starts (zero-padded stacks), terminal and truncated ends.
    assert (got.observation[:, :, :, 0] == 0).all(axis=(1, 2)).any()
    assert (got.discount == 0).any() and (got.discount > 0).any()


def test_gather_on_jax_arrays_matches_numpy(gpu_pixels, episodes):
    import dataclasses

    import jax.numpy as jnp

    table = gpu_pixels.TransitionTable.build(episodes)
    index = np.array([0, 1, 7, len(table) - 1])
    frames = gpu_pixels.padded_frames(episodes.frames)
    on_jax = gpu_pixels.TransitionTable(*(jnp.asarray(getattr(table, f.name))
                                          for f in dataclasses.fields(table)))
    expected = gpu_pixels.gather(frames, table, index)
    got = gpu_pixels.gather(jnp.asarray(frames), on_jax, jnp.asarray(index), xp=jnp)
    for name in expected._fields:
        np.testing.assert_array_equal(np.asarray(getattr(got, name)), getattr(expected, name))


def test_runs_go_round_robin_over_seeds(gpu_pixels):
    assert gpu_pixels.run_order(["nature", "resnet18"], 2) == [
        (0, "nature"), (0, "resnet18"), (1, "nature"), (1, "resnet18")]


def test_tiny_train_and_report(gpu_pixels, episodes, tmp_path):
    data_file = tmp_path / "Breakout.npz"
    episodes.save(data_file)
    out = tmp_path / "result.json"
    result = gpu_pixels.train(gpu_pixels.parse_args([
        "train", "--data-file", str(data_file), "--sizes", "nature", "--seeds", "2",
        "--steps", "2", "--chunk", "1", "--batch-size", "4", "--eval-episodes", "2",
        "--eval-max-frames", "80", "--out", str(out)]))
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert [(r["size"], r["seed"]) for r in result["runs"]] == [("nature", 0), ("nature", 1)]
    for row in result["runs"]:
        assert row["sgd_steps"] == 2 and row["batch_size"] == 4 and row["params"] > 100_000
        assert len(row["returns"]) == 2 and all(f <= 80 for f in row["episode_frames"])
        assert np.isfinite(row["metrics"][-1]["loss"]) and row["skipped_updates"] == 0
    assert result["data"]["transitions"] == len(episodes.frames) - episodes.num_episodes
    assert result["data"]["mean_complete_return"] == pytest.approx(
        float(np.mean(episodes.complete_returns())))

    # A second file: the same runs relabelled as 4 SGD steps, and a second size beside them.
    sizes = json.loads(out.read_text())
    sizes["settings"]["steps"] = 4
    for row in sizes["runs"]:
        row["sgd_steps"] = 4
    sizes["runs"] += [dict(r, size="resnet18", params=10 * r["params"]) for r in sizes["runs"]]
    (tmp_path / "sizes.json").write_text(json.dumps(sizes))
    # A third: the first file's runs as another recipe (CQL 1) at 4 SGD steps.
    cql1 = json.loads(out.read_text())
    cql1["settings"].update(steps=4, cql_alpha=1.0)
    for row in cql1["runs"]:
        row["sgd_steps"] = 4
    (tmp_path / "cql1.json").write_text(json.dumps(cql1))
    doc, plot = tmp_path / "docs" / "PIXELS_GPU.md", tmp_path / "docs" / "results" / "p.png"
    steps_plot = tmp_path / "docs" / "results" / "s.png"
    doc.parent.mkdir()
    doc.write_text(f"# Hand-written\n\n{gpu_pixels.GENERATED_MARKER}\n\nan older table\n")
    text = gpu_pixels.report(gpu_pixels.parse_args([
        "report", "--results", str(out), str(tmp_path / "sizes.json"),
        str(tmp_path / "cql1.json"), "--doc", str(doc),
        "--plot", str(plot), "--steps-plot", str(steps_plot)]))
    assert doc.read_text() == f"# Hand-written\n\n{gpu_pixels.GENERATED_MARKER}\n\n{text}"
    assert plot.stat().st_size > 1000 and "older" not in text
    assert steps_plot.stat().st_size > 1000 and "](results/s.png)" in text
    # nature at CQL 0.1 ran at 2 and 4 steps: a line, with the CQL 1 run as a lone point beside
    # it; resnet18 ran at one budget only: left out.  Labels name what differs: the CQL weight.
    series = gpu_pixels.steps_series(
        [(r, gpu_pixels.summarize(r, reps=50)) for r in (result, sizes, cql1)])
    assert list(series) == ["nature, CQL 0.1", "nature, CQL 1"]
    assert [r["sgd_steps"] for r in series["nature, CQL 0.1"]] == [2, 4]
    assert [r["sgd_steps"] for r in series["nature, CQL 1"]] == [4]
    assert gpu_pixels.steps_series(
        [(r, gpu_pixels.summarize(r, reps=50)) for r in (sizes, cql1)]) == {}
    rows = [line for line in text.splitlines() if line.startswith("| nature |")]
    assert len(rows) == 3 and text.count("### 2 SGD steps, CQL 0.1 (`result.json`)") == 1
    assert text.count("### 4 SGD steps, CQL 0.1 (`sizes.json`)") == 1 and "| resnet18 |" in text
    assert text.count("### 4 SGD steps, CQL 1 (`cql1.json`)") == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == f"{result['runs'][0]['params']:,}" and cells[2] == "2"
    per_seed = [float(v) for v in cells[7].split(", ")]
    assert per_seed == pytest.approx([r["mean_return"] for r in result["runs"]], abs=0.051)
    assert "](results/p.png)" in text


def test_budget_skips_runs_it_cannot_fit(gpu_pixels, episodes, tmp_path):
    data_file = tmp_path / "Breakout.npz"
    episodes.save(data_file)
    out = tmp_path / "r.json"
    result = gpu_pixels.train(gpu_pixels.parse_args([
        "train", "--data-file", str(data_file), "--sizes", "nature", "resnet18", "--seeds", "2",
        "--budget-s", "0", "--out", str(out)]))
    assert result["runs"] == []
    assert [(s["size"], s["seed"], s["reason"]) for s in result["not_run"]] == [
        ("nature", 0, "time budget 0 s"), ("resnet18", 0, "time budget 0 s"),
        ("nature", 1, "time budget 0 s"), ("resnet18", 1, "time budget 0 s")]
    with pytest.raises(ValueError, match="no finished run"):
        gpu_pixels.report(gpu_pixels.parse_args(["report", "--results", str(out), "--doc",
                                                  str(tmp_path / "d.md")]))


def test_bc_trains_the_same_network_by_cloning_and_reports_as_bc(gpu_pixels, episodes, tmp_path):
    data_file = tmp_path / "Breakout.npz"
    episodes.save(data_file)
    argv = ["train", "--data-file", str(data_file), "--sizes", "nature", "--seeds", "1",
            "--steps", "2", "--chunk", "1", "--batch-size", "4", "--eval-episodes", "1",
            "--eval-max-frames", "40", "--out", str(tmp_path / "bc.json")]
    bc = gpu_pixels.agent_config(gpu_pixels.parse_args(argv + ["--bc"]), "nature")
    recipe = gpu_pixels.agent_config(gpu_pixels.parse_args(argv), "nature")
    assert (bc.td_weight, bc.cql_alpha, bc.bc_weight) == (0.0, 0.0, 1.0)
    assert (recipe.td_weight, recipe.cql_alpha, recipe.bc_weight) == (1.0, 0.1, 0.0)
    assert bc.network == recipe.network and bc.learning_rate == recipe.learning_rate
    result = gpu_pixels.train(gpu_pixels.parse_args(argv + ["--bc"]))
    assert result["settings"]["bc"] is True
    metrics = result["runs"][0]["metrics"][-1]
    assert np.isfinite(metrics["loss"]) and result["runs"][0]["skipped_updates"] == 0
    assert "Recipe: BC, learning rate" in gpu_pixels.markdown(
        result, gpu_pixels.summarize(result, reps=50))
    # A file from before --bc (no "bc" setting) is C51 + CQL; labels name the method.
    older = {k: v for k, v in result["settings"].items() if k != "bc"}
    assert gpu_pixels.recipe_labels([result["settings"], older, dict(older, cql_alpha=1.0)]) \
        == ["BC", "CQL 0.1", "CQL 1"]
