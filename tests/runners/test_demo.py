"""`scaled-ql demo` (what `make demo` runs) at a reduced size, as a real subprocess.

Asserts what a newcomer gets: the report, its plots and `summary.json` are written, the summary
holds every method (behaviour, Scaled QL, BC) with per-game returns and the IQM with its CI, and
the summary, the report's own `summary.json` and the markdown table agree on every IQM.  The
learning claim itself is measured at full size (docs/RESULTS.md, the issue note); this test runs
the same pipeline small enough for CI.
"""

import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

GAMES = ("minatar/Breakout", "minatar/SpaceInvaders")


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "scaled_ql.cli", "demo", "--out", str(out),
               "--games", ",".join(GAMES), "--collect-steps", "1500", "--train-steps", "40",
               "--seeds", "2", "--eval-every", "20", "--eval-episodes", "2",
               "--eval-max-frames", "200", "--batch-size", "16", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_demo_writes_report_plots_and_summary(demo_out):
    out, result = demo_out
    report_dir = out / "report"
    for name in ("report.md", "summary.json", "learning_curves_iqm.png",
                 "performance_profiles.png", "aggregate_metrics.png"):
        path = report_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    png = (report_dir / "learning_curves_iqm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Three stages announced, and the closing lines name the report and the summary.
    assert [line[:5] for line in result.stdout.splitlines() if line.startswith("[")][:3] == [
        "[1/3]", "[2/3]", "[3/3]"]
    assert f"report:  {report_dir / 'report.md'}" in result.stdout
    assert f"summary: {out / 'summary.json'}" in result.stdout
    assert "Traceback" not in result.stderr
    assert "Gymnasium" not in result.stderr  # the stack's import noise stays quiet


def test_summary_has_every_method_and_agrees_with_the_report(demo_out):
    out, result = demo_out
    summary = json.loads((out / "summary.json").read_text())
    report_summary = json.loads((out / "report" / "summary.json").read_text())
    markdown = (out / "report" / "report.md").read_text()
    assert summary["suite"] == "minatar" and summary["games"] == list(GAMES)
    assert summary["split_checkpoint_ids"] == [0, 1]
    assert set(summary["methods"]) == {"behaviour", "scaled_ql", "bc"}
    by_method = {g["method"]: g for g in report_summary["groups"]}
    for method, entry in summary["methods"].items():
        assert set(entry["game_returns"]) == set(GAMES)
        iqm = entry["iqm"]
        assert iqm["lower"] <= iqm["estimate"] <= iqm["upper"]
        # The same numbers as the report's summary ...
        assert iqm == by_method[method]["aggregates"]["IQM"]
        assert entry["game_returns"] == by_method[method]["game_returns"]
        # ... and as the report's aggregate table (3 decimals).
        label = by_method[method]["label"]
        row = re.search(rf"^\| {re.escape(label)} \| \d+ \| \d+ \| (\S+) \[(\S+), (\S+)\]",
                        markdown, re.M)
        assert row, f"no aggregate row for {label}"
        assert [float(x) for x in row.groups()] == pytest.approx(
            [iqm["estimate"], iqm["lower"], iqm["upper"]], abs=5e-4)
        # ... and as the closing table printed at the end.
        assert f"{iqm['estimate']:7.3f}  (95% CI {iqm['lower']:.3f} to {iqm['upper']:.3f}" \
            in result.stdout
    assert len(summary["methods"]["scaled_ql"]["seeds"]) == 2
    # The behaviour 'run' is the training split's own episodes: its returns are the data's.
    assert summary["methods"]["behaviour"]["final_step"] == 0


def test_behaviour_returns_match_the_dataset_split(demo_out):
    from scaled_ql.datasets import inspect_run, open_run

    out, _ = demo_out
    summary = json.loads((out / "summary.json").read_text())
    for game in GAMES:
        report = inspect_run(open_run(game, 1, data_dir=str(out / "data"), layout="auto"),
                             decode_frames=False)
        returns = [r for cid, stats in report.checkpoints.items() if cid <= 1
                   for r in stats.returns]
        assert returns, game
        assert summary["methods"]["behaviour"]["game_returns"][game] == pytest.approx(
            sum(returns) / len(returns))


def _iqm(estimate, lower, upper):
    return {"iqm": {"estimate": estimate, "lower": lower, "upper": upper}}


@pytest.mark.parametrize("sq, expected", [
    # The fresh-clone demo of 2026-11-27: above its data, overlapping BC.
    ((0.091, 0.083, 0.132), ("Scaled QL learned from its data: the lower end of its 95% CI "
                             "(0.083) clears the IQM of the play it learned from (0.033).",
                             "Above BC: not shown at this size (its CI overlaps BC's, whose "
                             "upper end is 0.095).", "The next things to try")),
    ((0.150, 0.120, 0.180), ("Scaled QL learned from its data", "It is above BC too: that "
                             "lower end clears BC's whole interval (upper end 0.095).")),
    ((0.050, 0.020, 0.090), ("Not shown that Scaled QL improves on its data: the lower end of "
                             "its 95% CI (0.020) does not clear the data's IQM (0.033).",
                             "Above BC: not shown", "The next things to try")),
])
def test_the_verdict_says_where_scaled_ql_stands_against_the_data_and_bc(sq, expected):
    from scaled_ql.runners.demo_summary import BEHAVIOUR, verdict

    summary = {"suite": "minatar", "methods": {
        "scaled_ql": _iqm(*sq), "bc": _iqm(0.066, 0.059, 0.095),
        BEHAVIOUR: _iqm(0.033, 0.033, 0.033)}}
    text = verdict(summary)
    for part in expected:
        assert part in text
    assert ("The next things to try" in text) == (len(expected) == 3)
