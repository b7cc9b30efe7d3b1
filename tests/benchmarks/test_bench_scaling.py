"""Runs ``benchmarks/bench_scaling.py --small`` so the benchmark cannot rot."""

from __future__ import annotations

import sys

from tests.benchmarks import load_benchmark


def _load_bench():
    return load_benchmark("bench_scaling")


def test_small_benchmark_prints_one_row_per_scale_and_the_plot(capsys, tmp_path):
    bench = _load_bench()
    assert bench.main(["--small", "--plot", str(tmp_path / "scaling.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line[:1].isdigit()]
    assert [row[0] for row in rows] == ["10,000", "20,000"]
    assert rows[0][4] == "1.00x" and rows[0][7] == "1.00x"  # the reference point
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_child_peak_is_its_own(tmp_path):
    bench = _load_bench()
    code = "x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096])"
    seconds, peak = bench.run_child([sys.executable, "-c", code])
    assert seconds > 0 and 300 * 2**20 < peak < 600 * 2**20
    _, small = bench.run_child([sys.executable, "-c", "pass"])
    # neither the previous child's peak (RUSAGE_CHILDREN) nor this test runner's RSS
    assert small < 100 * 2**20


def test_expected_peak_extrapolates_the_steepest_growth():
    bench = _load_bench()
    Point = bench.Point
    assert bench.expected_peak([], 1_000) == 0.0
    assert bench.expected_peak([Point(1, 100, 1.0, 1_000, 1)], 300) == 3_000.0  # 10 B/row
    points = [Point(1, 100, 1.0, 1_000, 1), Point(2, 200, 2.0, 1_500, 1),
              Point(3, 400, 3.0, 2_100, 1)]
    assert bench.expected_peak(points, 600) == 2_100 + 5.0 * 200  # 5 B/row beats 3 B/row
