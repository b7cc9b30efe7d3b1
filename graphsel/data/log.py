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

import math
import os
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

from graphsel.data.io import atomic_path
from graphsel.errors import InputError

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "IdIndex",
    "InteractionLog",
    "Overlap",
    "overlap",
    "read_log",
    "read_pair",
    "write_log",
    "share_index",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "ts", "label", "domain")
OPTIONAL_COLUMNS: tuple[str, ...] = ("behavior",)
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


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
    so slices of one log stay comparable.

    Attributes:
        table: every column of the log as read (``N`` rows), ids in their original type.
        index: the :class:`IdIndex` that ``user`` and ``item`` refer to.
        user: ``(N,)`` int64 user codes into ``index.users``.
        item: ``(N,)`` int64 item codes into ``index.items``.
        ts: ``(N,)`` int64 Unix seconds.
        label: ``(N,)`` int8 labels, 0 or 1.
        name: where the log came from, used in messages.
    """

    table: pa.Table
    index: IdIndex
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    label: np.ndarray
    name: str = "<memory>"
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
        user_ids = _column_numpy(table, "user_id")
        item_ids = _column_numpy(table, "item_id")
        if index is None:
            index = IdIndex.from_ids(user_ids, item_ids)
        user = index.user_codes(user_ids)
        item = index.item_codes(item_ids)
        if (user < 0).any() or (item < 0).any():
            col, pos = ("user_id", np.flatnonzero(user < 0)[0]) if (user < 0).any() else (
                "item_id", np.flatnonzero(item < 0)[0])
            bad = (user_ids if col == "user_id" else item_ids)[pos]
            raise InputError(f"{name}: column '{col}' value {bad!r} is not in the id index")
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
        return self.table.num_rows

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
        return InteractionLog(
            self.table.take(pa.array(rows)), self.index, _frozen(self.user[rows]),
            _frozen(self.item[rows]), _frozen(self.ts[rows]), _frozen(self.label[rows]),
            self.name)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def feature_columns(self) -> list[str]:
        """Side-feature columns: everything but the required and optional ones."""
        known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
        return [c for c in self.table.column_names if c not in known]

    @property
    def has_behavior(self) -> bool:
        return "behavior" in self.table.column_names

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` as a numpy array (strings as an object array), cached."""
        if name not in self._cache:
            if name not in self.table.column_names:
                raise InputError(
                    f"{self.name}: no column '{name}' (has: {', '.join(self.columns)})")
            self._cache[name] = _frozen(_column_numpy(self.table, name))
        return self._cache[name]

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Dictionary codes of a categorical column: ``(codes (N,) int64, categories)``.

        Categories are sorted, so the codes of equal columns agree across logs.
        """
        values = self.column(name)
        categories, codes = np.unique(values.astype(str) if values.dtype == object else values,
                                      return_inverse=True)
        return codes.astype(np.int64), categories

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
        return sorted(pc.unique(self.table.column("domain")).to_pylist())

    def unique_users(self) -> np.ndarray:
        """Sorted codes of the users that appear in this log."""
        return np.unique(self.user)

    def unique_items(self) -> np.ndarray:
        """Sorted codes of the items that appear in this log."""
        return np.unique(self.item)

    def __repr__(self) -> str:
        return (f"InteractionLog(name={self.name!r}, rows={len(self)}, "
                f"users={len(self.unique_users())}, items={len(self.unique_items())}, "
                f"columns={self.columns})")


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.flags.writeable = False
    return array


def _column_numpy(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
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


def _first_bad(column: pa.ChunkedArray, bad: pa.ChunkedArray | np.ndarray) -> tuple[int, Any]:
    mask = bad.to_numpy(zero_copy_only=False) if not isinstance(bad, np.ndarray) else bad
    mask = np.asarray(mask, dtype=bool)
    row = int(np.flatnonzero(mask)[0])
    return row, column[row].as_py()


def validate_table(table: pa.Table, name: str) -> pa.Table:
    """Checks ``table`` against the schema; returns it with dictionary ids decoded.

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
            raise InputError(f"{name}: column '{col}' has type {column.type}, "
                             f"expected integer or string (e.g. {column[0].as_py()!r})")
        if column.null_count:
            row, _ = _first_bad(column, pc.is_null(column))
            raise InputError(f"{name}: column '{col}' has a null id at row {row}")
        if _is_string(column.type):
            empty = pc.equal(pc.utf8_length(column.cast(pa.string())), 0)
            if pc.any(empty).as_py():
                row, _ = _first_bad(column, empty)
                raise InputError(f"{name}: column '{col}' has an empty id at row {row}")
            if pa.types.is_dictionary(column.type):
                table = table.set_column(table.column_names.index(col), col,
                                         column.cast(column.type.value_type))
    ts = table.column("ts")
    if not _is_integer(ts.type):
        values = [v for v in ts.to_pylist() if v is not None]
        example = next((v for v in values if not isinstance(v, (int, float))
                        or not math.isfinite(v) or v != int(v)),
                       values[0] if values else None)
        raise InputError(f"{name}: column 'ts' has type {ts.type}, expected integer Unix "
                         f"seconds (e.g. {example!r})")
    if ts.null_count:
        row, _ = _first_bad(ts, pc.is_null(ts))
        raise InputError(f"{name}: column 'ts' has a null at row {row}")
    negative = pc.less(ts, 0)
    if pc.any(negative).as_py():
        row, value = _first_bad(ts, negative)
        raise InputError(f"{name}: column 'ts' has negative value {value} at row {row}")
    label = table.column("label")
    if not (_is_integer(label.type) or pa.types.is_boolean(label.type)
            or pa.types.is_floating(label.type)):
        raise InputError(f"{name}: column 'label' has type {label.type}, expected 0/1 "
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
            raise InputError(f"{name}: column '{col}' has type {column.type}, expected string "
                             f"(e.g. {column[0].as_py()!r})")
        if column.null_count:
            row, _ = _first_bad(column, pc.is_null(column))
            raise InputError(f"{name}: column '{col}' has a null at row {row}")
        empty = pc.equal(pc.utf8_length(column.cast(pa.string())), 0)
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
            raise InputError(f"{name}: feature column '{col}' has type {t}, expected integer, "
                             f"string (categorical) or float (numeric)")
    return table


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".pq"))
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
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable Parquet file ({reason})") from None


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
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Empty CSV file" in reason:
            raise InputError(f"{path}: empty file") from None
        raise InputError(f"{path}: not a readable CSV file ({reason})") from None


def read_log(path: str | os.PathLike, *, index: IdIndex | None = None) -> InteractionLog:
    """Reads and validates a log: a Parquet file, a directory of Parquet files, or a CSV.

    Args:
        path: ``.parquet`` / ``.pq`` file, a directory holding them, or ``.csv`` / ``.tsv``
            (optionally gzipped).
        index: encode ids with this index (default: a new index of this log's ids).

    Raises:
        InputError: unreadable file or a schema violation, in one line naming the file.
    """
    path = Path(path)
    return InteractionLog.from_table(_read_table(path), name=str(path), index=index)


def share_index(*logs: InteractionLog) -> tuple[InteractionLog, ...]:
    """Re-encodes ``logs`` with one :class:`IdIndex` (first log's ids get the low codes).

    Raises:
        InputError: if one log has integer ids and another string ids.
    """
    for col in ("user_id", "item_id"):
        kinds = {log.name: _arrow_kind(log.table.column(col).type) for log in logs}
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
    return InteractionLog(log.table, index, _frozen(user), _frozen(item), log.ts, log.label,
                          log.name)


def _arrow_kind(t: pa.DataType) -> str:
    return "integer" if _is_integer(t) else "string"


def read_pair(
    source: str | os.PathLike | InteractionLog, target: str | os.PathLike | InteractionLog
) -> tuple[InteractionLog, InteractionLog]:
    """Reads a source and a target log onto one shared :class:`IdIndex`.

    Raises:
        InputError: if either log is invalid, their id types differ, or they share no user
            and no item.
    """
    source_log = source if isinstance(source, InteractionLog) else read_log(source)
    target_log = target if isinstance(target, InteractionLog) else read_log(target)
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


def write_log(log: InteractionLog | pa.Table, path: str | os.PathLike) -> Path:
    """Writes a log (or a table) to Parquet atomically: no partial file is ever left.

    Returns:
        The path written.
    """
    table = log.table if isinstance(log, InteractionLog) else log
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path
