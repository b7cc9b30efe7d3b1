"""Resuming a comparison: the run store's round trips, loads instead of recomputing, and
unusable files recomputed with a warning."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from graphsel.select.domain import DomainClassifier
from graphsel.select.pipeline import SampleSelector, Selection
from graphsel.transfer.config import ExperimentConfig
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol import runner
from graphsel.transfer.protocol.checkpoints import RunStore, UnitResult, experiment_key
from graphsel.transfer.protocol.results import (
    Effort,
    EffortRecord,
    GridPoint,
    PeriodRecord,
    Scores,
    SelectionSummary,
    StageSummary,
    Trial,
)
from graphsel.transfer.protocol.learners import PlanLearner
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import strip_seconds, synthetic_pair

POINT = GridPoint(0.001, 0.0, True)
EFFORT = EffortRecord("ecat", 1, POINT, 0.61, Effort(2, 3, 2, 40, 900, 0.25, 1),
                      (Trial(POINT, 0.61), Trial(GridPoint(0.01, 1e-5, False), None)), 0.5)
RECORD = PeriodRecord("ecat", 1, 0, Scores(0.7, None, 0.41), 120, 20, 30, 0.125)


def test_records_round_trip_through_json():
    assert PeriodRecord.from_json(RECORD.to_json()) == RECORD
    assert EffortRecord.from_json(EFFORT.to_json()) == EFFORT
    summary = SelectionSummary(3, 10, (StageSummary("graph", 5, 0.1),
                                       StageSummary("da", 3, 0.2)), 0.5, 1.0)
    assert SelectionSummary.from_json(summary.to_json()) == summary
    assert SelectionSummary.from_json(dataclasses.replace(
        summary, precision=None, recall=None).to_json()).precision is None


def test_store_saves_and_loads_a_unit_and_a_selection(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.load_unit("ecat", 1, None, 2, 1) is None and not (tmp_path / "run").exists()
    predictions = np.array([0.25, 0.75], dtype=np.float32)
    store.save_unit(UnitResult((RECORD,), predictions, EFFORT,
                               valid_predictions=np.array([0.5], np.float32)))
    unit = store.load_unit("ecat", 1, None, 2, 1)
    assert unit is not None and unit.records == (RECORD,) and unit.effort == EFFORT
    assert unit.test_predictions.dtype == np.float32
    assert unit.test_predictions.tolist() == [0.25, 0.75]
    assert unit.valid_predictions.tolist() == [0.5]
    selection = Selection(np.array([True, False, True]), np.array([1.5, 0, 1], np.float32),
                          {"hop": np.array([0, -1, 1], np.int32)})
    store.save_selection(selection, None)
    loaded, summary = store.load_selection(3)
    assert loaded.mask.tolist() == [True, False, True] and summary is None
    assert loaded.weight.tolist() == [1.5, 0, 1] and loaded.hop.tolist() == [0, -1, 1]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_unusable_files_are_recomputed_with_a_warning(tmp_path):
    lines: list[str] = []
    store = RunStore(tmp_path, on_warning=lines.append)
    store.save_unit(UnitResult((RECORD,), np.zeros(2), EFFORT, valid_predictions=np.zeros(4)))
    assert store.load_unit("ecat", 1, None, 3, 4) is None    # another test set
    assert store.load_unit("ecat", 1, None, 2, 5) is None    # another validation set
    assert store.load_unit("ecat", 1, POINT, 2, 4) is None   # it tuned; this run reuses
    path = store.unit_path("ecat", 1)
    path.write_bytes(path.read_bytes()[:50])                 # truncated by a crash
    assert store.load_unit("ecat", 1, None, 2, 4) is None
    store.selection_path.write_text("not a zip")
    assert store.load_selection(3) is None
    assert len(lines) == 5 and all("recomputing it" in line for line in lines)
    assert "do not cover the 3 test rows" in lines[0] and "tuned differently" in lines[2]
    assert "do not cover the 5 validation rows" in lines[1]
    assert "\n" not in "".join(lines)


@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def _compare(data, store, strategies=("target_only", "selected_weighted"), seeds=(0, 1),
             periods=1, lr_grid=(1e-3, 1e-2)):
    source, target = data
    return runner.compare_strategies(
        source, target, list(strategies), model=ModelConfig(embed_dim=4, hidden=(16,)),
        train=TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False),
        protocol=ProtocolConfig(n_boot=20, domain_feature="off", tune_every_seed=False,
                                lr_grid=lr_grid, periods=periods),
        selector=SampleSelector(["graph", DomainClassifier("logistic", cv=2,
                                                           embedding_dim=4)]),
        seeds=seeds, store=store)


def _count_fits(monkeypatch) -> list[int]:
    """Spies on :meth:`Trainer.fit`: the list grows by one per call."""
    calls: list[int] = []
    fit = Trainer.fit

    def spy(self, *args, **kwargs):
        calls.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls


def _killed_at(monkeypatch, call: int) -> None:
    """Makes the ``call``-th :meth:`PlanLearner.fit_period` (1-based) raise, as a kill would."""
    fit_period, calls = PlanLearner.fit_period, []

    def fail(self, data):
        calls.append(data.period)
        if len(calls) == call:
            raise KeyboardInterrupt("killed")
        return fit_period(self, data)

    monkeypatch.setattr(PlanLearner, "fit_period", fail)


@pytest.mark.parametrize(("lr_grid", "kill_at", "refits"), [
    ((), 3, 1),              # one grid point: killed in period 2, periods 0-1 are kept
    ((1e-3, 1e-2), 5, 2),    # two: killed in the second point's period 1
])
def test_a_killed_unit_continues_at_its_first_unfinished_period(data, tmp_path, monkeypatch,
                                                               lr_grid, kill_at, refits):
    run = dict(strategies=("target_only",), seeds=(0,), periods=3, lr_grid=lr_grid)
    uninterrupted = _compare(data, RunStore(tmp_path / "reference"), **run)
    store = RunStore(tmp_path / "run")
    with monkeypatch.context() as patch:
        _killed_at(patch, kill_at)
        with pytest.raises(KeyboardInterrupt):
            _compare(data, store, **run)
    assert store.progress_path("target_only", 0).exists()
    assert not store.unit_path("target_only", 0).exists()
    fits = _count_fits(monkeypatch)
    resumed = _compare(data, store, **run)
    assert len(fits) == refits                                # finished periods not retrained
    assert strip_seconds(resumed.to_json()) == strip_seconds(uninterrupted.to_json())
    assert np.array_equal(resumed.test_predictions["target_only"],
                          uninterrupted.test_predictions["target_only"])
    assert sorted(p.name for p in store.path.rglob("*")) == ["target_only.seed0.npz", "units"]


def test_a_corrupt_period_checkpoint_restarts_its_unit_with_one_warning(data, tmp_path,
                                                                         monkeypatch):
    run = dict(strategies=("target_only",), seeds=(0,), periods=3, lr_grid=())
    lines: list[str] = []
    store = RunStore(tmp_path, on_warning=lines.append)
    with monkeypatch.context() as patch:
        _killed_at(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            _compare(data, store, **run)
    path = store.progress_path("target_only", 0)
    path.write_bytes(path.read_bytes()[:-40])                 # truncated
    fits = _count_fits(monkeypatch)
    resumed = _compare(data, store, **run)
    assert len(fits) == 3 and len(lines) == 1 and "recomputing it" in lines[0]
    assert str(path) in lines[0] and not path.exists()
    reference = _compare(data, RunStore(tmp_path / "reference"), **run)
    assert strip_seconds(resumed.to_json()) == strip_seconds(reference.to_json())



def test_a_second_run_loads_everything_and_equals_the_first(data, tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    first = _compare(data, store)
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "selected_weighted.seed0.npz", "selected_weighted.seed1.npz",
        "target_only.seed0.npz", "target_only.seed1.npz"]

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(runner, "_train_unit", fail)
    monkeypatch.setattr(runner, "fit_selection", fail)
    again = _compare(data, RunStore(tmp_path))
    assert again.to_json() == first.to_json()                # timing fields included
    assert again.effort[2].trials == () and len(first.effort[0].trials) == 2  # seed 1 reused
    for name, predictions in first.test_predictions.items():
        assert np.array_equal(again.test_predictions[name], predictions)


def test_only_missing_units_are_recomputed(data, tmp_path):
    store = RunStore(tmp_path)
    first = _compare(data, store)
    os.remove(store.unit_path("selected_weighted", 1))
    kept = store.unit_path("target_only", 1).stat().st_mtime_ns
    again = _compare(data, RunStore(tmp_path))
    assert store.unit_path("target_only", 1).stat().st_mtime_ns == kept
    assert strip_seconds(again.to_json()) == strip_seconds(first.to_json())
    assert again.records[:-1] == first.records[:-1]           # loaded: seconds too


def test_the_key_follows_content_not_seeds_or_strategies(tmp_path):
    source, target = tmp_path / "s.csv", tmp_path / "t.csv"
    source.write_text("a"), target.write_text("b")
    config = ExperimentConfig(source=str(source), target=str(target))
    key = experiment_key(config)
    assert len(key) == 16 and key == experiment_key(ExperimentConfig(source=str(source),
                                                                     target=str(target)))
    assert experiment_key(dataclasses.replace(config, seeds=3,
                                              strategies=("target_only",))) == key
    assert experiment_key(dataclasses.replace(
        config, train=TrainConfig(epochs=2))) != key
    source.write_text("aa")                                     # the data changed
    assert experiment_key(config) != key
