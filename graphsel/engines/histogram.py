"""Percentiles from a histogram, equal to numpy's on the expanded values.

A distributed engine does not collect every node's degree to the driver, only how many nodes
have each degree: a few thousand ``(degree, count)`` pairs however large the graph. The hub
cap ``"auto"`` of the graph stage (:func:`graphsel.select.expansion.resolve_max_degree`: the
99th percentile of the positive degrees, at least
:data:`~graphsel.select.expansion.AUTO_MIN_DEGREE`) is then numpy's linear-interpolation
percentile of the expanded degrees, reproduced here float for float (same virtual index
``(n - 1) * q``, same two neighbours, same ``_lerp``), so the Spark engine caps exactly the
hubs the in-memory stage caps (``tests/engines`` holds the two equal).

>>> import numpy as np
>>> degrees = np.array([1, 1, 2, 3, 3, 3, 7, 120])
>>> values, counts = np.unique(degrees, return_counts=True)
>>> float(percentile_from_histogram(values, counts, 99)) == float(np.percentile(degrees, 99))
True
>>> auto_max_degree(values, counts), auto_max_degree([], [])
(112.08999999999997, None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphsel.select.expansion import AUTO_MIN_DEGREE, AUTO_PERCENTILE

__all__ = ["auto_max_degree", "percentile_from_histogram"]



def percentile_from_histogram(values: Any, counts: Any, q: float) -> np.float64:
    """``np.percentile(np.repeat(values, counts), q)`` without expanding the values.

    Args:
        values: ``(K,)`` distinct integer values, in any order.
        counts: ``(K,)`` how many times each occurs (> 0).
        q: the percentile, in ``[0, 100]``.

    Returns:
        numpy's default (``"linear"``) percentile, bit for bit.

    Raises:
        ValueError: for an empty histogram or mismatched lengths.
    """
    values = np.asarray(values, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if values.shape != counts.shape or values.ndim != 1 or len(values) == 0:
        raise ValueError(f"a histogram needs equal non-empty 1-D values and counts, got shapes "
                         f"{values.shape} and {counts.shape}")
    order = np.argsort(values, kind="stable")
    values, ends = values[order], np.cumsum(counts[order])
    n = int(ends[-1])
    # numpy.percentile: q / 100, then the "linear" virtual index (n - 1) * q
    quantile = np.true_divide(q, 100)
    virtual = (n - 1) * quantile
    if virtual >= n - 1:  # numpy takes the last value (and lerps it with itself)
        last = values[-1]
        return np.float64(last + (last - last) * 0.0)
    previous = math.floor(virtual)
    gamma = float(virtual - np.floor(virtual))

    def at(rank: int) -> np.int64:
        return values[int(np.searchsorted(ends, rank, side="right"))]

    low, high = at(previous), at(previous + 1)
    difference = high - low
    result = low + difference * gamma
    if gamma >= 0.5:
        result = high - difference * (1 - gamma)
    return np.float64(result)


def auto_max_degree(values: Any, counts: Any) -> float | None:
    """The hub cap ``"auto"``: the 99th percentile of the positive degrees, at least
    :data:`~graphsel.select.expansion.AUTO_MIN_DEGREE`.

    Args:
        values: ``(K,)`` distinct degrees of the graph's users and items (both sides in one
            histogram); zeros are ignored, as nodes without edges are not in the graph.
        counts: ``(K,)`` nodes with each degree.

    Returns:
        The cap, or None when no node has an edge (nothing to cap).
    """
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    positive = values > 0
    if not positive.any():
        return None
    return float(max(AUTO_MIN_DEGREE, percentile_from_histogram(values[positive], counts[positive],
                                                           AUTO_PERCENTILE)))
