"""The interaction log: one validated table of user-item events per domain.

Schema (one row per impression or action):

=============  =========================  ==============================================
column         type                       meaning
=============  =========================  ==============================================
``user_id``    integer or string          the user, shared across domains
``item_id``    integer or string          the item, shared across domains
``ts``         integer >= 0               Unix seconds
``label``      0 / 1                      click (or conversion) label
``domain``     string                     e.g. ``"source"``, ``"target"``
``behavior``   string, optional           ``click``, ``purchase``, ``cart``, ``fav``, ...
any other      integer / string / float   side features: categorical / numeric
=============  =========================  ==============================================

Users and items of a source and a target log are encoded by one shared :class:`IdIndex`, so
``source.user == target.user`` compares the same people.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphsel._memory import release_memory
from graphsel.data.io import atomic_path
from graphsel.errors import InputError, check_choice

__all__ = [
    "LOG_FORMATS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TS_LIMIT",
    "TS_UNITS",
    "IdIndex",
    "InteractionLog",
    "Overlap",
    "check_pair",
    "check_timestamps",
    "compact_strings",
    "decode_strings",
    "distinct_codes",
    "log_format",
    "overlap",
    "read_log",
    "read_pair",
    "share_index",
    "write_log",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "ts", "label", "domain")
OPTIONAL_COLUMNS: tuple[str, ...] = ("behavior",)
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
LOG_FORMATS: dict[str, tuple[str, ...]] = {"parquet": _PARQUET_SUFFIXES, "csv": _CSV_SUFFIXES}
"""The formats :func:`write_log` writes, by the file extensions that select them."""

TS_UNITS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
"""Units a log's ``ts`` may be read in (:func:`read_log`'s ``ts_unit``): ticks per second."""

TS_LIMIT = 7_258_118_400
"""2200-01-01 00:00 UTC in Unix seconds: a larger ``ts`` is never a time in seconds. Any
millisecond timestamp after 1970-03-25 exceeds it, so seconds and milliseconds cannot be
confused."""

_FUTURE_SLACK_S = 86_400
"""How far past the current time a ``ts`` may lie (clock skew between machines)."""


# --------------------------------------------------------------------------------------------
# The shared id index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IdIndex:
    """Maps original user and item ids to dense integer codes ``0..U-1`` and ``0..I-1``.

    Codes follow first appearance, so an index built from ``(source, target)`` gives source
    users the low codes. Several logs encoded with one index share users and items.

    Attributes:
        users: ``(U,)`` original user ids; ``users[code]`` is the id of a code.
        items: ``(I,)`` original item ids.
    """

    users: np.ndarray
    items: np.ndarray

    @classmethod
    def from_ids(cls, user_ids: np.ndarray, item_ids: np.ndarray) -> IdIndex:
        """Builds an index from id arrays, in order of first appearance."""
        return cls(_uniques(user_ids), _uniques(item_ids))

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def user_codes(self, user_ids: Any) -> np.ndarray:
        """Codes of ``user_ids``; ``-1`` for ids the index does not know."""
        return _lookup(self.users, user_ids)

    def item_codes(self, item_ids: Any) -> np.ndarray:
        """Codes of ``item_ids``; ``-1`` for ids the index does not know."""
        return _lookup(self.items, item_ids)


def _distinct(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A column as ``(ids, rows)``: its distinct values in order of first appearance and
    ``(N,)`` int32 positions into them, ``-1`` for a null (like :func:`pandas.factorize`).

    Arrow encodes the column without a Python object per row: only the distinct values
    become numpy values (ML-1M's source log: read_log's peak RSS 623 -> 348 MB). A
    dictionary column (what :func:`compact_strings` makes) is factorized on its indices,
    without decoding its values.

    >>> ids, rows = _distinct(pa.chunked_array([["b", "a"], ["b", "c"]]))
    >>> ids.tolist(), rows.tolist()
    (['b', 'a', 'c'], [0, 1, 0, 2])
    """
    if pa.types.is_dictionary(column.type):
        return _distinct_entries(column.unify_dictionaries())
    # every chunk carries the dictionary of the whole column (one memo table across chunks)
    chunks = [chunk for chunk in column.dictionary_encode().chunks if len(chunk)]
    if not chunks:
        return _to_numpy(column)[:0], np.empty(0, dtype=np.int32)
    rows = np.concatenate([pc.fill_null(chunk.indices, -1).to_numpy() for chunk in chunks])
    return _to_numpy(chunks[-1].dictionary), rows.astype(np.int32, copy=False)


def _distinct_entries(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_distinct` of a dictionary column whose chunks share one dictionary: the
    entries its rows use, in order of first use (a taken slice keeps unused entries)."""
    chunks = [chunk for chunk in column.chunks if len(chunk)]
    if not chunks:
        return _to_numpy(column)[:0], np.empty(0, dtype=np.int32)
    entries = np.concatenate([pc.fill_null(chunk.indices, -1).to_numpy() for chunk in chunks])
    null = entries < 0
    rows, used = pd.factorize(pd.arrays.IntegerArray(entries, null) if null.any() else entries)
    used = pa.array(np.asarray(used, dtype=np.int64))
    return _to_numpy(chunks[0].dictionary.take(used)), rows.astype(np.int32, copy=False)


_INDEX_TYPES = (pa.int8(), pa.int16(), pa.int32())


def compact_strings(table: pa.Table) -> pa.Table:
    """``table`` with each string column dictionary-encoded: one dictionary shared by the
    column's chunks, and indices of the narrowest integer type that holds it.

    A log's string columns (ids, domain, behaviour, categorical features) repeat a few
    values over many rows: encoded, a row costs one to four bytes instead of the string and
    its offset (the synthetic default at 6M rows: 540 MiB of columns -> 225 MiB).
    :func:`write_log` writes them back as strings (:func:`decode_strings`).

    >>> table = compact_strings(pa.table({"city": ["b", "a", "b"], "n": [1, 2, 3]}))
    >>> table.schema.field("city").type
    DictionaryType(dictionary<values=string, indices=int8, ordered=0>)
    >>> table.column("city").to_pylist()
    ['b', 'a', 'b']
    """
    for position, field_ in enumerate(table.schema):
        if not _is_string(field_.type):
            continue
        column = table.column(position)
        column = (column.unify_dictionaries() if pa.types.is_dictionary(column.type)
                  else column.dictionary_encode())
        size = len(column.chunk(0).dictionary) if column.num_chunks else 0
        index = next(t for t in _INDEX_TYPES if size <= 2 ** (t.bit_width - 1))
        if column.type.index_type != index:
            column = column.cast(pa.dictionary(index, column.type.value_type))
        table = table.set_column(position, field_.with_type(column.type), column)
    return table


def decode_strings(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded string columns as plain strings again.

    >>> table = compact_strings(pa.table({"city": ["b", "a"]}))
    >>> decode_strings(table).schema.field("city").type
    DataType(string)
    """
    for position, field_ in enumerate(table.schema):
        if pa.types.is_dictionary(field_.type) and _is_string(field_.type):
            value_type = field_.type.value_type
            table = table.set_column(position, field_.with_type(value_type),
                                     table.column(position).cast(value_type))
    return table


def _uniques(ids: np.ndarray) -> np.ndarray:
    uniques = pd.unique(pd.Series(ids, copy=False))
    return np.asarray(uniques)


def _lookup(keys: np.ndarray, ids: Any) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if len(keys) == 0 or len(ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    if _kind(keys) != _kind(ids):
        return np.full(len(ids), -1, dtype=np.int64)
    return pd.Index(keys).get_indexer(ids).astype(np.int64, copy=False)


def _kind(values: np.ndarray) -> str:
    return "integer" if np.issubdtype(np.asarray(values).dtype, np.integer) else "string"


# --------------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """A validated interaction log: the original table plus dense arrays of its key columns.

    Build one with :func:`read_log`, :func:`read_pair` or :meth:`from_columns`; they validate
    the table. Slicing with a boolean mask or an index array (``log[mask]``) keeps the index,
    so slices of one log stay comparable. A slice copies the key arrays only: the rows of the
    other columns are taken when first asked for (:attr:`table`, :meth:`column`), and then
    only those columns (the selector slices a million-row log at each stage and reads a few
    side columns of it; a copy of every column was ML-1M's largest allocation after reading).

    Attributes:
        table: every column of the log as read (``N`` rows), ids in their original type.
        index: the :class:`IdIndex` that ``user`` and ``item`` refer to.
        user: ``(N,)`` int64 user codes into ``index.users``.
        item: ``(N,)`` int64 item codes into ``index.items``.
        ts: ``(N,)`` int64 Unix seconds.
        label: ``(N,)`` int8 labels, 0 or 1.
        name: where the log came from, used in messages.
    """

    base_table: pa.Table
    """The table the rows come from: :attr:`table` itself, or the table a slice was cut from."""
    index: IdIndex
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    label: np.ndarray
    name: str = "<memory>"
    base_rows: np.ndarray | None = field(default=None, repr=False)
    """``(N,)`` int64 rows of :attr:`base_table` this log holds; None: all of them."""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_table(
        cls, table: pa.Table, *, name: str = "<memory>", index: IdIndex | None = None
    ) -> InteractionLog:
        """Validates ``table`` and encodes its ids with ``index`` (a new one by default).

        Raises:
            InputError: if a column is missing, mistyped or holds a bad value; the message
                names ``name``, the column and an example value.
        """
        table = validate_table(table, name)
        user_ids, user_rows = _distinct(table.column("user_id"))
        item_ids, item_rows = _distinct(table.column("item_id"))
        if index is None:
            index = IdIndex(user_ids, item_ids)  # both in order of first appearance
        codes = []
        for col, ids, rows, lookup in (("user_id", user_ids, user_rows, index.user_codes),
                                       ("item_id", item_ids, item_rows, index.item_codes)):
            known = lookup(ids)
            if (known < 0).any():
                first = int(np.flatnonzero(known[rows] < 0)[0])
                raise InputError(f"{name}: column '{col}' value {ids[rows[first]]!r} is not in "
                                 f"the id index")
            codes.append(known[rows])
        user, item = codes
        ts = table.column("ts").to_numpy().astype(np.int64, copy=False)
        label = table.column("label").to_numpy().astype(np.int8)
        return cls(table, index, _frozen(user), _frozen(item), _frozen(ts), _frozen(label), name)

    @classmethod
    def from_columns(
        cls,
        user_id: Sequence | np.ndarray,
        item_id: Sequence | np.ndarray,
        ts: Sequence | np.ndarray,
        label: Sequence | np.ndarray,
        domain: str | Sequence | np.ndarray,
        behavior: Sequence | np.ndarray | None = None,
        *,
        name: str = "<memory>",
        index: IdIndex | None = None,
        **features: Sequence | np.ndarray,
    ) -> InteractionLog:
        """Builds a log from column arrays (a scalar ``domain`` is repeated).

        >>> log = InteractionLog.from_columns([1, 1, 2], [10, 11, 10], [5, 6, 7], [1, 0, 1], "src")
        >>> len(log), log.index.num_users, log.index.num_items
        (3, 2, 2)
        >>> log.item.tolist()
        [0, 1, 0]
        """
        n = len(user_id)
        if isinstance(domain, str):
            domain = [domain] * n
        columns: dict[str, Any] = {
            "user_id": user_id, "item_id": item_id, "ts": ts, "label": label, "domain": domain,
        }
        if behavior is not None:
            columns["behavior"] = behavior
        columns.update(features)
        arrays = {}
        for key, values in columns.items():
            try:
                arrays[key] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InputError(f"{name}: column '{key}' cannot be stored: {exc}") from None
        return cls.from_table(pa.table(arrays), name=name, index=index)

    def with_index(self, index: IdIndex) -> InteractionLog:
        """This log with its ids encoded by ``index`` (which must know all of them)."""
        return InteractionLog.from_table(self.table, name=self.name, index=index)

    # -- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.user)

    def __getitem__(self, rows: np.ndarray | slice | Sequence[int]) -> InteractionLog:
        """Rows selected by a boolean mask of length ``N`` or by row indices."""
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise InputError(
                    f"{self.name}: mask has shape {rows.shape}, expected ({len(self)},)")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        base_rows = rows if self.base_rows is None else self.base_rows[rows]
        return InteractionLog(
            self.base_table, self.index, _frozen(self.user[rows]), _frozen(self.item[rows]),
            _frozen(self.ts[rows]), _frozen(self.label[rows]), self.name, _frozen(base_rows))

    @property
    def table(self) -> pa.Table:
        """Every column of the log (``N`` rows); a slice takes its rows here, once."""
        if self.base_rows is None:
            return self.base_table
        if "<table>" not in self._cache:
            self._cache["<table>"] = self.base_table.take(pa.array(self.base_rows))
        return self._cache["<table>"]

    @property
    def schema(self) -> pa.Schema:
        """The columns' names and Arrow types (without taking a slice's rows)."""
        return self.base_table.schema

    def arrow_column(self, name: str) -> pa.ChunkedArray:
        """Column ``name`` as Arrow holds it: a slice takes the rows of this column only."""
        if name not in self.base_table.column_names:
            raise InputError(f"{self.name}: no column '{name}' (has: {', '.join(self.columns)})")
        if self.base_rows is None or "<table>" in self._cache:
            return self.table.column(name)
        return self.base_table.column(name).take(pa.array(self.base_rows))

    @property
    def columns(self) -> list[str]:
        return list(self.base_table.column_names)

    @property
    def feature_columns(self) -> list[str]:
        """Side-feature columns: everything but the required and optional ones."""
        known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
        return [c for c in self.columns if c not in known]

    @property
    def has_behavior(self) -> bool:
        return "behavior" in self.columns

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` as a numpy array (strings as an object array), cached."""
        if name not in self._cache:
            self._cache[name] = _frozen(_to_numpy(self.arrow_column(name)))
        return self._cache[name]

    def factorize(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Column ``name`` as :func:`pandas.factorize` gives it: ``(codes, uniques)``, ``(N,)``
        integer codes into the distinct values in order of first appearance, ``-1`` for
        null. String columns are encoded by Arrow, without a Python object per row; the
        column is not cached (:meth:`column`): a stage that encodes a column needs the codes,
        not a second copy of its values (ML-1M's three integer features: 23 MB per slice).

        >>> log = InteractionLog.from_columns([1, 2, 3], [1, 1, 1], [0, 0, 0], [1, 0, 1], "s",
        ...                                   city=["b", None, "b"])
        >>> codes, uniques = log.factorize("city")
        >>> codes.tolist(), uniques.tolist()
        ([0, -1, 0], ['b'])
        """
        if name in self.columns and _is_string(self.schema.field(name).type):
            uniques, codes = _distinct(self.arrow_column(name))
            return codes, uniques
        values = (self._cache[name] if name in self._cache
                  else _to_numpy(self.arrow_column(name)))
        return pd.factorize(values)

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Dictionary codes of a categorical column: ``(codes (N,) int64, categories)``.

        Categories are sorted, so the codes of equal columns agree across logs. Only the
        distinct values are sorted (:meth:`factorize` finds them): sorting a million
        strings for a handful of behaviours cost more than the graph it labels.

        >>> log = InteractionLog.from_columns([1, 2, 3], [1, 1, 1], [0, 0, 0], [1, 0, 1], "s",
        ...                                   behavior=["view", "buy", "view"])
        >>> codes, categories = log.codes("behavior")
        >>> codes.tolist(), categories.tolist()
        ([1, 0, 1], ['buy', 'view'])
        """
        codes, uniques = self.factorize(name)
        if (codes < 0).any():  # nulls: categories as np.unique sees them ('None', 'nan')
            values = self.column(name)
            categories, codes = np.unique(values.astype(str) if values.dtype == object
                                          else values, return_inverse=True)
            return codes.astype(np.int64), categories
        uniques = np.asarray(uniques)
        if uniques.dtype == object:
            uniques = uniques.astype(str)
        order = np.argsort(uniques, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank[codes], uniques[order]

    @property
    def user_id(self) -> np.ndarray:
        """``(N,)`` original user ids."""
        return self.index.users[self.user]

    @property
    def item_id(self) -> np.ndarray:
        """``(N,)`` original item ids."""
        return self.index.items[self.item]

    @property
    def domains(self) -> list[str]:
        """The distinct values of ``domain``, sorted."""
        return sorted(pc.unique(self.arrow_column("domain")).to_pylist())

    def unique_users(self) -> np.ndarray:
        """Sorted codes of the users that appear in this log."""
        return distinct_codes(self.user, self.index.num_users)

    def unique_items(self) -> np.ndarray:
        """Sorted codes of the items that appear in this log."""
        return distinct_codes(self.item, self.index.num_items)

    def __repr__(self) -> str:
        return (f"InteractionLog(name={self.name!r}, rows={len(self)}, "
                f"users={len(self.unique_users())}, items={len(self.unique_items())}, "
                f"columns={self.columns})")


def distinct_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """Sorted distinct values of ``codes``, codes below ``size`` (what ``np.unique`` returns,
    as int64), from a presence mask: one pass instead of a hash table or a sort (6M rows:
    0.6-1.6 s with ``np.unique``).

    >>> distinct_codes(np.array([3, 0, 3, 1]), 5).tolist()
    [0, 1, 3]
    """
    seen = np.zeros(size, dtype=bool)
    seen[codes] = True
    return np.flatnonzero(seen).astype(np.int64, copy=False)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.flags.writeable = False
    return array


def _to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return column.to_numpy()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _is_integer(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _shown(t: pa.DataType) -> pa.DataType:
    """A column's type as its file has it: a dictionary's values (read_log reads strings
    dictionary-encoded)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def _empty_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each row of a string column is the empty string; a dictionary column is
    tested on its dictionary, not row by row."""
    if not pa.types.is_dictionary(column.type):
        return pc.equal(pc.utf8_length(column), 0)
    return pa.chunked_array(
        [pc.equal(pc.utf8_length(chunk.dictionary), 0).take(chunk.indices)
         for chunk in column.chunks], pa.bool_())


def _first_bad(column: pa.ChunkedArray, bad: pa.ChunkedArray | np.ndarray) -> tuple[int, Any]:
    mask = bad.to_numpy(zero_copy_only=False) if not isinstance(bad, np.ndarray) else bad
    mask = np.asarray(mask, dtype=bool)
    row = int(np.flatnonzero(mask)[0])
    return row, column[row].as_py()


def validate_table(table: pa.Table, name: str) -> pa.Table:
    """Checks ``table`` against the schema; returns it with its string columns
    dictionary-encoded (:func:`compact_strings`).

    Raises:
        InputError: one line naming ``name``, the column and an example bad value.
    """
    if table.num_rows == 0:
        raise InputError(f"{name}: no rows (empty log)")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{name}: missing column '{missing[0]}' "
                         f"(has: {', '.join(table.column_names)})")
    duplicated = {c for c in table.column_names if table.column_names.count(c) > 1}
    if duplicated:
        raise InputError(f"{name}: column '{sorted(duplicated)[0]}' appears more than once")
    for col in ("user_id", "item_id"):
        column = table.column(col)
        if not (_is_integer(column.type) or _is_string(column.type)):
            raise InputError(f"{name}: column '{col}' has type {_shown(column.type)}, "
                             f"expected integer or string (e.g. {column[0].as_py()!r})")
        if column.null_count:
            row, _ = _first_bad(column, pc.is_null(column))
            raise InputError(f"{name}: column '{col}' has a null id at row {row}")
        if _is_string(column.type):
            empty = _empty_strings(column)
            if pc.any(empty).as_py():
                row, _ = _first_bad(column, empty)
                raise InputError(f"{name}: column '{col}' has an empty id at row {row}")
    ts = table.column("ts")
    if not _is_integer(ts.type):
        values = [v for v in ts.to_pylist() if v is not None]
        example = next((v for v in values if not isinstance(v, (int, float))
                        or not math.isfinite(v) or v != int(v)),
                       values[0] if values else None)
        raise InputError(f"{name}: column 'ts' has type {_shown(ts.type)}, expected integer "
                         f"Unix seconds (e.g. {example!r})")
    if ts.null_count:
        row, _ = _first_bad(ts, pc.is_null(ts))
        raise InputError(f"{name}: column 'ts' has a null at row {row}")
    negative = pc.less(ts, 0)
    if pc.any(negative).as_py():
        row, value = _first_bad(ts, negative)
        raise InputError(f"{name}: column 'ts' has negative value {value} at row {row}")
    check_timestamps(ts.to_numpy(), name)
    label = table.column("label")
    if not (_is_integer(label.type) or pa.types.is_boolean(label.type)
            or pa.types.is_floating(label.type)):
        raise InputError(f"{name}: column 'label' has type {_shown(label.type)}, expected 0/1 "
                         f"(e.g. {label[0].as_py()!r})")
    if label.null_count:
        row, _ = _first_bad(label, pc.is_null(label))
        raise InputError(f"{name}: column 'label' has a null at row {row}")
    if not pa.types.is_boolean(label.type):
        outside = pc.invert(pc.is_in(label.cast(pa.float64()), pa.array([0.0, 1.0])))
        if pc.any(outside).as_py():
            row, value = _first_bad(label, outside)
            raise InputError(f"{name}: column 'label' has value {value!r} at row {row}, "
                             f"expected 0 or 1")
    for col in ("domain",) + OPTIONAL_COLUMNS:
        if col not in table.column_names:
            continue
        column = table.column(col)
        if not _is_string(column.type):
            raise InputError(f"{name}: column '{col}' has type {_shown(column.type)}, expected "
                             f"string (e.g. {column[0].as_py()!r})")
        if column.null_count:
            row, _ = _first_bad(column, pc.is_null(column))
            raise InputError(f"{name}: column '{col}' has a null at row {row}")
        empty = _empty_strings(column)
        if pc.any(empty).as_py():
            row, _ = _first_bad(column, empty)
            raise InputError(f"{name}: column '{col}' has an empty value at row {row}")
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for col in table.column_names:
        if col in known:
            continue
        t = table.column(col).type
        if not (_is_integer(t) or _is_string(t) or pa.types.is_floating(t)
                or pa.types.is_boolean(t)):
            raise InputError(f"{name}: feature column '{col}' has type {_shown(t)}, expected "
                             f"integer, string (categorical) or float (numeric)")
    return compact_strings(table)


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        # Hidden and "_" files are not data (Spark/Hive convention, as pyarrow.dataset does):
        # a killed writer's ".part.parquet.<pid>.<x>.tmp", "_SUCCESS", "_metadata".
        files = sorted(p for p in path.iterdir() if p.suffix in _PARQUET_SUFFIXES
                       and not p.name.startswith((".", "_")))
        if not files:
            raise InputError(f"{path}: is a directory with no .parquet files, expected a log "
                             f"file or a directory of Parquet files")
        tables = [_read_table(p) for p in files]
        try:
            return pa.concat_tables(tables, promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"{path}: its Parquet files do not share one schema ({exc})") from None
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if _is_csv(path):
        return _read_csv(path)
    try:
        schema = pq.read_schema(path)
        _check_unique_names(schema.names, path)
        # string columns come dictionary-encoded, never decoded (see compact_strings)
        return pq.read_table(path, read_dictionary=[
            field_.name for field_ in schema if _is_string(field_.type)])
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable Parquet file ({reason})") from None


def _check_unique_names(names: list[str], path: Path) -> None:
    """pyarrow reads a file with a repeated column name only to fail on it later."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: column '{repeated[0]}' appears more than once")


def _is_csv(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return True
    if name.endswith((".parquet", ".pq")):
        return False
    with open(path, "rb") as handle:
        return handle.read(4) != b"PAR1"


def _read_csv(path: Path) -> pa.Table:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={"domain": pa.string(), "behavior": pa.string()},
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, OSError, EOFError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Empty CSV file" in reason:
            raise InputError(f"{path}: empty file") from None
        raise InputError(f"{path}: not a readable CSV file ({reason})") from None


def read_log(path: str | os.PathLike, *, index: IdIndex | None = None,
             ts_unit: str = "s") -> InteractionLog:
    """Reads and validates a log: a Parquet file, a directory of Parquet files, or a CSV.

    Args:
        path: ``.parquet`` / ``.pq`` file, a directory holding them (hidden files and files
            starting with ``_`` are skipped), or ``.csv`` / ``.tsv`` (optionally gzipped).
        index: encode ids with this index (default: a new index of this log's ids).
        ts_unit: the unit of the file's ``ts`` column, one of :data:`TS_UNITS` (default
            ``"s"``, Unix seconds); other units are converted to whole seconds (rounded
            down), so the log always holds seconds.

    Raises:
        InputError: unreadable file or a schema violation, in one line naming the file.
    """
    path = Path(path)
    table = _read_table(path)
    log = InteractionLog.from_table(_in_seconds(table, ts_unit, str(path)), name=str(path),
                                    index=index)
    # decoding leaves freed buffers in Arrow's pool, which keeps them from the process
    # (ML-1M's million rows: 43 MB of the 250 MB reading takes)
    release_memory()
    return log


def _in_seconds(table: pa.Table, ts_unit: str, name: str) -> pa.Table:
    per_second = TS_UNITS[check_choice("ts_unit", ts_unit, tuple(TS_UNITS))]
    if per_second == 1 or "ts" not in table.column_names:
        return table
    ts = table.column("ts")
    if not _is_integer(ts.type) or table.column_names.count("ts") > 1:
        return table  # validate_table names the problem
    seconds = pc.divide(ts.cast(pa.int64()), pa.scalar(per_second, pa.int64()))
    # integer division truncates towards zero; negative values are refused anyway
    return table.set_column(table.column_names.index("ts"), "ts", seconds)


def check_timestamps(ts: np.ndarray, name: str, *, now: float | None = None) -> None:
    """Refuses ``ts`` values that cannot be Unix seconds of logged events.

    Two rules, which no real log trips (MovieLens-1M: 2000-2003, the Taobao head:
    2017-09-11 .. 2017-12-04, the synthetic default: 2017-11-25 onwards):

    * a value at or after 2200-01-01 (:data:`TS_LIMIT`) is in another unit: the median
      says which (milliseconds, microseconds, nanoseconds) and the message says what to
      divide by (or which ``ts_unit`` to read with);
    * a value more than a day after the current time is in the future, which a log of
      past events cannot hold (e.g. year-2100 placeholders).

    Values long before the rest (Taobao has one in September for a November log) pass:
    old stray rows are common in real logs and harmless to a time split.

    Args:
        ts: ``(N,)`` integer timestamps, already checked non-negative.
        name: the log's name, for the message.
        now: the current Unix time (default: the clock).

    Raises:
        InputError: naming the file, the column, the row and the value, and what to do.

    >>> check_timestamps(np.array([1_511_568_000, 1_512_000_000]), "s.parquet")
    >>> check_timestamps(np.array([1_511_568_000_000, 1_512_000_000_000]), "s.parquet")
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: s.parquet: column 'ts' has value 1511568000000 at row 0, after 2200-01-01 as Unix seconds; the values look like milliseconds: divide them by 1000 (or read the log with ts_unit='ms', --ts-unit ms)
    """
    ts = np.asarray(ts)
    if len(ts) == 0:
        return
    late = ts >= TS_LIMIT
    if late.any():
        row = int(np.flatnonzero(late)[0])
        median = float(np.median(ts))
        unit = next((unit for unit, per_second in reversed(TS_UNITS.items())
                     if per_second > 1 and median >= 1e8 * per_second), None)
        if unit is not None:
            advice = (f"the values look like {_UNIT_NAMES[unit]}: divide them by "
                      f"{TS_UNITS[unit]} (or read the log with ts_unit={unit!r}, "
                      f"--ts-unit {unit})")
        else:
            advice = "expected Unix seconds; fix or drop that row"
        raise InputError(f"{name}: column 'ts' has value {int(ts[row])} at row {row}, after "
                         f"2200-01-01 as Unix seconds; {advice}")
    limit = (time.time() if now is None else now) + _FUTURE_SLACK_S
    future = ts > limit
    if future.any():
        row = int(np.flatnonzero(future)[0])
        when = dt.datetime.fromtimestamp(int(ts[row]), tz=dt.UTC).strftime("%Y-%m-%d")
        raise InputError(f"{name}: column 'ts' has value {int(ts[row])} at row {row} "
                         f"({when}), which is in the future; expected Unix seconds of past "
                         f"events")


_UNIT_NAMES = {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def share_index(*logs: InteractionLog) -> tuple[InteractionLog, ...]:
    """Re-encodes ``logs`` with one :class:`IdIndex` (first log's ids get the low codes).

    Raises:
        InputError: if one log has integer ids and another string ids.
    """
    for col in ("user_id", "item_id"):
        kinds = {log.name: _arrow_kind(log.schema.field(col).type) for log in logs}
        if len(set(kinds.values())) > 1:
            described = " but ".join(f"{kind} in {name}" for name, kind in kinds.items())
            raise InputError(f"column '{col}' is {described}; ids must have one type")
    user_ids = np.concatenate([log.index.users for log in logs])
    item_ids = np.concatenate([log.index.items for log in logs])
    index = IdIndex.from_ids(user_ids, item_ids)
    return tuple(_reencode(log, index) for log in logs)


def _reencode(log: InteractionLog, index: IdIndex) -> InteractionLog:
    user = index.user_codes(log.index.users)[log.user]
    item = index.item_codes(log.index.items)[log.item]
    return InteractionLog(log.base_table, index, _frozen(user), _frozen(item), log.ts,
                          log.label, log.name, log.base_rows)


def _arrow_kind(t: pa.DataType) -> str:
    return "integer" if _is_integer(t) else "string"


def read_pair(
    source: str | os.PathLike | InteractionLog, target: str | os.PathLike | InteractionLog,
    *, ts_unit: str = "s",
) -> tuple[InteractionLog, InteractionLog]:
    """Reads a source and a target log onto one shared :class:`IdIndex`.

    Args:
        source: the source log, or its path.
        target: the target log, or its path.
        ts_unit: the unit of ``ts`` in files read here (default ``"s"``; see
            :func:`read_log`).

    Raises:
        InputError: if either log is invalid, their id types differ, or they share no user
            and no item.
    """
    source_log = (source if isinstance(source, InteractionLog)
                  else read_log(source, ts_unit=ts_unit))
    target_log = (target if isinstance(target, InteractionLog)
                  else read_log(target, ts_unit=ts_unit))
    source_log, target_log = share_index(source_log, target_log)
    if not overlap(source_log, target_log):
        raise InputError(f"no user and no item shared between {source_log.name} and "
                         f"{target_log.name}: graph selection needs at least one")
    return source_log, target_log


@dataclass(frozen=True)
class Overlap:
    """The users and items present in both of two logs; false when nothing is shared.

    >>> Overlap(users=2, items=0).to_json(), bool(Overlap(users=0, items=0))
    ({'users': 2, 'items': 0}, False)
    """

    users: int
    items: int

    def __bool__(self) -> bool:
        return bool(self.users or self.items)

    def to_json(self) -> dict[str, int]:
        """``{"users": n, "items": n}``."""
        return {"users": self.users, "items": self.items}


def overlap(source: InteractionLog, target: InteractionLog) -> Overlap:
    """Counts the users and items present in both logs (put on one index first if need be)."""
    if source.index is not target.index:
        source, target = share_index(source, target)
    users = len(np.intersect1d(source.unique_users(), target.unique_users(), assume_unique=True))
    items = len(np.intersect1d(source.unique_items(), target.unique_items(), assume_unique=True))
    return Overlap(users=int(users), items=int(items))


def check_pair(source: InteractionLog, target: InteractionLog, *, min_rows: int = 5,
               both_labels: bool = True) -> None:
    """The checks a source/target pair must pass before selection or a strategy run.

    ``graphsel validate`` runs exactly these (with the defaults), so "valid: yes" means that
    ``select`` and ``run`` accept the pair; they call this first, before any work. Each log
    is already valid on its own (:func:`read_log`); on top of that:

    * ids of one type in both logs, and at least one shared user or item (as
      :func:`read_pair`);
    * every side-feature column the two logs share has one kind in both: numeric (float),
      integer, string or boolean (a float in one log and a string in the other cannot be
      one feature);
    * the target has at least ``min_rows`` rows (the domain classifier's 5-fold scoring
      needs 5), and so has the source;
    * with ``both_labels``, the target holds both labels (a time split's AUC needs clicks
      and non-clicks).

    Args:
        source: the source log.
        target: the target log (any index: they are put on one here).
        min_rows: the fewest rows either log may have (default 5).
        both_labels: require labels 0 and 1 in the target (default True).

    Raises:
        InputError: one line naming the log(s), the column and the values.

    >>> source = InteractionLog.from_columns([1, 2, 3, 4, 5], [1, 1, 2, 2, 3], [0] * 5,
    ...                                      [0, 1, 0, 1, 0], "s", name="s.parquet")
    >>> check_pair(source, source[np.arange(5)])
    >>> check_pair(source, source[[0, 2, 4, 0, 2]])
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: s.parquet: the target has label 0 in all 5 rows; the comparison of strategies needs clicks (1) and non-clicks (0)
    """
    source, target = read_pair(source, target)
    for log, role in ((source, "source"), (target, "target")):
        if len(log) < min_rows:
            raise InputError(f"{log.name}: the {role} has {len(log)} row"
                             f"{'' if len(log) == 1 else 's'}, at least {min_rows} needed "
                             f"(the domain classifier scores in {min_rows} folds)")
    for column in source.feature_columns:
        if column not in target.columns:
            continue
        kinds = [_feature_kind(log.table.column(column).type) for log in (source, target)]
        if kinds[0] != kinds[1]:
            example = target.table.column(column)[0].as_py()
            raise InputError(f"column '{column}' is {kinds[0]} in {source.name} but "
                             f"{kinds[1]} in {target.name} (e.g. {example!r}); a feature "
                             f"must have one type in both logs")
    if both_labels:
        labels = np.unique(target.label)
        if len(labels) < 2:
            raise InputError(f"{target.name}: the target has label {int(labels[0])} in all "
                             f"{len(target)} rows; the comparison of strategies needs clicks "
                             f"(1) and non-clicks (0)")


def _feature_kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_floating(t):
        return "numeric (float)"
    if pa.types.is_boolean(t):
        return "boolean"
    return "integer" if _is_integer(t) else "string"


def log_format(path: str | os.PathLike) -> str:
    """The format :func:`write_log` writes to ``path``, chosen by its extension.

    ``.parquet`` / ``.pq`` (or no extension at all) give ``"parquet"``; ``.csv`` / ``.tsv``,
    optionally ``.gz``, give ``"csv"``.

    Raises:
        InputError: any other extension, listing the valid ones.

    >>> log_format("sel.parquet"), log_format("sel"), log_format("sel.csv.gz")
    ('parquet', 'parquet', 'csv')
    >>> log_format("sel.json")
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: sel.json: unknown output format '.json'; use .parquet or .pq \
(Parquet) or .csv, .csv.gz, .tsv, .tsv.gz (CSV)
    """
    name = Path(path).name.lower()
    for fmt, suffixes in LOG_FORMATS.items():
        if name.endswith(suffixes):
            return fmt
    if not Path(name).suffix:
        return "parquet"
    raise InputError(f"{path}: unknown output format {Path(name).suffix!r}; use "
                     f"{' or '.join(_PARQUET_SUFFIXES)} (Parquet) or "
                     f"{', '.join(_CSV_SUFFIXES)} (CSV)")


def write_log(log: InteractionLog | pa.Table, path: str | os.PathLike) -> Path:
    """Writes a log (or a table) atomically, in the format of the extension: no partial file
    is ever left.

    ``.parquet`` / ``.pq`` or no extension: Parquet (zstd); ``.csv`` / ``.csv.gz``: CSV,
    ``.tsv`` / ``.tsv.gz``: tab-separated (see :func:`log_format`); :func:`read_log` reads
    each back. Dictionary-encoded string columns are written as strings.

    Returns:
        The path written.

    Raises:
        InputError: an unknown extension, or an unusable output path.
    """
    table = decode_strings(log.table if isinstance(log, InteractionLog) else log)
    path = Path(path)
    fmt = log_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            _write_csv(table, tmp, path.name.lower())
    return path


def _write_csv(table: pa.Table, tmp: Path, name: str) -> None:
    options = pacsv.WriteOptions(delimiter="\t" if ".tsv" in name else ",")
    if name.endswith(".gz"):
        with pa.CompressedOutputStream(str(tmp), "gzip") as stream:
            pacsv.write_csv(table, stream, options)
    else:
        pacsv.write_csv(table, tmp, options)
