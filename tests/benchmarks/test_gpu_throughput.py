"""benchmarks.gpu_throughput off a GPU: the not-run answer, the forced measurement on a tiny
network (FLOPs, resume), the markdown, and which recorded run `make bench` shows."""

import json
import math

import jax
import pytest

from benchmarks import gpu_throughput, report

TINY = dict(matmul_sizes=(64,), force=True, num_games=2, num_actions=3,
            network_kwargs=dict(width_multiplier=0.125, feed_forward_size=8, num_atoms=5))


@pytest.mark.skipif(jax.devices()[0].platform == "gpu", reason="this machine has a GPU")
def test_without_a_gpu_it_says_not_run():
    result = gpu_throughput.measure(("resnet18",))
    assert result == {"run": False, "reason": gpu_throughput.NOT_RUN, "device": "cpu"}
    assert gpu_throughput.markdown(result) == f"{gpu_throughput.NOT_RUN} (JAX device: cpu)."


@pytest.mark.slow
def test_forced_run_counts_flops_and_resume_keeps_and_completes_rows():
    first = gpu_throughput.measure(("nature",), batch_sizes=(2,), dtypes=("float32",), **TINY)
    (row,) = first["rows"]
    flops = gpu_throughput.step_flops("nature", 2, "float32", num_games=2, num_actions=3,
                                      network_kwargs=TINY["network_kwargs"])
    assert row["gflops_per_step"] == pytest.approx(flops / 1e9)
    assert row["achieved_tflops"] == pytest.approx(flops / (row["ms_per_step"] / 1e3) / 1e12)
    assert row["samples_per_s"] == pytest.approx(2 * row["sgd_steps_per_s"])
    assert row["ms_per_step_min"] <= row["ms_per_step"] <= row["ms_per_step_max"]
    # A run whose FLOPs were lost (as on jax 0.11.2's GPU lowering), resumed with one more
    # batch size: the old row is kept as timed, its FLOPs filled from the new count (scaled
    # from batch 4 to 2) and set against the old run's peak.
    first.update(date="D1", peak_tflops=2.0)
    row.update(gflops_per_step=math.nan, achieved_tflops=math.nan, fraction_of_peak=math.nan)
    second = gpu_throughput.measure(("nature",), batch_sizes=(2, 4), dtypes=("float32",),
                                    resume=first, **TINY)
    kept, new = second["rows"]
    assert kept["resumed_from"] == "D1" and kept["ms_per_step"] == row["ms_per_step"]
    per_sample = new["gflops_per_step"] / 4
    assert kept["gflops_per_step"] == pytest.approx(2 * per_sample)
    assert kept["gflops_per_step"] == pytest.approx(flops / 1e9, rel=0.01)
    assert kept["fraction_of_peak"] == pytest.approx(kept["achieved_tflops"] / 2.0)
    assert new["batch_size"] == 4 and "resumed_from" not in new
    text = gpu_throughput.markdown(second)
    assert "| nature * | 0.0 | 2 | float32 |" in text and "| nature | 0.0 | 4 | float32 |" in text
    assert "kept by `--resume`" in text
    with pytest.raises(ValueError, match="earlier run is on"):
        gpu_throughput.measure(("nature",), batch_sizes=(2,), dtypes=("float32",),
                               resume={**first, "device": "gpu: other"}, **TINY)


def test_budget_and_markdown_of_skipped_and_notes():
    result = gpu_throughput.measure(("nature",), batch_sizes=(2,), dtypes=("float32",),
                                    budget_s=0.0, **TINY)
    assert result["rows"] == []
    assert result["not_run"] == [{"torso": "nature", "batch_size": 2, "dtype": "float32",
                                  "reason": "time budget 0 s"}]
    result["notes"] = ["A note."]
    text = gpu_throughput.markdown(result)
    assert "Not run: nature float32 B2 (time budget 0 s)." in text
    assert text.endswith("A note.")


def test_make_bench_without_a_gpu_shows_the_newest_recorded_run(tmp_path, monkeypatch):
    def write(name, **fields):
        (tmp_path / name).write_text(json.dumps(fields))

    base = dict(run=True, device="gpu: X", jax="0", peak_tflops=1.0, best_size=64, rows=[])
    write("gpu_a_2026-01-01.json", date="2026-01-01", **base)
    write("gpu_b_2026-02-01.json", date="2026-02-01", **{**base, "device": "gpu: newest"})
    write("gpu_throughput.json", date="2026-03-01", run=False, reason="not run", device="cpu")
    name, result = gpu_throughput.last_recorded(tmp_path)
    assert name == "gpu_b_2026-02-01.json" and result["device"] == "gpu: newest"
    assert gpu_throughput.last_recorded(tmp_path / "none") is None

    monkeypatch.setattr(gpu_throughput.common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(gpu_throughput.last_recorded, "__defaults__", (tmp_path,))
    text = report._gpu({"run": False, "reason": gpu_throughput.NOT_RUN, "device": "cpu"})
    assert text.startswith(gpu_throughput.NOT_RUN)
    assert "`benchmarks/results/gpu_b_2026-02-01.json`" in text and "gpu: newest" in text
