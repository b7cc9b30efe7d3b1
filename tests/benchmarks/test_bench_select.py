"""The selection benchmark runs and prints its table (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_select.py"


def test_small_knn_table_prints_every_index():
    result = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "1",
                             "--sections", "knn"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("knn scoring: 20,000 candidates x 2,000 targets, d=32, k=10")
    assert lines[1].split("  ")[0] == "index" and "recall@10 vs Flat" in lines[1]
    rows = {line.split("  ")[0].strip(): line for line in lines[3:]}
    assert list(rows) == ["Flat (auto: default)", "HNSW32 ef_search=64",
                          "IVF32,Flat nprobe tuned: 6", "IVF32,Flat nprobe=8 (nlist/24)",
                          "IVF32,Flat nprobe=8, FAISS's float32 lists", "IVF32,Flat nprobe=16",
                          "LSH 128 bits, rerank 10k"]
    # the tuned nprobe holds its recall on every candidate, not only on the 2,000 tuned on
    assert float(rows["IVF32,Flat nprobe tuned: 6"].split()[-2]) >= 0.95
    # Flat is its own baseline: recall 1 and no score difference.
    assert rows["Flat (auto: default)"].split()[-2:] == ["1.0000", "0.0e+00"]
    # fp16 lists with exact re-scoring find what float32 lists find, with the same scores
    # (to float32 rounding)
    fp16, float32 = (rows[label].split()[-2:] for label in
                     ("IVF32,Flat nprobe=8 (nlist/24)",
                      "IVF32,Flat nprobe=8, FAISS's float32 lists"))
    assert fp16[0] == float32[0] and float(fp16[1]) == pytest.approx(float(float32[1]),
                                                                     abs=1e-6)


def test_flat_baseline_on_a_sample_of_the_candidates():
    result = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "1",
                             "--sections", "knn", "--flat-sample", "2000"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("recall on 2,000 sampled candidates, Flat run on those only "
                             "(seconds scaled)")
    rows = {line.split("  ")[0].strip(): line for line in lines[3:]}
    assert next(iter(rows)) == "Flat (auto: default) (timed on 2,000, scaled)"
    assert rows["Flat (auto: default) (timed on 2,000, scaled)"].split()[-2:] == ["1.0000",
                                                                                "0.0e+00"]
    # the approximate indexes still search every candidate, so only Flat is scaled
    assert "IVF32,Flat nprobe=16" in rows


def test_small_select_and_truth_tables():
    result = subprocess.run([sys.executable, str(SCRIPT), "--small", "--sections", "truth",
                             "select"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "planted truth, synthetic default (scale 0.1)" in out
    assert "graph only (baseline)" in out and "graph, da, knn (default)" in out
    assert "graphsel select on synthetic (scale 0.1)" in out and "peak RSS" in out
    for stage in ("graph", "da", "knn", "whole command"):
        assert f"\n{stage}" in out
