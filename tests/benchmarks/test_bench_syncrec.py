"""``benchmarks/bench_syncrec.py --small`` runs and prints its table (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_syncrec.py"


def test_small_benchmark_prints_the_table():
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "1",
                          "--ratio-batches", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("bench_syncrec: 40 users, 1,200 interactions, 2 domains")
    rows = [line for line in lines if re.match(r"\| (last|all) \|", line)]
    assert len(rows) == 2
    for row in rows:  # both ratios, reference / fast seconds, wall and CPU
        assert len(re.findall(r"\| \d+\.\d\d / \d+\.\d\d ", row)) == 2
    assert lines[-2].startswith("load average at the end ")
    assert re.match(r"targets (met|NOT met) ", lines[-1])
