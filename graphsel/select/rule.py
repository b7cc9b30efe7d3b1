"""Shared plumbing of the selection estimators: parameter checks and the keep rule.

Every selection stage (:class:`~graphsel.select.domain.DomainClassifier`,
:class:`~graphsel.select.neighbors.NeighborScorer`) scores the source candidates and keeps some of
them by exactly one rule, implemented once here so that stages agree on what
``threshold``, ``keep_quantile`` and ``budget`` mean:

- ``threshold=t``: keep candidates whose score is ``>= t``;
- ``keep_quantile=q``: keep the top ``ceil(q * N_cand)`` candidates by score (``q`` in
  ``(0, 1]``; ``0.2`` keeps the top 20 %);
- ``budget=K``: keep the top ``K`` candidates (all of them if ``K >= N_cand``).

At most one may be given; with none, :data:`DEFAULT_KEEP_QUANTILE` applies. Ties in the
"top" rules are broken by row order (the earlier row wins), so masks are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import check_is_fitted

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_integer, check_real

__all__ = [
    "DEFAULT_KEEP_QUANTILE",
    "SelectionRule",
    "SupportMixin",
]

DEFAULT_KEEP_QUANTILE = 0.5


@dataclass(frozen=True)
class SelectionRule:
    """One validated keep rule: ``kind`` is ``"threshold"``, ``"keep_quantile"`` or ``"budget"``.

    >>> rule = SelectionRule.from_params(budget=2)
    >>> rule.mask(np.array([0.1, 0.9, 0.5, 0.9])).tolist()
    [False, True, False, True]
    """

    kind: str
    value: float

    @classmethod
    def from_params(
        cls,
        threshold: float | None = None,
        keep_quantile: float | None = None,
        budget: int | None = None,
    ) -> SelectionRule:
        """Validates the three mutually exclusive estimator parameters.

        Raises:
            InputError: if more than one is given, or one is out of range.
        """
        given = {name: value for name, value in
                 (("threshold", threshold), ("keep_quantile", keep_quantile), ("budget", budget))
                 if value is not None}
        if len(given) > 1:
            raise InputError(f"give at most one of threshold, keep_quantile, budget; got "
                             f"{', '.join(f'{k}={v!r}' for k, v in given.items())}")
        if not given:
            return cls("keep_quantile", DEFAULT_KEEP_QUANTILE)
        (kind, value), = given.items()
        if kind == "threshold":
            value = check_real("threshold", value, -math.inf, math.inf)
        elif kind == "keep_quantile":
            value = check_real("keep_quantile", value, 0.0, 1.0, low_open=True)
        else:
            value = check_integer("budget", value, 0)
        return cls(kind, value)

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """Boolean mask ``(N_cand,)`` of the candidates this rule keeps given ``scores``."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.kind == "threshold":
            return scores >= self.value
        n = len(scores)
        if self.kind == "keep_quantile":
            # The small epsilon keeps 0.3 * 10 == 3.0000000000000004 from rounding up to 4.
            keep = min(n, math.ceil(self.value * n - 1e-9))
        else:
            keep = min(n, int(self.value))
        mask = np.zeros(n, dtype=bool)
        mask[np.argsort(-scores, kind="stable")[:keep]] = True
        return mask


class SupportMixin:
    """``get_support`` / ``transform`` for an estimator with a selection rule.

    The estimator declares the parameters ``threshold``, ``keep_quantile`` and ``budget``,
    calls :meth:`_selection_rule` once at the top of ``fit`` (so bad values fail before any
    work), and sets ``support_``, the ``(N_cand,)`` mask of the kept candidates.
    """

    threshold: float | None
    keep_quantile: float | None
    budget: int | None

    def _selection_rule(self) -> SelectionRule:
        return SelectionRule.from_params(self.threshold, self.keep_quantile, self.budget)

    def get_support(self, indices: bool = False) -> np.ndarray:
        """The kept candidates: a boolean mask ``(N_cand,)``, or their row indices.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
        """
        check_is_fitted(self, "support_")
        return np.flatnonzero(self.support_) if indices else self.support_.copy()

    def transform(self, candidates: InteractionLog) -> InteractionLog:
        """The kept rows of ``candidates`` (the log given to ``fit``)."""
        mask = self.get_support()
        if len(candidates) != len(mask):
            raise InputError(f"{candidates.name}: has {len(candidates)} rows but the estimator "
                             f"was fitted on {len(mask)} candidates")
        return candidates[mask]
