"""``benchmarks/bench_continual.py``: continual minus once per period, exact on hand-built runs,
and its ``--quick`` run writes its tables and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from graphsel.errors import InputError
from tests.benchmarks import load_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_continual.py"
bench = load_benchmark("bench_continual")


def _run(aucs: dict[tuple[int, int], float], lr: float = 0.01) -> dict:
    """A run's JSON as the summary reads it: ctnet's AUC per (seed, period)."""
    return {"results": {
        "periods": [{"strategy": "ctnet", "seed": s, "period": p, "auc": auc}
                    for (s, p), auc in aucs.items()],
        "effort": [{"strategy": "ctnet", "seed": 0,
                    "choice": {"lr": lr, "weight_decay": 0.0, "domain_feature": lr < 0.01}}]}}


def test_period_differences_are_per_seed_differences_with_a_t_interval():
    once = _run({(0, 0): 0.70, (1, 0): 0.72, (0, 1): 0.60, (1, 1): 0.62})
    continual = _run({(0, 0): 0.70, (1, 0): 0.72, (0, 1): 0.61, (1, 1): 0.65}, lr=0.003)
    first, second = bench.period_differences(continual, once, "ctnet")
    # period 0 trains alike in both modes here: no difference, no spread
    assert first == {"period": 0, "seeds": 2, "continual": 0.71, "once": 0.71, "diff": 0.0,
                     "ci95": [0.0, 0.0], "ahead": 0, "verdict": "tie"}
    diffs = np.array([0.01, 0.03])  # the slow oracle: scipy's interval of the mean
    lo, hi = stats.t.interval(0.95, 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert second["diff"] == pytest.approx(0.02) and second["ahead"] == 2
    assert second["ci95"] == pytest.approx([lo, hi], abs=1e-6)
    assert (second["continual"], second["once"]) == (0.63, 0.61)
    assert second["verdict"] == "tie"  # two seeds: a wide interval
    three = bench.period_differences(
        _run({(s, 0): 0.7 + 0.01 * s + 0.02 for s in range(3)}),
        _run({(s, 0): 0.7 + 0.01 * s for s in range(3)}), "ctnet")
    assert three[0]["verdict"] == "win" and three[0]["ci95"] == [0.02, 0.02]


def test_runs_with_other_seeds_are_refused():
    with pytest.raises(InputError, match="other seeds or periods"):
        bench.period_differences(_run({(0, 0): 0.7}), _run({(1, 0): 0.7}), "ctnet")


def test_summary_counts_verdicts_per_period_and_names_each_modes_choice():
    win = (_run({(s, 0): 0.8 for s in range(3)}), _run({(s, 0): 0.7 for s in range(3)}))
    loss = (_run({(s, 0): 0.6 + 0.01 * s for s in range(3)}, lr=0.001),
            _run({(s, 0): 0.7 + 0.01 * s for s in range(3)}))
    runs = {"a.continual": win[0], "a.once": win[1], "b.continual": loss[0], "b.once": loss[1]}
    summary = bench.summarize(["a", "b"], runs, ["ctnet"])
    assert summary["periods"] == {"ctnet": [
        {"period": 0, "win": 1, "tie": 0, "loss": 1, "mean_diff": pytest.approx(0.0)}]}
    assert summary["splits"]["b"]["ctnet"]["choice"] == {"continual": "lr 0.001, domain",
                                                         "once": "lr 0.01"}
    assert "per split and period" in bench.summary_tables(summary)


def test_mode_splits_run_each_split_in_both_modes_with_three_periods():
    splits = load_benchmark("bench_quality").quick_splits()
    runs = bench.mode_splits(splits, ["ctnet"], seeds=3)
    assert list(runs) == ["synthetic-0.continual", "synthetic-0.once",
                          "synthetic-1.continual", "synthetic-1.once"]
    for name, config in runs.items():
        assert config.protocol.mode == name.split(".")[1] and config.protocol.periods == 3
        assert config.strategies == ("ctnet",) and config.seeds == 3
        assert config.protocol.lr_grid == splits[name.split(".")[0]].protocol.lr_grid


def test_quick_benchmark_writes_its_tables_and_resumes(tmp_path, capsys):
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("continual minus once, test AUC, over splits")
    payload = json.loads((tmp_path / "summary.json").read_text())
    assert list(payload["runs"]) == ["synthetic-0.continual", "synthetic-0.once",
                                     "synthetic-1.continual", "synthetic-1.once"]
    for split in ("synthetic-0", "synthetic-1"):
        rows = payload["summary"]["splits"][split]["ctnet"]["periods"]
        assert [r["period"] for r in rows] == [0, 1, 2] and all(r["seeds"] == 2 for r in rows)
        # each diff is the runs' own per-seed records, differenced
        continual, once = (bench.period_aucs(payload["runs"][f"{split}.{mode}"], "ctnet")
                           for mode in ("continual", "once"))
        for row in rows:
            p = row["period"]
            assert row["diff"] == pytest.approx(np.mean([continual[s, p] - once[s, p]
                                                         for s in (0, 1)]), abs=1e-6)
    # every run finished: nothing is trained again (in-process: only the summary is made)
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err.count("finished before, kept") == 4
    assert json.loads((tmp_path / "summary.json").read_text())["summary"] == payload["summary"]


def test_bad_arguments_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRAPHSEL_DATA", raising=False)
    out = ["--out", str(tmp_path)]
    assert bench.main(out) == 2
    assert capsys.readouterr().err.startswith("error: GRAPHSEL_DATA is not set")
    monkeypatch.setenv("GRAPHSEL_DATA", str(tmp_path))
    assert bench.main([*out, "--splits", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: --splits: unknown split 'nope'")
    assert bench.main([*out, "--quick", "--jobs", "0"]) == 2
    assert capsys.readouterr().err == "error: --jobs must be >= 1, got 0\n"
