"""AUC, GAUC, LogLoss against hand-computed values and scikit-learn; the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from graphsel.errors import InputError
from graphsel.transfer.train.metrics import (
    ECE_BINS,
    auc,
    expected_calibration_error,
    gauc,
    logloss,
    mean_auc,
    paired_bootstrap_ci,
)


def test_auc_matches_sklearn_and_rejects_one_class():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.random(200).round(1)  # rounding makes ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert auc([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3]) == 0.75  # 3 of 4 pairs ordered
    with pytest.raises(InputError, match="one class"):
        auc([1, 1], [0.2, 0.3])


def test_gauc_by_hand():
    # user 0: positive 0.9 beats 0.5, loses to 0.95 -> AUC 1/2, 3 impressions
    # user 1: positive 0.2 below negative 0.8 -> AUC 0, 2 impressions
    # user 2: one class only -> skipped
    # user 3: positive and negative tied at 0.4 -> AUC 1/2, 2 impressions
    y = [1, 0, 0, 1, 0, 1, 1, 1, 0]
    p = [0.9, 0.5, 0.95, 0.2, 0.8, 0.3, 0.7, 0.4, 0.4]
    users = ["a", "a", "a", "b", "b", "c", "c", "d", "d"]
    assert gauc(y, p, users) == pytest.approx((3 * 0.5 + 2 * 0.0 + 2 * 0.5) / 7, abs=1e-15)


def test_gauc_matches_per_user_sklearn_loop():
    rng = np.random.default_rng(1)
    n = 600
    users = rng.integers(0, 60, n)
    y = rng.integers(0, 2, n)
    p = rng.random(n).round(2)
    total = weight = 0.0
    for user in np.unique(users):
        rows = users == user
        if len(np.unique(y[rows])) == 2:
            total += rows.sum() * roc_auc_score(y[rows], p[rows])
            weight += rows.sum()
    assert gauc(y, p, users) == pytest.approx(total / weight, abs=1e-12)
    with pytest.raises(InputError, match="no user has both"):
        gauc([1, 0], [0.3, 0.4], [1, 2])


def test_logloss_matches_sklearn_and_clips():
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 2, 100), rng.uniform(0.01, 0.99, 100)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)
    assert logloss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-7), rel=1e-6)


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    n = 400
    users = rng.integers(0, 40, n)
    y = rng.integers(0, 2, n)
    p_a = np.clip(0.5 * y + rng.normal(0.25, 0.3, n), 0.01, 0.99)  # informative
    p_b = rng.uniform(0.01, 0.99, n)  # noise
    return y, p_a, p_b, users


def test_bootstrap_equals_a_reference_loop(scores):
    y, p_a, p_b, _ = scores
    diff, lo, hi = paired_bootstrap_ci(y, p_a, p_b, "auc", n_boot=50, seed=7)
    rng = np.random.default_rng(7)
    replicates = []
    for _ in range(50):
        rows = rng.integers(0, len(y), len(y))
        replicates.append(roc_auc_score(y[rows], p_a[rows]) - roc_auc_score(y[rows], p_b[rows]))
    assert diff == pytest.approx(roc_auc_score(y, p_a) - roc_auc_score(y, p_b), abs=1e-12)
    np.testing.assert_allclose([lo, hi], np.percentile(replicates, [2.5, 97.5]), atol=1e-12)
    assert lo <= diff <= hi and lo > 0


@pytest.mark.parametrize("name, by_user", [("auc", False), ("auc", True),
                                           ("logloss", False), ("logloss", True),
                                           ("gauc", True)])
def test_built_in_metrics_fast_path_equals_the_generic_path(scores, name, by_user):
    """Named metrics score a replicate from draw counts; a wrapped callable re-indexes the
    rows. Same draws, so the same interval."""
    y, p_a, p_b, users = scores
    groups = users if by_user else None
    if name == "gauc":
        def generic(y, p, groups):
            return gauc(y, p, groups)
    else:
        def generic(y, p):
            return {"auc": auc, "logloss": logloss}[name](y, p)
    fast = paired_bootstrap_ci(y, p_a, p_b, name, n_boot=30, seed=4, groups=groups)
    slow = paired_bootstrap_ci(y, p_a, p_b, generic, n_boot=30, seed=4, groups=groups)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("by_user", [False, True])
def test_mean_auc_over_seed_columns_fast_path_equals_sklearn(scores, by_user):
    y, p_a, p_b, users = scores
    rng = np.random.default_rng(5)
    seeds_a = np.stack([p_a, p_a + rng.normal(0, 0.2, len(y))], axis=1)  # (N, 2): 2 seeds
    seeds_b = np.stack([p_b, rng.uniform(size=len(y))], axis=1)
    assert mean_auc(y, seeds_a) == pytest.approx(
        (roc_auc_score(y, seeds_a[:, 0]) + roc_auc_score(y, seeds_a[:, 1])) / 2, abs=1e-12)
    assert mean_auc(y, p_a) == auc(y, p_a)

    def generic(y, p):
        return float(np.mean([roc_auc_score(y, p[:, s]) for s in range(p.shape[1])]))

    groups = users if by_user else None
    fast = paired_bootstrap_ci(y, seeds_a, seeds_b, "mean_auc", n_boot=30, seed=4,
                               groups=groups)
    slow = paired_bootstrap_ci(y, seeds_a, seeds_b, generic, n_boot=30, seed=4, groups=groups)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_bootstrap_is_seeded(scores):
    y, p_a, p_b, _ = scores
    first = paired_bootstrap_ci(y, p_a, p_b, logloss, n_boot=100, seed=0)
    assert paired_bootstrap_ci(y, p_a, p_b, logloss, n_boot=100, seed=0) == first
    assert paired_bootstrap_ci(y, p_a, p_b, logloss, n_boot=100, seed=1) != first


def test_bootstrap_is_paired(scores):
    """A monotone transform of p_a has the same AUC on every resample: only a paired
    bootstrap (one set of indices for both) gives an interval of width exactly 0."""
    y, p_a, _, users = scores
    assert paired_bootstrap_ci(y, p_a, p_a ** 2, "auc", n_boot=100) == (0.0, 0.0, 0.0)
    assert paired_bootstrap_ci(y, p_a, p_a ** 2, "gauc", n_boot=50,
                               groups=users) == (0.0, 0.0, 0.0)


def test_bootstrap_over_users_for_gauc(scores):
    y, p_a, p_b, users = scores
    diff, lo, hi = paired_bootstrap_ci(y, p_a, p_b, gauc, n_boot=100, seed=0, groups=users)
    assert diff == pytest.approx(gauc(y, p_a, users) - gauc(y, p_b, users), abs=1e-12)
    assert lo <= diff <= hi


def test_user_resampling_keeps_whole_users():
    seen = []

    def spy(y, p, groups):
        seen.append((np.asarray(y).copy(), np.asarray(groups).copy()))
        return 0.0

    # user 10's rows have labels (1, 1), user 20's rows (0, 0, 0): a resample must keep
    # each drawn user's rows together.
    y, users = np.array([1, 0, 1, 0, 0]), np.array([10, 20, 10, 20, 20])
    paired_bootstrap_ci(y, np.zeros(5), np.zeros(5), spy, n_boot=20, seed=0, groups=users)
    for labels, groups in seen[2:]:  # the first two calls score the full test set
        for group in np.unique(groups):
            members = labels[groups == group]
            assert members.tolist() in ([1, 1], [0, 0, 0])


def test_bootstrap_errors(scores):
    y, p_a, p_b, _ = scores
    with pytest.raises(InputError, match="Could not resolve metric 'acc'"):
        paired_bootstrap_ci(y, p_a, p_b, "acc")
    with pytest.raises(InputError, match="needs groups"):
        paired_bootstrap_ci(y, p_a, p_b, "gauc")
    with pytest.raises(InputError, match="one length"):
        paired_bootstrap_ci(y, p_a[:-1], p_b, "auc")


def test_expected_calibration_error_by_hand():
    # 4 equal-width bins. (0, 0.25]: 0.1, 0.2 with labels 0, 1 -> |0.15 - 0.5| = 0.35, 2 rows;
    # (0.25, 0.5]: empty; (0.5, 0.75]: 0.7 with label 1 -> |0.7 - 1| = 0.3, 1 row;
    # (0.75, 1]: 0.8, 0.9, 1.0 with labels 1, 1, 0 -> |0.9 - 2/3| = 0.2333.., 3 rows.
    y = [0, 1, 1, 1, 1, 0]
    p = [0.1, 0.2, 0.7, 0.8, 0.9, 1.0]
    expected = (2 * 0.35 + 1 * 0.3 + 3 * (0.9 - 2 / 3)) / 6
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx(expected, abs=1e-12)
    assert expected_calibration_error([0, 1], [0.5, 0.5]) == 0.0  # the base rate: calibrated
    assert expected_calibration_error([1, 1], [0.0, 0.0]) == 1.0
    assert ECE_BINS == 10
    with pytest.raises(InputError, match="p_pred must lie in"):
        expected_calibration_error([0, 1], [0.5, 1.5])
    with pytest.raises(InputError, match="n_bins must be an integer >= 1"):
        expected_calibration_error([0, 1], [0.5, 0.5], n_bins=0)


def test_expected_calibration_error_equals_a_loop_over_rows():
    rng = np.random.default_rng(3)
    p = rng.random(500)
    y = (rng.random(500) < p ** 2).astype(int)
    bins = np.ceil(p * 10).clip(1, 10) - 1  # bin b holds (b/10, (b+1)/10]
    slow = sum(np.sum(bins == b) / len(p) * abs(p[bins == b].mean() - y[bins == b].mean())
               for b in range(10) if np.any(bins == b))
    assert expected_calibration_error(y, p) == pytest.approx(slow, abs=1e-12)
