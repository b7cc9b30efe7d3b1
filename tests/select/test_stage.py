"""The keep rule shared by the selection estimators."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.errors import InputError
from graphsel.select.stage import DEFAULT_KEEP_QUANTILE, SelectionRule

SCORES = np.array([0.2, 0.9, 0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.6, 0.4])


def test_default_rule_keeps_top_half():
    rule = SelectionRule.from_params()
    assert (rule.kind, rule.value) == ("keep_quantile", DEFAULT_KEEP_QUANTILE)
    assert np.flatnonzero(rule.mask(SCORES)).tolist() == [1, 3, 5, 7, 8]


def test_threshold_keeps_scores_at_or_above():
    assert np.flatnonzero(SelectionRule.from_params(threshold=0.7).mask(SCORES)).tolist() == [
        1, 3, 5, 7]


def test_keep_quantile_keeps_exact_count_despite_float_rounding():
    # 0.3 * 10 == 3.0000000000000004 must keep 3 rows, not 4.
    mask = SelectionRule.from_params(keep_quantile=0.3).mask(SCORES)
    assert np.flatnonzero(mask).tolist() == [1, 3, 7]
    assert SelectionRule.from_params(keep_quantile=0.01).mask(SCORES).sum() == 1
    assert SelectionRule.from_params(keep_quantile=1.0).mask(SCORES).all()


def test_budget_breaks_ties_by_row_order_and_caps_at_n():
    assert np.flatnonzero(SelectionRule.from_params(budget=1).mask(SCORES)).tolist() == [1]
    assert SelectionRule.from_params(budget=100).mask(SCORES).all()


@pytest.mark.parametrize("params, message", [
    ({"threshold": 0.5, "budget": 3}, "at most one of"),
    ({"keep_quantile": 0.0}, "keep_quantile must be a number in (0.0, 1.0]"),
    ({"keep_quantile": 1.5}, "keep_quantile"),
    ({"budget": -1}, "budget must be an integer >= 1"),
    ({"budget": 0}, "budget must be an integer >= 1, got 0"),
    ({"budget": 2.5}, "budget"),
    ({"threshold": float("nan")}, "threshold"),
    ({"threshold": "high"}, "threshold"),
])
def test_bad_rules_are_input_errors(params, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SelectionRule.from_params(**params)
