"""``benchmarks/bench_quality.py --quick`` runs, writes its JSON, tables and plot, and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.benchmarks import load_benchmark

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


def _split(lifts: dict[str, float]) -> dict:
    """A split's JSON as summarize reads it: each strategy's lift over target_only."""
    names = ["target_only", *lifts]
    effort = {"rows_x_epochs": 10, "seconds": 1.0, "capped_fits": 0}
    return {"results": {
        "strategies": names,
        "vs_target_only": {n: {"auc_diff": d, "ci95": [d - 0.01, d + 0.01]}
                           for n, d in lifts.items()},
        "vs_merge_all": {n: {"auc_diff": d - lifts["merge_all"], "ci95": [-1.0, 1.0]}
                         for n, d in lifts.items() if n != "merge_all"},
        # "cheap" tuned without trials of its own (as an ensemble: its members' seconds)
        "effort": [{"strategy": n, "effort": effort, "trials": [],
                    "tuning_seconds": 2.0 if n == "cheap" else 0.0} for n in names]}}


def test_lift_share_is_the_mean_lift_over_merge_alls():
    bench = load_benchmark("bench_quality")
    summary = bench.summarize({"a": _split({"merge_all": 0.02, "cheap": 0.01}),
                               "b": _split({"merge_all": 0.01, "cheap": 0.017})})
    # (0.01 + 0.017) / 2 over (0.02 + 0.01) / 2
    assert summary["cheap"]["lift_share"] == 0.9
    assert summary["merge_all"]["lift_share"] == 1.0
    assert summary["target_only"]["lift_share"] is None  # no lift over itself
    assert (summary["cheap"]["tuning_seconds"], summary["merge_all"]["tuning_seconds"]) == (
        2.0, 0.0)
    versus = summary["cheap"]["vs_target_only"]
    assert (versus["win"], versus["tie"], versus["loss"]) == (1, 1, 0)  # [0, 0.02] is a tie
    table = bench.summary_table(summary)
    assert "share of merge_all's lift" in table and " 90 %" in table
    # merge_all below target_only: no share to speak of
    worse = bench.summarize({"a": _split({"merge_all": -0.01, "cheap": 0.01})})
    assert worse["cheap"]["lift_share"] is None
