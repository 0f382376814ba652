"""scripts/study.py, the pure parts: the verdict rule, the job list, when a run counts as done.

No training: run directories are written by hand in the results format the runners write.
"""

import json

import numpy as np
import pytest

from scaled_ql.evaluation import RunInfo, append_evaluation, read_results
from tests.conftest import load_script


@pytest.fixture(scope="module")
def study():
    return load_script("study")


def interval(estimate, lower, upper):
    return {"estimate": estimate, "lower": lower, "upper": upper}


# --- the verdict rule --------------------------------------------------------------------------

def test_verdict_against_the_data_uses_its_iqm(study):
    data = interval(0.40, 0.40, 0.40)
    ok, line = study.verdict(interval(0.6, 0.45, 0.7), data, other_is_data=True, claim="C")
    assert ok is True and "**reproduced**" in line and "0.450 > 0.400" in line
    ok, line = study.verdict(interval(0.6, 0.40, 0.7), data, other_is_data=True, claim="C")
    assert ok is False and "**not reproduced**" in line and "0.400 <= 0.400" in line


def test_verdict_against_a_method_uses_its_upper_ci_end(study):
    other = interval(0.30, 0.20, 0.55)
    # Higher estimate and a lower end above the other's estimate, but not above its upper end.
    ok, line = study.verdict(interval(0.60, 0.50, 0.70), other, other_is_data=False, claim="C")
    assert ok is False and "0.500 <= 0.550" in line
    ok, _ = study.verdict(interval(0.70, 0.56, 0.80), other, other_is_data=False, claim="C")
    assert ok is True


def test_verdict_without_runs_is_not_measured(study):
    ok, line = study.verdict(None, interval(0, 0, 0), other_is_data=True, claim="C")
    assert ok is None and "not measured" in line


def test_scaling_verdict(study):
    s, m, l = interval(0.1, 0.05, 0.15), interval(0.2, 0.1, 0.3), interval(0.4, 0.3, 0.5)
    ok, line = study.scaling_verdict([("L", 1_000_000, l), ("S", 60_000, s), ("M", 200_000, m)])
    assert ok is True and line.index("S (60,000") < line.index("M (200,000") < line.index("L (")
    ok, line = study.scaling_verdict([("S", 200_000, s), ("M", 500_000, m), ("L", 1_000_000, l)])
    assert ok is False and "5.0x < 10x" in line
    ok, line = study.scaling_verdict([("S", 60_000, s), ("M", 200_000, l), ("L", 1_000_000, m)])
    assert ok is False and "decrease" in line
    overlapping = interval(0.4, 0.14, 0.5)
    ok, line = study.scaling_verdict([("S", 60_000, s), ("M", 200_000, m),
                                      ("L", 1_000_000, overlapping)])
    assert ok is False and "0.140 <= S's upper CI end 0.150" in line
    assert study.scaling_verdict([("S", 1, s), ("L", 100, l)])[0] is None
    ok, line = study.scaling_verdict([("S", 60_000, s), ("M", 200_000, m), ("L", 1_000_000, l)],
                                     claim="Claim 2 at CQL 0.1")
    assert ok is True and line.startswith("Claim 2 at CQL 0.1: **reproduced**")


# --- the job list ------------------------------------------------------------------------------

def test_jobs_per_claim_with_five_seeds(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "5"])
    jobs = study.build_jobs(args, tmp_path)
    counts = {e: sum(j.experiment == e for j in jobs) for e in study.EXPERIMENTS}
    # Claim 1's comparison with BC (Scaled QL M, BC M, the CQL 0.1 variant) has 10 seeds.
    # The near-optimal split: 5 seeds, and 5 of the same with twice the steps.
    # Claim 3a's variants (promoted from 2 seeds, or combined): 5 seeds of 3 starts, of 2 when
    # only the pre-trained base changes, of 1 (pre-trained) for the head first and for the torso
    # at a tenth of the step size; and the random-features control: 5 seeds at 2 settings.
    # Claims 2 and 3b again at CQL 0.1: sizes S and L, and pre-trained online, 10 seeds each
    # (claim 1's); from scratch online gets seeds 5-9 there.  Claim 3a on SpaceInvaders: one
    # pre-training run, then 4 starts of fine-tuning with 5 seeds; on Breakout the same, and
    # pre-trained and from scratch then seeds 5-9 (claim 1's 10: undecided with 5).  Its
    # positive control: one pre-training run on all five games, then 2 starts on 2 games with 5
    # seeds.  Breakout at size L: one pre-training run, then 2 starts with 10 seeds; on 1% of its
    # episodes, 2 starts with 10 seeds from the third game's pre-training run.  Claim 3a on
    # Asterix: one pre-training run, 4 starts with 5 seeds, pre-trained and from scratch with 10
    # from the start.
    assert counts == {"claim1": 25, "claim1_near_optimal": 10, "claim2": 10, "claim3a": 15,
                      "claim3b": 10, "claim1_tried": 16, "claim3a_tried": 95,
                      "claim2_cql_0_1": 20, "claim3b_cql_0_1": 15, "claim3a_second_game": 21,
                      "claim3a_seen_game": 21, "claim3a_third_game": 31, "claim3a_size_l": 21,
                      "claim3a_small_data": 20, "claim3a_fourth_game": 31}
    assert len({j.run_dir for j in jobs}) == len(jobs) == 361
    # The design alone: 3 methods, the near-optimal split, 2 more sizes, 3 + 2 starts.
    assert sum(study.is_core(args, j) for j in jobs) == 5 * (3 + 1 + 2 + 3 + 2)
    labels = {}
    for job in jobs:
        labels.setdefault(job.label, set()).add(job.seed)
    tried = {label for label, *_ in study.TRIED}
    assert len(labels) == 16 + 15 + 3 + 2 + 2 + 5 + 5 + 5 + 3 + 2 + 5
    twice = [j for j in jobs if j.label == "Scaled QL M near-optimal, twice the steps"]
    assert [(j.seed, j.target) for j in twice] == [(k, 24000) for k in range(5)]
    assert all(j.command[j.command.index("--checkpoints") + 1] == "0-9" for j in twice)
    # Every variant has 2 seeds but the one that beat BC with 2, CQL 0.1, which gets claim 1's.
    # At CQL 0.1, claims 2 and 3b too (and claim 3b's from scratch, shared with them).
    ten = {"Scaled QL M", "BC M", "Scaled QL M, CQL 0.1", "Scaled QL S, CQL 0.1",
           "Scaled QL L, CQL 0.1", "Asterix ramping: pre-trained, from CQL 0.1",
           "Asterix ramping: from scratch", "Breakout: pre-trained", "Breakout: from scratch",
           "Breakout: pre-trained, size L", "Breakout: from scratch, size L",
           *(f"Breakout: {start}, 1% of the episodes" for start in ("pre-trained", "from scratch")),
           "Asterix: pre-trained", "Asterix: from scratch"}
    one = {study.held_out_base("minatar/SpaceInvaders"), study.SEEN_BASE,
           study.held_out_base("minatar/Breakout"), study.held_out_base("minatar/Breakout", "L"),
           study.held_out_base("minatar/Asterix")}
    assert all(seeds == set(range(10 if label in ten else 2 if label in tried else
                                  1 if label in one else 5))
               for label, seeds in labels.items())
    # Claim 1's extra seeds come after the five-seed study, the investigation last of all.
    assert [(j.label, j.seed) for j in jobs[-301:-291]] == [
        (label, seed) for seed in range(5, 10) for label in ("Scaled QL M", "BC M")]
    assert all(j.experiment == "claim1_tried" for j in jobs[-291:-275])
    assert all(j.experiment == "claim3a_tried" for j in jobs[-275:-180])
    assert all(j.experiment.endswith("_cql_0_1") for j in jobs[-180:-145])
    # The other held-out games, the positive control, the larger network, the smaller dataset
    # and the fourth game, in the order they were declared.
    assert [j.experiment for j in jobs[-145:]] == (["claim3a_second_game"] * 21
                                                   + ["claim3a_seen_game"] * 21
                                                   + ["claim3a_third_game"] * 31
                                                   + ["claim3a_size_l"] * 21
                                                   + ["claim3a_small_data"] * 20
                                                   + ["claim3a_fourth_game"] * 31)
    assert [(j.label, j.seed) for j in jobs[-82:-72]] == [
        (f"Breakout: {start}", seed) for seed in range(5, 10)
        for start in ("pre-trained", "from scratch")]
    assert [(j.label, j.seed) for j in jobs[-10:]] == [
        (f"Asterix: {start}", seed) for seed in range(5, 10)
        for start in ("pre-trained", "from scratch")]
    for job in jobs[-291:-275]:
        m = next(j for j in jobs if j.seed == 1 and j.label == job.label.split(",")[0])
        steps = job.command[job.command.index("--steps") + 1]
        assert len(job.command) == len(m.command)
        if "steps" in job.label:
            assert job.target == 6000 and steps == "6000"  # the first pass's budget
            assert job.command[job.command.index("--eval-every") + 1] == "2000"
        else:
            assert job.target == 12000 and steps == "12000"
            assert job.command[job.command.index("--cql-alpha") + 1] in ("0.1", "2")
        assert ("--bc" in job.command) == job.label.startswith("BC")
    base = jobs[0]
    assert (base.experiment, base.label, base.seed) == ("claim1", "Scaled QL M", 0)
    for job in jobs:
        if job.experiment in ("claim3a", "claim3b"):
            assert job.after == (base,)
            assert job.command[job.command.index("--checkpoint") + 1] == str(base.run_dir)
            # claim 3 starts from the final checkpoint of claim 1's Scaled QL seed 0
            assert job.command[job.command.index("--checkpoint-step") + 1] == str(args.steps)
            assert args.steps == 12000
        if job.kind == "pretrain":
            games = job.command[job.command.index("--games") + 1].split(",")
            if job.experiment == "claim3a_seen_game":
                assert games == list(study.STUDY_GAMES)
                continue
            held = {**study.OTHER_HELD_OUT, study.LARGER.experiment: study.LARGER.game}.get(
                job.experiment, "minatar/Freeway")
            assert held not in games and len(games) == 4
    held_out = {}
    for j in jobs:
        if j.experiment.startswith("claim3a") and j.kind == "finetune_offline":
            held_out.setdefault(j.experiment, set()).add(j.command[j.command.index("--game") + 1])
    assert held_out == {"claim3a": {"minatar/Freeway"}, "claim3a_tried": {"minatar/Freeway"},
                        "claim3a_second_game": {"minatar/SpaceInvaders"},
                        "claim3a_seen_game": {"minatar/Freeway", "minatar/SpaceInvaders"},
                        "claim3a_third_game": {"minatar/Breakout"},
                        "claim3a_size_l": {"minatar/Breakout"},
                        "claim3a_small_data": {"minatar/Breakout"},
                        "claim3a_fourth_game": {"minatar/Asterix"}}
    one = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "5",
                                             "--near-optimal-seeds", "1"]), tmp_path)
    assert sum(j.label == "Scaled QL M near-optimal" for j in one) == 1
    assert sum(j.label == "Scaled QL M near-optimal, twice the steps" for j in one) == 2
    five = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "5",
                                              "--claim1-seeds", "5"]), tmp_path)
    assert len(five) == 286  # the study before claim 1's extra seeds: the same runs
    assert [j.run_dir for j in five] == [j.run_dir for j in jobs if j.seed < 5]


def test_make_study_runs_the_design_and_study_all_everything(study, tmp_path, capsys):
    design = study.parse_args(["--out", str(tmp_path)])  # `make study`
    jobs = study.build_jobs(design, tmp_path)
    chosen = study.selected_jobs(design, jobs)
    assert len(chosen) == 55 and chosen == [j for j in jobs if study.is_core(design, j)]
    assert {j.experiment for j in chosen} == set(study.EXPERIMENTS[:5])
    assert all(j.seed < 5 and "twice the steps" not in j.label for j in chosen)
    everything = study.parse_args(["--out", str(tmp_path), "--experiments", "all"])
    assert study.selected_jobs(everything, study.build_jobs(everything, tmp_path)) == jobs
    # Named experiments run all their runs, claim 1's extra seeds included.
    named = study.parse_args(["--out", str(tmp_path), "--experiments", "claim1,claim2"])
    picked = study.selected_jobs(named, study.build_jobs(named, tmp_path))
    assert [j.run_dir for j in picked] == [j.run_dir for j in jobs
                                           if j.experiment in ("claim1", "claim2")]
    assert len(picked) == 35
    with pytest.raises(SystemExit):
        study.parse_args(["--out", str(tmp_path), "--experiments", "design,claim9"])
    assert "choose 'design', 'all' or from" in capsys.readouterr().err
    # --label: only the runs whose label contains one of the texts (labels hold commas).
    one = study.parse_args(["--out", str(tmp_path), "--experiments", "claim3a_tried",
                            "--label", "head first", "--label", "from scratch, 3x the steps"])
    picked = study.selected_jobs(one, study.build_jobs(one, tmp_path))
    assert (picked[0].label, picked[0].seed) == ("Scaled QL M", 0)  # their start, not done
    assert sorted({j.label for j in picked[1:]}) == [
        "Freeway: from scratch, 3x the steps",
        "Freeway: pre-trained, head first for half of 3x the steps",
        "Freeway: pre-trained, head first for half the steps"]
    assert len(picked) == 1 + 5 + 5 + 5
    # '=LABEL': that label only, not the variants whose labels contain it.
    exact = study.parse_args(["--out", str(tmp_path), "--experiments", "claim3a_tried",
                              "--label", "=Freeway: frozen random torso"])
    picked = study.selected_jobs(exact, study.build_jobs(exact, tmp_path))
    assert [(j.label, j.seed) for j in picked[1:]] == [
        ("Freeway: frozen random torso", seed) for seed in range(5)]
    contains = study.parse_args(["--out", str(tmp_path), "--experiments", "claim3a_tried",
                                 "--label", "Freeway: frozen random torso"])
    assert len(study.selected_jobs(contains, study.build_jobs(contains, tmp_path))) == 1 + 10


def test_selected_runs_bring_the_unfinished_runs_they_start_from(study, tmp_path):
    # Claim 3a's fine-tuning starts from claim 1's Scaled QL seed 0: selecting only claim 3a
    # (or only the runs of a label) brings that run along until it is done, as `make` would.
    args = study.parse_args(["--out", str(tmp_path), "--experiments", "claim3a",
                             "--steps", "100"])
    jobs = study.build_jobs(args, tmp_path)
    picked = study.selected_jobs(args, jobs)
    base = jobs[0]
    assert (base.experiment, base.label, base.seed) == ("claim1", "Scaled QL M", 0)
    assert picked[0] is base and len(picked) == 1 + 15
    assert all(j.experiment == "claim3a" for j in picked[1:])
    fake_run(study, base, 100)
    assert study.selected_jobs(args, jobs) == picked[1:]
    seen = study.parse_args(["--out", str(tmp_path), "--experiments", "claim3a_seen_game",
                             "--label", "game seen"])
    picked = study.selected_jobs(seen, study.build_jobs(seen, tmp_path))
    assert picked[0].label == study.SEEN_BASE and len(picked) == 1 + 20
    assert all(study.SEEN_VARIANT in j.label for j in picked[1:])


def test_fingerprint_ignores_step_budget_and_evaluation(study):
    a = ("x", "pretrain", "--steps", "3000", "--eval-every", "500", "--learning-rate", "3e-4",
         "--no-progress")
    b = ("x", "pretrain", "--steps", "6000", "--eval-every", "1000", "--learning-rate", "3e-4",
         "--resume")
    assert study.fingerprint(a) == study.fingerprint(b) == ["x", "pretrain", "--learning-rate",
                                                             "3e-4"]
    assert study.fingerprint(a) != study.fingerprint(a[:-2] + ("1e-4",))



def test_fingerprint_ignores_which_checkout_runs_it(study, tmp_path):
    # A study resumed from another clone (another venv's python) continues the same runs.
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1", "--steps", "100"])
    job = study.build_jobs(args, tmp_path)[0]
    other = ("/elsewhere/.venv/bin/python3", *job.command[1:])
    assert study.fingerprint(other) == study.fingerprint(job.command)
    job.run_dir.mkdir(parents=True)
    (job.run_dir / study.JOB_FILE).write_text(json.dumps(
        {"command": list(other), "fingerprint": study.fingerprint(other)}))
    assert study.job_state(job) == "fresh"  # not 'stale': nothing made yet, nothing deleted
    (job.run_dir / study.JOB_FILE).write_text(json.dumps(
        {"command": list(other[:-1]) + ["elsewhere"], "fingerprint": []}))
    assert study.job_state(job) == "stale"

# --- when a run is done ------------------------------------------------------------------------

def fake_run(study, job, step, summary=True, checkpoint=False):
    job.run_dir.mkdir(parents=True)
    append_evaluation(job.run_dir, RunInfo(job.label, "scaled_ql", job.seed, 1000),
                      ("minatar/Breakout",), step,
                      [{"game": "minatar/Breakout", "return": 2.0, "length": 10, "frames": 10}])
    if summary:
        (job.run_dir / "summary.json").write_text("{}")
    if checkpoint:
        (job.run_dir / "checkpoints" / str(step)).mkdir(parents=True)
    (job.run_dir / study.JOB_FILE).write_text(json.dumps(
        {"command": list(job.command), "fingerprint": study.fingerprint(job.command)}))


def test_job_state(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1", "--steps", "100"])
    job = study.build_jobs(args, tmp_path)[0]
    assert study.job_state(job) == "fresh"
    fake_run(study, job, 100)
    assert study.job_state(job) == "done"
    longer = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "1",
                                                "--steps", "200"]), tmp_path)[0]
    assert study.job_state(longer) == "fresh"  # short of 200 and no checkpoint to resume
    (job.run_dir / "checkpoints" / "100").mkdir(parents=True)
    assert study.job_state(longer) == "resume"
    other = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "1",
                                               "--steps", "100", "--learning-rate", "1e-4"]),
                             tmp_path)[0]
    assert study.job_state(other) == "stale"


def test_unfinished_run_is_not_done(study, tmp_path):
    job = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "1",
                                             "--steps", "100"]), tmp_path)[0]
    fake_run(study, job, 100, summary=False, checkpoint=True)
    assert study.job_state(job) == "resume"


def test_online_run_is_done_at_its_env_steps(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1",
                             "--online-env-steps", "500"])
    job = next(j for j in study.build_jobs(args, tmp_path) if j.kind == "finetune_online")
    fake_run(study, job, 60)
    assert study.job_state(job) == "fresh"  # no online_stats.json: the program did not end
    (job.run_dir / "online_stats.json").write_text(json.dumps({"env_steps": 500}))
    assert study.job_state(job) == "done"


# --- data ----------------------------------------------------------------------------------------

def test_collection_in_progress_is_not_started_again(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path)])
    busy = study.dataset_folder(tmp_path, "minatar/Breakout").parent / "incomplete.1.0.0.7"
    busy.mkdir(parents=True)
    (busy / "shard").write_bytes(b"x")
    with pytest.raises(study.CollectionInProgressError, match="incomplete.1.0.0.7"):
        study.collect_data(args, tmp_path)
    assert not (tmp_path / "jobs.jsonl").exists()


def test_games_are_collected_jobs_at_a_time_each_into_its_own_log(study, tmp_path,
                                                                  monkeypatch):
    import threading
    import time

    lock, running, peak, seeds = threading.Lock(), [0], [0], {}

    def fake_collect(command, stdout, **_):  # stands in for `scaled-ql collect` (minutes each)
        game = command[command.index("--games") + 1]
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        seeds[game] = int(command[command.index("--seed") + 1])
        stdout.write(f"collected {game}\n")
        if game != "minatar/Asterix":  # Asterix fails: exit 1, no dataset
            folder = study.dataset_folder(tmp_path, game)
            folder.mkdir(parents=True)
            (folder / "dataset_info.json").write_text("{}")
        with lock:
            running[0] -= 1
        return 1 if game == "minatar/Asterix" else 0

    monkeypatch.setattr(study.subprocess, "call", fake_collect)
    args = study.parse_args(["--out", str(tmp_path), "--jobs", "2"])
    assert study.collect_data(args, tmp_path) == ["minatar/Asterix"]
    assert peak[0] == 2
    assert seeds == {g: 7919 * i for i, g in enumerate(study.STUDY_GAMES)}
    for game in study.STUDY_GAMES:
        assert study.collect_log(tmp_path, game).read_text() == f"collected {game}\n"
    records = [json.loads(line) for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]
    assert sorted(r["job"] for r in records if "job" in r) == sorted(
        f"data: {g}" for g in study.STUDY_GAMES)
    session = [r for r in records if r.get("session") == "data"]
    assert len(session) == 1 and session[0]["games"] == 5 and session[0]["jobs"] == 2
    seconds, source = study.collection_wall_time(tmp_path)
    assert seconds == session[0]["seconds"] and "2 game(s) at a time" in source

    # Run again: only the failed game is collected.
    seeds.clear()
    assert study.collect_data(args, tmp_path) == ["minatar/Asterix"]
    assert list(seeds) == ["minatar/Asterix"]


def test_collection_wall_time_of_an_older_study_reads_collect_log(study, tmp_path):
    (tmp_path / "collect.log").write_text("collect: 100%| [05:00<00:00]\n")
    seconds, source = study.collection_wall_time(tmp_path)
    assert seconds == 300 and "collect.log" in source


def test_collect_command_keeps_the_five_game_seed(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path)])
    command = study.collect_command(args, tmp_path, "minatar/Freeway", overwrite=False)
    assert command[command.index("--seed") + 1] == str(2 * 7919)  # third game of five
    assert command[command.index("--steps") + 1] == "300000"


def test_collection_seconds_sums_restarted_bars(study, tmp_path):
    log = tmp_path / "collect.log"
    log.write_text("collect: 1%| 10/100 [00:10<01:30] collect: 50%| [01:05<01:05]\n"
                   "collect: 0%| [00:02<?] collect: 100%| [1:00:00<00:00]\n")
    assert study.collection_seconds(log) == 65 + 3600


def test_data_run_holds_the_split_episodes(study, tmp_path):
    table = {"minatar/Breakout": {"checkpoints": {
        "0": {"returns": [1.0, 3.0], "lengths": [10, 20]},
        "1": {"returns": [5.0], "lengths": [30]},
        "2": {"returns": [100.0], "lengths": [40]}}}}
    run_dir = study.write_data_run(table, ("minatar/Breakout",), (0, 1), tmp_path / "d", "data")
    results = read_results(run_dir)
    assert results.run.method == "behaviour"
    (evaluation,) = results.evaluations
    assert evaluation.step == 0
    assert sorted(e.episode_return for e in evaluation.episodes) == [1.0, 3.0, 5.0]
    assert sorted(e.length for e in evaluation.episodes) == [10, 20, 30]


def test_report_regenerates_only_the_study_folders(study, tmp_path):
    # docs/results/ also holds other pages' figures (PIXELS_GPU.md's plot): the report
    # rewrites its experiments' folders and leaves the rest.
    docs = tmp_path / "docs"
    (docs / "results" / "claim1").mkdir(parents=True)
    (docs / "results" / "claim1" / "stale.png").write_bytes(b"old")
    (docs / "results" / "other_page.png").write_bytes(b"keep")
    args = study.parse_args(["--out", str(tmp_path / "out"), "--docs", str(docs),
                             "--seeds", "1"])
    jobs = study.build_jobs(args, tmp_path / "out")
    page = study.write_results(args, tmp_path / "out", docs, jobs)
    assert (docs / "results" / "other_page.png").read_bytes() == b"keep"
    assert not (docs / "results" / "claim1" / "stale.png").exists()
    assert f"0 of {len(jobs)} runs are done" in page.read_text()
    assert "Other machines' pages" not in page.read_text()
    # Another machine's page kept under docs/machine_A/ is linked, and left as it is.
    (docs / "machine_A").mkdir()
    (docs / "machine_A" / "RESULTS.md").write_text("A's page")
    text = study.write_results(args, tmp_path / "out", docs, jobs).read_text()
    assert "[machine A](machine_A/RESULTS.md)" in text
    assert (docs / "machine_A" / "RESULTS.md").read_text() == "A's page"


def test_claim3a_variants_change_one_setting_each(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "5"])
    jobs = study.build_jobs(args, tmp_path)
    own = {(j.label, j.seed): j for j in jobs if j.experiment == "claim3a"}
    tried = [j for j in jobs if j.experiment == "claim3a_tried"
             and not j.label.startswith("Freeway: frozen random torso")]  # (next test)
    base = jobs[0]
    cql01 = next(j for j in jobs if j.label == "Scaled QL M, CQL 0.1" and j.seed == 0)

    def flag(job, name):
        return job.command[job.command.index(name) + 1] if name in job.command else None

    for job in tried:
        start, variant = job.label.split(", ", 1)
        mine = own[(start, job.seed)]
        changed = {name for name in ("--episode-fraction", "--steps", "--learning-rate",
                                     "--checkpoint", "--frozen-torso-steps",
                                     "--torso-learning-rate-scale")
                   if flag(job, name) != flag(mine, name)}
        expected = {"3% of the episodes": {"--episode-fraction"}, "Adam 3e-4": {"--learning-rate"},
                    "3x the steps": {"--steps"}, "from CQL 0.1": {"--checkpoint"},
                    "from CQL 0.1, 3x the steps": {"--checkpoint", "--steps"},
                    "head first for half the steps": {"--frozen-torso-steps"},
                    "head first for half of 3x the steps": {"--frozen-torso-steps",
                                                            "--steps"},
                    "torso at a tenth of the step size": {"--torso-learning-rate-scale"},
                    "torso at a tenth of the step size, 3x the steps": {
                        "--torso-learning-rate-scale", "--steps"}}[variant]
        assert changed == expected, job.label
        # The rest of the command is the study's own run: its start, evaluation and seed.
        assert sorted(f for f in job.command if f.startswith("--")) == sorted(
            [f for f in mine.command if f.startswith("--")]
            + (["--learning-rate"] if variant == "Adam 3e-4" else [])
            + (["--frozen-torso-steps"] if variant.startswith("head first") else [])
            + (["--torso-learning-rate-scale"] if variant.startswith("torso at") else []))
        assert flag(job, "--eval-every") == "500" and job.target == int(flag(job, "--steps"))
        assert job.after == ((cql01,) if variant.startswith("from CQL 0.1") else (base,))
    by_variant = {}
    for job in tried:
        by_variant.setdefault(job.label.split(", ", 1)[1], []).append(job)
    assert flag(by_variant["3% of the episodes"][0], "--episode-fraction") == "0.03"
    assert flag(by_variant["Adam 3e-4"][0], "--learning-rate") == "0.0003"
    assert {j.target for j in by_variant["3x the steps"]} == {6000}
    assert flag(by_variant["from CQL 0.1"][0], "--checkpoint") == str(cql01.run_dir)
    # From scratch reads none of the base's weights: that variant has no from-scratch runs.
    assert sorted(j.label for j in by_variant["from CQL 0.1"]) == sorted(
        ["Freeway: pre-trained, from CQL 0.1", "Freeway: frozen torso, from CQL 0.1"] * 5)
    # The head first for half the steps: the pre-trained start only (LP-FT), its torso frozen
    # for 1,000 of 2,000 steps, or 3,000 of 6,000; the frozen torso and from scratch have no
    # frozen steps to vary.
    assert {j.label for j in by_variant["head first for half the steps"]} == {
        "Freeway: pre-trained, head first for half the steps"}
    assert {(flag(j, "--steps"), flag(j, "--frozen-torso-steps")) for j in (
        *by_variant["head first for half the steps"],
        *by_variant["head first for half of 3x the steps"])} == {("2000", "1000"),
                                                                ("6000", "3000")}
    # The torso at a tenth of the step size: the pre-trained start only, its torso's Adam at
    # 0.1x, at 2,000 steps (promoted from --tried-seeds) and at 6,000 (combined: --seeds).
    slow = (*by_variant["torso at a tenth of the step size"],
            *by_variant["torso at a tenth of the step size, 3x the steps"])
    assert {j.label.split(", ")[0] for j in slow} == {"Freeway: pre-trained"}
    assert {(flag(j, "--steps"), flag(j, "--torso-learning-rate-scale")) for j in slow} == {
        ("2000", "0.1"), ("6000", "0.1")}
    sizes = {"head first for half the steps": 5, "head first for half of 3x the steps": 5,
             "torso at a tenth of the step size": 5,
             "torso at a tenth of the step size, 3x the steps": 5}
    assert all(len(v) == sizes.get(k, 10 if k.startswith("from CQL 0.1") else 15)
               for k, v in by_variant.items())
    # Both together: the CQL 0.1 run fine-tuned for 3x the steps; from scratch is 3x the steps'.
    both = by_variant["from CQL 0.1, 3x the steps"]
    assert {j.target for j in both} == {6000} and {j.seed for j in both} == set(range(5))
    assert {flag(j, "--checkpoint") for j in both} == {str(cql01.run_dir)}
    changes = dict(study.FINETUNE_TRIED)
    assert [study.scratch_variant(v, changes[v]) for v in changes] == [
        "3% of the episodes", "Adam 3e-4", "3x the steps", None, "3x the steps", None,
        "3x the steps", None, "3x the steps"]


def test_random_torso_control_is_the_frozen_torso_from_scratch(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "5"])
    jobs = study.build_jobs(args, tmp_path)
    control = [j for j in jobs if j.label.startswith("Freeway: frozen random torso")]
    by_label = {(j.label, j.seed): j for j in jobs}
    assert len(control) == 10 and {j.experiment for j in control} == {"claim3a_tried"}
    for job in control:
        # The frozen pre-trained torso of the same settings and seed, plus --from-scratch.
        frozen = by_label[(job.label.replace("frozen random torso", "frozen torso"), job.seed)]
        assert job.command.count("--from-scratch") == 1 and "--freeze-torso" in job.command
        assert [p for p in job.command if p != "--from-scratch" and p not in (
            job.label, str(job.run_dir))] == [p for p in frozen.command if p not in (
                frozen.label, str(frozen.run_dir))]
        assert job.target == frozen.target and job.after == frozen.after
    assert {(j.label, j.target) for j in control} == {
        ("Freeway: frozen random torso", 2000), ("Freeway: frozen random torso, 3x the steps",
                                                 6000)}
    # Which random torso each frozen pre-trained torso is compared with: its from scratch's.
    assert [study.random_torso_setting(v) for v in (
        None, "from CQL 0.1", "3x the steps", "from CQL 0.1, 3x the steps", "Adam 3e-4")] == [
        None, None, "3x the steps", "3x the steps", False]


def test_random_torso_verdicts(study, tmp_path):
    # Hand-written final returns on Freeway: frozen torso 30, frozen random torso 20 + seed,
    # from scratch 10 (study's settings only).
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "3", "--finetune-steps", "100"])
    jobs = [j for j in study.build_jobs(args, tmp_path) if j.label in (
        "Freeway: frozen torso", "Freeway: frozen random torso", "Freeway: from scratch")]
    for job in jobs:
        write_freeway_final(job, {"Freeway: frozen torso": 30.0, "Freeway: from scratch": 10.0}
                            .get(job.label, 20.0 + job.seed))
    summary = study.report([j.run_dir for j in jobs], tmp_path / "report")
    lines = study.random_torso_verdicts(summary)
    assert [line.split(": **")[0] for line in lines] == [
        "Control: Freeway: frozen torso beats Freeway: frozen random torso",
        "Control: Freeway: frozen random torso beats Freeway: from scratch",
        "Control: Freeway: frozen random torso, 3x the steps beats Freeway: from scratch, "
        "3x the steps"]
    assert ["**reproduced**" in line for line in lines[:2]] == [True, True]
    assert "**not measured**" in lines[2]
    assert study.plot_finetune_variants(args, jobs, tmp_path / "variants.png")


def experiment_runs(study, tmp_path, experiment):
    """The five-seed study's jobs, `experiment`'s runs (its pre-training run first) and claim
    1's CQL 0.1 run of seed 0 (which that pre-training run repeats on other games)."""
    jobs = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "5"]), tmp_path)
    cql01 = next(j for j in jobs if j.label == "Scaled QL M, CQL 0.1" and j.seed == 0)
    return jobs, [j for j in jobs if j.experiment == experiment], cql01


@pytest.mark.parametrize("experiment, game, ordinal", [
    ("claim3a_second_game", "minatar/SpaceInvaders", "second"),
    ("claim3a_third_game", "minatar/Breakout", "third"),
    ("claim3a_fourth_game", "minatar/Asterix", "fourth")])
def test_claim3a_on_another_game_is_claim3a_with_that_game_held_out(study, tmp_path, experiment,
                                                                   game, ordinal):
    jobs, other, cql01 = experiment_runs(study, tmp_path, experiment)
    base, name = other[0], game.split("/")[-1]
    assert study.OTHER_HELD_OUT[experiment] == game

    def swap(command, old, new):
        return [new if part == old else part for part in command]

    # The pre-training run: claim 1's CQL 0.1 run but the games (and its name and folder).
    games = ",".join(g for g in study.STUDY_GAMES if g != game)
    assert "minatar/Freeway" in games.split(",") and len(games.split(",")) == 4
    expected = swap(swap(swap(cql01.command, cql01.command[cql01.command.index("--games") + 1],
                              games), cql01.label, base.label), str(cql01.run_dir),
                    str(base.run_dir))
    assert list(base.command) == expected and (base.kind, base.seed) == ("pretrain", 0)
    assert base.label == f"Scaled QL M, CQL 0.1, {name} held out"
    # Each start's runs: claim 3a's (with the random torso's flags) but the game and the base.
    own = {(j.label, j.seed): j for j in jobs if j.experiment in ("claim3a", "claim3a_tried")}
    ten = experiment in ("claim3a_third_game", "claim3a_fourth_game")  # pre-trained, scratch
    assert len(other) == 1 + 4 * 5 + (2 * 5 if ten else 0)
    for job in other[1:]:
        start = job.label.split(": ", 1)[1]
        mine = own[(f"Freeway: {start}", job.seed % 5)]  # Freeway's claim 3a has 5 seeds
        expected = swap(swap(swap(swap(swap(mine.command, "minatar/Freeway", game), mine.label,
                                       job.label), str(mine.run_dir), str(job.run_dir)),
                             str(mine.after[0].run_dir), str(base.run_dir)),
                        str(mine.after[0].target), str(base.target))
        expected[expected.index("--seed") + 1] = str(job.seed)
        assert list(job.command) == expected and job.after == (base,)
    # Verdicts from hand-written final returns: pre-trained 10 + seed (10 on the seeds run
    # after the first 3, Breakout's 3-4), from scratch 10, frozen torso 30, frozen random
    # torso 20.
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "3", "--finetune-steps", "100",
                             "--claim1-seeds", "5"])
    jobs = study.build_jobs(args, tmp_path)
    runs = [j for j in jobs if j.experiment == experiment and j.kind == "finetune_offline"]
    assert len(runs) == 4 * 3 + (2 * 2 if ten else 0)
    for job in runs:
        write_freeway_final(job, {"pre-trained": 10.0 + job.seed * (job.seed < 3),
                                  "from scratch": 10.0, "frozen torso": 30.0,
                                  }.get(job.label.split(": ")[1], 20.0), game=game)
    summary = study.report([j.run_dir for j in runs], tmp_path / "report")
    later = study.other_game_later_verdict(args, jobs, experiment)
    if experiment == "claim3a_third_game":
        from scaled_ql.evaluation.scores import normalized

        x = f"{float(normalized(game, np.array([11.0]))[0]):.3f}"  # both runs' final mean, 11
        assert later == [f"Claim 3a on {name}, only seeds 3-4 of both: pre-trained beats from "
                         f"scratch: **not reproduced** (lower CI end {x} <= {x}, its upper "
                         f"CI end; {x} [{x}, {x}] vs {x} [{x}, {x}])"]
    else:
        assert later == []
    lines = study.other_game_verdicts(summary, game)
    assert [line.split(": **")[0] for line in lines] == [
        f"Claim 3a on {name}: pre-trained beats from scratch",
        f"Claim 3a on {name}: the frozen pre-trained torso beats from scratch",
        f"Claim 3a on {name}: the frozen pre-trained torso beats the frozen random torso"]
    assert ["**reproduced**" in line for line in lines] == [False, True, True]
    labels = {experiment: tuple(f"{name}: {s}" for s in study.OTHER_STARTS)}
    section = "\n".join(study.other_game_section(args, experiment, {experiment: summary},
                                                  labels, {experiment: lines}, tmp_path))
    assert f"## Claim 3a on a {ordinal} held-out game: {game}" in section
    # Asterix's pre-trained and from scratch were declared with 10 seeds before any ran.
    assert ("ran 5 seeds each from the start" in section) == (experiment == "claim3a_fourth_game")
    assert all(f"- {line}" in section for line in lines)
    assert f"| {name}: frozen random torso | 3 |" in section
    assert "(no run done yet)" in "\n".join(study.other_game_section(
        args, experiment, {experiment: None}, labels, {experiment: []}, tmp_path))
    opening = study.other_game_summary({experiment: summary}, {experiment: lines}, experiment,
                                       "that")
    assert opening[0].startswith(f"Claim 3a on a {ordinal} held-out game, {game} (declared")
    assert study.other_game_summary({experiment: None}, {}, experiment, "that") == []


def test_claim3a_at_size_l_is_the_breakout_test_with_claim2s_large_network(study, tmp_path):
    jobs, larger, _ = experiment_runs(study, tmp_path, "claim3a_size_l")
    base = larger[0]
    # The pre-training run: claim 2's size L at CQL 0.1 (seed 0), but without Breakout.
    l01 = next(j for j in jobs if j.label == "Scaled QL L, CQL 0.1" and j.seed == 0)
    m = next(j for j in jobs if j.label == "Scaled QL M, CQL 0.1, Breakout held out")
    assert base.label == "Scaled QL L, CQL 0.1, Breakout held out"
    games = m.command[m.command.index("--games") + 1]
    expected = [games if part == l01.command[l01.command.index("--games") + 1] else
                base.label if part == l01.label else
                str(base.run_dir) if part == str(l01.run_dir) else part for part in l01.command]
    assert list(base.command) == expected and (base.kind, base.seed) == ("pretrain", 0)
    assert "minatar/Breakout" not in games.split(",")
    assert base.command[base.command.index("--width") + 1] == "1"
    assert base.command[base.command.index("--feed-forward-size") + 1] == "1024"
    # Pre-trained and from scratch, 10 seeds each from the start, seed-major; each run is size
    # M's run of the same start and seed, from this base.
    assert [(j.label, j.seed) for j in larger[1:]] == [
        (f"Breakout: {start}, size L", seed) for seed in range(10)
        for start in ("pre-trained", "from scratch")]
    size_m = {(j.label, j.seed): j for j in jobs if j.experiment == "claim3a_third_game"}
    for job in larger[1:]:
        mine = size_m[(job.label.rsplit(", ", 1)[0], job.seed)]
        assert job.after == (base,)
        assert list(job.command) == [
            job.label if part == mine.label else str(job.run_dir) if part == str(mine.run_dir)
            else str(base.run_dir) if part == str(m.run_dir) else part for part in mine.command]
    # The verdict from hand-written final returns: size L pre-trained 20 + seed, from scratch
    # 10 (size M's runs, in the table for comparison, 15).
    args = study.parse_args(["--out", str(tmp_path / "small"), "--seeds", "3",
                             "--claim1-seeds", "3", "--finetune-steps", "100"])
    small = study.build_jobs(args, tmp_path / "small")
    runs = [j for j in small if j.label in study.follow_up_labels(study.LARGER)]
    assert len(runs) == 4 * 3
    for job in runs:
        write_freeway_final(job, 20.0 + job.seed if job.label.endswith("pre-trained, size L")
                            else 10.0 if job.label.endswith("size L") else 15.0,
                            game="minatar/Breakout")
    summary = study.report([j.run_dir for j in runs], tmp_path / "report")
    lines = study.follow_up_verdicts(args, study.LARGER, summary)
    assert len(lines) == 1 and lines[0].startswith(
        "Claim 3a on Breakout at size L: pre-trained beats from scratch: **reproduced**")
    assert study.follow_up_verdicts(args, study.LARGER, None)[0].endswith(
        "**not measured** (runs missing)")
    section = "\n".join(study.follow_up_section(args, study.LARGER, summary, lines, tmp_path))
    assert section.startswith("## Claim 3a at size L on minatar/Breakout")
    assert "width 1, 2 blocks, shared layer 1024" in section and "3 seeds each" in section
    for label in study.follow_up_labels(study.LARGER):
        assert f"| {label} | 3 |" in section
    assert f"- {lines[0]}" in section
    improvements = [line for line in section.splitlines() if line.startswith("- P(")]
    assert improvements == [  # the same size's two starts, and from scratch at each size
        "- P(Breakout: pre-trained > Breakout: from scratch) = 0.500 [0.500, 0.500]",  # ties
        "- P(Breakout: from scratch > Breakout: from scratch, size L) = 1.000 [1.000, 1.000]",
        "- P(Breakout: pre-trained, size L > Breakout: from scratch, size L) = 1.000 "
        "[1.000, 1.000]"]
    assert "(no run done yet)" in "\n".join(study.follow_up_section(args, study.LARGER, None, [],
                                                                     tmp_path))


def test_claim3a_on_a_smaller_dataset_is_the_breakout_test_on_a_tenth_of_the_episodes(
        study, tmp_path):
    jobs, smaller, _ = experiment_runs(study, tmp_path, "claim3a_small_data")
    # No pre-training run of its own: it fine-tunes the third game's size-M network.
    base = next(j for j in jobs if j.label == "Scaled QL M, CQL 0.1, Breakout held out")
    assert base.experiment == "claim3a_third_game"
    assert [(j.label, j.seed) for j in smaller] == [
        (f"Breakout: {start}, 1% of the episodes", seed) for seed in range(10)
        for start in ("pre-trained", "from scratch")]
    # Each run is the third game's run of the same start and seed on 1% of the episodes.
    size_m = {(j.label, j.seed): j for j in jobs if j.experiment == "claim3a_third_game"}
    for job in smaller:
        mine = size_m[(job.label.rsplit(", ", 1)[0], job.seed)]
        assert job.after == (base,) and job.kind == "finetune_offline"
        fraction = mine.command.index("--episode-fraction") + 1
        assert mine.command[fraction] == "0.1"
        assert list(job.command) == [
            job.label if part == mine.label else str(job.run_dir) if part == str(mine.run_dir)
            else "0.01" if i == fraction else part for i, part in enumerate(mine.command)]
    # The verdict from hand-written final returns: pre-trained on 1% 8 + seed, from scratch on
    # 1% 4 + seed, size M's two starts at the study's 10% 6.
    args = study.parse_args(["--out", str(tmp_path / "small"), "--seeds", "3",
                             "--claim1-seeds", "3", "--finetune-steps", "100"])
    labels = study.follow_up_labels(study.SMALLER)
    runs = [j for j in study.build_jobs(args, tmp_path / "small") if j.label in labels]
    assert len(runs) == 4 * 3
    for job in runs:
        write_freeway_final(job, 8.0 + job.seed if job.label == labels[2] else
                            4.0 + job.seed if job.label == labels[3] else 6.0,
                            game="minatar/Breakout")
    summary = study.report([j.run_dir for j in runs], tmp_path / "report")
    lines = study.follow_up_verdicts(args, study.SMALLER, summary)
    assert len(lines) == 1 and lines[0].startswith(
        "Claim 3a on Breakout on 1% of its episodes: pre-trained beats from scratch: "
        "**reproduced**")
    section = "\n".join(study.follow_up_section(args, study.SMALLER, summary, lines, tmp_path))
    assert section.startswith("## Claim 3a on 1% of minatar/Breakout's episodes")
    assert "(1% of its episodes of every checkpoint id, 100 SGD steps)" in section
    assert "both of size M, 3 seeds each" in section and "(10% of the episodes)" in section
    assert all(f"| {label} | 3 |" in section for label in labels)
    improvements = [line for line in section.splitlines() if line.startswith("- P(")]
    assert improvements == [
        "- P(Breakout: pre-trained > Breakout: from scratch) = 0.500 [0.500, 0.500]",  # ties
        # 6 against 4, 5 and 6: (1 + 1 + 0.5) / 3; the bootstrap's extremes resample only 6s
        # (0.5) or none (1)
        f"- P(Breakout: from scratch > {labels[3]}) = 0.833 [0.500, 1.000]",
        f"- P({labels[2]} > {labels[3]}) = 1.000 [1.000, 1.000]"]


def test_claim3a_positive_control_fine_tunes_a_network_that_saw_the_game(study, tmp_path):
    jobs, seen, cql01 = experiment_runs(study, tmp_path, "claim3a_seen_game")
    base = seen[0]
    # The pre-training run: claim 1's CQL 0.1 run on all five games.
    command = list(cql01.command)
    command[command.index("--games") + 1] = ",".join(study.STUDY_GAMES)
    swapped = [base.label if part == cql01.label else
               str(base.run_dir) if part == str(cql01.run_dir) else part for part in command]
    assert list(base.command) == swapped and (base.kind, base.seed) == ("pretrain", 0)
    # Each fine-tuning run: the held-out game's run of the same start and seed (claim 3a's on
    # Freeway, the second game's on SpaceInvaders) from this base, with a fresh head.
    held = {(j.label, j.seed): j for j in jobs
            if j.experiment in ("claim3a", "claim3a_second_game")}
    assert len(seen) == 1 + 2 * 2 * 5
    for job in seen[1:]:
        assert job.label.endswith(", game seen in pre-training") and job.after == (base,)
        mine = held[(job.label.rsplit(", ", 1)[0], job.seed)]
        expected = [job.label if part == mine.label else
                    str(job.run_dir) if part == str(mine.run_dir) else
                    str(base.run_dir) if part == str(mine.after[0].run_dir) else part
                    for part in mine.command]
        at = expected.index("--eval-every")
        assert list(job.command) == expected[:at] + ["--fresh-head"] + expected[at:]
    # Verdicts from hand-written final returns: from scratch 10, frozen random torso 20; from
    # the network that saw the game: pre-trained 30 on Freeway and 10 + seed on SpaceInvaders,
    # frozen torso 20 + seed on both (above from scratch, tied with the random torso).
    args = study.parse_args(["--out", str(tmp_path / "small"), "--seeds", "3",
                             "--finetune-steps", "100"])
    labels = {game: study.seen_game_labels(game) for game in study.SEEN_GAMES}
    assert labels["minatar/Freeway"] == {
        "from scratch": "Freeway: from scratch",
        "frozen random torso": "Freeway: frozen random torso",
        "pre-trained, held out": "Freeway: pre-trained, from CQL 0.1",
        "frozen torso, held out": "Freeway: frozen torso, from CQL 0.1",
        "pre-trained, seen": "Freeway: pre-trained, game seen in pre-training",
        "frozen torso, seen": "Freeway: frozen torso, game seen in pre-training"}
    assert labels["minatar/SpaceInvaders"]["pre-trained, held out"] == (
        "SpaceInvaders: pre-trained")
    values = {"from scratch": lambda g, k: 10.0, "frozen random torso": lambda g, k: 20.0,
              "pre-trained, seen": lambda g, k: 30.0 if g == "minatar/Freeway" else 10.0 + k,
              "frozen torso, seen": lambda g, k: 20.0 + k}
    runs = []
    for job in study.build_jobs(args, tmp_path / "small"):
        for game, roles in labels.items():
            role = next((r for r, label in roles.items() if label == job.label), None)
            if role in values and job.kind == "finetune_offline":
                write_freeway_final(job, values[role](game, job.seed), game=game)
                runs.append(job.run_dir)
    assert len(runs) == 2 * 4 * 3
    summary = study.report(runs, tmp_path / "report")
    lines = study.seen_game_verdicts(summary)
    assert [line.split(": **")[0] for line in lines] == [
        f"Positive control on {game}: {text}, game seen in pre-training, beats {other}"
        for game in ("Freeway", "SpaceInvaders")
        for text, other in (("pre-trained", "from scratch"), ("the frozen torso", "from scratch"),
                            ("the frozen torso", "the frozen random torso"))]
    assert ["**reproduced**" in line for line in lines] == [True, True, False,
                                                            False, True, False]
    section = "\n".join(study.seen_game_section(args, summary, lines, tmp_path))
    assert "## Claim 3a's positive control: the held-out game seen in pre-training" in section
    assert all(f"- {line}" in section for line in lines)
    assert "| Freeway: pre-trained, game seen in pre-training | 3 |" in section
    assert "(no run done yet)" in study.seen_game_section(args, None, [], tmp_path)


def test_claims_2_and_3b_at_cql_0_1_change_only_the_weight(study, tmp_path):
    jobs = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "5"]), tmp_path)
    by = {(j.label, j.seed): j for j in jobs}
    cql01 = by[("Scaled QL M, CQL 0.1", 0)]

    def without(command, *names):  # the command without these flags and their values
        drop = {i + k for i, part in enumerate(command) if part in names for k in (0, 1)}
        return [part for i, part in enumerate(command) if i not in drop]

    for seed in range(5):
        for size in ("S", "L"):
            mine, own = by[(f"Scaled QL {size}, CQL 0.1", seed)], by[(f"Scaled QL {size}", seed)]
            assert mine.experiment == "claim2_cql_0_1"
            assert mine.command[mine.command.index("--cql-alpha") + 1] == "0.1"
            assert own.command[own.command.index("--cql-alpha") + 1] == "0.5"
            assert without(mine.command, "--cql-alpha", "--name", "--out") == without(
                own.command, "--cql-alpha", "--name", "--out")
        mine = by[("Asterix ramping: pre-trained, from CQL 0.1", seed)]
        own = by[("Asterix ramping: pre-trained", seed)]
        assert mine.after == (cql01,) and mine.kind == "finetune_online"
        assert mine.command[mine.command.index("--checkpoint") + 1] == str(cql01.run_dir)
        assert without(mine.command, "--checkpoint", "--name", "--out") == without(
            own.command, "--checkpoint", "--name", "--out")
    # From scratch reads no weights: claim 3b's own from-scratch runs are the comparison, and
    # its seeds 5-9 (the same command, seeds claim 3b at 0.5 does not have) belong to this one.
    scratch = {j.seed: j for j in jobs if j.label == "Asterix ramping: from scratch"}
    assert sorted(scratch) == list(range(10))
    assert {j.experiment for s, j in scratch.items() if s < 5} == {"claim3b"}
    assert {j.experiment for s, j in scratch.items() if s >= 5} == {"claim3b_cql_0_1"}
    assert without(scratch[7].command, "--seed", "--out") == without(
        scratch[2].command, "--seed", "--out")
    assert {seed for label, seed in by if label == "Scaled QL L, CQL 0.1"} == set(range(10))


def test_claim2_keeps_five_seeds_of_claim1_network(study, tmp_path, monkeypatch):
    # Claim 1's Scaled QL M has 10 seeds; claim 2 compares the sizes over the same 5 seeds each.
    jobs = study.build_jobs(study.parse_args(["--out", str(tmp_path), "--seeds", "5"]), tmp_path)
    monkeypatch.setattr(study, "job_state", lambda job: "done")
    sizes = ("Scaled QL S", "Scaled QL M", "Scaled QL L")
    assert len(study.done_runs(jobs, sizes)) == 20
    kept = study.done_runs(jobs, sizes, below_seed=5)
    assert len(kept) == 15 and all(p.name in {f"seed{k}" for k in range(5)} for p in kept)


def test_tried_verdicts_check_the_seeds_run_after_the_choice(study, tmp_path):
    # Hand-written final evaluations: BC M returns 1 on Breakout and SpaceInvaders, the CQL 0.1
    # variant 2 + seed / 10 (so its later seeds score higher than its first two).
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "2", "--claim1-seeds", "4",
                             "--steps", "100"])
    jobs = study.build_jobs(args, tmp_path)
    games = ("minatar/Breakout", "minatar/SpaceInvaders")

    def write(job, value, method):
        append_evaluation(job.run_dir, RunInfo(job.label, method, job.seed, 1000), games,
                          job.target, [{"game": g, "return": value, "length": 10, "frames": 10}
                                       for g in games for _ in range(3)])
        (job.run_dir / "summary.json").write_text("{}")
        (job.run_dir / "checkpoints" / str(job.target)).mkdir(parents=True)

    cql = [j for j in jobs if j.label == "Scaled QL M, CQL 0.1"]
    bc = [j for j in jobs if j.label == "BC M"]
    assert [j.seed for j in cql] == [j.seed for j in bc] == [0, 1, 2, 3]
    for job in bc:
        write(job, 1.0, "bc")
    for job in cql:
        write(job, 2.0 + job.seed / 10, "scaled_ql")
    summary = study.report([j.run_dir for j in cql + bc], tmp_path / "report")
    # The IQM of a subset of runs, computed without a report, is the report's.
    assert study.iqm_of_runs([j.run_dir for j in cql]) == pytest.approx(
        study.iqm(summary, "Scaled QL M, CQL 0.1"))
    later = study.iqm_of_runs([j.run_dir for j in cql[2:]])
    assert later["estimate"] > study.iqm(summary, "Scaled QL M, CQL 0.1")["estimate"]
    lines = study.tried_verdicts(args, summary, jobs)
    assert [line.split(":")[0] for line in lines] == [
        "Scaled QL M, CQL 0.1 beats the behaviour policy",  # (no data run here: not measured)
        "Scaled QL M, CQL 0.1 beats BC M", "Scaled QL M, CQL 0.1 beats C51 M",
        "Scaled QL M, CQL 0.1, only its 2 seeds run after the choice (seeds 2-3), beats BC M"]
    assert "not measured" in lines[0] and "not measured" in lines[2]
    assert "**reproduced**" in lines[1] and "**reproduced**" in lines[3]
    assert f"{later['lower']:.3f} > " in lines[3]


def test_near_optimal_variant_verdicts_over_all_and_later_seeds(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "3", "--steps", "100"])
    jobs = [j for j in study.build_jobs(args, tmp_path)
            if j.label == "Scaled QL M near-optimal, twice the steps"]
    assert [(j.seed, j.target) for j in jobs] == [(0, 200), (1, 200), (2, 200)]
    games = ("minatar/Breakout", "minatar/SpaceInvaders")
    for job in jobs:
        append_evaluation(job.run_dir, RunInfo(job.label, "scaled_ql", job.seed, 1000), games,
                          job.target, [{"game": g, "return": 2.0 + job.seed, "length": 10,
                                        "frames": 10} for g in games])
        (job.run_dir / "summary.json").write_text("{}")
    summary = study.report([j.run_dir for j in jobs], tmp_path / "report")
    lines = study.near_tried_verdicts(args, summary, jobs)
    # No data run in this summary: both verdicts are 'not measured', over 3 seeds and seed 2.
    assert [line.split(": **")[0] for line in lines] == [
        "Tried: Scaled QL M near-optimal, twice the steps (200 SGD steps, 3 seeds) beats the "
        "behaviour policy",
        "Tried: Scaled QL M near-optimal, twice the steps (200 SGD steps, only its 1 seeds run "
        "after the first 2 (seeds 2-2)) beats the behaviour policy"]
    assert all("not measured" in line for line in lines)
    # Before any seed beyond --tried-seeds exists: only the line over all of them.
    first = study.parse_args(["--out", str(tmp_path), "--seeds", "3", "--steps", "100",
                              "--tried-seeds", "3"])
    assert len(study.near_tried_verdicts(first, summary, jobs)) == 1


def write_freeway_final(job, value, game="minatar/Freeway"):
    """A done fine-tuning run by hand: 3 final episodes of `game` returning value, +1, +2."""
    append_evaluation(job.run_dir, RunInfo(job.label, "scaled_ql", job.seed, 1000),
                      (game,), job.target,
                      [{"game": game, "return": value + k, "length": 10,
                        "frames": 10} for k in range(3)])
    (job.run_dir / "summary.json").write_text("{}")


def test_claim3a_variant_verdicts_over_all_and_later_seeds(study, tmp_path, monkeypatch):
    # Hand-written final evaluations on Freeway: from scratch returns 10, pre-trained 20 + seed
    # (its later seeds higher), frozen torso 10 (tied with from scratch).
    monkeypatch.setattr(study, "FINETUNE_TRIED_WITH_ALL_SEEDS", ("3% of the episodes",))
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "4", "--finetune-steps", "100"])
    jobs = [j for j in study.build_jobs(args, tmp_path)
            if j.label.endswith("3% of the episodes")]
    assert sorted({j.seed for j in jobs}) == [0, 1, 2, 3]  # promoted: --seeds, not 2
    for job in jobs:
        value = 20.0 + job.seed if job.label.startswith("Freeway: pre-trained") else 10.0
        write_freeway_final(job, value)
    summary = study.report([j.run_dir for j in jobs], tmp_path / "report")
    lines = study.finetune_tried_verdicts(args, summary, jobs)
    prefix = "Tried: Freeway: {}, 3% of the episodes ({}) beats Freeway: from scratch, 3% of " \
             "the episodes"
    assert [line.split(": **")[0] for line in lines] == [
        prefix.format("pre-trained", "4 seeds"),
        prefix.format("pre-trained", "only the 2 seeds run after the choice"),
        prefix.format("frozen torso", "4 seeds"),
        prefix.format("frozen torso", "only the 2 seeds run after the choice")]
    assert ["**reproduced**" in line for line in lines] == [True, True, False, False]
    later = study.iqm_of_runs([j.run_dir for j in jobs if j.seed >= 2
                               and j.label.startswith("Freeway: pre-trained")])
    assert f"{later['lower']:.3f} > " in lines[1]
    # The curves' plot: a panel per setting, drawn from the runs that exist.
    assert study.iqm_curve_of_runs([j.run_dir for j in jobs if j.label.startswith(
        "Freeway: pre-trained")]).estimate[-1] == pytest.approx(
        study.iqm(summary, "Freeway: pre-trained, 3% of the episodes")["estimate"])
    assert study.plot_finetune_variants(args, jobs, tmp_path / "variants.png")
    assert (tmp_path / "variants.png").read_bytes()[:4] == b"\x89PNG"
    assert not study.plot_finetune_variants(args, [], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    # A variant that is not promoted gets only the line over its seeds.
    monkeypatch.setattr(study, "FINETUNE_TRIED_WITH_ALL_SEEDS", ())
    assert len(study.finetune_tried_verdicts(args, summary, jobs)) == 2


def test_claims_2_and_3b_at_cql_0_1_over_the_seeds_run_after_the_choice(study, tmp_path):
    # Hand-written final evaluations: sizes S, M, L return 1, 2, 3 (+ seed / 10) on two games;
    # online, pre-trained 5 + seed and from scratch 1.  --seeds 2 and 4 seeds at CQL 0.1.
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "2", "--claim1-seeds", "4",
                             "--steps", "100", "--online-env-steps", "100"])
    jobs = study.build_jobs(args, tmp_path)
    sizes = ("Scaled QL S, CQL 0.1", "Scaled QL M, CQL 0.1", "Scaled QL L, CQL 0.1")
    online = ("Asterix ramping: pre-trained, from CQL 0.1", "Asterix ramping: from scratch")
    games = ("minatar/Breakout", "minatar/SpaceInvaders")
    for job in jobs:
        if job.label in sizes:
            size = sizes.index(job.label)
            value, params, on = 1.0 + size + job.seed / 10, 1000 * 4 ** size, games
        elif job.label in online:
            value, params, on = (5.0 + job.seed if job.label == online[0] else 1.0), 1000, (
                "minatar/Asterix",)
            (job.run_dir).mkdir(parents=True)
            (job.run_dir / "online_stats.json").write_text(json.dumps({"env_steps": 100}))
        else:
            continue
        append_evaluation(job.run_dir, RunInfo(job.label, "scaled_ql", job.seed, params), on,
                          job.target, [{"game": g, "return": value + k / 10, "length": 10,
                                        "frames": 10} for g in on for k in range(3)])
        (job.run_dir / "summary.json").write_text("{}")
    assert {j.seed for j in jobs if j.label in sizes + online} == {0, 1, 2, 3}
    c2p = study.report(study.done_runs(jobs, sizes), tmp_path / "report")
    lines = study.paper_cql_later_verdicts(args, jobs, c2p, sizes, online, "Asterix")
    assert [line.split(": **")[0] for line in lines] == [
        "Claim 2 at CQL 0.1, only seeds 2-3 of every size (Scaled QL improves with model size)",
        "Claim 3b at CQL 0.1, only seeds 2-3 of both: pre-trained beats from scratch, online "
        "on Asterix with difficulty ramping"]
    assert all("**reproduced**" in line for line in lines)
    later_l = study.iqm_of_runs([j.run_dir for j in jobs
                                 if j.label == sizes[2] and j.seed >= 2])
    assert f"{later_l['estimate']:.3f} [" in lines[0] and "16,000 params" in lines[0]
    later_pre = study.iqm_of_runs([j.run_dir for j in jobs
                                   if j.label == online[0] and j.seed >= 2])
    every_pre = study.iqm_of_runs([j.run_dir for j in jobs if j.label == online[0]])
    assert later_pre["lower"] > every_pre["estimate"]  # seeds 2-3 only: 7 and 8, not 5 and 6
    assert f"{later_pre['lower']:.3f} > " in lines[1]
    # Claim 3b at the study's weight keeps its own seeds: the report takes from scratch's 0-1.
    assert study.done_runs(jobs, ("Asterix ramping: from scratch",), below_seed=args.seeds) == [
        j.run_dir for j in jobs if j.label == online[1] and j.seed < 2]
    # Without more seeds than --seeds there is nothing run after the choice.
    same = study.parse_args(["--out", str(tmp_path), "--seeds", "4", "--claim1-seeds", "4"])
    assert study.paper_cql_later_verdicts(same, jobs, c2p, sizes, online, "Asterix") == []


def test_claim3a_combined_variant_compares_with_its_other_settings_from_scratch(study, tmp_path):
    # From scratch reads no weights: 'from CQL 0.1, 3x the steps' has none of its own and is
    # compared with 3x the steps' (frozen torso 30, pre-trained 10, from scratch 10 + seed).
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "3", "--finetune-steps", "100"])
    jobs = [j for j in study.build_jobs(args, tmp_path) if j.label in (
        "Freeway: from scratch, 3x the steps", "Freeway: pre-trained, from CQL 0.1, 3x the steps",
        "Freeway: frozen torso, from CQL 0.1, 3x the steps")]
    assert len(jobs) == 9 and {j.target for j in jobs} == {300}
    for job in jobs:
        value = {"from scratch": 10.0 + job.seed, "pre-trained": 10.0, "frozen torso": 30.0}[
            job.label.split(": ")[1].split(",")[0]]
        write_freeway_final(job, value)
    summary = study.report([j.run_dir for j in jobs], tmp_path / "report")
    lines = study.finetune_tried_verdicts(args, summary, jobs)
    # Declared with all its seeds from the start: no line over later seeds.
    assert [line.split(": **")[0] for line in lines] == [
        f"Tried: Freeway: {start}, from CQL 0.1, 3x the steps (3 seeds) beats Freeway: from "
        "scratch, 3x the steps" for start in ("pre-trained", "frozen torso")]
    assert ["**reproduced**" in line for line in lines] == [False, True]
    assert study.plot_finetune_variants(args, jobs, tmp_path / "variants.png")


# --- claim 3's final reading -------------------------------------------------------------------

def fake_final(study, job, step, episodes=100, max_frames=2500, seed=None, value=1.0,
               game="minatar/Asterix"):
    """A final_eval.json as `scaled-ql evaluate` writes it (its RunInfo and protocol)."""
    seed = job.seed if seed is None else seed
    path = job.run_dir / study.FINAL_FILE
    path.unlink(missing_ok=True)
    config = {"protocol": {"episodes": episodes, "max_frames": max_frames, "seed": seed},
              **({"env_steps": job.target} if job.kind == "finetune_online" else {})}
    append_evaluation(path, RunInfo(job.label, "evaluate", seed, None, config), (game,), step,
                      [{"game": game, "return": value + (k % 3) / 10, "length": 10,
                        "frames": 10} for k in range(episodes)])


def test_final_reading_reads_each_fine_tuning_runs_last_policy(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1", "--finetune-steps", "100",
                             "--online-env-steps", "500"])
    jobs = study.build_jobs(args, tmp_path)
    chosen = study.final_jobs(args, jobs)
    assert {(j.experiment, j.kind) for j in chosen} == {("claim3a", "finetune_offline"),
                                                        ("claim3b", "finetune_online")}
    assert len(chosen) == 5  # Freeway's three starts, Asterix's two, seed 0
    assert study.final_jobs(study.parse_args(["--out", str(tmp_path), "--final-episodes", "0"]),
                            jobs) == []
    every = study.parse_args(["--out", str(tmp_path), "--experiments", "all", "--seeds", "1"])
    read = study.final_jobs(every, study.build_jobs(every, tmp_path))
    # Not the variants tried nor the other controls; claim 3a's random torso at its settings.
    assert {j.experiment for j in read} == {*study.FINAL_EXPERIMENTS, "claim3a_tried"}
    assert [(j.label, j.seed) for j in read if j.experiment == "claim3a_tried"] == [
        ("Freeway: frozen random torso", 0)]

    job = next(j for j in chosen if j.kind == "finetune_offline")
    command = study.final_command(args, job)
    assert command[3] == "evaluate"
    flags = dict(zip(command[4::2], command[5::2]))
    assert flags["--checkpoint"] == str(job.run_dir)
    assert (flags["--episodes"], flags["--max-frames"], flags["--seed"]) == ("100", "2500",
                                                                              str(job.seed))
    assert command[-2:] == ("--out", str(job.run_dir / study.FINAL_FILE))

    fake_run(study, job, 100)
    assert not study.final_done(args, job)  # nothing read yet
    fake_final(study, job, 100, episodes=10)
    assert not study.final_done(args, job)  # fewer episodes than --final-episodes
    fake_final(study, job, 100, max_frames=10_000)
    assert not study.final_done(args, job)  # another cap than the rounds'
    fake_final(study, job, 100, seed=job.seed + 1)
    assert not study.final_done(args, job)  # another seed than the run's
    fake_final(study, job, 50)
    assert not study.final_done(args, job)  # an earlier checkpoint than the last round's
    fake_final(study, job, 100)
    assert study.final_done(args, job)
    assert study.final_files(args, jobs, [j.run_dir for j in chosen]) == [
        job.run_dir / study.FINAL_FILE]
    (job.run_dir / study.FINAL_FILE).write_text("{not json")
    assert not study.final_done(args, job)  # a broken file is read again, not trusted


def test_final_stage_reads_only_what_is_missing(study, tmp_path, monkeypatch):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1", "--finetune-steps", "100",
                             "--online-env-steps", "500", "--jobs", "2"])
    jobs = study.build_jobs(args, tmp_path)
    offline, *_ = (j for j in study.final_jobs(args, jobs) if j.kind == "finetune_offline")
    online = next(j for j in study.final_jobs(args, jobs) if j.kind == "finetune_online")
    fake_run(study, offline, 100)
    fake_run(study, online, 60)
    (online.run_dir / "online_stats.json").write_text(json.dumps({"env_steps": 500}))
    called = []

    def fake_evaluate(command, stdout, **_):  # stands in for `scaled-ql evaluate` (a checkpoint)
        run_dir = study.pathlib.Path(command[command.index("--checkpoint") + 1])
        job = next(j for j in jobs if j.run_dir == run_dir)
        called.append(job.name)
        if job is online:
            return 1  # fails: no file, reported as a failure
        fake_final(study, job, 100)
        return 0

    monkeypatch.setattr(study.subprocess, "call", fake_evaluate)
    failures = study.read_final_policies(args, jobs, tmp_path)
    assert sorted(called) == sorted([offline.name, online.name])  # not the runs not done
    assert [f["job"] for f in failures] == [f"final: {online.name}"]
    records = [json.loads(line) for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]
    assert sorted((r["final"], r["done"]) for r in records) == sorted(
        [(offline.name, True), (online.name, False)])
    called.clear()
    study.read_final_policies(args, jobs, tmp_path)
    assert called == [online.name]  # the offline run's policy is read already


def test_final_reading_verdicts_and_tables_on_the_page(study, tmp_path):
    # Hand-written final files: pre-trained 3 + seed / 10 and from scratch 1 on Asterix with
    # ramping, 100 episodes each; the 10-episode rounds both return 2.
    args = study.parse_args(["--out", str(tmp_path / "out"), "--docs", str(tmp_path / "docs"),
                             "--seeds", "2", "--online-env-steps", "100"])
    jobs = study.build_jobs(args, tmp_path / "out")
    pair = ("Asterix ramping: pre-trained", "Asterix ramping: from scratch")
    for job in (j for j in jobs if j.experiment == "claim3b" and j.seed < 2):
        fake_run(study, job, 60)
        (job.run_dir / "online_stats.json").write_text(json.dumps({"env_steps": 100}))
        fake_final(study, job, 60, value=3.0 + job.seed / 10 if job.label == pair[0] else 1.0)
    # Claim 3a's frozen torso and its random-torso control (a claim3a_tried run) on Freeway.
    control = ("Freeway: frozen torso", study.FINAL_CONTROL)
    for job in (j for j in jobs if j.label in control and j.seed < 2):
        fake_run(study, job, job.target)
        fake_final(study, job, job.target, game="minatar/Freeway",
                   value=20.0 + job.seed if job.label == control[0] else 5.0)
    page = study.write_results(args, tmp_path / "out", tmp_path / "docs", jobs).read_text()
    final = json.loads((tmp_path / "docs" / "results" / "claim3b" / "final" / "summary.json")
                       .read_text())
    pre = study.iqm(final, pair[0])
    scratch = study.iqm(final, pair[1])
    assert pre["lower"] > scratch["upper"]
    expected = (f"- Claim 3b: pre-trained beats from scratch, online on Asterix with difficulty "
                f"ramping, 100 episodes per final policy: **reproduced** (lower CI end "
                f"{pre['lower']:.3f} > "
                f"{scratch['upper']:.3f}, its upper CI end;")
    head, rest = page.split("Claim 3 read with 100 episodes per final policy", 1)
    assert expected in rest.split("\n\n## Design")[0]
    # The rounds' verdict (2 against 2) is not reproduced; the final reading does not replace it.
    assert ("Claim 3b: pre-trained beats from scratch, online on Asterix with difficulty "
            "ramping: **not reproduced**") in head
    assert "not measured" not in rest.split("\n\n## Design")[0]  # only comparisons read
    assert "The final policies read with 100 episodes each" in page
    assert f"| {pair[0]} | 2 |" in page.split("The final policies read with 100")[1]
    assert "--episodes 100 --max-frames 2500" in page  # the commands, for the record
    assert "results/claim3b/final " in page
    assert ("- Claim 3a control: the frozen pre-trained torso beats the frozen random torso on "
            "Freeway, 100 episodes per final policy: **reproduced**") in rest
    final_tables = [part.split("\n\n")[1]
                    for part in page.split("The final policies read with 100")[1:]]
    assert any(f"| {control[1]} | 2 |" in table and f"| {control[0]} | 2 |" in table
               for table in final_tables)


def test_make_study_time_from_its_measured_parts(study, tmp_path):
    args = study.parse_args(["--out", str(tmp_path), "--seeds", "1", "--jobs", "2",
                             "--online-env-steps", "100"])
    jobs = study.build_jobs(args, tmp_path)
    core = [j for j in jobs if study.is_core(args, j)]
    attempts = ([{"job": j.name, "experiment": j.experiment, "seconds": 600.0, "done": True}
                 for j in core]
                + [{"job": "not the design's", "experiment": "claim1_tried", "seconds": 5000.0,
                    "done": True},
                   {"session": "train", "seconds": 99.0}]
                + [{"final": j.name, "experiment": j.experiment, "seconds": 36.0, "done": True}
                   for j in core if study.is_read_final(j)])
    text = "\n".join(study.time_section(args, jobs, attempts, data_seconds=1800.0))
    assert "`make study` on this machine" not in text  # the design's runs are not all done
    for job in core:
        fake_run(study, job, job.target)
        if job.kind == "finetune_online":
            (job.run_dir / "online_stats.json").write_text(json.dumps({"env_steps": 100}))
    text = "\n".join(study.time_section(args, jobs, attempts, data_seconds=1800.0))
    finals = sum(study.is_read_final(j) for j in core)
    assert finals == 5  # Freeway's three starts, Asterix's two
    total = 1800.0 + (600.0 * len(core) + 36.0 * finals) / 2
    assert f"= **{total / 3600:.2f} h**" in text
    assert f"{36.0 * finals / 3600:.2f} h of it the design's" in text
    # The page says the design is done, and prints no heading of a variant without runs.
    page = study.write_results(args, tmp_path, tmp_path / "docs", jobs).read_text()
    assert f"The design's {len(core)} runs are done;" in page
    assert "Provisional" not in page
    assert "twice the steps (tried when" not in page  # claim1_near_optimal's variant: no runs
    assert "Claim 3a with the variants of fine-tuning" not in page
