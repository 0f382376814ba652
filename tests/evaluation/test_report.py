"""`scaled-ql report` / `write_report` on synthetic run directories in the results format."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from scaled_ql.cli import main
from scaled_ql.environments.games import get_game
from scaled_ql.evaluation import group_runs, load_runs, read_results, write_report
from scaled_ql.evaluation.results import ResultsFormatError
from tests.evaluation.synthetic import write_synthetic_run
from tests.reliability import faults

GAMES = ("Breakout", "Pong", "Asterix", "Qbert", "Carnival")
REPS = "200"


def hand_iqm(run_dirs, games=GAMES):
    """IQM of the final-step normalized scores (catalogue random and human scores; for MinAtar
    games the human_score field holds the DQN reference), computed from the files by hand."""
    values = []
    for run_dir in run_dirs:
        last = read_results(run_dir).evaluations[-1]
        for game in games:
            info = get_game(game)
            if info.human_score is None:
                continue  # Carnival: no human score, left out of the aggregates.
            mean = np.mean([e.episode_return for e in last.episodes if e.game == game])
            values.append((mean - info.random_score) / (info.human_score - info.random_score))
    values = np.sort(values)
    quarter = len(values) // 4
    return float(np.mean(values[quarter:len(values) - quarter]))


def test_report_cli_compares_two_run_directories(tmp_path, capsys):
    weak, strong = tmp_path / "weak", tmp_path / "strong"
    write_synthetic_run(weak, name="bc", method="bc", seed=0, games=GAMES, level=0.3)
    write_synthetic_run(strong, name="scaled-ql", seed=0, games=GAMES, level=1.0)
    out = tmp_path / "report"
    assert main(["report", str(weak), str(strong), "--out", str(out), "--reps", REPS]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")

    markdown = (out / "report.md").read_text()
    assert "| bc | bc |" in markdown and "| scaled-ql | scaled_ql |" in markdown
    assert re.search(r"\| bc \| scaled-ql \| 0\.000 \[0\.000, 0\.000\] \| 4 \|", markdown)
    assert "no standard human score for Carnival" in markdown
    assert "human-normalized as (score - random) / (human - random)." in markdown
    assert "## Aggregate human-normalized scores (95% CI)" in markdown
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert set(images) == {
        "aggregate_metrics.png", "learning_curves_iqm.png", "performance_profiles.png",
        "probability_of_improvement.png", "game_scores.png", "learning_curves_games.png"}
    for image in images:
        assert (out / image).stat().st_size > 5000
    assert not (out / "scaling.png").exists()  # Neither run states its parameter count.

    summary = json.loads((out / "summary.json").read_text())
    assert summary["score_name"] == "human-normalized score"
    by_label = {g["label"]: g for g in summary["groups"]}
    assert by_label["bc"]["aggregates"]["IQM"]["estimate"] == pytest.approx(hand_iqm([weak]))
    assert by_label["scaled-ql"]["aggregates"]["IQM"]["estimate"] == pytest.approx(
        hand_iqm([strong]))
    assert by_label["scaled-ql"]["scored_games"] == list(GAMES[:4])
    assert by_label["scaled-ql"]["unscored_games"] == ["Carnival"]
    (poi,) = summary["probability_of_improvement"]
    assert (poi["x"], poi["y"], poi["estimate"]) == ("bc", "scaled-ql", 0.0)


def test_seeds_are_grouped_and_scaling_is_drawn_when_sizes_differ(tmp_path):
    dirs = {}
    for size, level, params in (("small", 0.5, 1_000_000), ("big", 1.2, 20_000_000)):
        for seed in (0, 1):
            dirs[size, seed] = tmp_path / f"{size}{seed}"
            write_synthetic_run(dirs[size, seed], name=f"sql-{size}", seed=seed, games=GAMES,
                                level=level, num_params=params)
    path = write_report(list(dirs.values()), tmp_path / "out", reps=200)
    summary = json.loads((path.parent / "summary.json").read_text())
    groups = {g["label"]: g for g in summary["groups"]}
    assert sorted(groups) == ["sql-big", "sql-small"]
    assert groups["sql-small"]["seeds"] == [0, 1]
    iqm = {label: g["aggregates"]["IQM"] for label, g in groups.items()}
    assert iqm["sql-small"]["estimate"] == pytest.approx(
        hand_iqm([dirs["small", 0], dirs["small", 1]]))
    assert iqm["sql-big"]["lower"] > iqm["sql-small"]["upper"]
    assert (path.parent / "scaling.png").stat().st_size > 5000
    assert "![Scaling](scaling.png)" in path.read_text()


def test_minatar_report_is_dqn_normalized_and_says_so(tmp_path):
    games = ("minatar/Breakout", "minatar/Asterix", "minatar/Freeway", "minatar/Seaquest")
    dirs = []
    for seed in (0, 1):
        dirs.append(tmp_path / f"s{seed}")
        write_synthetic_run(dirs[-1], name="sql-minatar", seed=seed, games=games, level=0.7)
    dirs.append(tmp_path / "bc")
    write_synthetic_run(dirs[-1], name="bc", method="bc", seed=0, games=games, level=0.2)
    path = write_report(dirs, tmp_path / "out", reps=200)
    markdown = path.read_text()
    assert "DQN-normalized as (score - random) / (DQN - random)." in markdown
    assert "## Aggregate DQN-normalized scores (95% CI)" in markdown
    assert "Dashed: DQN level." in markdown and "dashed 1 = DQN." in markdown
    assert "human" not in markdown.replace("no standard human score", "")
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["score_name"] == "DQN-normalized score"
    assert summary["normalization"] == "(score - random) / (DQN - random)"
    groups = {g["label"]: g for g in summary["groups"]}
    assert groups["sql-minatar"]["scored_games"] == list(games)
    assert groups["sql-minatar"]["aggregates"]["IQM"]["estimate"] == pytest.approx(
        hand_iqm(dirs[:2], games))
    # The synthetic returns are level x (DQN - random) above random: IQM near 0.7, not 0.2.
    assert groups["sql-minatar"]["aggregates"]["IQM"]["estimate"] == pytest.approx(0.7, abs=0.1)
    assert groups["bc"]["aggregates"]["IQM"]["estimate"] == pytest.approx(0.2, abs=0.1)


def test_groups_align_on_the_steps_every_run_evaluated(tmp_path):
    write_synthetic_run(tmp_path / "s0", name="x", seed=0, games=GAMES, level=1.0,
                        steps=(0, 100, 200))
    write_synthetic_run(tmp_path / "s1", name="x", seed=1, games=GAMES, level=1.0,
                        steps=(0, 100))
    (group,) = group_runs(load_runs([tmp_path / "s1", tmp_path / "s0"]))
    assert group.seeds == (0, 1)
    assert group.final_step == 100 and group.dropped_steps == 1
    assert group.returns.shape == (2, len(GAMES), 2)
    assert np.all(group.num_episodes == 3)
    markdown = write_report([tmp_path / "s0", tmp_path / "s1"], tmp_path / "out",
                            reps=200).read_text()
    assert "x: 1 evaluation step(s) left out" in markdown


def test_online_runs_final_rounds_at_nearby_learner_steps_are_one_final_point(tmp_path):
    """Online runs stop at an environment-step budget, so their final rounds come at learner
    steps a few apart (4,719 and 4,720): each run's last round is its final score.  A run that
    stopped before its final round, or runs without an environment-step budget, still end at
    the last common step."""
    online = {"torso": "resnet", "games": list(GAMES), "env_steps": 20000}
    dirs = [write_synthetic_run(tmp_path / f"s{seed}", name="x", seed=seed, games=GAMES,
                                level=1.0 + seed, steps=(0, 1000, last), config=online)
            for seed, last in ((0, 1719), (1, 1720))]
    (group,) = group_runs(load_runs(dirs))
    assert list(group.steps) == [0, 1000, 1720] and group.final_steps == (1719, 1720)
    assert group.dropped_steps == 0
    own_last = [load_runs([d])[0].results.evaluations[-1] for d in dirs]
    for r, evaluation in enumerate(own_last):
        for g, game in enumerate(GAMES):
            returns = [e.episode_return for e in evaluation.episodes if e.game == game]
            assert group.final_returns[r, g] == pytest.approx(np.mean(returns))
    markdown = write_report(dirs, tmp_path / "out", reps=200).read_text()
    assert "x: each run's last round is its final score (steps 1719-1720;" in markdown
    # A seed that stopped after its round at 1,000 ends the group there.
    write_synthetic_run(tmp_path / "s2", name="x", seed=2, games=GAMES, level=1.0,
                        steps=(0, 1000), config=online)
    (group,) = group_runs(load_runs([*dirs, tmp_path / "s2"]))
    assert list(group.steps) == [0, 1000] and group.final_steps is None
    # Last rounds further apart than FINAL_STEP_TOLERANCE: not one point.
    write_synthetic_run(tmp_path / "far", name="x", seed=3, games=GAMES, level=1.0,
                        steps=(0, 1000, 1690), config=online)
    (group,) = group_runs(load_runs([*dirs, tmp_path / "far"]))
    assert list(group.steps) == [0, 1000] and group.dropped_steps == 3
    # Runs that end by learner steps keep the common steps only.
    plain = [write_synthetic_run(tmp_path / f"p{seed}", name="y", seed=seed, games=GAMES,
                                 level=1.0, steps=(0, 1000, last))
             for seed, last in ((0, 1719), (1, 1720))]
    (group,) = group_runs(load_runs(plain))
    assert list(group.steps) == [0, 1000] and group.final_steps is None


def test_runs_of_one_name_must_be_one_configuration(tmp_path):
    write_synthetic_run(tmp_path / "a", name="same", seed=0, games=GAMES, level=1.0)
    write_synthetic_run(tmp_path / "b", name="same", seed=1, games=GAMES, level=1.0,
                        method="bc")
    with pytest.raises(ResultsFormatError, match=r"b/eval_results.json: run.method: 'bc', but "
                                                 r".*a/eval_results.json"):
        group_runs(load_runs([tmp_path / "a", tmp_path / "b"]))
    with pytest.raises(ResultsFormatError, match="was a run given twice"):
        group_runs(load_runs([tmp_path / "a", tmp_path / "a"]))


def test_report_cli_names_the_bad_file_and_field(tmp_path, capsys):
    write_synthetic_run(tmp_path / "good", name="g", seed=0, games=GAMES, level=1.0)
    bad = tmp_path / "bad"
    bad.mkdir()
    document = json.loads((tmp_path / "good" / "eval_results.json").read_text())
    document["evaluations"][1]["episodes"][2]["length"] = "long"
    (bad / "eval_results.json").write_text(json.dumps(document))
    rc = main(["report", str(tmp_path / "good"), str(bad), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{bad}/eval_results.json: evaluations[1].episodes[2].length: expected an integer" \
        in err
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no evaluation results file" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()


def test_evaluation_imports_no_tensorflow_reverb_launchpad_or_acme():
    code = ("import sys; import scaled_ql.evaluation as e; e.scores.split_scored(['Pong']); "
            "print([m for m in ('tensorflow', 'reverb', 'launchpad', 'acme') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_runs_of_one_name_with_other_settings_are_other_groups(tmp_path):
    """Two configurations that share a name and seeds (the default run name does not say the
    CQL alpha) are two groups labelled by what differs; the seeds of each are one group."""
    dirs = []
    for alpha, level in ((0.1, 0.4), (0.5, 0.9)):
        for seed in (0, 1):
            dirs.append(tmp_path / f"alpha{alpha}_seed{seed}")
            config = {"seed": seed, "out_dir": str(dirs[-1]), "steps": 100,
                      "agent": {"cql_alpha": alpha, "network": {"torso": "nature"}}}
            write_synthetic_run(dirs[-1], name="scaled_ql-nature", seed=seed, games=GAMES,
                                level=level, config=config)
    groups = group_runs(load_runs(dirs))
    faults.expect("report_same_name_other_settings")
    assert [(g.label, g.seeds) for g in groups] == [
        ("scaled_ql-nature (cql_alpha=0.1)", (0, 1)),
        ("scaled_ql-nature (cql_alpha=0.5)", (0, 1))]
    assert [str(r.path.parent) for r in groups[0].runs] == [str(d) for d in dirs[:2]]

    markdown = write_report(dirs, tmp_path / "out", reps=200).read_text()
    assert "| scaled_ql-nature (cql_alpha=0.1) | scaled_ql |" in markdown
    assert "| scaled_ql-nature (cql_alpha=0.5) | scaled_ql |" in markdown
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [g["seeds"] for g in summary["groups"]] == [[0, 1], [0, 1]]
    # A name with one configuration keeps its plain label; the same run twice is still an error.
    (group,) = group_runs(load_runs(dirs[:2]))
    assert group.label == "scaled_ql-nature"
    with pytest.raises(ResultsFormatError, match="was a run given twice"):
        group_runs(load_runs([dirs[0], dirs[0]]))


def test_seeds_resumed_to_a_longer_budget_stay_one_group(tmp_path):
    """A run started for 6,000 steps and resumed to 12,000 keeps its first config in its
    results file; seeds started for 12,000 at once are the same configuration."""
    dirs = []
    for seed, extra in ((0, {"steps": 6000, "eval_every": 1000}),
                        (1, {"steps": 12000, "eval_every": 2000, "final_eval": True})):
        dirs.append(tmp_path / f"seed{seed}")
        config = {"seed": seed, "out_dir": str(dirs[-1]), **extra,
                  "agent": {"cql_alpha": 0.1, "network": {"torso": "nature"}}}
        write_synthetic_run(dirs[-1], name="Scaled QL", seed=seed, games=GAMES, level=0.5,
                            config=config)
    (group,) = group_runs(load_runs(dirs))
    assert (group.label, group.seeds) == ("Scaled QL", (0, 1))


def test_a_run_recorded_before_a_setting_existed_is_a_seed_of_the_runs_at_its_default(
        tmp_path):
    """A run whose config.json predates `agent.frozen_torso_steps` groups with the runs made
    since at its default (0), not with those at another value."""
    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.evaluation.runs import ADDED_SETTINGS

    for key, value in ADDED_SETTINGS.items():  # the table agrees with the config's defaults
        assert getattr(ScaledQLConfig(), key.removeprefix("agent.")) == value, key
    dirs = []
    for seed, added in ((0, {}), (1, {"frozen_torso_steps": 0}), (2, {"frozen_torso_steps": 5})):
        dirs.append(tmp_path / f"seed{seed}")
        config = {"seed": seed, "out_dir": str(dirs[-1]), "steps": 100,
                  "agent": {"cql_alpha": 0.1, **added, "network": {"torso": "nature"}}}
        write_synthetic_run(dirs[-1], name="Freeway: pre-trained", seed=seed, games=GAMES,
                            level=0.5, config=config)
    groups = group_runs(load_runs(dirs))
    assert [(g.label, g.seeds) for g in groups] == [
        ("Freeway: pre-trained (frozen_torso_steps=0)", (0, 1)),
        ("Freeway: pre-trained (frozen_torso_steps=5)", (2,))]


def test_truncated_scores_are_marked_with_a_footnote(tmp_path):
    write_synthetic_run(tmp_path / "cut", name="cut", seed=0, games=GAMES, level=1.0,
                        truncated_every=3)  # 3 episodes per game: one of each game's is cut
    write_synthetic_run(tmp_path / "whole", name="whole", seed=0, games=GAMES, level=1.0)
    (cut,) = group_runs(load_runs([tmp_path / "cut"]))
    assert cut.num_truncated[0, :, -1].tolist() == [1] * len(GAMES)
    assert cut.truncated_frames == 400
    markdown = write_report([tmp_path / "cut", tmp_path / "whole"], tmp_path / "out",
                            reps=200).read_text()
    assert "- † cut: 5 of 15 episodes at the final step cut at 400 frames" in markdown
    assert re.search(r"^\| cut† \| 1 \| 4 \|", markdown, re.MULTILINE)  # aggregate table
    assert re.search(r"^\| whole \| 1 \| 4 \|", markdown, re.MULTILINE)
    pong = next(line for line in markdown.splitlines() if line.startswith("| Pong |"))
    assert re.fullmatch(r"\| Pong \| \S+ \(\S+\)† \| \S+ \(\S+\) \|", pong)
    summary = {g["label"]: g for g in json.loads((tmp_path / "out" / "summary.json").read_text())
               ["groups"]}
    assert summary["cut"]["truncated_episodes"] == {g: 1 for g in GAMES}
    assert summary["cut"]["episodes"] == {g: 3 for g in GAMES}
    assert summary["whole"]["truncated_episodes"] == {g: 0 for g in GAMES}
    assert "† whole" not in markdown  # no note for a group without cut episodes
