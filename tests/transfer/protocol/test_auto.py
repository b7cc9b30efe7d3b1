"""auto's one-standard-error rule on hand-built validation rows (pick_auto)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from graphsel.transfer.protocol.results import Effort, EffortRecord, GridPoint
from graphsel.transfer.protocol.runner import ValidationRows, pick_auto

POINT = GridPoint(0.001, 0.0, False)


def _validation():
    """400 validation rows of 200 users; merge_all's scores are noisy, ``close`` moves 14
    positives up and eight down (a lead well within noise), ``strong`` ranks every row
    right."""
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.4).astype(np.float32)
    users = np.repeat(np.arange(200), 2)
    merge = (y + rng.normal(0.0, 0.8, 400)).astype(np.float32)
    close = merge.copy()
    positives = np.flatnonzero(y == 1)
    close[positives[:14]] += 0.6
    close[positives[14:22]] -= 0.6
    strong = (y + rng.normal(0.0, 0.05, 400)).astype(np.float32)
    predictions = {"merge_all": merge, "close": close, "strong": strong}
    aucs = {name: float(roc_auc_score(y, p)) for name, p in predictions.items()}
    return y, users, predictions, aucs


def _pick(names, margin, with_valid=True):
    y, users, predictions, aucs = _validation()
    efforts = [EffortRecord(name, 0, POINT, aucs[name], Effort(epochs=1)) for name in names]
    test = {name: [np.full(3, i, np.float32)] for i, name in enumerate(names)}
    valid = ValidationRows(y, users, {name: [predictions[name]] for name in names})
    _, test_predictions, auto = pick_auto(names, [0], [], test, efforts,
                                          valid if with_valid else None, margin, n_boot=200)
    assert test_predictions[0].tolist() == test[auto[0].picked][0].tolist()
    return auto[0], aucs


def test_a_lead_within_noise_keeps_merge_all():
    auto, aucs = _pick(["merge_all", "close"], margin=1.0)
    assert aucs["close"] > aucs["merge_all"]  # the contender does lead on validation
    assert auto.picked == "merge_all" and auto.valid_auc == aucs["merge_all"]
    assert auto.details["contender"] == "close"
    assert auto.details["valid_auc_diff"] == pytest.approx(aucs["close"] - aucs["merge_all"],
                                                           abs=1e-6)
    assert auto.details["valid_lo"] <= 0 < auto.details["valid_auc_diff"]
    assert auto.effort.epochs == 2  # auto's cost is both candidates'


def test_a_lead_beyond_noise_is_taken_and_margin_zero_is_the_plain_argmax():
    auto, aucs = _pick(["close", "merge_all", "strong"], margin=1.0)
    assert auto.picked == "strong" and auto.details["contender"] == "strong"
    assert auto.details["valid_lo"] > 0
    # margin 0, no validation rows, or no merge_all: the best validation AUC outright
    assert _pick(["merge_all", "close"], margin=0.0)[0].picked == "close"
    assert _pick(["merge_all", "close"], margin=1.0, with_valid=False)[0].picked == "close"
    no_anchor, _ = _pick(["close", "strong"], margin=1.0)
    assert no_anchor.picked == "strong" and no_anchor.details == {}
