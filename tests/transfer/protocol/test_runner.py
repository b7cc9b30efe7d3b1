"""The protocol: time split, no leakage, exact training sets, seeding, periods, results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from graphsel.data.datasets import get_dataset
from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.select.pipeline import SampleSelector
from graphsel.transfer import features as features_module
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol.results import score_predictions
from graphsel.transfer.protocol.runner import compare_strategies
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import tiny_selector

TINY = ModelConfig(embed_dim=4, hidden=(16,))
QUICK = TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False)
FAST_BOOT = ProtocolConfig(n_boot=30, domain_feature="off")  # one grid point per strategy
BASELINES = ["target_only", "merge_all", "random_same_size", "selected", "selected_weighted",
             "pretrain_finetune"]



def _with_row_ids(log: InteractionLog, prefix: str) -> InteractionLog:
    """``log`` with a ``row_id`` feature naming each row, so a vocabulary says which rows
    a model was fitted on."""
    ids = pa.array([f"{prefix}{i}" for i in range(len(log))])
    return InteractionLog.from_table(log.table.append_column("row_id", ids), name=log.name,
                                     index=log.index)


@pytest.fixture(scope="module")
def data():
    split = get_dataset("synthetic")(scale=0.05)
    truth = split.truth.column("in_target_community").to_numpy(zero_copy_only=False)
    return _with_row_ids(split.source, "s"), _with_row_ids(split.target, "t"), truth


def _log(ts: list[int], domain: str = "t") -> InteractionLog:
    n = len(ts)
    return InteractionLog.from_columns(list(range(n)), [0] * n, ts, [0, 1] * (n // 2) + [0] * (
        n % 2), domain)


# -- the split ---------------------------------------------------------------------------------


def test_split_is_by_time_with_exact_rows():
    target = _log([50, 10, 90, 20, 80, 30, 70, 40, 60, 0])  # ts 0..90, shuffled
    split = split_by_time(target, target)
    assert split.target_test.tolist() == [2]          # ts 90
    assert split.target_valid.tolist() == [4]         # ts 80
    assert sorted(target.ts[split.target_train].tolist()) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert (split.valid_start, split.test_start) == (80, 90)


def test_rows_sharing_a_timestamp_stay_on_one_side():
    target = _log([0, 1, 2, 3, 4, 5, 6, 8, 8, 8, 9, 9, 9, 9, 10, 11, 12, 13, 14, 15])
    split = split_by_time(target, target)
    assert set(target.ts[split.target_test]) == {14, 15}
    train_ts, valid_ts = target.ts[split.target_train], target.ts[split.target_valid]
    assert train_ts.max() < valid_ts.min() <= valid_ts.max() < split.test_start


def test_periods_cut_the_training_span_into_equal_windows():
    target = _log(list(range(100)))
    split = split_by_time(target, target, ProtocolConfig(periods=4))
    assert [len(rows) for rows in split.periods_rows] == [20, 20, 20, 20]
    assert split.period_bounds.tolist() == [0, 20, 40, 60, 80]
    assert np.concatenate(split.periods_rows).tolist() == split.target_train.tolist()
    assert split.eval_rows(0).tolist() == split.periods_rows[1].tolist()
    assert split.eval_rows(3).tolist() == split.target_test.tolist()
    # Source windows: the first reaches back forever, the last up to the test start.
    ts = np.array([-5, 0, 19, 20, 79, 80, 89, 90])
    assert split.source_window(0, ts).tolist() == [True, True, True] + [False] * 5
    assert split.source_window(3, ts).tolist() == [False] * 4 + [True, True, True, False]


def test_a_period_without_rows_is_an_error():
    target = _log([0] * 50 + list(range(1, 21)))
    with pytest.raises(InputError, match="periods=4 leaves a period without target rows"):
        split_by_time(target, target, ProtocolConfig(periods=4))


def test_source_rows_are_older_than_the_test_and_can_be_capped(data):
    source, target, _ = data
    split = split_by_time(source, target)
    assert (source.ts[split.source_rows] < split.test_start).all()
    assert len(split.source_rows) == int((source.ts < split.test_start).sum())
    capped = split_by_time(source, target, ProtocolConfig(max_source_rows=500))
    assert len(capped.source_rows) == 500
    assert np.isin(capped.source_rows, split.source_rows).all()
    again = split_by_time(source, target, ProtocolConfig(max_source_rows=500))
    assert capped.source_rows.tolist() == again.source_rows.tolist()


# -- leakage and exact training sets ----------------------------------------------------------


@pytest.fixture(scope="module")
def spied_run(data):
    """One run of every baseline strategy that records what the selector, encoders and
    trainer saw (the transfer models' learners: tests/transfer/test_learners.py)."""
    source, target, truth = data
    seen = {"selector": [], "encoder": [], "fit": []}
    patch = pytest.MonkeyPatch()
    selector_fit, encoder_fit, trainer_fit = (SampleSelector.fit,
                                              features_module.FeatureEncoder.fit, Trainer.fit)

    def spy_selector(self, src, tgt, truth=None):
        seen["selector"].append((src, tgt))
        return selector_fit(self, src, tgt, truth)

    def spy_encoder(self, log):
        seen["encoder"].append(log)
        return encoder_fit(self, log)

    def spy_fit(self, model, train, valid=None):
        seen["fit"].append((id(model), train, valid))
        return trainer_fit(self, model, train, valid)

    patch.setattr(SampleSelector, "fit", spy_selector)
    patch.setattr(features_module.FeatureEncoder, "fit", spy_encoder)
    patch.setattr(Trainer, "fit", spy_fit)
    try:
        results = compare_strategies(source, target, BASELINES, model=TINY, train=QUICK,
                                     protocol=FAST_BOOT, selector=tiny_selector(), truth=truth)
    finally:
        patch.undo()
    split = split_by_time(source, target)
    selector = tiny_selector().fit(source[split.source_rows], target[split.target_train])
    return results, seen, split, selector.selection_


def _row_ids(log: InteractionLog) -> set[str]:
    return set(log.column("row_id").tolist())


def test_selector_saw_only_training_time_rows(data, spied_run):
    source, target, _ = data
    _, seen, split, _ = spied_run
    assert len(seen["selector"]) == 1
    src, tgt = seen["selector"][0]
    assert src.ts.max() < split.test_start
    assert tgt.ts.max() < split.valid_start
    assert _row_ids(tgt) == {f"t{i}" for i in split.target_train}


def test_no_validation_or_test_row_is_ever_trained_on(data, spied_run):
    source, target, _ = data
    _, seen, split, _ = spied_run
    held_out = {f"t{i}" for i in np.concatenate([split.target_valid, split.target_test])}
    late_source = {f"s{i}" for i in np.flatnonzero(source.ts >= split.test_start)}
    assert held_out and late_source
    for log in seen["encoder"]:
        ids = _row_ids(log)
        assert not ids & held_out and not ids & late_source
        assert log.ts[log.table.column("domain").to_numpy(zero_copy_only=False)
                      == "source"].max(initial=0) < split.test_start
    # Every trained row is in its encoder's vocabulary (no OOV row_id), so trained rows are a
    # subset of the encoder's training log, checked above.
    row_field = None
    for _, train, valid in seen["fit"]:
        row_field = row_field or _field_position(seen["encoder"][0])
        assert (train.cat[:, row_field] > 0).all()
        assert len(valid) == len(split.target_valid)


def _field_position(log: InteractionLog) -> int:
    columns = ["user_id", "item_id"] + [c for c in log.feature_columns
                                        if not pa.types.is_floating(log.table.column(c).type)]
    return columns.index("row_id")


def test_each_strategy_trains_on_exactly_its_rows(data, spied_run):
    source, target, _ = data
    results, seen, split, selection = spied_run
    train_ids = {f"t{i}" for i in split.target_train}
    selected = split.source_rows[selection.mask]
    expected_source = {
        "target_only": set(),
        "merge_all": {f"s{i}" for i in split.source_rows},
        "selected": {f"s{i}" for i in selected},
        "selected_weighted": {f"s{i}" for i in selected},
        "pretrain_finetune": {f"s{i}" for i in split.source_rows},
    }
    # Encoders are cached per distinct row set: one per set, in first-use order.
    by_rows = {frozenset(_row_ids(log)): log for log in seen["encoder"]}
    for name, rows in expected_source.items():
        assert frozenset(train_ids | rows) in by_rows, name
    random_sets = [ids - train_ids for ids in map(_row_ids, seen["encoder"])
                   if len(ids - train_ids) == len(selected) and ids - train_ids != set(
                       expected_source["selected"])]
    assert len(random_sets) == 1 and all(i.startswith("s") for i in random_sets[0])

    fits = [train for _, train, _ in seen["fit"]]
    n_train, n_sel, n_src = len(split.target_train), len(selected), len(split.source_rows)
    assert [len(t) for t in fits] == [n_train, n_train + n_src, n_train + n_sel,
                                      n_train + n_sel, n_train + n_sel, n_src, n_train]
    # Weights: 1 everywhere but selected_weighted, whose source rows carry the selection's.
    for i in (0, 1, 2, 3, 5, 6):
        assert (fits[i].weight == 1).all()
    weights = np.sort(fits[4].weight.numpy())
    expected = np.sort(np.concatenate([np.ones(n_train), selection.weight[selection.mask]]))
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert not np.allclose(weights, 1.0)
    # pretrain_finetune: source first, then the target rows, on one model.
    (pre_model, pre, _), (fine_model, fine, _) = seen["fit"][5], seen["fit"][6]
    assert pre_model == fine_model
    assert (len(pre), len(fine)) == (n_src, n_train)
    assert {r.strategy: r.n_train for r in results.records} == {
        "target_only": n_train, "merge_all": n_train + n_src, "random_same_size": n_train + n_sel,
        "selected": n_train + n_sel, "selected_weighted": n_train + n_sel,
        "pretrain_finetune": n_src + n_train}


# -- seeds, periods, results -------------------------------------------------------------------


def _run(data, **kwargs):
    source, target, truth = data
    options = dict(model=TINY, train=QUICK, protocol=FAST_BOOT, selector=tiny_selector())
    options.update(kwargs)
    return compare_strategies(source, target, **options)


def test_same_seed_gives_the_same_scores(data):
    first = _run(data, strategies=["target_only", "selected_weighted"], seeds=[3])
    second = _run(data, strategies=["target_only", "selected_weighted"], seeds=[3])
    strip = [dataclasses.replace(r, seconds=0.0) for r in first.records]
    assert strip == [dataclasses.replace(r, seconds=0.0) for r in second.records]
    assert first.vs_target_only == second.vs_target_only
    other = _run(data, strategies=["target_only"], seeds=[4])
    assert other.records[0].scores.auc != first.records[0].scores.auc


def test_continual_periods_warm_start_and_once_mode(data, monkeypatch):
    calls = []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, train, valid=None):
        calls.append(id(model))
        return trainer_fit(self, model, train, valid)

    monkeypatch.setattr(Trainer, "fit", spy_fit)
    source, target, _ = data
    protocol = ProtocolConfig(periods=3, n_boot=20)
    split = split_by_time(source, target, protocol)
    continual = _run(data, strategies=["target_only", "merge_all"], protocol=protocol)
    assert len(set(calls[:3])) == 1 and len(set(calls[3:6])) == 1  # one model per strategy
    once = _run(data, strategies=["target_only", "merge_all"],
                protocol=ProtocolConfig(periods=3, mode="once", n_boot=20))
    assert [(r.strategy, r.period) for r in continual.records] == [
        (s, p) for s in ("target_only", "merge_all") for p in range(3)]
    n_eval = [len(split.periods_rows[1]), len(split.periods_rows[2]), len(split.target_test)]
    assert [r.n_eval for r in continual.records[:3]] == n_eval
    window_sources = [int(split.source_window(p, source.ts[split.source_rows]).sum())
                      for p in range(3)]
    assert sum(window_sources) == len(split.source_rows)
    merge_continual = [r.n_source for r in continual.records if r.strategy == "merge_all"]
    merge_once = [r.n_source for r in once.records if r.strategy == "merge_all"]
    assert merge_continual == window_sources
    assert merge_once == [window_sources[0], 0, 0]
    assert [r.n_train for r in once.records if r.strategy == "merge_all"][1:] == [
        len(split.periods_rows[1]), len(split.periods_rows[2])]


def test_results_json_and_table(spied_run):
    results = spied_run[0]
    payload = results.to_json()
    assert set(payload) >= {"strategies", "vs_target_only", "periods"}
    assert list(payload["strategies"]) == results.strategies
    for metrics in payload["strategies"].values():
        assert set(metrics) == {"auc", "gauc", "logloss", "ece", "pred_ctr", "ctr"}
        for value in metrics.values():
            assert set(value) == {"mean", "std"} and value["std"] == 0.0
    assert set(payload["vs_target_only"]) == set(results.strategies) - {"target_only"}
    for name, comparison in payload["vs_target_only"].items():
        lo, hi = comparison["ci95"]
        assert lo <= comparison["auc_diff"] <= hi
        diff = (payload["strategies"][name]["auc"]["mean"]
                - payload["strategies"]["target_only"]["auc"]["mean"])
        assert comparison["auc_diff"] == pytest.approx(diff, abs=2e-6)
    assert {"strategy", "seed", "period", "auc", "gauc", "logloss", "n_train"} <= set(
        payload["periods"][0])
    table = results.table()
    assert "selected_weighted" in table and "AUC - target_only" in table
    assert "precision" in table  # the planted truth
    # selected and selected_weighted against their random control, random_same_size
    assert list(payload["vs_control"]) == ["selected", "selected_weighted"]
    for name, comparison in payload["vs_control"].items():
        assert comparison["control"] == "random_same_size"
        lo, hi = comparison["ci95"]
        assert lo <= comparison["auc_diff"] <= hi
        diff = (payload["strategies"][name]["auc"]["mean"]
                - payload["strategies"]["random_same_size"]["auc"]["mean"])
        assert comparison["auc_diff"] == pytest.approx(diff, abs=2e-6)
        assert f"{name:<17}  random_same_size  {comparison['auc_diff']:+.4f}" in table


def test_results_keep_the_test_labels_and_seed_averaged_predictions(data, monkeypatch):
    from graphsel.transfer.protocol import learners

    calls = []
    predict = learners.predict

    def spy_predict(*args, **kwargs):
        calls.append(predict(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(learners, "predict", spy_predict)
    source, target, _ = data
    names = ["target_only", "merge_all"]
    results = _run(data, strategies=names, seeds=[0, 1])
    test = split_by_time(source, target).target_test
    assert results.test_labels.tolist() == target.label[test].tolist()
    assert list(results.test_predictions) == names
    # one period: each run predicts the test rows, then the validation rows (its tuning
    # score), in seed-major order
    assert len(calls) == 8
    calls = calls[0::2]
    for number, name in enumerate(names):
        mean = results.test_predictions[name]
        assert mean.shape == (len(test),) and mean.dtype == np.float64
        np.testing.assert_allclose(mean, (calls[number] + calls[2 + number]) / 2)
        for seed in (0, 1):
            (record,) = [r for r in results.records
                         if r.strategy == name and r.seed == seed]
            assert record.scores.auc == score_predictions(
                results.test_labels, calls[2 * seed + number], target.user[test]).auc
    # kept beside the JSON, never in it
    assert "test_predictions" not in str(results.to_json())


def test_score_predictions_marks_undefined_metrics():
    scores = score_predictions(np.array([1, 1]), np.array([0.2, 0.9]), np.array([0, 1]))
    assert scores.auc is None and scores.gauc is None and scores.logloss > 0


def test_bad_strategy_lists_and_duplicates(data):
    source, target, _ = data
    with pytest.raises(InputError, match="Could not resolve strategy 'best'"):
        compare_strategies(source, target, ["best"])
    with pytest.raises(InputError, match="twice"):
        compare_strategies(source, target, ["merge_all", "merge_all"])


def test_run_experiment_on_logs_in_memory_equals_loading_them():
    from graphsel.select.config import SelectionConfig
    from graphsel.transfer.config import DatasetConfig, ExperimentConfig
    from graphsel.transfer.protocol.experiment import load_data, run_experiment

    config = ExperimentConfig(dataset=DatasetConfig("synthetic", {"scale": 0.05}), model=TINY,
                              train=QUICK, protocol=FAST_BOOT,
                              selection=SelectionConfig(("graph", "da"), {"da": {
                                  "model": "logistic", "cv": 2, "embedding_dim": 4}}),
                              strategies=("target_only", "selected"))
    loaded = run_experiment(config)
    in_memory = run_experiment(config, data=load_data(config))
    assert [r.scores.auc for r in loaded.records] == [r.scores.auc for r in in_memory.records]
    assert loaded.selection.precision > 0.5  # the planted truth came through


def test_docstring_examples():
    import doctest

    from graphsel.transfer.protocol import results, runner, split

    for module in (runner, results, split):
        assert doctest.testmod(module).failed == 0
