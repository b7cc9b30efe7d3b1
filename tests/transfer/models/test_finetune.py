"""Entire space, then specialise: merge_finetune and merge_finetune_selected."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from graphsel.data.datasets import get_dataset
from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.select.pipeline import Selection
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.base import ModelConfig, build_base_model
from graphsel.transfer.models.finetune import FinetuneLearner
from graphsel.transfer.models.options import FinetuneOptions
from graphsel.transfer.protocol.runner import compare_strategies, fit_selection
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.protocol.strategies import StrategyContext, get_strategy
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer
from tests.transfer.tiny import tiny_selector

TINY = ModelConfig(embed_dim=4, hidden=(8, 4))


def _separable(n: int, seed: int, flip: bool = False) -> CTRDataset:
    """Field 0's value decides the label (even: 0, odd: 1; the other way round if flipped)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 9, n)
    cat = np.stack([first, rng.integers(1, 5, n)], axis=1)
    return CTRDataset(cat, rng.normal(size=(n, 1)), (first + flip) % 2)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_keep_start_keeps_the_given_weights_when_no_epoch_beats_them():
    valid = _separable(256, 1)
    model = build_base_model([9, 5], 1, TINY)
    trainer = Trainer(TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False))
    trainer.fit(model, _separable(512, 0), valid)  # learns the rule: a strong start
    start = _state(model)
    result = trainer.fit(model, _separable(512, 2, flip=True), valid, keep_start=True)
    assert result.best_epoch == -1 and result.epochs >= 1
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())
    # without keep_start the same fit keeps its best (bad) epoch
    worse = Trainer(trainer.config).fit(model, _separable(512, 2, flip=True), valid)
    assert worse.best_epoch >= 0
    assert worse.best_valid_auc < result.best_valid_auc


def test_keep_start_needs_validation_rows():
    with pytest.raises(InputError, match="keep_start needs validation samples"):
        Trainer(TrainConfig(progress=False)).fit(
            build_base_model([9, 5], 1, TINY), _separable(8, 0), keep_start=True)


def test_plans_hold_every_source_row_and_focus_on_the_selection():
    rows = np.arange(10, 16)
    mask = np.array([1, 0, 1, 0, 0, 1], bool)
    nan = np.full(6, np.nan, dtype=np.float32)
    selection = Selection(mask, np.where(mask, 2.0, 0.0).astype(np.float32),
                          {"hop": np.zeros(6, np.int32), "p_target": nan, "knn_score": nan})
    context = StrategyContext(rows, selection, 0)
    plain = get_strategy("merge_finetune").plan(context)
    focused = get_strategy("merge_finetune_selected").plan(context)
    for plan in (plain, focused):
        assert plan.rows.tolist() == rows.tolist() and plan.weight.tolist() == [1.0] * 6
        assert plan.schedule == "joint"
    assert plain.focus is None
    assert focused.focus.tolist() == mask.tolist()
    assert focused.within(np.array([0, 1, 1, 1, 1, 0], bool)).focus.tolist() == [
        False, True, False, False]
    assert get_strategy("merge_finetune").learner is FinetuneLearner
    assert get_strategy("merge_finetune").options == FinetuneOptions(lr_factor=1.0)
    with pytest.raises(InputError, match="lr_factor"):
        FinetuneOptions(lr_factor=0)


def test_each_period_merges_then_fine_tunes_on_target_and_focus_rows():
    split_data = get_dataset("synthetic")(scale=0.05)
    source, target = split_data.source, split_data.target
    selector = tiny_selector()
    protocol = ProtocolConfig(periods=2, n_boot=20, domain_feature="off")
    train = TrainConfig(epochs=1, batch_size=256, lr=0.01, num_threads=1, progress=False)
    fits = []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, rows, valid=None, *, keep_start=False):
        fits.append((len(rows), keep_start, self.config.lr,
                     float(rows.weight.sum())))
        return trainer_fit(self, model, rows, valid, keep_start=keep_start)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        compare_strategies(source, target, ["merge_finetune", "merge_finetune_selected"],
                           model=TINY, train=train, protocol=protocol, selector=selector,
                           strategy_options={"merge_finetune": FinetuneOptions(lr_factor=0.5),
                                             "merge_finetune_selected": FinetuneOptions()})
    split = split_by_time(source, target, protocol)
    selection = fit_selection(selector, source, target, split)
    ts = source.ts[split.source_rows]
    expected = []
    for factor, focus in ((0.5, None), (1.0, selection.mask)):
        for period in range(2):
            t = len(split.periods_rows[period])
            window = split.source_window(period, ts)
            extra = 0 if focus is None else int((window & focus).sum())
            expected += [(t + int(window.sum()), False, 0.01, float(t + window.sum())),
                         (t + extra, True, 0.01 * factor, float(t + extra))]
    assert fits == expected


def test_auto_takes_each_seeds_best_validation_model_and_never_reads_test_labels():
    split_data = get_dataset("synthetic")(scale=0.05)
    source, target = split_data.source, split_data.target
    train = TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False)
    protocol = ProtocolConfig(periods=1, n_boot=20, domain_feature="off")
    names = ["target_only", "merge_all", "auto"]
    results = compare_strategies(source, target, names, model=TINY, train=train,
                                 protocol=protocol, seeds=[0, 1])
    efforts = {(e.strategy, e.seed): e for e in results.effort}
    for seed in (0, 1):
        a, b = efforts["target_only", seed], efforts["merge_all", seed]
        best = a if a.valid_auc >= b.valid_auc else b
        assert efforts["auto", seed].picked == best.strategy
        assert efforts["auto", seed].valid_auc == best.valid_auc
        assert efforts["auto", seed].effort.epochs == a.effort.epochs + b.effort.epochs
        auto_scores = [r.scores for r in results.records if (r.strategy, r.seed) == ("auto", seed)]
        assert auto_scores == [r.scores for r in results.records
                               if (r.strategy, r.seed) == (best.strategy, seed)]
    picks = [e.picked for e in results.effort if e.strategy == "auto"]
    assert "auto picked (best validation AUC): seed 0: " in results.table()
    # the test labels never choose: flipping them leaves every pick as it was
    test = split_by_time(source, target, protocol).target_test
    label = np.asarray(target.label).copy()
    label[test] = 1 - label[test]
    flipped = InteractionLog(target.table.set_column(target.table.column_names.index("label"),
                                                     "label", pa.array(label)),
                             target.index, target.user, target.item, target.ts, label,
                             target.name)
    assert picks == [e.picked for e in compare_strategies(
        source, flipped, names, model=TINY, train=train, protocol=protocol,
        seeds=[0, 1]).effort if e.strategy == "auto"]
