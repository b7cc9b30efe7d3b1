"""``benchmarks/bench_transfer.py --small`` runs and prints its table (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_transfer.py"


def test_small_benchmark_prints_the_table():
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("bench_transfer: 4 fields")
    rows = [line.split("|")[1].strip() for line in lines if line.startswith("| ")]
    assert rows == ["model", "base (target model alone)", "ctnet (source tower + adapters)",
                    "diit (3 sources, target predicts)"]
    assert re.search(r"\| +100\.0% \|$", next(line for line in lines if "ctnet (" in line))
    assert re.match(r"diit inference time is -?\d+\.\d% less than ctnet's", lines[-1])
