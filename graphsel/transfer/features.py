"""Feature encoding: turns an :class:`~graphsel.data.log.InteractionLog` into model inputs.

A :class:`FeatureEncoder` is fitted on training logs only. It learns, per categorical field
(user id, item id, integer / string / boolean side features), a sorted vocabulary whose
unknown values share an out-of-vocabulary bucket, and per numeric field (float side
features) the training mean and standard deviation. ``transform`` then gives

* ``cat``: ``(N, F)`` int64, per-field *local* indices: ``0`` is the field's
  out-of-vocabulary bucket, ``1..V_f`` its known values in sorted order. The model's
  embedding block adds each field's offset (:attr:`FeatureSpec.offsets`) to index one big
  table, so the encoded arrays do not depend on how the table is laid out.
* ``num``: ``(N, M)`` float32, standardised; missing values become ``0`` (the mean).

Everything is vectorised: each column is factorised once (hashing), and only its distinct
values are looked up in the vocabulary.

**The domain field.** Domain-aware joint training gives every row its domain as one more
categorical column, :data:`DOMAIN_FIELD` (``"domain_id"``), added by :func:`with_domain_field`:
``"target"`` for target rows (training, validation and test alike), ``"source"`` for source
rows, or ``"source:<sub-domain>"`` where the source has a sub-domain column (a genre, a
category, a graph community). It is encoded like any categorical field, so its embedding is
the per-domain bias and representation. A model finds its column in ``cat`` with
``spec.field_index(DOMAIN_FIELD)`` (``batch.cat[:, index]`` is then the row's domain; the
target's local index is ``spec.domain_index(TARGET_DOMAIN)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError

__all__ = [
    "OOV_INDEX",
    "USER_FIELD",
    "ITEM_FIELD",
    "EXCLUDED_COLUMNS",
    "DOMAIN_FIELD",
    "TARGET_DOMAIN",
    "SOURCE_DOMAIN",
    "domain_values",
    "with_domain_field",
    "CategoricalField",
    "NumericField",
    "FeatureSpec",
    "FeatureEncoder",
]

OOV_INDEX = 0
"""Local index of every field's out-of-vocabulary bucket."""

USER_FIELD = "user_id"
ITEM_FIELD = "item_id"
EXCLUDED_COLUMNS: tuple[str, ...] = ("behavior", "domain", "ts", "label")
"""Columns never used as features: they describe the event, or are the target."""

DOMAIN_FIELD = "domain_id"
"""The categorical column that names each training row's domain (see the module doc)."""
TARGET_DOMAIN = "target"
"""The :data:`DOMAIN_FIELD` value of every target row."""
SOURCE_DOMAIN = "source"
"""The :data:`DOMAIN_FIELD` value of source rows (``"source:<sub-domain>"`` with one)."""


@dataclass(frozen=True, eq=False)
class CategoricalField:
    """One categorical field's vocabulary.

    Attributes:
        name: the column, e.g. ``"user_id"``.
        categories: ``(V,)`` known values, sorted; value ``categories[j]`` has index ``j + 1``.
    """

    name: str
    categories: np.ndarray

    @property
    def size(self) -> int:
        """Rows this field needs in the embedding table: ``V + 1`` (with the OOV bucket)."""
        return len(self.categories) + 1


@dataclass(frozen=True)
class NumericField:
    """One numeric field's standardisation: ``(x - mean) / std``."""

    name: str
    mean: float
    std: float


@dataclass(frozen=True, eq=False)
class FeatureSpec:
    """What a fitted :class:`FeatureEncoder` learned; all a model needs to size its inputs.

    Attributes:
        categorical: the ``F`` categorical fields, in the column order of ``cat``.
        numeric: the ``M`` numeric fields, in the column order of ``num``.
    """

    categorical: tuple[CategoricalField, ...]
    numeric: tuple[NumericField, ...]

    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        """``(F,)`` rows per field in the embedding table, OOV bucket included."""
        return tuple(field.size for field in self.categorical)

    @property
    def offsets(self) -> np.ndarray:
        """``(F,)`` int64 start of each field in one concatenated table."""
        return np.concatenate([[0], np.cumsum(self.vocab_sizes)[:-1]]).astype(np.int64)

    @property
    def total_vocab(self) -> int:
        """Rows of the concatenated table (sum of :attr:`vocab_sizes`)."""
        return int(sum(self.vocab_sizes))

    @property
    def num_numeric(self) -> int:
        return len(self.numeric)

    @property
    def categorical_names(self) -> list[str]:
        return [field.name for field in self.categorical]

    @property
    def numeric_names(self) -> list[str]:
        return [field.name for field in self.numeric]

    def field_index(self, name: str) -> int:
        """The column of categorical field ``name`` in ``cat`` (e.g. :data:`DOMAIN_FIELD`).

        Raises:
            InputError: ``name`` is not a categorical field (the message lists them).
        """
        names = self.categorical_names
        if name not in names:
            raise InputError(f"feature spec has no categorical field {name!r} "
                             f"(fields: {', '.join(names)})")
        return names.index(name)

    def domain_index(self, domain: str = TARGET_DOMAIN) -> int:
        """The local index (in ``cat[:, field_index(DOMAIN_FIELD)]``) of ``domain``; 0 (the
        OOV bucket) for a domain the training rows did not hold.

        >>> log = with_domain_field(InteractionLog.from_columns([1, 2], [1, 1], [0, 1],
        ...                                                     [0, 1], "t"), "target")
        >>> spec = FeatureEncoder().fit(log).spec_
        >>> spec.field_index(DOMAIN_FIELD), spec.domain_index("target"), spec.domain_index("x")
        (2, 1, 0)
        """
        categories = self.categorical[self.field_index(DOMAIN_FIELD)].categories
        found = np.flatnonzero(categories == domain)
        return int(found[0]) + 1 if len(found) else OOV_INDEX


class FeatureEncoder:
    """Fits vocabularies and scalers on training logs; encodes any log with them.

    Follows the scikit-learn estimator contract: ``__init__`` stores options, :meth:`fit`
    learns :attr:`spec_` and returns ``self``.

    Args:
        categorical: categorical columns, in order. Default ``None``: ``user_id``,
            ``item_id``, then every integer, string or boolean side feature of the log not
            listed in ``numeric``.
        numeric: numeric columns, in order. Default ``None``: every float side feature not
            listed in ``categorical``.
        min_count: values seen fewer times than this in training go to the OOV bucket.
            Default 1 (keep every value seen).

    >>> log = InteractionLog.from_columns([7, 7, 8], [1, 2, 1], [0, 1, 2], [1, 0, 1], "t",
    ...                                   price=[1.0, 2.0, 3.0])
    >>> encoder = FeatureEncoder().fit(log)
    >>> encoder.spec_.categorical_names, encoder.spec_.vocab_sizes
    (['user_id', 'item_id'], (3, 3))
    >>> cat, num = encoder.transform(log)
    >>> cat.tolist()
    [[1, 1], [1, 2], [2, 1]]
    """

    def __init__(
        self,
        categorical: Sequence[str] | None = None,
        numeric: Sequence[str] | None = None,
        min_count: int = 1,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.min_count = min_count

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, log: InteractionLog) -> FeatureEncoder:
        """Learns vocabularies and numeric scalers from the training ``log``.

        Raises:
            InputError: a named column is missing, excluded, listed twice, or has the wrong
                kind (a float column as categorical, a string column as numeric).
        """
        if self.min_count < 1:
            raise InputError(f"min_count must be >= 1, got {self.min_count}")
        categorical, numeric = self._resolve_columns(log)
        self.spec_ = FeatureSpec(
            categorical=tuple(self._fit_categorical(log, name) for name in categorical),
            numeric=tuple(_fit_numeric(log, name) for name in numeric),
        )
        return self

    def fit_transform(self, log: InteractionLog) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit` then :meth:`transform` on the same log."""
        return self.fit(log).transform(log)

    def _resolve_columns(self, log: InteractionLog) -> tuple[list[str], list[str]]:
        # An inferred list leaves out the columns the user placed in the other list.
        explicit = set(self.categorical or ()) | set(self.numeric or ())
        features = [c for c in log.feature_columns if c not in explicit]
        if self.categorical is None:
            categorical = [USER_FIELD, ITEM_FIELD] + [
                c for c in features if _kind(log, c) == "categorical"]
        else:
            categorical = list(self.categorical)
        if self.numeric is None:
            numeric = [c for c in features if _kind(log, c) == "numeric"]
        else:
            numeric = list(self.numeric)
        names = categorical + numeric
        for name in names:
            if name in EXCLUDED_COLUMNS:
                raise InputError(f"{log.name}: column '{name}' cannot be a feature "
                                 f"(excluded: {', '.join(EXCLUDED_COLUMNS)})")
            if names.count(name) > 1:
                raise InputError(f"{log.name}: feature column '{name}' is listed twice")
            log.column(name)  # raises a one-line InputError for a missing column
        for name, expected in [(c, "categorical") for c in categorical] + [
                (c, "numeric") for c in numeric]:
            if name not in (USER_FIELD, ITEM_FIELD) and _kind(log, name) != expected:
                raise InputError(f"{log.name}: column '{name}' has type "
                                 f"{log.schema.field(name).type}, not usable as {expected}")
        return categorical, numeric

    def _fit_categorical(self, log: InteractionLog, name: str) -> CategoricalField:
        codes, uniques = _factorized(log, name)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        kept = uniques[counts >= self.min_count]
        return CategoricalField(name, np.sort(kept))

    # -- encoding ----------------------------------------------------------------------------

    def transform(self, log: InteractionLog) -> tuple[np.ndarray, np.ndarray]:
        """Encodes ``log`` with the fitted vocabularies and scalers.

        Returns:
            ``(cat, num)``: ``cat`` ``(N, F)`` int64 local indices (``0`` = unknown value),
            ``num`` ``(N, M)`` float32 standardised values (``0`` for missing ones).

        Raises:
            InputError: if the encoder is not fitted or ``log`` lacks a fitted column.
        """
        spec = self._fitted_spec()
        n = len(log)
        cat = np.empty((n, len(spec.categorical)), dtype=np.int64)
        for j, field in enumerate(spec.categorical):
            codes, uniques = _factorized(log, field.name)
            cat[:, j] = _local_indices(field.categories, codes, uniques)
        num = np.empty((n, len(spec.numeric)), dtype=np.float32)
        for j, numeric in enumerate(spec.numeric):
            values = (log.column(numeric.name).astype(np.float64) - numeric.mean) / numeric.std
            num[:, j] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return cat, num

    def _fitted_spec(self) -> FeatureSpec:
        spec = getattr(self, "spec_", None)
        if spec is None:
            raise InputError("FeatureEncoder is not fitted: call fit(train_log) first")
        return spec


def _kind(log: InteractionLog, name: str) -> str:
    # The Arrow type, not the numpy one: an integer column with nulls reads as float.
    return "numeric" if pa.types.is_floating(log.schema.field(name).type) else "categorical"


def _factorized(log: InteractionLog, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (N,), uniques)`` of a column; code ``-1`` marks a missing value.

    User and item ids are already coded by the log's :class:`~graphsel.data.log.IdIndex`, so their
    uniques are the index's ids and nothing is hashed again.
    """
    if name == USER_FIELD:
        return log.user, log.index.users
    if name == ITEM_FIELD:
        return log.item, log.index.items
    codes, uniques = pd.factorize(log.column(name), use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def _local_indices(categories: np.ndarray, codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Maps codes over ``uniques`` to ``1 + position in categories``, ``0`` when unknown."""
    position = pd.Index(categories).get_indexer(uniques) if len(categories) else np.full(
        len(uniques), -1)
    # The extra last entry catches code -1 (missing value) and sends it to the OOV bucket.
    lookup = np.append(position + 1, OOV_INDEX).astype(np.int64)
    return lookup[codes]


def _fit_numeric(log: InteractionLog, name: str) -> NumericField:
    values = log.column(name).astype(np.float64)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else 0.0
    std = float(finite.std()) if len(finite) else 0.0
    # A constant column carries no information; dividing by 1 keeps it at 0, not NaN.
    return NumericField(name, mean, std if std > 0 else 1.0)


def domain_values(log: InteractionLog, domain: str,
                  sub_domain: str | None = None) -> np.ndarray:
    """``(N,)`` object array: the :data:`DOMAIN_FIELD` value of each row of ``log``.

    Args:
        log: the rows.
        domain: :data:`TARGET_DOMAIN` or :data:`SOURCE_DOMAIN`.
        sub_domain: a column of ``log`` whose value names the row's sub-domain; source rows
            then read ``"source:<value>"`` (a missing value stays ``"source"``). Default
            None: one value for all rows. Ignored for target rows.

    Raises:
        InputError: ``sub_domain`` is not a column of ``log``.

    >>> log = InteractionLog.from_columns([1, 2], [1, 1], [0, 1], [0, 1], "s",
    ...                                   genre=["Crime", "War"])
    >>> domain_values(log, "source", "genre").tolist()
    ['source:Crime', 'source:War']
    """
    if domain == TARGET_DOMAIN or sub_domain is None:
        return np.full(len(log), domain, dtype=object)
    values = log.column(sub_domain)  # a one-line InputError when missing
    return np.array([domain if pd.isna(v) else f"{domain}:{v}" for v in values], dtype=object)


def with_domain_field(log: InteractionLog, values: str | np.ndarray) -> InteractionLog:
    """``log`` with the :data:`DOMAIN_FIELD` column set to ``values`` (one string, or ``(N,)``
    strings from :func:`domain_values`); ids, index and row order are unchanged.

    Raises:
        InputError: ``log`` already has a :data:`DOMAIN_FIELD` column of its own.
    """
    if DOMAIN_FIELD in log.columns:
        raise InputError(f"{log.name}: column '{DOMAIN_FIELD}' is reserved for the domain "
                         f"feature; rename it or set domain_feature: off")
    if isinstance(values, str):
        values = np.full(len(log), values, dtype=object)
    table = log.table.append_column(DOMAIN_FIELD, pa.array(values, pa.string()))
    return InteractionLog(table, log.index, log.user, log.item, log.ts, log.label, log.name)
