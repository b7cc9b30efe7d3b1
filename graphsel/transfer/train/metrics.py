"""CTR metrics (AUC, GAUC, LogLoss, calibration) and a paired bootstrap to compare two
strategies.

All functions take numpy-compatible ``(N,)`` arrays: ``y`` labels 0/1, ``p`` scores (any
monotone score for AUC / GAUC; probabilities for LogLoss).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from graphsel.errors import InputError, check_integer, choice_error

__all__ = ["auc", "mean_auc", "gauc", "logloss", "CalibrationBins", "calibration_bins",
           "ECE_BINS", "expected_calibration_error", "paired_bootstrap_ci", "METRICS"]

LOGLOSS_EPS = 1e-7
ECE_BINS = 10
"""Equal-width bins of [0, 1] that :func:`expected_calibration_error` uses by default."""


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``).

    Raises:
        InputError: if ``y`` holds only one class (AUC is undefined).
    """
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise InputError("AUC is undefined: the labels hold only one class")
    return float(roc_auc_score(y, p))


def mean_auc(y: np.ndarray, p: np.ndarray) -> float:
    """The mean of the AUCs of the columns of ``p`` ``(N, S)`` (e.g. one strategy's runs
    with ``S`` seeds, each scored alone); a ``(N,)`` ``p`` is its :func:`auc`.

    Raises:
        InputError: if ``y`` holds only one class.

    >>> mean_auc([0, 1, 1], np.array([[0.1, 0.9], [0.5, 0.2], [0.7, 0.3]]))
    0.5
    """
    p = np.asarray(p)
    if p.ndim == 1:
        return auc(y, p)
    return float(np.mean([auc(y, p[:, column]) for column in range(p.shape[1])]))


def gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: per-user AUC averaged with weights = the user's number of impressions.

    ``GAUC = sum_u n_u * AUC_u / sum_u n_u`` over the users ``u`` whose labels hold both
    classes; users with one class have no AUC and are skipped (their impressions count in
    neither sum). Ties in ``p`` count one half, as in ``roc_auc_score``. Vectorised: one sort
    of all rows, no loop over users.

    Args:
        y: ``(N,)`` labels 0/1.
        p: ``(N,)`` scores.
        groups: ``(N,)`` user of each row (any hashable dtype numpy can sort).

    Raises:
        InputError: if lengths differ or no user has both classes.

    >>> gauc([1, 0, 0, 1, 0, 1], [0.9, 0.5, 0.95, 0.2, 0.8, 0.3], [0, 0, 0, 1, 1, 2])
    0.3
    """
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    if not len(y) == len(p) == group.size:
        raise InputError(f"y, p and groups must have one length, got {len(y)}, {len(p)}, "
                         f"{group.size}")
    sizes, valid, group_auc = _group_aucs(np.asarray(y), np.asarray(p), group.reshape(-1))
    if not valid.any():
        raise InputError("GAUC is undefined: no user has both a positive and a negative")
    return float(np.sum(sizes[valid] * group_auc[valid]) / np.sum(sizes[valid]))


def _group_aucs(
    y: np.ndarray, p: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group AUC in one sort: ``(sizes (U,), valid (U,), auc (U,))``.

    ``group`` holds codes ``0..U-1``, each present; ``valid`` marks groups with both classes
    (``auc`` is 0 elsewhere). Ties in ``p`` within a group count one half (mid-ranks).
    """
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    order = np.lexsort((p, group))
    group, p, y = group[order], p[order], y[order]
    n = len(y)
    # 1-based rank of each row inside its group; tied (group, p) runs get their mean rank.
    group_start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[group_start, n])
    rank = np.arange(n) - np.repeat(group_start, sizes) + 1.0
    run_start = np.flatnonzero(np.r_[True, (group[1:] != group[:-1]) | (p[1:] != p[:-1])])
    run_sizes = np.diff(np.r_[run_start, n])
    rank = np.repeat((rank[run_start] + rank[run_start + run_sizes - 1]) / 2.0, run_sizes)
    num_groups = len(group_start)
    positives = np.bincount(group, weights=y, minlength=num_groups)
    negatives = sizes - positives
    positive_rank_sum = np.bincount(group, weights=rank * y, minlength=num_groups)
    valid = (positives > 0) & (negatives > 0)
    group_auc = np.zeros(num_groups)
    pos, neg = positives[valid], negatives[valid]
    group_auc[valid] = (positive_rank_sum[valid] - pos * (pos + 1) / 2.0) / (pos * neg)
    return sizes, valid, group_auc


def logloss(y: np.ndarray, p: np.ndarray, eps: float = LOGLOSS_EPS) -> float:
    """Mean binary cross-entropy with ``p`` clipped to ``[eps, 1 - eps]`` (default ``1e-7``).

    >>> round(logloss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


@dataclass(frozen=True)
class CalibrationBins:
    """A reliability diagram's bins.

    Attributes:
        edges: ``(n_bins + 1,)`` bin edges over [0, 1].
        count: ``(n_bins,)`` predictions per bin.
        mean_pred: ``(n_bins,)`` mean prediction per bin, NaN where empty.
        frac_pos: ``(n_bins,)`` share of positive labels per bin, NaN where empty.
    """

    edges: np.ndarray
    count: np.ndarray
    mean_pred: np.ndarray
    frac_pos: np.ndarray


def calibration_bins(y_true: Any, p_pred: Any, n_bins: int = ECE_BINS) -> CalibrationBins:
    """Bins predictions into ``n_bins`` equal-width bins of [0, 1].

    Bin ``b`` holds ``edges[b] < p <= edges[b + 1]`` (the first bin also holds 0), the rule of
    ``sklearn.calibration.calibration_curve``, whose output equals the non-empty bins here.

    >>> bins = calibration_bins([0, 1, 1, 0], [0.25, 0.5, 0.75, 1.0], n_bins=2)
    >>> bins.count.tolist(), bins.mean_pred.tolist(), bins.frac_pos.tolist()
    ([2, 2], [0.375, 0.875], [0.5, 0.5])

    Args:
        y_true: ``(N,)`` labels, 0 or 1.
        p_pred: ``(N,)`` predicted probabilities in [0, 1].
        n_bins: number of bins, >= 1 (default :data:`ECE_BINS`, 10).

    Raises:
        InputError: for mismatched lengths, no rows, labels outside {0, 1} or probabilities
            outside [0, 1].
    """
    n_bins = check_integer("n_bins", n_bins, 1)
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    p_pred = np.asarray(p_pred, dtype=float).reshape(-1)
    if y_true.shape != p_pred.shape or len(y_true) == 0:
        raise InputError(f"y_true and p_pred must be non-empty and of one length, got "
                         f"{len(y_true)} and {len(p_pred)}")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise InputError(f"y_true must hold 0 or 1, got {y_true[~np.isin(y_true, (0, 1))][0]}")
    if not ((p_pred >= 0) & (p_pred <= 1)).all():
        raise InputError(f"p_pred must lie in [0, 1], got "
                         f"{p_pred[~((p_pred >= 0) & (p_pred <= 1))][0]}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p_pred)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=p_pred, minlength=n_bins) / count
        frac_pos = np.bincount(which, weights=y_true, minlength=n_bins) / count
    return CalibrationBins(edges, count, mean_pred, frac_pos)


def expected_calibration_error(y: Any, p: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: the row-weighted mean gap between the mean prediction
    and the share of positives over ``n_bins`` equal-width bins of [0, 1]
    (:func:`calibration_bins`), ``ECE = sum_b n_b / N * |mean_pred_b - frac_pos_b|``.

    0 for a perfectly calibrated model; a model that predicts the base rate everywhere has
    ECE 0 too (calibration is not discrimination: read it beside AUC).

    >>> expected_calibration_error([0, 1, 1, 0], [0.25, 0.5, 0.75, 1.0], n_bins=2)
    0.25

    Args:
        y: ``(N,)`` labels 0/1.
        p: ``(N,)`` predicted probabilities in [0, 1].
        n_bins: default :data:`ECE_BINS` (10).

    Raises:
        InputError: as :func:`calibration_bins`.
    """
    bins = calibration_bins(y, p, n_bins)
    filled = bins.count > 0
    gaps = np.abs(bins.mean_pred[filled] - bins.frac_pos[filled])
    return float(np.dot(bins.count[filled], gaps) / bins.count.sum())


METRICS: dict[str, Callable[..., float]] = {"auc": auc, "mean_auc": mean_auc, "gauc": gauc,
                                            "logloss": logloss,
                                            "ece": expected_calibration_error}
"""Metrics by name, for configs and :func:`paired_bootstrap_ci`."""


def paired_bootstrap_ci(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    metric: str | Callable[..., float],
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Difference ``metric(a) - metric(b)`` on one test set, with a paired bootstrap CI.

    Each replicate draws ONE set of resampled indices and scores both strategies on it, so
    the noise of the test set cancels in the difference. With ``groups`` the replicate draws
    whole users (all their rows) with replacement instead of rows; a user drawn twice
    counts as two users. A metric whose signature has a ``groups`` parameter (``gauc``)
    receives the replicate's group ids. Replicates where the metric is undefined (e.g. one
    class only) are dropped. The built-in metrics score a replicate from how often each row
    (user) was drawn, in O(N) without copying it; a callable gets the copied rows. Both see
    the same draws, so they give the same interval.

    Args:
        y: ``(N,)`` labels.
        p_a: ``(N,)`` scores of strategy a.
        p_b: ``(N,)`` scores of strategy b.
        metric: ``"auc"``, ``"mean_auc"`` (``p_a`` and ``p_b`` may then be ``(N, S)``,
            e.g. ``S`` seeds), ``"gauc"``, ``"logloss"`` or a callable ``metric(y, p)`` (or
            ``metric(y, p, groups)``).
        n_boot: replicates. Default 1000.
        seed: seeds the resampling. Default 0.
        groups: ``(N,)`` user of each row; resample users instead of rows. Required by
            GAUC. Default None.
        level: coverage of the percentile interval. Default 0.95.

    Returns:
        ``(diff, lo, hi)``: the observed difference and the interval's bounds.

    Raises:
        InputError: an unknown metric name, mismatched lengths, GAUC without ``groups``, or
            no replicate where the metric is defined.
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise choice_error("metric", metric, list(METRICS))
        metric = METRICS[metric]
    y, p_a, p_b = np.asarray(y), np.asarray(p_a), np.asarray(p_b)
    if not len(y) == len(p_a) == len(p_b) or (groups is not None and len(groups) != len(y)):
        raise InputError("y, p_a, p_b (and groups) must have one length")
    takes_groups = "groups" in inspect.signature(metric).parameters
    if takes_groups and groups is None:
        raise InputError(f"metric {getattr(metric, '__name__', metric)!r} needs groups")
    if n_boot < 1 or not 0.0 < level < 1.0:
        raise InputError(f"need n_boot >= 1 and 0 < level < 1, got {n_boot}, {level}")

    def score(rows: np.ndarray | slice, group_ids: np.ndarray | None) -> float:
        if not takes_groups:
            return metric(y[rows], p_a[rows]) - metric(y[rows], p_b[rows])
        return (metric(y[rows], p_a[rows], groups=group_ids)
                - metric(y[rows], p_b[rows], groups=group_ids))

    diff = score(slice(None), groups)
    rng = np.random.default_rng(seed)
    group_codes = None
    if groups is not None:
        _, group_codes = np.unique(np.asarray(groups), return_inverse=True)
        group_codes = group_codes.reshape(-1)
    fast = _count_scorers(metric, y, p_a, p_b, group_codes)
    replicates = np.full(n_boot, np.nan)
    for b in range(n_boot):
        # Draws are the same on both paths, so the fast one gives the generic one's result.
        if group_codes is None:
            rows = rng.integers(0, len(y), len(y))
            if fast is not None:
                replicates[b] = fast(np.bincount(rows, minlength=len(y)))
                continue
            group_ids = None
        else:
            num_groups = group_codes.max() + 1
            drawn = rng.integers(0, num_groups, num_groups)
            if fast is not None:
                replicates[b] = fast(np.bincount(drawn, minlength=num_groups))
                continue
            rows, group_ids = _rows_of_groups(group_codes, drawn)
        try:
            replicates[b] = score(rows, group_ids)
        except InputError:
            continue
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) == 0:
        raise InputError("the metric is undefined on every bootstrap replicate")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(replicates, [tail, 100.0 - tail])
    return float(diff), float(lo), float(hi)


def _rows_of_groups(group_codes: np.ndarray, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the drawn groups, in draw order, and a fresh group id per draw."""
    rows_by_group = np.argsort(group_codes, kind="stable")
    sizes_by_group = np.bincount(group_codes)
    starts = np.r_[0, np.cumsum(sizes_by_group)[:-1]]
    sizes = sizes_by_group[drawn]
    # Row j of the replicate is row (j - start of its draw) of the drawn group.
    within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return rows_by_group[np.repeat(starts[drawn], sizes) + within], np.repeat(
        np.arange(len(drawn)), sizes)


def _count_scorers(
    metric: Callable[..., float], y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray,
    group_codes: np.ndarray | None,
) -> Callable[[np.ndarray], float] | None:
    """For the built-in metrics, ``counts -> metric(a) - metric(b)`` on a replicate given
    by how often each row (or, with ``group_codes``, each group) was drawn.

    A resample is a multiset of rows, so each metric is a count-weighted sum over the
    original rows, computed in O(N) after one sort instead of re-sorting a copied
    replicate. GAUC resamples whole users, whose AUC does not change: a replicate is the
    count-weighted mean of the precomputed per-user AUCs. Returns None for other metrics.
    """
    if metric is gauc:
        if group_codes is None:
            return None
        per_user = [_group_aucs(y, p, group_codes) for p in (p_a, p_b)]

        def gauc_diff(draws: np.ndarray) -> float:
            values = []
            for sizes, valid, group_auc in per_user:
                weights = draws * sizes * valid
                total = weights.sum()
                values.append(np.dot(weights, group_auc) / total if total > 0 else np.nan)
            return values[0] - values[1]

        return gauc_diff
    expand = (lambda draws: draws) if group_codes is None else (lambda draws: draws[group_codes])
    if metric is logloss:
        losses = [-(y * np.log(q) + (1 - y) * np.log1p(-q)) for q in
                  (np.clip(np.asarray(p, dtype=np.float64), LOGLOSS_EPS, 1 - LOGLOSS_EPS)
                   for p in (p_a, p_b))]

        def logloss_diff(draws: np.ndarray) -> float:
            counts = expand(draws)
            return float(np.dot(counts, losses[0] - losses[1]) / counts.sum())

        return logloss_diff
    if metric is auc or metric is mean_auc:
        columns = [[_SortedScores(y, column) for column in np.asarray(p).reshape(len(y), -1).T]
                   for p in (p_a, p_b)]

        def auc_diff(draws: np.ndarray) -> float:
            counts = expand(draws)
            means = [np.mean([scores.auc(counts) for scores in side]) for side in columns]
            return float(means[0] - means[1])

        return auc_diff
    return None


class _SortedScores:
    """Scores sorted once; :meth:`auc` of any row multiset (counts) in O(N)."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        self.order = np.argsort(p, kind="stable")
        p_sorted = np.asarray(p)[self.order]
        self.y = np.asarray(y, dtype=np.float64)[self.order]
        self.run = np.cumsum(np.r_[0, p_sorted[1:] != p_sorted[:-1]])  # tie run of each row

    def auc(self, counts: np.ndarray) -> float:
        counts = counts[self.order].astype(np.float64)
        positives = np.bincount(self.run, weights=counts * self.y)
        negatives = np.bincount(self.run, weights=counts * (1.0 - self.y))
        total_pos, total_neg = positives.sum(), negatives.sum()
        if total_pos == 0 or total_neg == 0:
            return np.nan
        # A positive beats every negative of a lower run and ties half of its own run's.
        below = np.cumsum(negatives) - negatives
        return float(np.dot(positives, below + 0.5 * negatives) / (total_pos * total_neg))

