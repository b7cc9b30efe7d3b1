"""Ranking metrics, negatives, training with selection on validation, and the runner's config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphsel.data.sequences import build_sequences, leave_one_out
from graphsel.errors import InputError
from graphsel.transfer.sequential.evaluate import (
    compare_per_user,
    rank_metrics,
    rank_stage,
    sample_negatives,
    summarize,
)
from graphsel.transfer.sequential.options import (
    SequentialTrainConfig,
    SyNCRecConfig,
    next_item_config_from_dict,
)
from graphsel.transfer.sequential.train import fit_variant


def test_metrics_equal_hand_computed_ones():
    values = rank_metrics(np.array([0, 4, 9, 10]))
    assert values["hr@1"].tolist() == [1, 0, 0, 0]
    assert values["hr@5"].tolist() == [1, 1, 0, 0]
    assert values["hr@10"].tolist() == [1, 1, 1, 0]
    assert values["ndcg@5"].tolist() == pytest.approx([1, 1 / math.log2(6), 0, 0])
    assert values["ndcg@10"].tolist() == pytest.approx([1, 1 / math.log2(6),
                                                        1 / math.log2(11), 0])
    assert values["mrr"].tolist() == pytest.approx([1, 1 / 5, 1 / 10, 1 / 11])
    summary = summarize(np.array([0, 4, 9, 10]), np.array([0, 0, 1, 1]), ("a", "b"))
    assert summary["a"]["hr@5"] == 1.0 and summary["b"]["hr@5"] == 0.0
    assert summary["overall"]["mrr"] == pytest.approx((1 + 0.2 + 0.1 + 1 / 11) / 4, abs=1e-6)


def _data():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(30), 12)
    items = rng.integers(0, 60, len(users))
    return build_sequences(users, items, np.tile(np.arange(12), 30),
                           np.where(items < 40, "a", "b"))


def test_negatives_are_unseen_items_of_the_targets_domain_and_seeded():
    data = _data()
    split = leave_one_out(data)
    negatives = sample_negatives(split, split.test_target, 5, seed=1)
    assert (negatives == sample_negatives(split, split.test_target, 5, seed=1)).all()
    for user in range(data.num_users):
        chosen = negatives[user][negatives[user] > 0]
        assert len(set(chosen.tolist())) == len(chosen)
        assert not set(chosen.tolist()) & set(data.sequence(user).tolist())
        assert (data.item_domain[chosen] == data.item_domain[split.test_target[user]]).all()


def test_ties_rank_against_the_model_and_every_user_is_scored():
    data = _data()
    split = leave_one_out(data)
    model = fit_variant(split, SyNCRecConfig(hidden=8, num_layers=1, max_length=8),
                        SequentialTrainConfig(epochs=1, threads=1),
                        sample_negatives(split, split.valid_target, 5)).model
    with torch.no_grad():
        model.item_embedding.weight.zero_()  # every score ties
    negatives = sample_negatives(split, split.test_target, 5)
    ranks = rank_stage(model, split, "test", negatives, full=True, batch_size=7)
    assert ranks.sampled.tolist() == (negatives > 0).sum(1).tolist()
    assert len(ranks.full) == data.num_users


def test_training_keeps_the_best_validation_epoch():
    data = _data()
    split = leave_one_out(data)
    outcome = fit_variant(split, SyNCRecConfig(hidden=8, num_layers=1, max_length=8),
                          SequentialTrainConfig(epochs=3, patience=1, threads=1),
                          sample_negatives(split, split.valid_target, 5))
    scores = [e.valid_score for e in outcome.epochs]
    assert outcome.best_epoch == int(np.argmax(scores))
    assert all(len(e.gap) == 2 and sum(e.weights) == pytest.approx(1) for e in outcome.epochs)


def test_paired_comparison_of_per_user_values():
    a, b = np.array([0.5, 1.0, 0.0, 0.5]), np.array([0.5, 0.5, 0.0, 0.5])
    diff, lo, hi = compare_per_user(a, b, n_boot=200)
    assert diff == pytest.approx(0.125) and lo <= diff <= hi
    assert compare_per_user(a, a, n_boot=50) == (0.0, 0.0, 0.0)


def test_config_errors_name_the_key():
    with pytest.raises(InputError, match="unknown key 'train.epoch'"):
        next_item_config_from_dict({"train": {"epoch": 3}})
    with pytest.raises(InputError, match="Could not resolve model 'bert4rec'"):
        next_item_config_from_dict({"models": ["bert4rec"]})
    with pytest.raises(InputError, match="reference 'syncrec' must be one of models"):
        next_item_config_from_dict({"models": ["sasrec_cdsr"]})
