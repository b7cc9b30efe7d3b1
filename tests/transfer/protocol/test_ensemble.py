"""ensemble (the mean logit of other strategies' models) and its control, merge_all_ensemble."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.special import expit, logit

from graphsel.errors import InputError
from graphsel.transfer.config import config_from_dict
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.models.options import EnsembleOptions, SeedEnsembleOptions
from graphsel.transfer.protocol import learners, runner
from graphsel.transfer.protocol.results import (
    Effort,
    EffortRecord,
    GridPoint,
    PeriodRecord,
)
from graphsel.transfer.protocol.runner import (
    ValidationRows,
    average_members,
    compare_strategies,
    logit_mean,
)
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.train.trainer import TrainConfig
from tests.transfer.tiny import synthetic_pair, with_test_labels_flipped

TINY = ModelConfig(embed_dim=4, hidden=(16,))
QUICK = TrainConfig(epochs=2, batch_size=256, num_threads=1, progress=False)
PROTOCOL = ProtocolConfig(n_boot=30, domain_feature="off")
POINT = GridPoint(0.001, 0.0, False)
PAIR = EnsembleOptions(("merge_all", "target_only"))


@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def _run(source, target, strategies, options=None, seeds=(0, 1)):
    return compare_strategies(source, target, strategies, model=TINY, train=QUICK,
                              protocol=PROTOCOL, seeds=list(seeds),
                              strategy_options={"ensemble": PAIR} if options is None else options)


def test_logit_mean_is_the_sigmoid_of_the_mean_logit():
    a, b, c = np.array([0.1, 0.5, 0.97]), np.array([0.3, 0.5, 0.2]), np.array([0.6, 0.01, 0.5])
    expected = expit((logit(a) + logit(b) + logit(c)) / 3)
    np.testing.assert_allclose(logit_mean([a, b, c]), expected, rtol=1e-12)
    # two mirror-image models cancel; one model is itself; 0 and 1 are clipped, not inf
    assert logit_mean([np.array([0.2]), np.array([0.8])]).tolist() == pytest.approx([0.5])
    np.testing.assert_allclose(logit_mean([a]), a, rtol=1e-12)
    assert np.isfinite(logit_mean([np.array([0.0, 1.0]), np.array([1.0, 1.0])])).all()


def test_average_members_per_seed_records_and_effort():
    y, users = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
    test = {"a": [np.array([0.2, 0.6, 0.4, 0.3]), np.array([0.1, 0.9, 0.9, 0.1])],
            "b": [np.array([0.4, 0.3, 0.7, 0.5]), np.array([0.5, 0.5, 0.5, 0.5])]}
    valid = ValidationRows(np.array([1, 0]), np.array([0, 1]),
                           {"a": [np.array([0.7, 0.2])] * 2, "b": [np.array([0.4, 0.5])] * 2})
    efforts = [EffortRecord(name, seed, GridPoint(lr, 0.0, False), 0.5,
                            Effort(fits=1, epochs=e, max_epochs=e, steps=10, rows_x_epochs=100,
                                   seconds=1.5), tuning_seconds=2.0)
               for seed in (0, 1) for name, lr, e in (("a", 0.01, 3), ("b", 0.001, 5))]
    scores = runner.score_predictions(y, np.full(4, 0.5), users)
    records = [PeriodRecord(name, seed, 0, scores, n, n - 10, 4, 0.5)
               for seed in (0, 1) for name, n in (("a", 30), ("b", 50))]
    out = average_members(["a", "b"], [0, 1], records, test, efforts, valid, y, users)
    for i in (0, 1):
        np.testing.assert_allclose(out.test_predictions[i],
                                   expit((logit(test["a"][i]) + logit(test["b"][i])) / 2))
        assert out.records[i].scores == runner.score_predictions(y, out.test_predictions[i],
                                                                 users)
        (record,) = [r for r in out.records if r.seed == i]
        assert (record.strategy, record.period, record.n_train, record.n_source,
                record.n_eval, record.seconds) == ("ensemble", 0, 80, 60, 4, 1.0)
    # seed 1: a ranks every test row right, b ties them all; the mean keeps a's order
    assert out.records[1].scores.auc == 1.0
    effort = out.efforts[0]
    assert effort.choice == GridPoint(0.01, 0.0, False)  # the first member's
    assert effort.effort == Effort(fits=2, epochs=8, max_epochs=5, steps=20,
                                   rows_x_epochs=200, seconds=3.0)
    assert effort.tuning_seconds == 4.0 and effort.details == {"members": ["a", "b"]}
    # validation: logit mean of (0.7, 0.4) and (0.2, 0.5) ranks the positive first
    assert effort.valid_auc == 1.0
    np.testing.assert_allclose(out.valid_predictions[0],
                               logit_mean([np.array([0.7, 0.2]), np.array([0.4, 0.5])]))


def test_the_run_adds_missing_members_and_scores_their_mean(data, monkeypatch):
    seen = {}
    average = runner.average_members

    def spy(members, seeds, records, test_predictions, *args):
        seen["test"] = {name: [p.copy() for p in test_predictions[name]] for name in members}
        return average(members, seeds, records, test_predictions, *args)

    monkeypatch.setattr(runner, "average_members", spy)
    source, target = data
    results = _run(source, target, ["merge_all", "ensemble", "merge_all_ensemble"])
    # target_only was not named: it trains, ahead of the ensemble, and has its own row
    assert results.strategies == ["merge_all", "target_only", "ensemble", "merge_all_ensemble"]
    test_records = {(r.strategy, r.seed): r for r in results.test_records()}
    users = target.user[runner.split_by_time(source, target, PROTOCOL).target_test]
    for i, seed in enumerate((0, 1)):
        mean = logit_mean([seen["test"]["merge_all"][i], seen["test"]["target_only"][i]])
        assert test_records["ensemble", seed].scores == runner.score_predictions(
            results.test_labels, mean, users)
    np.testing.assert_allclose(results.test_predictions["ensemble"], np.mean([logit_mean(
        [seen["test"]["merge_all"][i], seen["test"]["target_only"][i]]) for i in (0, 1)],
        axis=0))
    effort = {(r.strategy, r.seed): r for r in results.effort}
    assert effort["ensemble", 0].effort.fits == (effort["merge_all", 0].effort.fits
                                                 + effort["target_only", 0].effort.fits)
    # the control compares it with as many merge_all models
    control, comparison = results.vs_control["ensemble"]
    assert control == "merge_all_ensemble"
    assert comparison.auc_diff == pytest.approx(
        results.summary()["ensemble"].auc.mean
        - results.summary()["merge_all_ensemble"].auc.mean, abs=2e-6)
    table = results.table()
    assert "ensemble seed 0: members merge_all+target_only" in table
    assert "merge_all_ensemble" in table.split("AUC - control")[1]


def test_two_ensembles_each_average_their_own_members(data):
    source, target = data
    options = {"ensemble": PAIR,
               "budget_ensemble": EnsembleOptions(("target_only", "pretrain_finetune"))}
    results = compare_strategies(
        source, target, ["ensemble", "budget_ensemble", "auto"], model=TINY, train=QUICK,
        protocol=dataclasses.replace(PROTOCOL, auto_margin=0.0), seeds=[0],
        strategy_options=options)
    # each ensemble's missing members train ahead of it; target_only once, for both
    assert results.strategies == ["merge_all", "target_only", "ensemble", "pretrain_finetune",
                                  "budget_ensemble", "auto"]
    records = {r.strategy: r for r in results.test_records()}
    for name, members in (("ensemble", PAIR.members),
                          ("budget_ensemble", ("target_only", "pretrain_finetune"))):
        assert records[name].n_train == sum(records[m].n_train for m in members)
        np.testing.assert_allclose(results.test_predictions[name], logit_mean(
            [results.test_predictions[m] for m in members]), rtol=1e-6)
    effort = {r.strategy: r for r in results.effort}
    assert effort["budget_ensemble"].details == {"members": ["target_only", "pretrain_finetune"]}
    # auto counts every trained model once, neither ensemble's sum
    assert effort["auto"].effort.epochs == sum(
        effort[n].effort.epochs for n in ("merge_all", "target_only", "pretrain_finetune"))


def test_auto_may_pick_the_ensemble_and_counts_its_members_once(data):
    source, target = data
    results = compare_strategies(
        source, target, ["merge_all", "target_only", "ensemble", "auto"], model=TINY,
        train=QUICK, protocol=dataclasses.replace(PROTOCOL, auto_margin=0.0), seeds=[0],
        strategy_options={"ensemble": PAIR})
    effort = {r.strategy: r for r in results.effort}
    best = max(("merge_all", "target_only", "ensemble"), key=lambda n: effort[n].valid_auc)
    assert effort["auto"].picked == best
    assert effort["auto"].effort.epochs == (effort["merge_all"].effort.epochs
                                            + effort["target_only"].effort.epochs)
    # forcing the ensemble to lead on validation: auto takes its model
    valid = ValidationRows(np.array([0, 1]), np.array([0, 1]), {
        "merge_all": [np.array([0.6, 0.4])], "ensemble": [np.array([0.4, 0.6])]})
    efforts = [EffortRecord("merge_all", 0, POINT, 0.0, Effort(epochs=3)),
               EffortRecord("ensemble", 0, POINT, 1.0, Effort(epochs=3))]
    _, predictions, picked = runner.pick_auto(
        ["merge_all", "ensemble"], [0], [], {"merge_all": [np.zeros(1)],
                                             "ensemble": [np.ones(1)]}, efforts, valid, 0.0)
    assert picked[0].picked == "ensemble" and predictions[0].tolist() == [1.0]
    assert picked[0].effort.epochs == 3  # merge_all's; the ensemble's is its members'


def test_the_ensemble_never_reads_the_test_labels(data):
    source, target = data
    names = ["merge_all", "target_only", "ensemble", "auto"]
    results = _run(source, target, names)
    flipped = _run(source, with_test_labels_flipped(source, target, PROTOCOL), names)

    def chosen(res):
        return [(r.strategy, r.seed, r.choice, r.valid_auc, r.picked, r.details)
                for r in res.effort]

    assert chosen(flipped) == chosen(results)
    for name in names:
        np.testing.assert_array_equal(flipped.test_predictions[name],
                                      results.test_predictions[name])


def test_seed_ensemble_learner_starts_with_the_single_model(data, monkeypatch):
    source, target = data
    models = {}
    make = learners.SeedEnsembleLearner.__init__

    def spy(self, context, options=None):
        make(self, context, options)
        models["ensemble"] = self

    monkeypatch.setattr(learners.SeedEnsembleLearner, "__init__", spy)
    options = {"merge_all_ensemble": SeedEnsembleOptions(size=3)}
    results = _run(source, target, ["merge_all", "merge_all_ensemble"], options, seeds=[0])
    learner = models["ensemble"]
    assert len(learner.members) == 3
    assert learner.members[0].context.train.seed == 0
    assert len({m.context.train.seed for m in learner.members}) == 3
    # the first member is merge_all's own model: the same initialisation and batch order
    (single,) = [r for r in results.test_records() if r.strategy == "merge_all"]
    member = learner.members[0]
    cache = runner._EncodingCache(source, target, runner.split_by_time(source, target, PROTOCOL),
                                  None)
    split = runner.split_by_time(source, target, PROTOCOL)
    test = cache.get(member.context.plan.rows, False).target.subset(split.target_test)
    first = member.predict(test)
    assert runner.score_predictions(target.label[split.target_test], first,
                                    target.user[split.target_test]).auc == single.scores.auc
    # the others differ, and the learner predicts their mean logit
    others = [m.predict(test) for m in learner.members[1:]]
    assert all(not np.allclose(first, p) for p in others)
    np.testing.assert_allclose(learner.predict(test), logit_mean([first, *others]), rtol=1e-5)
    (effort,) = [r for r in results.effort if r.strategy == "merge_all_ensemble"]
    (alone,) = [r for r in results.effort if r.strategy == "merge_all"]
    assert effort.effort.fits == 3 * alone.effort.fits


def test_logit_mean_module_matches_the_numpy_mean():
    torch.manual_seed(0)
    models = [learners.build_base_model([5, 4], 1, TINY) for _ in range(3)]
    cat, num = torch.tensor([[1, 2], [4, 0], [3, 3]]), torch.randn(3, 1)
    with torch.no_grad():
        out = learners.LogitMean(models)(cat, num)
        expected = torch.stack([m(cat, num) for m in models]).mean(0)
    torch.testing.assert_close(out, expected)


def test_bad_ensemble_options():
    with pytest.raises(InputError, match="at least two distinct"):
        EnsembleOptions(("merge_all",))
    with pytest.raises(InputError, match="at least two distinct"):
        EnsembleOptions(("merge_all", "merge_all"))
    with pytest.raises(InputError, match="size must be an integer >= 1"):
        SeedEnsembleOptions(size=0)
    assert SeedEnsembleOptions().size == len(EnsembleOptions().members)
    config = config_from_dict({"strategies": ["merge_all", "ensemble"], "strategy_options": {
        "ensemble": {"members": ["merge_all", "target_only"]}}})
    assert config.options_for("ensemble") == PAIR


def test_bad_members_are_refused_before_training(data):
    source, target = data
    with pytest.raises(InputError, match="'auto' combines other strategies"):
        _run(source, target, ["ensemble"], {"ensemble": EnsembleOptions(("merge_all", "auto"))})
    with pytest.raises(InputError, match="Could not resolve strategy 'best'"):
        _run(source, target, ["ensemble"], {"ensemble": EnsembleOptions(("merge_all", "best"))})
