"""The Spark benchmark runs on a small log and prints equal selections (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.conftest import skip_without_spark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_spark.py"


@pytest.mark.slow
def test_small_run_prints_both_engines_and_equal_rows() -> None:
    skip_without_spark()
    result = subprocess.run([sys.executable, str(SCRIPT), "--small"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("graph stage, Parquet to Parquet, synthetic default")
    header = lines[1].split()
    assert header[:4] == ["source", "rows", "engine", "session"]
    local, spark = lines[3], lines[4]
    assert local.split()[:2] == ["10,000", "local"]
    assert spark.split()[:3] == ["10,000", "spark", "local[1]"]
    assert spark.split()[-1] == "yes"  # the two selections are equal, row for row
    assert local.split()[-2] == spark.split()[-2] == "2,336"  # selected rows
    phases = [line.split()[1] for line in lines[8:] if line.startswith("10,000")]
    assert phases == ["read", "seeds", "edges", "cap", "hop", "hop", "capped", "write"]
    assert lines[-2].startswith("load average before")
