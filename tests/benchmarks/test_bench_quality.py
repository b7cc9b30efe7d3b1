"""``benchmarks/bench_quality.py --quick`` runs, writes its JSON, tables and plot, and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quality.py"


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, check=False)


def test_quick_benchmark_writes_summary_and_resumes(tmp_path):
    run = _run(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("summary over splits")
    payload = json.loads((tmp_path / "summary.json").read_text())
    assert list(payload["splits"]) == ["synthetic-0", "synthetic-1"]
    summary = payload["summary"]
    assert list(summary) == ["target_only", "merge_all", "random_same_size", "selected_weighted"]
    control = summary["selected_weighted"]["vs_control"]
    assert control["control"] == "random_same_size"
    assert control["win"] + control["tie"] + control["loss"] == 2
    assert [name for name in summary if "vs_control" in summary[name]] == ["selected_weighted"]
    for name, entry in summary.items():
        versus = entry["vs_target_only"]
        assert versus["win"] + versus["tie"] + versus["loss"] == (0 if name == "target_only"
                                                                  else 2)
        assert entry["capped_fits"] == 0 and entry["rows_x_epochs"] > 0
    assert (tmp_path / "forest.png").read_bytes()[:4] == b"\x89PNG"
    again = _run(tmp_path)  # every split finished: nothing is trained again
    assert again.returncode == 0 and again.stderr.count("finished before, kept") == 2
    assert json.loads((tmp_path / "summary.json").read_text())["summary"] == summary


def test_bad_split_name_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--splits", "nope", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=120,
                         check=False, env={"GRAPHSEL_DATA": str(tmp_path), "PATH": ""})
    assert run.returncode == 2 and run.stderr.startswith("error: --splits: unknown split")


def test_jobs_below_one_is_one_line(tmp_path):
    run = _run(tmp_path, "--jobs", "0")
    assert run.returncode == 2 and run.stderr.strip() == "error: --jobs must be >= 1, got 0"
