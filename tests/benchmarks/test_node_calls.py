"""`benchmarks.node_calls` times both clients against a real courier server and compares them."""

from benchmarks import node_calls


def test_both_clients_timed_side_by_side_with_their_ratio():
    report = node_calls.run(blocks=2, calls_per_block=20)
    assert [row["client"] for row in report["rows"]] == ["plain", "stop_aware"]
    assert all(row["us_per_call"] > 0 and row["cpu_us_per_call"] > 0 for row in report["rows"])
    ratio = report["stop_aware_over_plain"]
    assert ratio["wall_min"] <= ratio["wall"] <= ratio["wall_max"] and ratio["cpu"] > 0
    assert (report["blocks"], report["calls_per_block"]) == (2, 20)
