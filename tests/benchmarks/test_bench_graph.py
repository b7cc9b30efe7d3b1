"""Runs ``benchmarks/bench_graph.py --small`` so the benchmark cannot rot."""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks import load_benchmark


def _load_bench():
    return load_benchmark("bench_graph")


def test_small_benchmark_prints_the_table_and_agrees_with_pyg(capsys):
    pytest.importorskip("torch_geometric")
    bench = _load_bench()
    assert bench.main(["--small", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert ["measure", "graphsel", "PyG", "k_hop_subgraph", "PyG", "/", "graphsel"] in [
        line.split() for line in out.splitlines()]
    for label in ("build", "1-hop expansion", "2-hop expansion", "2-hop extra peak memory"):
        assert any(line.startswith(label) and line.rstrip().endswith("x")
                   for line in out.splitlines()), label
    assert "reached nodes agree with PyG: yes" in out
    assert "max_degree=50" in out and "max_degree=10" in out


def test_power_law_pairs_are_seeded_and_skewed():
    bench = _load_bench()
    user, item = bench.power_law_pairs(1000, 200, 50_000, seed=3)
    again, _ = bench.power_law_pairs(1000, 200, 50_000, seed=3)
    assert (user == again).all()
    assert user.min() >= 0 and user.max() < 1000 and item.max() < 200
    degree = np.sort(np.bincount(item, minlength=200))[::-1]
    assert degree[:10].sum() > 0.2 * len(item)  # 5% of the items hold over 20% of the pairs
