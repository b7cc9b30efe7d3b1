"""Learners: the transfer models as strategies, period by period, with exact training sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureEncoder
from graphsel.transfer.models import ecdctr
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.models.ctnet import CTNet
from graphsel.transfer.models.diit import DIIT, DIITLearner, source_sub_domains
from graphsel.transfer.models.ecat import ECAT
from graphsel.transfer.models.ecdctr import ECDCTRLearner
from graphsel.transfer.models.options import DIITOptions
from graphsel.transfer.protocol.learners import LearnerContext, PeriodData
from graphsel.transfer.protocol.runner import compare_strategies, fit_selection
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.protocol.strategies import SourcePlan, get_strategy
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import snapshot, synthetic_pair, tiny_selector

TINY = ModelConfig(embed_dim=4, hidden=(16, 8))
QUICK = TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False)
MODELS = ["ctnet", "ctnet_linear", "ctnet_cold", "ecat", "ecat_cold", "diit", "diit_cold",
          "ecdctr"]



@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def _spied_run(data, mode: str):
    """Runs the transfer strategies over 3 periods, recording every fit and refresh."""
    source, target = data
    fits, refreshes = [], []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, train, valid=None, *, keep_start=False):
        fits.append((type(model).__name__, len(train), keep_start))
        return trainer_fit(self, model, train, valid, keep_start=keep_start)

    # One grid point each (the warm learners would also try the domain feature on).
    protocol = ProtocolConfig(periods=3, mode=mode, n_boot=20, domain_feature="off")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        for cls, method in ((CTNet, "refresh_source"), (ECAT, "refresh_source"),
                            (DIIT, "refresh_sources")):
            original = getattr(cls, method)

            def spy_refresh(self, models, _original=original, _name=cls.__name__):
                refreshes.append(_name)
                return _original(self, models)

            patch.setattr(cls, method, spy_refresh)
        results = compare_strategies(source, target, MODELS, model=TINY, train=QUICK,
                                     protocol=protocol, selector=tiny_selector())
    return results, fits, refreshes


def _expected_fits(data, mode: str) -> list[tuple[str, int, bool]]:
    """Every (model class, training rows, keep_start) the learners must fit, in order, from
    the split: the cold ablations' are those of the learners before the warm start."""
    source, target = data
    protocol = ProtocolConfig(periods=3, mode=mode)
    split = split_by_time(source, target, protocol)
    selection = fit_selection(tiny_selector(), source, target, split)
    plans = {"all": split.source_rows, "selected": split.source_rows[selection.mask]}
    t = [len(rows) for rows in split.periods_rows]

    def windows(rows):
        ts = source.ts[rows]
        return [np.flatnonzero(split.source_window(p, ts)) if mode == "continual" or p == 0
                else np.zeros(0, dtype=np.int64) for p in range(3)]

    w, s = windows(plans["all"]), windows(plans["selected"])
    groups = source_sub_domains(source[plans["all"]], DIITOptions().num_sources, seed=0)
    entire_space = [("CTRModel", t[0] + len(w[0]), False)]  # the warm start, once
    expected = []
    for warm in (True, True, False):  # ctnet, ctnet_linear, ctnet_cold
        for p in range(3):
            expected += [("CTRModel", len(w[p]), False)] * bool(len(w[p]))
            expected += entire_space * (warm and p == 0) + [("CTNet", t[p], warm)]
    for p in range(3):  # ecat: the teacher on every row, the student on the selected rows
        transfer = mode == "continual" or p == 0
        expected += [("CTRModel", t[p] + len(w[p]), False)] * transfer
        expected += [("ECAT", t[p] + len(s[p]), True)]
    for p in range(3):  # ecat_cold: both on the selected rows
        transfer = mode == "continual" or p == 0
        expected += [("CTRModel", t[p] + len(s[p]), False)] * transfer
        expected += [("ECAT", t[p] + len(s[p]), False)]
    for warm in (True, False):  # diit, diit_cold
        for p in range(3):
            sizes = np.bincount(groups[w[p]], minlength=groups.max() + 1)
            expected += [("CTRModel", int(n), False) for n in sizes if n]
            expected += entire_space * (warm and p == 0) + [("DIIT", t[p], warm)]
    for p in range(3):
        expected += [("TinyPretrainModel", len(w[p]), False)] * bool(len(w[p]))
        expected += [("CTRModel", len(w[p]), False)] * (p == 0)
        expected += [("CTRModel", t[p], False)]
    return expected


@pytest.mark.parametrize("mode", ["continual", "once"])
def test_each_transfer_model_trains_exactly_its_rows_each_period(data, mode):
    results, fits, refreshes = _spied_run(data, mode)
    assert fits == _expected_fits(data, mode)
    refreshed_periods = 3 if mode == "continual" else 1
    assert refreshes == (["CTNet"] * refreshed_periods * 3 + ["ECAT"] * refreshed_periods * 2
                         + ["DIIT"] * refreshed_periods * 2)
    assert [(r.strategy, r.period) for r in results.records] == [
        (name, p) for name in MODELS for p in range(3)]
    for record in results.test_records():
        assert 0.0 <= record.scores.auc <= 1.0 and record.scores.logloss > 0
    assert set(results.vs_target_only) == set()  # no target_only in this run


def test_transfer_models_are_registered_strategies_with_learners():
    for name in MODELS:
        assert get_strategy(name).learner is not None
    assert get_strategy("ecat").needs_selection and get_strategy("ecat_cold").needs_selection
    assert get_strategy("merge_all").learner is None
    warm = {name: get_strategy(name).learner for name in ("ctnet", "ecat", "diit")}
    for name, learner in warm.items():  # the cold ablation: the same method, started cold
        cold = get_strategy(f"{name}_cold").learner
        assert learner.mixes_domains and not cold.mixes_domains and issubclass(learner, cold)


def test_same_seed_gives_the_same_transfer_scores(data):
    source, target = data
    protocol = ProtocolConfig(n_boot=10, domain_feature="off")
    runs = [compare_strategies(source, target, ["ctnet", "diit", "ecdctr"], model=TINY,
                               train=QUICK, protocol=protocol)
            for _ in range(2)]
    assert runs[0].records[0].scores.auc == runs[1].records[0].scores.auc
    assert [r.scores for r in runs[0].records] == [r.scores for r in runs[1].records]


# -- sub-domains ------------------------------------------------------------------------------


def test_sub_domains_are_the_item_communities_numbered_by_size():
    # users 0-3 only watch items 10, 11; users 4-7 only items 20, 21, 22 (more rows)
    users = [0, 1, 2, 3, 0, 1, 2, 3] + [4, 5, 6, 7] * 3
    items = [10, 10, 11, 11, 11, 10, 10, 11] + [20] * 4 + [21] * 4 + [22] * 4
    log = InteractionLog.from_columns(users, items, [0] * len(users), [1] * len(users), "s")
    groups = source_sub_domains(log, 2, seed=0, dim=2)
    assert groups.tolist() == [1] * 8 + [0] * 12
    assert source_sub_domains(log, 1).tolist() == [0] * 20
    many = source_sub_domains(log, 50, dim=2)  # 5 items; 20, 21, 22 have equal factors
    assert sorted(set(many.tolist())) == list(range(len(set(many.tolist())))) <= list(range(5))
    assert len(set(many[8:].tolist())) == 1
    with pytest.raises(InputError, match="num_groups"):
        source_sub_domains(log, 0)


# -- one learner, by hand ---------------------------------------------------------------------


def _tiny_context(model: ModelConfig = TINY):
    users = [1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    items = [7, 7, 8, 8, 9, 9, 7, 8, 9, 7]
    log = InteractionLog.from_columns(users, items, list(range(10)), [1, 0] * 5, "s")
    encoder = FeatureEncoder(["user_id", "item_id"], []).fit(log)
    data = CTRDataset.from_log(log, encoder)
    plan = SourcePlan(np.arange(10), np.ones(10, dtype=np.float32))  # every row: source == log
    context = LearnerContext(plan, encoder.spec_, model, QUICK, log, seed=0)
    return context, data


def _period(data: CTRDataset, period: int, transfer: bool = True) -> PeriodData:
    positions = np.arange(len(data)) if transfer else np.zeros(0, dtype=np.int64)
    return PeriodData(period, transfer, data.subset(np.arange(6)), data.subset(positions),
                      positions, data.subset(np.arange(6, 10)))


def test_ecdctr_features_are_the_tiny_models_embeddings_averaged_over_periods():
    context, data = _tiny_context()
    learner = ECDCTRLearner(context)
    learner.fit_period(_period(data, 0))
    table = learner.tiny.embedding.table.weight.detach().numpy().copy()
    offsets = learner.tiny.embedding.offsets.tolist()
    features = learner._inputs(data).num.numpy()
    cat = data.cat.numpy()
    assert features.shape == (10, 2 * TINY.embed_dim)
    np.testing.assert_array_equal(features[:, :4], table[offsets[0] + cat[:, 0]])
    np.testing.assert_array_equal(features[:, 4:], table[offsets[1] + cat[:, 1]])
    unknown = CTRDataset(torch.zeros(1, 2, dtype=torch.long), None, torch.ones(1))
    assert not learner._inputs(unknown).num.any()  # OOV user and item: zeros
    learner.fit_period(_period(data, 1))
    second = learner.tiny.embedding.table.weight.detach().numpy()
    np.testing.assert_allclose(learner._inputs(data).num.numpy()[:, :4],
                               (table[offsets[0] + cat[:, 0]] + second[offsets[0] + cat[:, 0]])
                               / 2, rtol=1e-6)
    assert len(learner.history) == 2
    learner.fit_period(_period(data, 2, transfer=False))
    assert len(learner.history) == 2  # no transfer, no new period of embeddings


def test_ecdctr_resets_batchnorm_before_fine_tuning(monkeypatch):
    context, data = _tiny_context(ModelConfig(embed_dim=4, hidden=(8,), batch_norm=True))
    learner = ECDCTRLearner(context)
    seen = []
    reset = ecdctr.reset_batchnorm

    def spy_reset(model, affine=False):
        count = reset(model, affine)
        bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        seen.append((count, [float(m.running_mean.abs().sum()) for m in bn]))
        return count

    monkeypatch.setattr(ecdctr, "reset_batchnorm", spy_reset)
    learner.fit_period(_period(data, 0))
    assert seen == [(1, [0.0])]
    learner.fit_period(_period(data, 1))
    assert len(seen) == 1  # only before the first fine-tuning


@pytest.mark.parametrize("name", ["ctnet", "diit", "ecat"])
def test_warm_target_starts_exactly_from_the_entire_space_model_then_continues(name,
                                                                              monkeypatch):
    context, data = _tiny_context()
    learner = get_strategy(name).make_learner(context)
    starts = []
    fit = Trainer.fit

    def spy_fit(self, model, train, valid=None, *, keep_start=False):
        if keep_start:  # the transfer model's fit: its target model as the fit receives it
            starts.append(snapshot(model.target))
        return fit(self, model, train, valid, keep_start=keep_start)

    monkeypatch.setattr(Trainer, "fit", spy_fit)
    learner.fit_period(_period(data, 0))
    # ECAT's student starts from its teacher, which is the entire-space model
    start = learner.source_model if name == "ecat" else learner.entire_space.model
    expected = start.state_dict()
    assert len(starts) == 1 and starts[0].keys() == expected.keys()
    assert all(torch.equal(starts[0][key], value) for key, value in expected.items())
    after_first = snapshot(learner.model if name == "diit" else learner.model.target)
    learner.fit_period(_period(data, 1))
    # the second period continues from the first period's target model, not from the start
    assert all(torch.equal(starts[1][key], value) for key, value in after_first.items())


def test_diit_learner_predicts_with_the_target_model_alone():
    context, data = _tiny_context()
    learner = DIITLearner(context, DIITOptions(num_sources=2))
    learner.fit_period(_period(data, 0))
    before = learner.predict(data)
    assert learner.model is learner.diit.target
    with torch.no_grad():
        for tower in learner.diit.sources:
            for parameter in tower.parameters():
                parameter.fill_(float("nan"))
    np.testing.assert_array_equal(learner.predict(data), before)
