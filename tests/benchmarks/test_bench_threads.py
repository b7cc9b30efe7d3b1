"""``benchmarks/bench_threads.py --quick`` prints its table (no timing assertions), and the
ML-1M run it builds is a valid 4-strategy config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_threads.py"


def _module():
    return load_benchmark("bench_threads")


def test_quick_benchmark_prints_the_table():
    # the demo only: each quick "run" pays torch's import, seconds apiece
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--workloads", "demo"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("bench_threads: ")
    table = lines[lines.index(next(line for line in lines if line.startswith("workload"))):]
    assert table[0].split() == ["workload", "policy", "quiet", "s", "cpu", "s", "load", "busy",
                                "s", "cpu", "s", "load", "busy/quiet", "quiet", "vs", "off",
                                "same", "results"]
    rows = [line.split() for line in table[2:-1]]
    assert [row[:2] for row in rows] == [["demo", "off"], ["demo", "auto"]]
    number = r"\d+\.\d+"
    for row in rows:
        assert all(re.fullmatch(number, cell) for cell in row[2:8]), row
        assert re.fullmatch(number + "x", row[8]), row
        assert row[10] == "yes"  # the policy changes no result
    assert rows[0][9] == "-" and re.fullmatch(number + "x", rows[1][9])
    assert re.fullmatch(r"target \(busy/quiet <= 2x with the policy 'auto'\): (met|NOT met) "
                        r"\(quick mode: the numbers mean nothing\)", table[-1])


def test_ml1m_run_is_the_shipped_config_cut_to_four_strategies(monkeypatch, tmp_path):
    from graphsel.transfer.config import config_from_dict

    bench = _module()
    monkeypatch.setenv("GRAPHSEL_DATA", str(tmp_path))
    shipped = ROOT / "configs" / "ml1m-documentary.yaml"
    config = config_from_dict(bench.ml1m_config(shipped), str(shipped))
    assert config.strategies == ("target_only", "merge_all", "selected", "selected_weighted")
    assert config.seeds == 1 and config.protocol.max_source_rows == 100_000
    assert config.dataset is not None and config.dataset.name == "movielens-1m"
    assert config.dataset.options["target_genre"] == "Documentary"


def test_timing_fields_are_left_out_of_the_comparison():
    bench = _module()
    results = {"auc": 0.7, "seconds": 3.2, "effort": [{"seconds": 1.0, "epochs": 4,
                                                       "tuning_seconds": 2.0}], "out_dir": None}
    assert bench.without_timing(results) == {"auc": 0.7, "effort": [{"epochs": 4}]}
