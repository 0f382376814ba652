"""The plumbing of `benchmarks.run_all`: sections in, latest.json and PERFORMANCE.md out.

The sections are canned results of a real run of the 'tiny' plan (tiny_sections.json; rebuild it
with `run_all.run(run_all.PLANS['tiny'])` when a measure's output changes), so these tests take
seconds; the measuring code itself is exercised by `python -m benchmarks.run_all --quick`.
"""

import copy
import json
import math
import pathlib

import pytest

from benchmarks import common, run_all

SECTIONS = json.loads((pathlib.Path(__file__).parent / "tiny_sections.json").read_text())
KEYS = ("learner_vs_acme_ratio", "learner_vs_d3rlpy_ratio", "minatar_learner_vs_d3rlpy_ratio",
        "data_over_learner_ratio", "env_overhead_fraction")


def _canned(names=run_all.SECTIONS):
    return {name: (lambda plan, progress, name=name: copy.deepcopy(SECTIONS[name]))
            for name in names}


def test_run_writes_the_keys_and_the_tables(tmp_path):
    latest, markdown = tmp_path / "latest.json", tmp_path / "PERFORMANCE.md"
    run_all.run(run_all.PLANS["tiny"], latest=latest, markdown=markdown, runners=_canned())
    results = json.loads(latest.read_text())
    for key in KEYS:
        assert isinstance(results[key], float) and math.isfinite(results[key]), key
    acme = SECTIONS["acme"]["rows"][0]
    assert results["learner_vs_acme_ratio"] == pytest.approx(acme["ratio_vs_acme"]["cpu"])
    assert results["data_over_learner_ratio"] == pytest.approx(
        SECTIONS["data"]["cores_1"]["transitions_per_cpu_s"]
        / acme["ours_learner_samples_per_cpu_s"])
    assert results["env_overhead_fraction"] == SECTIONS["env"]["env_overhead_fraction"]
    minatar = SECTIONS["minatar"]["rows"][0]
    assert minatar["network"].startswith("minatar_")
    assert results["minatar_learner_vs_d3rlpy_ratio"] == pytest.approx(
        minatar["ratio_vs_d3rlpy"]["cpu"])
    assert [g["key"] for g in results["goals"]][:5] == list(KEYS)
    assert results["errors"] == {}
    text = markdown.read_text()
    for heading in ("## Machine", "## Goals", "## Learner side by side: Acme",
                    "## Learner side by side: d3rlpy", "## MinAtar learner side by side",
                    "## What moved", "## Learner sweep",
                    "## Data path", "## Environment", "## GPU", "## Commands"):
        assert heading in text, heading
    assert "| learner_vs_acme_ratio" not in text  # keys are shown as code
    assert "`learner_vs_acme_ratio`" in text
    assert "not run: no GPU on this machine" in text
    for row in SECTIONS["minatar"]["ladder"]["rows"]:  # the MinAtar sizes' table
        assert f"| {row['size']} | {row['torso']} |" in text


def test_a_failing_section_is_recorded_and_the_rest_still_written(tmp_path):
    def broken(plan, progress):
        raise RuntimeError("no ROMs here")

    runners = {**_canned(), "env": broken}
    latest = tmp_path / "latest.json"
    results = run_all.run(run_all.PLANS["tiny"], latest=latest,
                          markdown=tmp_path / "PERFORMANCE.md", runners=runners)
    assert results["errors"] == {"env": "RuntimeError: no ROMs here"}
    assert results["env_overhead_fraction"] is None
    assert json.loads(latest.read_text())["learner_vs_acme_ratio"] > 0
    assert "## Errors in this run" in (tmp_path / "PERFORMANCE.md").read_text()


def test_goal_status_follows_the_targets():
    sections = copy.deepcopy(SECTIONS)
    sections["acme"]["rows"][0]["ratio_vs_acme"]["cpu"] = 1.31
    sections["env"]["env_overhead_fraction"] = 0.25
    goals = {g["key"]: g["met"] for g in run_all.headline(sections)["goals"]}
    assert goals["learner_vs_acme_ratio"] is True
    assert goals["env_overhead_fraction"] is False
    assert goals["gpu_resnet50_fraction_of_peak"] is None  # no GPU row


def test_interleaved_rotates_and_pairs_blocks():
    order = []

    def contender(name, seconds):
        def run(n):
            order.append(name)
            return {"wall": seconds * n, "cpu": seconds * n / 2}
        return run

    seconds = common.interleaved({"a": contender("a", 0.2), "b": contender("b", 0.1)},
                                 blocks=4, calls_per_block=3)
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert seconds["wall"]["a"] == pytest.approx([0.2] * 4)
    assert seconds["cpu"]["b"] == pytest.approx([0.05] * 4)
    ratio = common.paired_ratio(seconds, "a", "b")
    assert ratio["wall"] == pytest.approx(2.0) and ratio["cpu"] == pytest.approx(2.0)


def test_plans_name_only_known_sections_and_keep_the_headline_first():
    for plan in run_all.PLANS.values():
        assert plan.acme[0]["batch_size"] == plan.d3rlpy[0]["batch_size"]
        assert plan.acme[0].get("sgd_steps", 1) == 1
        assert plan.d3rlpy[0].get("network", "nature") == "nature"
        assert plan.minatar["d3rlpy"][0]["network"].startswith("minatar_")
    assert set(run_all.RUNNERS) == set(run_all.SECTIONS)


def test_merge_refreshes_one_section_and_keeps_the_others(tmp_path):
    earlier = run_all.run(run_all.PLANS["tiny"], latest=tmp_path / "earlier.json", markdown=None,
                          runners=_canned())
    fresh = copy.deepcopy(SECTIONS["minatar"])
    fresh["rows"][0]["ratio_vs_d3rlpy"]["cpu"] = 1.75
    latest, markdown = tmp_path / "latest.json", tmp_path / "PERFORMANCE.md"
    results = run_all.run(run_all.PLANS["tiny"], sections=("minatar",), latest=latest,
                          markdown=markdown, keep=earlier,
                          runners={"minatar": lambda plan, progress: fresh})
    assert list(results["sections"]) == list(run_all.SECTIONS)  # every section, in order
    assert set(results["kept_sections"]) == set(run_all.SECTIONS) - {"minatar"}
    assert results["kept_sections"]["acme"] == {"date": earlier["date"], "plan": "tiny"}
    assert results["minatar_learner_vs_d3rlpy_ratio"] == 1.75
    assert results["learner_vs_acme_ratio"] == earlier["learner_vs_acme_ratio"]
    assert json.loads(latest.read_text())["sections"]["acme"] == earlier["sections"]["acme"]
    assert "Carried over from earlier runs (`--merge`): fixes (" in markdown.read_text()
