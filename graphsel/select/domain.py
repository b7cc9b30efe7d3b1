"""Domain adaptation stage: how target-like is each source candidate?

A classifier learns ``p(target | x)`` from the target samples (label 1) against the source
candidates (label 0). Scores are out-of-fold: the rows are split into ``cv`` stratified,
seeded folds and every row is scored by the model trained on the other folds, so no sample
is scored by a model that saw it (an in-sample score would reward memorisation, not
target-likeness). From ``p`` come

- the density-ratio weight ``w = p / (1 - p) * N_cand / N_tgt`` (``p_target(x) / p_cand(x)``
  under the classifier), clipped to ``weight_clip`` (default ``[0.05, 20]``) so that a
  handful of overconfident rows cannot dominate a weighted loss;
- the out-of-fold AUC, a measure of domain distance: about 0.5 when the candidates are
  indistinguishable from the target, near 1 when they are separable;
- a selection mask over the candidates (:class:`graphsel.select.stage.RuleMixin`): by
  default every candidate is kept, since the weights, not a cut, are the stage's output.

Features are those that carry over between domains (:func:`domain_features`): the side
columns (integer / string / bool are categorical, float numeric), the graph factors of the
user and of the item (:func:`graphsel.graph.embed.svd_factors`) and, only on request, user and item
ids restricted to the ids both sides share. Raw ids are left out by default: an id that
appears on one side only is a perfect domain label and teaches the classifier nothing that
generalises. For the same reason the item (user) factors are left out when the logs share no
item (user): each item's factor then stands for an item of one domain only (ML-1M with a
genre as the target: out-of-fold AUC 0.9999 with the item factors, every weight at the lower
clip; 0.85 without them). The ``domain`` column is never a feature.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from graphsel._memory import release_memory
from graphsel.data.log import InteractionLog, distinct_codes
from graphsel.errors import InputError, check_choice, check_integer, check_real
from graphsel.graph.embed import NORMALIZATIONS
from graphsel.select.stage import (
    ParamError,
    RuleMixin,
    Score,
    SelectionContext,
    SelectionRule,
    SelectionStage,
    StageDetails,
    register_stage,
)

__all__ = [
    "MODELS",
    "DomainClassifier",
    "DomainFeatures",
    "DomainReport",
    "FeatureRows",
    "domain_auc",
    "domain_features",
    "distinct_rows",
    "fold_probability",
    "ranked_categories",
    "stacked_rows",
]

MODELS: tuple[str, ...] = ("hgb", "logistic")
"""``"hgb"``: HistGradientBoostingClassifier with native categorical support (default);
``"logistic"``: one-hot categoricals + standardised numerics into a LogisticRegression."""

MAX_CATEGORIES = 255
"""Categories kept per column (the most frequent); the others become missing. It is
HistGradientBoosting's limit (``max_bins``)."""

_PREDICT_BLOCK = 16_384
"""Rows each fold's model scores at once: the model copies a block to float64 and bins it,
so each thread's temporaries are a few MB (65,536 rows: ML-1M's select peaked 11 MiB
higher, in the same time)."""

_ROW_BLOCK = 65_536
"""Rows made, hashed, compared or searched at once (:class:`FeatureRows`,
:func:`distinct_rows`, :func:`domain_auc`)."""

_MIN_REPEATS = 0.05
"""The share of repeated rows in a sample below which :func:`distinct_rows` leaves every row
its own group: grouping them would cost more than the scoring it saves."""

_NEVER_FEATURES = ("domain", "user_id", "item_id", "ts", "label")


class FeatureRows:
    """A log's ``(N, F)`` float32 feature matrix, made a block of rows at a time from its parts.

    Each part is ``(values, index)``: the part's columns are ``values[index]`` (a table of
    graph factors taken at the rows' users, a category's codes at the rows' values) or
    ``values`` itself when ``index`` is None. The classifier takes the rows it fits on and the
    rows it scores from it, so the whole matrix (ML-1M: 83 MB; the synthetic default at 6M
    source rows, 904k candidates and 270k target rows of 37 features: 174 MB) is never made;
    ``np.asarray`` makes it.

    Args:
        parts: ``(values, index)`` pairs; ``values`` 2-D, ``(N, w)`` or ``(T, w)`` with
            ``index`` ``(N,)`` rows of it (``-1``: its last row).
        n_rows: ``N``.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, parts: Sequence[tuple[np.ndarray, np.ndarray | None]],
                 n_rows: int) -> None:
        self.parts = tuple(parts)
        self.shape = (n_rows, sum(values.shape[1] for values, _ in self.parts))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """The ``(n, F)`` float32 rows ``rows`` (a slice or row numbers)."""
        n = len(range(*rows.indices(len(self)))) if isinstance(rows, slice) else len(rows)
        out = np.empty((n, self.shape[1]), dtype=np.float32)
        column = 0
        for values, index in self.parts:
            step = values.shape[1]
            out[:, column:column + step] = values[rows] if index is None else \
                values[index[rows]]
            column += step
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole matrix (``np.asarray(rows)``), made a block of rows at a time."""
        out = np.empty(self.shape, dtype=np.float32)
        for start in range(0, len(self), _ROW_BLOCK):
            out[start:start + _ROW_BLOCK] = self[start:start + _ROW_BLOCK]
        return out if dtype is None else out.astype(dtype, copy=False)


Matrix = np.ndarray | FeatureRows
"""Feature rows the classifier reads: a matrix, or one made on demand."""


@dataclass(frozen=True)
class DomainFeatures:
    """Features of several logs encoded together, so equal values get equal codes.

    Attributes:
        rows: one :class:`FeatureRows` per log, ``(N_i, F)`` float32; categorical columns
            hold codes ``0..MAX_CATEGORIES-1``, ``NaN`` is missing.
        names: ``(F,)`` feature names.
        categorical: ``(F,)`` bool, which features are categorical.
    """

    rows: tuple[FeatureRows, ...]
    names: tuple[str, ...]
    categorical: np.ndarray

    @property
    def matrices(self) -> tuple[np.ndarray, ...]:
        """Each log's whole ``(N_i, F)`` float32 matrix (made on each call)."""
        return tuple(np.asarray(rows) for rows in self.rows)


def domain_features(
    logs: Sequence[InteractionLog],
    columns: Sequence[str] | None = None,
    *,
    user_factors: np.ndarray | None = None,
    item_factors: np.ndarray | None = None,
    shared_ids: bool = False,
) -> DomainFeatures:
    """Encodes the same features for several logs (e.g. candidates and target) together.

    Categories are fitted on all logs at once, so a value means the same code everywhere.
    Only categorical values present in every log are encoded (others are missing, like ids
    with ``shared_ids``): a value that one domain alone has names the domain. A default
    column whose values no two logs share is left out.

    Args:
        logs: logs on one :class:`IdIndex`.
        columns: side-feature columns. Defaults to the ``feature_columns`` that every log has.
        user_factors: ``(U, d)`` graph factors of users, appended as ``user_svd_<j>`` when
            the logs share a user. Defaults to None (no graph features).
        item_factors: ``(I, d)`` graph factors of items, appended as ``item_svd_<j>`` when
            the logs share an item.
        shared_ids: also use ``user_id`` / ``item_id`` as categoricals, keeping only ids
            present in every log (others are missing). Defaults to False.

    Returns:
        The :class:`DomainFeatures`, ``matrices[i]`` lining up with ``logs[i]``.

    Raises:
        InputError: for a column a log lacks, the ``domain`` column or another reserved
            one, a column that is numeric in one log and categorical in another, or no
            feature at all.
    """
    logs = list(logs)
    if not logs:
        raise InputError("no interaction log given")
    explicit = columns is not None
    if columns is None:
        columns = [c for c in logs[0].feature_columns if all(c in log.columns for log in logs)]
    # each log's features as (values, rows) parts, the feature rows being values[rows]
    # (rows None: values as they are), which FeatureRows reads a block of rows at a time
    parts: list[list[tuple[np.ndarray, np.ndarray | None]]] = [[] for _ in logs]
    names: list[str] = []
    categorical: list[bool] = []

    def add(name: str, per_log: list[np.ndarray], is_categorical: bool,
            rows: list[np.ndarray] | None = None) -> None:
        for i, values in enumerate(per_log):
            values = np.asarray(values, dtype=np.float32)
            parts[i].append((values.reshape(len(values), -1), None if rows is None else rows[i]))
        width = parts[0][-1][0].shape[1]
        names.extend([name] if width == 1 else [f"{name}_{j}" for j in range(width)])
        categorical.extend([is_categorical] * width)

    for column in columns:
        if column in _NEVER_FEATURES:
            raise InputError(f"column '{column}' cannot be a domain feature"
                             + (": it is the answer" if column == "domain" else
                                " (ids: use shared_ids=True)" if column.endswith("_id") else ""))
        # a list, not a dict by name: two logs may share a name ("<memory>")
        kinds = [_is_numeric(log, column) for log in logs]
        if len(set(kinds)) > 1:
            described = ", ".join(f"{log.name}: {'numeric' if kind else 'categorical'}"
                                  for log, kind in zip(logs, kinds))
            raise InputError(f"column '{column}' is numeric in some logs and categorical in "
                             f"others ({described})")
        numeric = kinds[0]
        if numeric:
            add(column, [log.column(column) for log in logs], False)
            continue
        # A value seen in one domain only says which domain a row is from, not how alike
        # the domains are (Taobao's target is a set of categories): only shared values count.
        factorized = [log.factorize(column) for log in logs]
        shared = functools.reduce(pd.Index.intersection,
                                  [pd.Index(uniques) for _, uniques in factorized]).to_numpy()
        if len(shared) == 0 and not explicit:
            continue
        add(column, _encode_categories(factorized, allowed=shared), True,
            [rows for rows, _ in factorized])
    if shared_ids:
        for name in ("user", "item"):
            codes = [getattr(log, name) for log in logs]
            shared = functools.reduce(np.intersect1d, codes)
            factorized = [pd.factorize(c) for c in codes]
            add(f"{name}_id", _encode_categories(factorized, allowed=shared), True,
                [rows for rows, _ in factorized])
    for name, factors, attr in (("user_svd", user_factors, "user"),
                                ("item_svd", item_factors, "item")):
        if factors is not None and _share_nodes(logs, attr):
            add(name, [factors] * len(logs), False, [getattr(log, attr) for log in logs])
    if not names:
        raise InputError("no domain features: the logs share no side-feature column and no "
                         "graph factors were given")
    return DomainFeatures(tuple(FeatureRows(log_parts, len(log))
                                for log_parts, log in zip(parts, logs)),
                          tuple(names), np.asarray(categorical, dtype=bool))


def _share_nodes(logs: Sequence[InteractionLog], attr: str) -> bool:
    """Whether every log has at least one ``attr`` (``"user"`` / ``"item"``) in common."""
    shared = functools.reduce(np.intersect1d,
                              (getattr(log, f"unique_{attr}s")() for log in logs))
    return len(shared) > 0


def _is_numeric(log: InteractionLog, column: str) -> bool:
    """Whether ``column`` is a numeric feature: floats are, integers (codes, years) and
    strings are categories. A column of the table is told by its Arrow type, so an integer
    column is a category whether or not it has nulls (numpy would see floats where it has:
    ML-100K's source has 15 rows of unknown release year, its Horror target none); strings
    never become Python objects (:meth:`InteractionLog.factorize` encodes them)."""
    if column in log.columns:
        kind = log.schema.field(column).type
        if isinstance(kind, pa.DictionaryType):
            kind = kind.value_type
        if (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
            return False
    return bool(np.issubdtype(log.column(column).dtype, np.floating))


def ranked_categories(counts: Sequence[pd.Series],
                      allowed: np.ndarray | None = None) -> pd.Index:
    """The categories that get codes, code ``c`` at position ``c``: the :data:`MAX_CATEGORIES`
    most frequent over all logs (``allowed`` ones only), ties by first appearance.

    Args:
        counts: per log, the rows of each non-null value, indexed by value in order of first
            appearance (what ``pd.factorize`` and ``np.bincount`` give; a distributed engine
            gives it from a group-by).
        allowed: the values that may get a code. Defaults to None (all).

    >>> ranked_categories([pd.Series([2, 3], index=["a", "b"]),
    ...                    pd.Series([2, 1], index=["c", "b"])]).tolist()
    ['b', 'a', 'c']
    """
    total = pd.concat(list(counts)).groupby(level=0, sort=False).sum()
    if allowed is not None:
        total = total[total.index.isin(allowed)]
    return pd.Index(total.sort_values(ascending=False, kind="stable").index[:MAX_CATEGORIES])


def _encode_categories(
    factorized: list[tuple[np.ndarray, np.ndarray]], allowed: np.ndarray | None = None
) -> list[np.ndarray]:
    """Codes by descending frequency over all logs; rare, disallowed or null values -> NaN.

    ``factorized`` holds each log's ``pd.factorize`` ``(codes, uniques)``: the counting and
    the ranking then run on the distinct values, not on every row (ML-1M: a million rows,
    a few dozen values per column).

    Returns:
        Per log, the code of each of its distinct values and NaN last (for the null
        sentinel ``-1``): a row's code is ``encoded[codes]``.
    """
    kept = ranked_categories([pd.Series(np.bincount(codes[codes >= 0], minlength=len(uniques)),
                                        index=uniques) for codes, uniques in factorized],
                             allowed)
    encoded = []
    for _, uniques in factorized:
        # one code per distinct value, NaN appended for the null sentinel -1
        lookup = kept.get_indexer(uniques).astype(np.float32)
        lookup[lookup < 0] = np.nan
        encoded.append(np.append(lookup, np.float32(np.nan)))
    return encoded


@dataclass(frozen=True)
class DomainReport(StageDetails):
    """What the domain classifier reports: ``auc``, its out-of-fold AUC (6 decimals)."""

    auc: float

    def note(self) -> str:
        return f"AUC {self.auc:.3f}"


@register_stage("da")
class DomainClassifier(RuleMixin, SelectionStage):
    """Out-of-fold ``p(target | x)`` of source candidates, density-ratio weights and a mask.

    The ``"da"`` stage of :class:`~graphsel.select.pipeline.SampleSelector`; its score is
    ``p_target`` and its :meth:`sample_weight` the density ratio.

    Args:
        model: ``"hgb"`` or ``"logistic"`` (see :data:`MODELS`), or an unfitted scikit-learn
            classifier with ``predict_proba`` (cloned per fold). Defaults to ``"hgb"``.
        cv: stratified folds of the out-of-fold scores. Defaults to 5.
        columns: side-feature columns. Defaults to those candidates and target both have.
        embedding_dim: graph factors per user / item computed by :meth:`fit` when none are
            passed; 0 leaves graph features out. Defaults to 16.
        normalize: adjacency weighting of those factors (see
            :data:`graphsel.graph.embed.NORMALIZATIONS`). Defaults to ``"degree"``.
        shared_ids: also feed user / item ids both sides share. Defaults to False.
        max_iter: boosting rounds of ``"hgb"``. Defaults to 30.
        learning_rate: shrinkage of ``"hgb"``. Defaults to 0.3. Scoring every candidate
            costs one pass through every tree, so fewer, larger steps are the cheaper
            model: on ML-1M (992k candidates) 30 rounds at 0.3 on 30,000 drawn candidates
            fit and score the five folds in 6.8 CPU seconds instead of 23.7 (100 rounds at
            0.1 on 100,000), out-of-fold AUC 0.999997 against 0.999999 (synthetic default:
            0.9804 against 0.9809).
        max_train_candidates: each fold's model learns from at most this many candidates,
            drawn at random (every candidate is still scored, out of fold); the odds are
            rescaled by the share drawn, so ``p_target_`` and ``weight_`` keep the meaning
            they have on all candidates. Defaults to 30,000; None uses them all.
        max_train_target: the same cap on the target rows each fold's model learns from
            (every target row is still scored); the odds are rescaled by the share drawn
            too. Defaults to 30,000; None uses them all.
        weight_clip: ``(low, high)`` bounds of ``weight_``. Defaults to ``(0.05, 20.0)``.
        threshold: keep candidates with ``p_target_ >= threshold``. Defaults to None.
        keep_quantile: keep the top fraction by ``p_target_``. Defaults to None.
        budget: keep the top ``budget`` candidates. Defaults to None (with none of the three
            given, every candidate is kept: :attr:`DEFAULT_RULE`).
        random_state: seed of the folds, the SVD and the model. Defaults to 0.
        n_threads: OpenMP threads of each fold's fit. Defaults to 1: gradient boosting's
            spinning threads are several times slower than one when the cores are shared,
            so the folds run side by side instead (``n_jobs``). None leaves the library's
            setting.
        n_jobs: folds fitted at once, in threads (the fits release the GIL). Defaults to
            None: one per CPU core, at most ``cv``.

    Attributes:
        p_target_: ``(N_cand,)`` out-of-fold ``p(target | x)`` of the candidates.
        p_target_in_target_: ``(N_tgt,)`` the same for the target samples.
        weight_: ``(N_cand,)`` ``p / (1 - p) * N_cand / N_tgt`` clipped to ``weight_clip``.
        auc_: out-of-fold ROC AUC of target vs candidates (0.5: same domain).
        folds_: ``(N_cand + N_tgt,)`` fold of each row, candidates first; row ``r`` was scored
            by the model trained on the rows with ``folds_ != folds_[r]``.
        support_: ``(N_cand,)`` bool, the kept candidates (also :meth:`get_support`).
        feature_names_: the ``F`` feature names (``fit``; ``x0..`` for ``fit_arrays``).
        report_: a :class:`DomainReport`.
    """

    DEFAULT_RULE = SelectionRule("keep_quantile", 1.0)
    SCORE_RANGE = (0.0, 1.0)
    report_: DomainReport
    SCORES = (Score("p_target", "p_target_"),)

    def __init__(
        self,
        model: str | ClassifierMixin = "hgb",
        cv: int = 5,
        *,
        columns: Sequence[str] | None = None,
        embedding_dim: int = 16,
        normalize: str = "degree",
        shared_ids: bool = False,
        max_iter: int = 30,
        learning_rate: float = 0.3,
        max_train_candidates: int | None = 30_000,
        max_train_target: int | None = 30_000,
        weight_clip: tuple[float, float] = (0.05, 20.0),
        threshold: float | None = None,
        keep_quantile: float | None = None,
        budget: int | None = None,
        random_state: int = 0,
        n_threads: int | None = 1,
        n_jobs: int | None = None,
    ) -> None:
        self.model = model
        self.cv = cv
        self.columns = columns
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.shared_ids = shared_ids
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_train_candidates = max_train_candidates
        self.max_train_target = max_train_target
        self.weight_clip = weight_clip
        self.threshold = threshold
        self.keep_quantile = keep_quantile
        self.budget = budget
        self.random_state = random_state
        self.n_threads = n_threads
        self.n_jobs = n_jobs

    def check_params(self) -> None:
        self._selection_rule()
        if isinstance(self.model, str):
            check_choice("model", self.model, MODELS)
        elif not (hasattr(self.model, "fit") and hasattr(self.model, "predict_proba")):
            raise InputError(f"model must be one of {list(MODELS)} or a classifier with "
                             f"predict_proba, got {self.model!r}")
        check_integer("cv", self.cv, 2)
        check_integer("embedding_dim", self.embedding_dim, 0)
        check_integer("max_iter", self.max_iter, 1)
        check_real("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        for name in ("max_train_candidates", "max_train_target"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), 1)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        _clip_bounds(self.weight_clip)
        for name in ("n_threads", "n_jobs"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), 1)

    def min_target_rows(self) -> int:
        """``cv``: every out-of-fold split needs a target row in each fold."""
        return int(self.cv)

    def check_inputs(self, n_candidates: int, n_target: int) -> None:
        """``cv`` folds need ``cv`` target rows and ``cv`` candidates.

        >>> DomainClassifier(cv=5).check_inputs(100, 3)
        Traceback (most recent call last):
        ...
        graphsel.select.stage.ParamError: da.cv 5 needs at least 5 target rows (one per \
fold), got 3 (valid: 2 to 3)
        """
        for n, what in ((n_target, "target rows"), (n_candidates, "candidates")):
            if n < self.cv:
                choose = f" (valid: 2 to {n})" if n >= 2 else ""
                raise ParamError(self.name, "cv", self.cv, f"needs at least {self.cv} {what} "
                                 f"(one per fold), got {n}{choose}")

    def fit(
        self,
        candidates: InteractionLog,
        target: InteractionLog,
        *,
        context: SelectionContext | None = None,
        user_factors: np.ndarray | None = None,
        item_factors: np.ndarray | None = None,
    ) -> DomainClassifier:
        """Learns target vs candidates and scores every candidate out of fold.

        Args:
            candidates: ``N_cand`` source rows (label 0).
            target: ``N_tgt`` target rows (label 1), on the same :class:`IdIndex`.
            context: the selection's shared inputs; its graph factors
                (:meth:`SelectionContext.factors` with ``embedding_dim``, ``normalize``,
                ``random_state``: none when ``embedding_dim`` is 0). Defaults to a fresh one.
            user_factors: ``(U, d)`` graph factors to use instead (without ``context``).
                Defaults to None.
            item_factors: ``(I, d)``, given together with ``user_factors``.

        Returns:
            self
        """
        self.check_params()
        self.check_inputs(len(candidates), len(target))
        if candidates.index is not target.index:
            raise InputError(f"{candidates.name} and {target.name} do not share one id index; "
                             f"read them with read_pair or share_index")
        context = SelectionContext.for_fit(target, context, user_factors, item_factors)
        user_factors, item_factors = context.factors(
            candidates, self.embedding_dim, self.normalize, self.random_state) or (None, None)
        features = domain_features([candidates, target], self.columns,
                                   user_factors=user_factors, item_factors=item_factors,
                                   shared_ids=self.shared_ids)
        release_memory()  # what the features were made of
        x_candidates, x_target = features.rows
        self._fit_matrix(x_candidates, x_target, features.categorical)
        self.feature_names_ = list(features.names)
        return self

    def fit_arrays(
        self,
        x_candidates: np.ndarray,
        x_target: np.ndarray,
        categorical: np.ndarray | None = None,
    ) -> DomainClassifier:
        """Like :meth:`fit` on ready features.

        Args:
            x_candidates: ``(N_cand, F)`` candidate features (``NaN``: missing).
            x_target: ``(N_tgt, F)`` target features, encoded the same way.
            categorical: ``(F,)`` bool, columns holding category codes ``0..254``. Defaults
                to all numeric.

        Returns:
            self
        """
        self.check_params()
        x_candidates = np.asarray(x_candidates, dtype=np.float32)
        x_target = np.asarray(x_target, dtype=np.float32)
        if x_candidates.ndim != 2 or x_target.ndim != 2 or \
                x_candidates.shape[1] != x_target.shape[1]:
            raise InputError(f"x_candidates {x_candidates.shape} and x_target {x_target.shape} "
                             f"must be (N, F) matrices with the same F")
        n_features = x_candidates.shape[1]
        categorical = (np.zeros(n_features, dtype=bool) if categorical is None
                       else np.asarray(categorical, dtype=bool))
        if categorical.shape != (n_features,):
            raise InputError(f"categorical has shape {categorical.shape}, expected "
                             f"({n_features},)")
        self._fit_matrix(x_candidates, x_target, categorical)
        self.feature_names_ = [f"x{j}" for j in range(n_features)]
        return self

    def _fit_matrix(
        self, x_candidates: Matrix, x_target: Matrix, categorical: np.ndarray
    ) -> None:
        rule = self._selection_rule()
        n_cand, n_tgt = len(x_candidates), len(x_target)
        if min(n_cand, n_tgt) < self.cv:
            raise InputError(f"{self.cv}-fold scoring needs at least {self.cv} candidates and "
                             f"{self.cv} target samples, got {n_cand} and {n_tgt}")
        y = np.concatenate([np.zeros(n_cand, dtype=np.int8), np.ones(n_tgt, dtype=np.int8)])

        matrices = (x_candidates, x_target)
        folds = np.empty(len(y), dtype=np.int64)
        p_target = np.empty(len(y), dtype=np.float64)
        plans = self.fold_plans(y)
        # Rows with equal features get equal scores from a fold's model: each fold scores
        # the distinct rows among the rows it tests, once each (ML-1M: 152k distinct rows
        # of 1M, the features being user attributes and factors and two item columns)
        groups, first = distinct_rows(matrices)
        tested = [distinct_codes(groups[test], len(first)) for _, _, _, test in plans]
        scores = [np.empty(len(codes), dtype=np.float64) for codes in tested]

        def limit() -> contextlib.AbstractContextManager:
            # OpenMP's thread count is per calling thread (libgomp): a limit set around the
            # pool would not reach the pool's threads, so each task sets its own
            return (contextlib.nullcontext() if self.n_threads is None
                    else threadpool_limits(self.n_threads, user_api="openmp"))

        def fit_fold(plan: tuple[int, np.ndarray, float, np.ndarray]) -> ClassifierMixin:
            train = plan[1]
            with limit():
                return self.make_model(categorical).fit(stacked_rows(matrices, train), y[train])

        def predict_block(fold: int, block: slice) -> None:
            _, _, odds_scale, _ = plans[fold]
            model = models[fold].result()
            with limit():
                scores[fold][block] = fold_probability(
                    model, stacked_rows(matrices, first[tested[fold][block]]), odds_scale)

        # Every fit is queued before any prediction, so a prediction waits only for a fit
        # that already runs; the predictions (most of the work: the distinct rows, against a
        # sample of the candidates for the fits) then share the threads a block at a
        # time, and the model's float64 copy of the rows stays small.
        n_jobs = min(self.cv, self.n_jobs or os.cpu_count() or 1)
        with ThreadPoolExecutor(n_jobs) as pool:
            models = [pool.submit(fit_fold, plan) for plan in plans]
            blocks = [pool.submit(predict_block, fold, slice(start, start + _PREDICT_BLOCK))
                      for fold, codes in enumerate(tested)
                      for start in range(0, len(codes), _PREDICT_BLOCK)]
            for done in (*models, *blocks):
                done.result()  # re-raises a task's exception here
        by_group = np.empty(len(first), dtype=np.float64)  # a fold's score of each group
        for (fold, _, _, test), codes, fold_scores in zip(plans, tested, scores):
            by_group[codes] = fold_scores
            p_target[test] = by_group[groups[test]]
            folds[test] = fold
        p_cand = p_target[:n_cand]
        self.p_target_ = p_cand
        self.p_target_in_target_ = p_target[n_cand:]
        self.weight_ = self.density_weights(p_cand, n_cand, n_tgt)
        self.auc_ = domain_auc(p_cand, self.p_target_in_target_)
        self.folds_ = folds
        self.n_features_in_ = x_candidates.shape[1]
        self.support_ = rule.mask(self.p_target_)
        self.report_ = DomainReport(round(self.auc_, 6))

    def fold_plans(self, y: np.ndarray) -> list[tuple[int, np.ndarray, float, np.ndarray]]:
        """The out-of-fold plan of ``N = N_cand + N_tgt`` rows, candidates first.

        It depends on ``y``'s counts, ``cv``, ``max_train_candidates``, ``max_train_target``
        and ``random_state`` only, so another engine can fit the same models on the same
        rows.

        Args:
            y: ``(N,)`` 0 for a candidate, 1 for a target row.

        Returns:
            Per fold ``(fold, train, odds_scale, test)``: the rows its model learns from
            (sorted; the candidates and target rows among them drawn), the share of the
            fold's candidates drawn over the share of its target rows drawn (what its
            model's odds are scaled by, :func:`fold_probability`), and the rows it scores.
        """
        splitter = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        rng = np.random.default_rng(self.random_state)
        # the rows each fold learns from are drawn here, in fold order, so the result does
        # not depend on how the folds are scheduled
        return [(fold, *self._draw_rows(train, y, rng), test)
                for fold, (train, test) in enumerate(splitter.split(y, y))]

    def density_weights(self, p_candidates: np.ndarray, n_candidates: int,
                        n_target: int) -> np.ndarray:
        """``p / (1 - p) * N_cand / N_tgt`` of candidates' ``p_target``, clipped to
        ``weight_clip`` (float64)."""
        low, high = _clip_bounds(self.weight_clip)
        with np.errstate(divide="ignore"):
            odds = p_candidates / (1.0 - p_candidates)
        return np.clip(odds * (n_candidates / n_target), low, high)

    def sample_weight(self) -> np.ndarray:
        """``weight_``, the clipped density ratio of each candidate."""
        check_is_fitted(self, "weight_")
        return self.weight_

    def _draw_rows(self, train: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """``train`` with its candidates cut to ``max_train_candidates`` and its target rows
        to ``max_train_target`` (candidates drawn first); the share of candidates kept over
        the share of target rows kept."""
        parts, shares = [], []
        for label, cap in ((0, self.max_train_candidates), (1, self.max_train_target)):
            rows = train[y[train] == label]
            if cap is not None and len(rows) > cap:
                parts.append(rng.choice(rows, cap, replace=False))
                shares.append(cap / len(rows))
            else:
                parts.append(rows)
                shares.append(1.0)
        return np.sort(np.concatenate(parts)), shares[0] / shares[1]

    def make_model(self, categorical: np.ndarray) -> ClassifierMixin:
        """An unfitted model of one fold, for features whose ``categorical`` columns hold codes."""
        if not isinstance(self.model, str):
            return clone(self.model)
        if self.model == "hgb":
            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                categorical_features=categorical if categorical.any() else None,
                random_state=self.random_state)
        encode = ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore"), np.flatnonzero(categorical)),
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()),
             np.flatnonzero(~categorical)),
        ])
        return make_pipeline(encode, LogisticRegression(max_iter=1000,
                                                        random_state=self.random_state))


def fold_probability(model: ClassifierMixin, x: np.ndarray, odds_scale: float) -> np.ndarray:
    """``p(target | x)`` from a fold's fitted model, its odds scaled by ``odds_scale``: a
    model that saw a share ``s`` of the candidates and ``t`` of the target rows overstates
    the odds by ``t / s`` (``odds_scale`` is ``s / t``, :meth:`DomainClassifier.fold_plans`).

    Returns:
        ``(N,)`` float64.
    """
    p = model.predict_proba(x)[:, 1]
    odds = p / np.maximum(1.0 - p, 1e-12) * odds_scale
    return odds / (1.0 + odds)


def domain_auc(p_candidates: np.ndarray, p_target: np.ndarray,
               candidate_counts: np.ndarray | None = None) -> float:
    """ROC AUC of the target rows (positives) against the candidates, ties counting one half:
    ``roc_auc_score``'s value from one sort of the target's scores (the small side) and two
    binary searches per candidate, instead of a sort of every row (ML-1M: 0.17 s).

    Args:
        p_candidates: ``(N_cand,)`` the candidates' scores (or their distinct values).
        p_target: ``(N_tgt,)`` the target rows' scores.
        candidate_counts: ``(N_cand,)`` how many candidates have each score. Defaults to 1.

    >>> domain_auc(np.array([0.1, 0.5, 0.7]), np.array([0.5, 0.9]))
    0.75
    """
    positives = np.sort(np.asarray(p_target, dtype=np.float64))
    scores = np.asarray(p_candidates, dtype=np.float64)
    counts = (np.ones(len(scores)) if candidate_counts is None
              else np.asarray(candidate_counts, dtype=np.float64))
    wins = 0.0  # target rows above a candidate, plus half of those level with it
    for start in range(0, len(scores), _ROW_BLOCK):
        block = scores[start:start + _ROW_BLOCK]
        above = np.searchsorted(positives, block, "right")
        level = above - np.searchsorted(positives, block, "left")
        wins += float(np.dot(len(positives) - above + 0.5 * level,
                             counts[start:start + _ROW_BLOCK]))
    return wins / (len(positives) * float(counts.sum()))


def stacked_rows(matrices: Sequence[Matrix], rows: np.ndarray) -> np.ndarray:
    """Rows of the matrices stacked (``np.vstack(matrices)[rows]``) without stacking them: a
    copy of every row (ML-1M's features: 83 MB) for the few taken.

    >>> stacked_rows([np.array([[0.], [1.]]), np.array([[2.]])], np.array([2, 0])).ravel()
    array([2., 0.])
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), matrices[0].shape[1]),
                   dtype=np.result_type(*(matrix.dtype for matrix in matrices)))
    start = 0
    for matrix in matrices:
        inside = (rows >= start) & (rows < start + len(matrix))
        out[inside] = matrix[rows[inside] - start]
        start += len(matrix)
    return out


def distinct_rows(matrices: Sequence[Matrix]) -> tuple[np.ndarray, np.ndarray]:
    """The groups of bit-for-bit equal rows of the matrices stacked (``NaN`` equals ``NaN``).

    Rows are grouped by a hash of their bits, and the groups are then checked row by row
    against their first row: rows that differ never share a group. Every row is its own
    group when fewer than :data:`_MIN_REPEATS` of a seeded sample of :data:`_ROW_BLOCK` rows
    (or of all rows) repeat another row of the sample (ML-1M's features: 39 %, the
    synthetic default's: 1.3 %), or when two different rows collide.

    Args:
        matrices: ``(N_i, F)`` matrices of one dtype.

    Returns:
        ``(groups, first)``: ``(N,)`` int64 group of each stacked row, ``0..G-1`` in order of
        first appearance, and ``(G,)`` the first row of each group; row ``r`` equals row
        ``first[groups[r]]``.

    >>> groups, first = distinct_rows([np.array([[1., np.nan], [2., 0.]]),
    ...                                np.array([[1., np.nan], [2., 0.], [2., 0.]])])
    >>> groups.tolist(), first.tolist()
    ([0, 1, 0, 1, 1], [0, 1])
    """
    n_rows = sum(len(matrix) for matrix in matrices)
    bits = np.dtype(f"u{np.dtype(matrices[0].dtype).itemsize}")
    every_row = np.arange(n_rows, dtype=np.int64)
    # a seeded sample first: where its rows hardly repeat (graph factors of both the user
    # and the item, a per-row price), grouping costs more than the scoring it saves
    sample = every_row if n_rows <= _ROW_BLOCK else \
        np.random.default_rng(0).choice(n_rows, _ROW_BLOCK, replace=False)
    sampled = _row_hashes([stacked_rows(matrices, sample)], bits)
    if len(np.unique(sampled)) > (1 - _MIN_REPEATS) * len(sample):
        return every_row, every_row
    groups, _ = pd.factorize(_row_hashes(matrices, bits))
    # codes come in order of first appearance: a row opens a group where its code first
    # exceeds every code before it
    opens = np.empty(n_rows, dtype=bool)
    opens[0] = True
    opens[1:] = groups[1:] > np.maximum.accumulate(groups)[:-1]
    first = np.flatnonzero(opens)
    for block in range(0, n_rows, _ROW_BLOCK):
        rows = every_row[block:block + _ROW_BLOCK]
        own = np.ascontiguousarray(stacked_rows(matrices, rows)).view(bits)
        theirs = np.ascontiguousarray(stacked_rows(matrices, first[groups[rows]])).view(bits)
        if not np.array_equal(own, theirs):
            return every_row, every_row
    return groups.astype(np.int64, copy=False), first


def _row_hashes(matrices: Sequence[Matrix], bits: np.dtype) -> np.ndarray:
    """``(N,)`` float64 hash of each stacked row: a random linear form of its ``bits`` (equal
    rows hash alike; different rows almost never do, and :func:`distinct_rows` checks)."""
    mix = np.random.default_rng(0).random(matrices[0].shape[1])
    hashes = np.empty(sum(len(matrix) for matrix in matrices), dtype=np.float64)
    start = 0
    for matrix in matrices:
        for block in range(0, len(matrix), _ROW_BLOCK):
            part = np.ascontiguousarray(matrix[block:block + _ROW_BLOCK]).view(bits)
            hashes[start:start + len(part)] = part @ mix
            start += len(part)
    return hashes


def _clip_bounds(value: Any) -> tuple[float, float]:
    """``weight_clip`` as ``(low, high)`` with ``0 < low <= high < inf``."""
    try:
        low, high = (float(bound) for bound in value)
    except (TypeError, ValueError):
        low = high = np.nan
    if not 0 < low <= high < np.inf:
        raise InputError(f"weight_clip must be a (low, high) pair with 0 < low <= high, "
                         f"got {value!r}")
    return low, high
