"""``benchmarks/bench_train.py --small`` runs and prints its table (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train.py"


def test_small_benchmark_prints_the_table():
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("bench_train: 4 fields")
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert set(rows) == {"variant", "train fast (sparse+SparseAdam, fused Adam)",
                         "train dense (dense table, Adam)", "inference (predict, fast model)"}
    assert re.search(r"\| +[\d,]+ \| +[\d,]+ \| +\d+\.\d\dx dense \|",
                     rows["train fast (sparse+SparseAdam, fused Adam)"])
    assert re.match(r"targets (met|NOT met) ", lines[-1])
