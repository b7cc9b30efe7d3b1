"""Equal effort: early stopping within the cap, one shared grid chosen on validation only,
and the domain feature."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from graphsel.transfer import features as features_module
from graphsel.transfer.features import DOMAIN_FIELD
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol.runner import compare_strategies
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.train.trainer import TrainConfig
from tests.transfer.tiny import synthetic_pair, tiny_selector, with_test_labels_flipped

TINY = ModelConfig(embed_dim=4, hidden=(16,))
CAP = 40
TRAIN = TrainConfig(epochs=CAP, patience=3, batch_size=256, num_threads=1, progress=False)
GRID = ProtocolConfig(lr_grid=(0.001, 0.01), n_boot=30)
# ctnet_cold: a learner whose models never mix domains (so it never tries the domain feature)
STRATEGIES = ["target_only", "merge_all", "selected_weighted", "ctnet_cold"]



@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def _run(source, target, **kwargs):
    options = dict(model=TINY, train=TRAIN, protocol=GRID, selector=tiny_selector(), seeds=[0, 1])
    options.update(kwargs)
    return compare_strategies(source, target, STRATEGIES, **options)


@pytest.fixture(scope="module")
def results(data):
    return _run(*data)


def test_no_strategy_reaches_the_epoch_cap(results):
    assert [(r.strategy, r.seed) for r in results.effort] == [
        (name, seed) for seed in (0, 1) for name in STRATEGIES]
    for record in results.effort:
        assert record.effort.capped_fits == 0, record
        assert 3 < record.effort.max_epochs < CAP  # patience 3 ran out before the cap
        assert record.effort.steps >= record.effort.epochs > 0
        assert record.effort.rows_x_epochs > 0 and record.effort.seconds > 0


def test_every_strategy_tries_the_same_grid_on_the_first_seed(results):
    first = {r.strategy: r for r in results.effort if r.seed == 0}
    for name, record in first.items():
        lrs = sorted({trial.point.lr for trial in record.trials})
        assert lrs == [0.001, 0.01], name
        domains = {trial.point.domain_feature for trial in record.trials}
        # domain_feature=auto: on and off only where one model mixes source and target rows
        assert domains == ({False, True} if name in ("merge_all", "selected_weighted")
                           else {False}), name
        best = max(record.trials, key=lambda t: t.valid_auc)
        assert record.valid_auc == best.valid_auc
        assert record.choice == best.point
    for record in (r for r in results.effort if r.seed == 1):
        assert record.trials == () and record.choice == first[record.strategy].choice
    table = results.table()
    assert "lr" in table and "steps" in table and "AUC - merge_all" in table
    payload = results.to_json()
    assert payload["effort"][0]["choice"] == dataclasses.asdict(first["target_only"].choice)
    assert set(payload["vs_merge_all"]) == set(STRATEGIES) - {"merge_all"}


def test_tuning_never_reads_the_test_labels(data, results):
    source, target = data
    flipped = _run(source, with_test_labels_flipped(source, target, GRID))

    def tuned(res):
        return [(r.strategy, r.seed, r.choice, r.valid_auc, r.trials,
                 dataclasses.replace(r.effort, seconds=0.0)) for r in res.effort]

    assert tuned(flipped) == tuned(results)  # every choice and validation score the same
    for name in STRATEGIES:  # the same models, so the same test predictions ...
        np.testing.assert_array_equal(flipped.test_predictions[name],
                                      results.test_predictions[name])
    # ... scored against other labels: only the scoring changed
    assert flipped.summary()["target_only"].auc.mean == pytest.approx(
        1 - results.summary()["target_only"].auc.mean, abs=1e-5)


def test_domain_feature_marks_target_and_source_rows(data, monkeypatch):
    seen = []
    fit = features_module.FeatureEncoder.fit

    def spy_fit(self, log):
        seen.append(log)
        return fit(self, log)

    monkeypatch.setattr(features_module.FeatureEncoder, "fit", spy_fit)
    source, target = data
    results = compare_strategies(
        source, target, ["merge_all"], model=TINY,
        train=dataclasses.replace(TRAIN, epochs=2),
        protocol=ProtocolConfig(n_boot=10, domain_feature="on", domain_column="category"))
    (log,) = seen
    values = log.column(DOMAIN_FIELD)
    domain = log.table.column("domain").to_numpy(zero_copy_only=False)
    assert set(values[domain == "target"]) == {"target"}
    categories = log.column("category")[domain == "source"]
    assert values[domain == "source"].tolist() == [f"source:{c}" for c in categories]
    assert results.effort[0].choice.domain_feature is True


def test_grid_values_are_checked():
    from graphsel.errors import InputError

    with pytest.raises(InputError, match="lr_grid must hold distinct positive"):
        ProtocolConfig(lr_grid=(0.01, 0.01))
    with pytest.raises(InputError, match="domain_feature"):
        ProtocolConfig(domain_feature="maybe")
    assert ProtocolConfig(domain_feature=False).domain_feature == "off"  # YAML's bare off
