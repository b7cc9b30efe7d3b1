"""Entire space, then specialise: merge_finetune and merge_finetune_selected."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from graphsel.data.datasets import get_dataset
from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.select.pipeline import Selection
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureEncoder
from graphsel.transfer.models import finetune
from graphsel.transfer.models.base import ModelConfig, build_base_model
from graphsel.transfer.models.finetune import FinetuneLearner, mix_states
from graphsel.transfer.models.options import FinetuneOptions
from graphsel.transfer.protocol.learners import LearnerContext, PeriodData
from graphsel.transfer.protocol.runner import compare_strategies, fit_selection
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    StrategyContext,
    get_strategy,
)
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import FitResult, Trainer
from tests.transfer.tiny import tiny_selector, with_test_labels_flipped

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
    assert FinetuneOptions(mix=[0.5, 1 / 4]).mix == (0.5, 0.25)
    assert FinetuneOptions(mix=[]).mix == ()
    for bad in ([0.5, 1.0], [0], "0.5", [True]):
        with pytest.raises(InputError, match="mix must be a list of numbers in \\(0, 1\\)"):
            FinetuneOptions(mix=bad)


def _mixing_learner(options: FinetuneOptions, moved: bool, scores: list[float], monkeypatch):
    """A FinetuneLearner on a 10-row log whose merged fit trains for real and whose
    fine-tuning step moves every float weight by +1 (or keeps the start when not ``moved``);
    validation AUCs of the mixes come from ``scores``, in the order they are asked."""
    users = [1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    items = [7, 7, 8, 8, 9, 9, 7, 8, 9, 7]
    log = InteractionLog.from_columns(users, items, list(range(10)), [1, 0] * 5, "s")
    encoder = FeatureEncoder(["user_id", "item_id"], []).fit(log)
    data = CTRDataset.from_log(log, encoder)
    train = TrainConfig(epochs=1, batch_size=4, num_threads=1, progress=False)
    context = LearnerContext(SourcePlan(np.arange(10), np.ones(10, dtype=np.float32)),
                             encoder.spec_, TINY, train, log, seed=0)
    learner = FinetuneLearner(context, options)
    period = PeriodData(0, True, data.subset(np.arange(6)), data.subset(np.arange(10)),
                        np.arange(10), data.subset(np.arange(6, 10)))
    asked = iter(scores)

    def fake_finetune(model, rows, valid=None, *, keep_start=False):
        assert keep_start and len(rows) == 6  # the target rows (no focus)
        if moved:
            with torch.no_grad():
                for value in model.parameters():
                    value += 1.0
        return FitResult(best_epoch=0 if moved else -1)

    monkeypatch.setattr(learner.finetuner, "fit", fake_finetune)
    monkeypatch.setattr(finetune, "auc", lambda y, p: next(asked))
    original = Trainer.fit

    def merged_fit(self, model, rows, valid=None, *, keep_start=False):
        result = original(self, model, rows, valid, keep_start=keep_start)
        merged.update(_state(model))
        return result

    merged: dict[str, torch.Tensor] = {}
    monkeypatch.setattr(Trainer, "fit", merged_fit)
    return learner, period, merged


@pytest.mark.parametrize(("scores", "kept"), [([0.6, 0.9, 0.7, 0.8], 0.5),
                                              ([0.6, 0.7, 0.7, 0.8], 1.0),
                                              ([0.8, 0.7, 0.8, 0.8], 0.25)])
def test_the_mix_with_the_best_validation_auc_is_kept(scores, kept, monkeypatch):
    learner, period, merged = _mixing_learner(FinetuneOptions(), True, scores, monkeypatch)
    learner.fit_period(period)
    assert learner.mixes_ == [kept] and learner.details() == {"mix": kept}
    tuned = {k: v + 1.0 if v.is_floating_point() else v for k, v in merged.items()}
    expected = mix_states(merged, tuned, kept)
    state = learner.model.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=1e-6)


def test_no_mix_when_fine_tuning_kept_the_merged_model_or_mixing_is_off(monkeypatch):
    learner, period, merged = _mixing_learner(FinetuneOptions(), False, [], monkeypatch)
    learner.fit_period(period)  # no AUC asked: the scores iterator is empty
    assert learner.mixes_ == [0.0]
    assert all(torch.equal(merged[k], v) for k, v in learner.model.state_dict().items())
    learner, period, merged = _mixing_learner(FinetuneOptions(mix=()), True, [0.5], monkeypatch)
    learner.fit_period(period)
    assert learner.mixes_ == [1.0]
    assert all(torch.equal(merged[k] + 1.0 if v.is_floating_point() else merged[k], v)
               for k, v in learner.model.state_dict().items())


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
    # margin 0: the best validation AUC outright (the margin's rule: tests/.../test_auto.py)
    protocol = ProtocolConfig(periods=1, n_boot=20, domain_feature="off", auto_margin=0)
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
    assert "auto picked (merge_all unless beaten beyond noise on validation): seed 0: " in (
        results.table())
    # the test labels never choose: flipping them leaves every pick as it was (with the
    # default margin, whose bootstrap reads the validation rows)
    protocol = replace(protocol, auto_margin=ProtocolConfig().auto_margin)
    picks = [e.picked for e in compare_strategies(
        source, target, names, model=TINY, train=train, protocol=protocol,
        seeds=[0, 1]).effort if e.strategy == "auto"]
    flipped = with_test_labels_flipped(source, target, protocol)
    assert picks == [e.picked for e in compare_strategies(
        source, flipped, names, model=TINY, train=train, protocol=protocol,
        seeds=[0, 1]).effort if e.strategy == "auto"]


def test_budget_plan_holds_the_top_ranked_selected_rows_within_the_budget():
    rows = np.arange(100, 110)
    mask = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0], bool)
    knn = np.array([0.5, 0.9, np.nan, 0.99, 0.5, 0.7, 0, 0, 0.6, 0], dtype=np.float32)
    p_target = np.array([0.1, 0.2, 0.9, 0.5, 0.8, 0.3, 0, 0, 0.4, 0], dtype=np.float32)
    selection = Selection(mask, mask.astype(np.float32),
                          {"hop": np.zeros(10, np.int32), "p_target": p_target,
                           "knn_score": knn})
    plan = get_strategy("budget_finetune").plan(StrategyContext(rows, selection, 0))
    # budget int(0.2 * 10) = 2: knn 0.9 (row 1) and 0.7 (row 5)
    assert plan.rows.tolist() == [101, 105] and plan.weight.tolist() == [1.0, 1.0]
    assert plan.schedule == "joint" and plan.focus is None
    assert get_strategy("budget_finetune").learner is FinetuneLearner
    # with the source log the budget is shared out over (user, label) strata in proportion.
    # Rank order: 1, 5, 8, 4, 0, 2 (selected), then 3, 6, 7, 9. Rows 0, 1, 3, 5, 6, 7, 9 are
    # user 7's, rows 2, 4, 8 user 8's, all clicks: user 7's best row paces at 0.5 / 7 = 0.07,
    # user 8's best (row 8) at 0.5 / 3 = 0.17, user 7's second (row 5) at 1.5 / 7 = 0.21
    user = np.zeros(110, np.int64)
    user[[100, 101, 103, 105, 106, 107, 109]], user[[102, 104, 108]] = 7, 8
    log = SimpleNamespace(user=user, label=np.ones(110, np.int8))  # what the plan reads
    plan = get_strategy("budget_finetune").plan(StrategyContext(rows, selection, 0, log))
    assert plan.rows.tolist() == [101, 108]
    strata = 2 * user[rows] + log.label[rows]
    assert np.flatnonzero(finetune.budget_mask(selection, 0.3, strata)).tolist() == [1, 5, 8]
    # rows 6 and 7 not clicked: user 7's clicks pace at 0.1, 0.3, ..., its non-clicks at 0.25
    # and 0.75, so row 6 comes before row 5 and the budget keeps user 7's click rate
    log.label[[106, 107]] = 0
    strata = 2 * user[rows] + log.label[rows]
    assert np.flatnonzero(finetune.budget_mask(selection, 0.3, strata)).tolist() == [1, 6, 8]
    # a selection under the budget is filled up with the best unselected row (row 3: 0.99)
    one = Selection(np.arange(10) == 1, np.ones(10, np.float32), {"knn_score": knn})
    plan = get_strategy("budget_finetune").plan(StrategyContext(rows, one, 0))
    assert plan.rows.tolist() == [101, 103]
    # knn ties (0.5: rows 0 and 4) are broken by p_target; NaN knn ranks last
    assert np.flatnonzero(finetune.budget_mask(selection, 0.5)).tolist() == [0, 1, 4, 5, 8]
    assert np.flatnonzero(finetune.budget_mask(selection, 0.4)).tolist() == [1, 4, 5, 8]
    # a selection within the budget is kept whole
    assert finetune.budget_mask(selection, 0.6).tolist() == mask.tolist()


def test_budget_ensemble_members_train_on_budget_finetunes_rows():
    from graphsel.transfer.models.ctnet import CTNetLearner
    from graphsel.transfer.models.multidomain import StarFinetuneLearner

    rng = np.random.default_rng(5)
    rows = np.arange(200, 240)
    mask = rng.random(40) < 0.5
    selection = Selection(mask, np.ones(40, np.float32),
                          {"knn_score": rng.random(40).astype(np.float32)})
    log = SimpleNamespace(user=rng.integers(0, 4, 240), label=rng.integers(0, 2, 240))
    context = StrategyContext(rows, selection, 0, log)
    budget = get_strategy("budget_finetune").plan(context)
    assert len(budget) == 8  # a fifth of the 40 rows
    for name, learner in (("budget_ctnet", CTNetLearner),
                          ("budget_star_finetune", StarFinetuneLearner)):
        strategy = get_strategy(name)
        plan = strategy.plan(context)
        assert plan.rows.tolist() == budget.rows.tolist() and plan.focus is None
        assert plan.weight.tolist() == [1.0] * 8 and plan.schedule == "joint"
        assert strategy.learner is learner and strategy.needs_selection
    assert get_strategy("budget_ensemble").options.members == (
        "budget_finetune", "budget_star_finetune", "budget_ctnet")


def test_budget_takes_every_stratum_in_proportion_its_best_ranked_rows_first():
    rng = np.random.default_rng(3)
    sizes = [5, 10, 20, 5, 40]  # multiples of 5: a 0.2 budget takes exactly a fifth of each
    strata = rng.permutation(np.repeat(np.arange(len(sizes)) * 3, sizes))
    n = len(strata)
    mask = rng.random(n) < 0.6
    knn = rng.random(n).astype(np.float32)
    selection = Selection(mask, np.ones(n, np.float32), {"knn_score": knn})
    chosen = finetune.budget_mask(selection, 0.2, strata)
    # slow oracle: each stratum's rows by (unselected, -knn), its first fifth
    expected = []
    for stratum in np.unique(strata):
        members = sorted(np.flatnonzero(strata == stratum), key=lambda r: (not mask[r], -knn[r]))
        expected += members[:len(members) // 5]
    assert np.flatnonzero(chosen).tolist() == sorted(expected)
    # one stratum holding every row: the plain rank
    same = finetune.budget_mask(selection, 0.2, np.zeros(n, np.int64))
    assert same.tolist() == finetune.budget_mask(selection, 0.2).tolist()


def test_a_selection_under_the_budget_is_filled_with_the_next_ranked_rows():
    mask = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    knn = np.array([0.9, 0.3, 0.8, 0.95, np.nan, 0.1, 0.7, 0.2, 0.6, 0.5], np.float32)
    selection = Selection(mask, mask.astype(np.float32), {"knn_score": knn})
    # budget 4: the two selected rows, then the best two unselected (0.8: row 2, 0.7: row 6)
    filled = finetune.budget_mask(selection, 0.4)
    assert np.flatnonzero(filled).tolist() == [0, 2, 3, 6]
    # by user (all clicks): user 0's rows in rank order are 3, 0, 9, 1, 7, 5, 4 (paces 0.07,
    # 0.21, 0.36, ...), user 1's 2 and 6 (0.25, 0.75), user 2's only row 8 paces at 0.5
    users = np.array([0, 0, 1, 0, 0, 0, 1, 0, 2, 0])
    assert np.flatnonzero(finetune.budget_mask(selection, 0.4, users)).tolist() == [0, 2, 3, 9]
