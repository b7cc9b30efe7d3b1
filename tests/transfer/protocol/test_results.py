"""Typed results: exact summaries, comparisons, JSON and tables of hand-made records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from graphsel.select.expansion import GraphReport, HopCount
from graphsel.select.pipeline import SelectionQuality, SelectionReport, StageReport
from graphsel.transfer.protocol.results import (
    Comparison,
    MetricSummary,
    PeriodRecord,
    Results,
    Scores,
    SelectionSummary,
    StageSummary,
    compare_with_baseline,
    selection_summary,
)
from graphsel.transfer.protocol.split import SplitSummary

SPLIT = SplitSummary(8, 1, 1, 20, 108, 109, (4, 4))


def _record(strategy: str, seed: int, period: int, auc: float | None) -> PeriodRecord:
    return PeriodRecord(strategy, seed, period, Scores(auc, 0.5, 0.6, 0.05 + seed / 10, 0.3, 0.25),
                        10, 2, 4, 0.25)


def _results(selection: SelectionSummary | None = None) -> Results:
    records = [_record(name, seed, period, auc)
               for seed, (a, b) in ((0, (0.6, 0.7)), (1, (0.8, None)))
               for name, auc in (("target_only", a), ("merge_all", b))
               for period in (0, 1)]
    return Results(["target_only", "merge_all"], [0, 1], 2, records,
                   {"merge_all": Comparison(0.05, (-0.01, 0.1))}, SPLIT, selection)


def test_summary_is_mean_and_sample_std_over_seeds_of_the_last_period():
    summary = _results().summary()
    assert summary["target_only"].auc == MetricSummary(0.7, 0.141421)
    assert summary["target_only"].gauc == MetricSummary(0.5, 0.0)
    assert summary["merge_all"].auc == MetricSummary(None, None)  # undefined for seed 1
    assert MetricSummary.of([0.5]) == MetricSummary(0.5, 0.0)
    assert MetricSummary.of([]).format() == "n/a"


def test_to_json_keeps_the_keys_of_graphsel_run():
    selection = SelectionSummary(3, 20, (StageSummary("graph", 5, 0.1),
                                         StageSummary("knn", 3, 0.2)), 1.0, 0.75)
    payload = _results(selection).to_json()
    assert list(payload) == ["strategies", "vs_target_only", "vs_merge_all", "vs_control",
                             "effort", "periods", "split", "selection", "seeds"]
    assert payload["strategies"]["target_only"] == {
        "auc": {"mean": 0.7, "std": 0.141421}, "gauc": {"mean": 0.5, "std": 0.0},
        "logloss": {"mean": 0.6, "std": 0.0}, "ece": {"mean": 0.1, "std": 0.070711},
        "pred_ctr": {"mean": 0.3, "std": 0.0}, "ctr": {"mean": 0.25, "std": 0.0}}
    assert payload["vs_target_only"] == {"merge_all": {"auc_diff": 0.05, "ci95": [-0.01, 0.1]}}
    assert payload["periods"][0] == {"strategy": "target_only", "seed": 0, "period": 0,
                                     "auc": 0.6, "gauc": 0.5, "logloss": 0.6, "ece": 0.05,
                                     "pred_ctr": 0.3, "ctr": 0.25, "n_train": 10,
                                     "n_source": 2, "n_eval": 4, "seconds": 0.25}
    assert payload["split"] == {"target_train": 8, "target_valid": 1, "target_test": 1,
                                "source": 20, "valid_start": 108, "test_start": 109,
                                "period_rows": [4, 4]}
    assert payload["selection"] == {
        "selected": 3, "candidates": 20,
        "stages": [{"name": "graph", "kept": 5, "seconds": 0.1},
                   {"name": "knn", "kept": 3, "seconds": 0.2}],
        "truth": {"precision": 1.0, "recall": 0.75}}
    assert payload["seeds"] == [0, 1]
    assert "truth" not in SelectionSummary(3, 20, ()).to_json()


def test_selection_summary_reads_the_report_once():
    graph = GraphReport(1, 1, None, (HopCount(0, 1, 1),), 0, 0)
    report = SelectionReport(20, 4, (StageReport("graph", 5, 2, 3, 0.1, graph),), 3, 1.0, 1.0,
                             0.5, 0.5, 0.4, SelectionQuality(1.0, 0.75))
    assert selection_summary(report) == SelectionSummary(3, 20, (StageSummary("graph", 5, 0.1),),
                                                         1.0, 0.75)
    assert selection_summary(dataclasses.replace(report, truth=None)).precision is None


def test_table_and_period_table():
    selection = SelectionSummary(1234, 5678, (), 0.5, 0.25)
    lines = _results(selection).table().splitlines()
    assert lines[0] == ("test set: 1 target rows, actual CTR 0.2500; 2 seed(s), 2 period(s); "
                        "ECE over 10 equal-width bins")
    assert lines[1].split() == ["strategy", "AUC", "GAUC", "LogLoss", "ECE", "pred", "CTR",
                                "train", "rows", "AUC", "-", "target_only", "[95%", "CI]", "lr",
                                "domain", "epochs", "steps", "train", "s"]
    target_only = next(line for line in lines if line.startswith("target_only"))
    # AUC, GAUC, LogLoss, ECE (seeds 0.05 and 0.15), predicted CTR
    assert target_only.split()[1:16] == ["0.7000", "±", "0.1414", "0.5000", "±", "0.0000",
                                         "0.6000", "±", "0.0000", "0.1000", "±", "0.0707",
                                         "0.3000", "±", "0.0000"]
    merge_all = next(line for line in lines if line.startswith("merge_all"))
    assert "n/a" in merge_all and "+0.0500 [-0.0100, +0.1000]" in merge_all
    assert "selection: 1,234 of 5,678 source rows (precision 0.500, recall 0.250)" in lines
    assert "AUC per period (evaluated on the next one)" in lines
    assert PeriodRecord.metric(_record("a", 0, 0, 0.6), "auc") == 0.6


def test_records_written_before_ece_read_back_with_none():
    record = _record("a", 0, 0, 0.6)
    old = {k: v for k, v in record.to_json().items() if k not in ("ece", "pred_ctr", "ctr")}
    assert PeriodRecord.from_json(old).scores == Scores(0.6, 0.5, 0.6)
    assert PeriodRecord.from_json(record.to_json()) == record


def test_compare_with_baseline_is_empty_without_it_and_brackets_the_difference():
    y = np.array([0, 1, 0, 1, 0, 1])
    users = np.array([0, 0, 1, 1, 2, 2])
    good = np.array([[0.1], [0.9], [0.2], [0.8], [0.3], [0.7]])
    bad = np.array([[0.9], [0.1], [0.2], [0.8], [0.7], [0.3]])
    assert compare_with_baseline(y, users, {"a": good}, n_boot=10) == {}
    (name, comparison), = compare_with_baseline(y, users, {"target_only": bad, "a": good},
                                                n_boot=50).items()
    assert name == "a"
    assert comparison.auc_diff == pytest.approx(1.0 - 1 / 3, abs=1e-6)
    assert comparison.ci95[0] <= comparison.auc_diff <= comparison.ci95[1]
