"""The user-item bipartite graph: one CSR (user -> item) and one CSC (item -> user) per relation.

A relation is a PyG edge type ``("user", name, "item")``; its name is a value of the log's
``behavior`` column (``click``, ``purchase``, ``cart``, ...). A log without a ``behavior``
column gives one relation, :data:`CLICK`.

Within a relation, repeated ``(user, item)`` rows make one edge. Edges are numbered in CSR
order (by user, then item), so edge ``e`` of a relation joins user ``u`` (the row whose
``indptr`` range holds ``e``) and item ``indices[e]``; ``edge_ts[e]`` is the earliest ``ts``
of its rows and ``edge_row[e]`` the log row holding it. :attr:`BipartiteGraph.row_edge`
maps every log row back to its edge, so a mask over edges is a mask over log rows.

Duplicates are merged by sorting one int64 key per row that packs ``(user, item, row)``:
numpy's vectorised quicksort (AVX-512 where the CPU has it) sorts 20M such keys in about a
quarter of a second, twice as fast as a counting sort, whose scatter misses the cache on every
row; the row makes keys unique, so the unstable sort keeps input order among a pair's rows. The
CSC is a second such sort, of ``(item, user, edge)``, in the same buffer. One blockwise pass
between the sorts and one after them turn keys into results, and the buffer ends up holding
two of them: besides sorting, a build spends its time mapping fresh pages (see
:class:`_SmallPages`), so it maps little more than its results. When the codes need more than
63 bits, stable counting sorts (scipy's CSR -> CSC conversion, linear time) do the same, two
for the CSR and one for the CSC. Never ``np.unique`` on pairs, which is twenty times slower on
ten-million-row logs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphsel.errors import InputError

__all__ = [
    "CART",
    "CLICK",
    "EDGE_CHOICES",
    "FAV",
    "ITEM",
    "PURCHASE",
    "USER",
    "Relation",
    "RelationEdges",
    "relation",
    "reverse_relation",
]

USER = "user"
ITEM = "item"

Relation = tuple[str, str, str]
"""An edge type ``(source node type, relation name, destination node type)``, as in PyG."""

CLICK: Relation = (USER, "click", ITEM)
PURCHASE: Relation = (USER, "purchase", ITEM)
CART: Relation = (USER, "cart", ITEM)
FAV: Relation = (USER, "fav", ITEM)

EDGE_CHOICES: tuple[str, ...] = ("positive", "all")
"""Which log rows make edges: ``"positive"`` the rows with ``label == 1``, ``"all"`` every row."""

_INT32_MAX = np.iinfo(np.int32).max

_KEY_BITS = 63
"""Bits of a non-negative int64 sort key; wider ``(user, item, row)`` codes use counting sorts."""

_BLOCK = 1 << 16
"""Rows per block of the blockwise loops: a block of int64 (512 kB) stays in cache."""


def _numpy_hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's process-wide huge-page switch, or None where this numpy has none.

    ``switch(False)`` turns numpy's huge-page advice off and returns the previous setting.
    """
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return getattr(module, "_set_madvise_hugepage", None)
    return None


class _SmallPages:
    """A context in which numpy gives new arrays ordinary pages, not huge ones.

    numpy advises the kernel to back each array of 4 MB or more with 2 MB huge pages. A build
    maps about 440 MB of new arrays for 20M rows and writes each once, front to back, so it
    gains little from huge pages' fewer TLB misses, while every huge page is zeroed whole
    when first written. Measured on the 2-core virtual machine ``make bench-graph`` runs on,
    with the build otherwise unchanged: 0.15-0.25 s of system time per build with ordinary
    pages, 0.25-1.3 s with huge ones (memory the guest has not used lately costs the most).
    The arrays keep their pages afterwards: expansion, which reads them front to back or
    gathers from small masks, took the same time either way.

    The switch is numpy's, private and process-wide: the first of concurrent builds to enter
    turns the advice off, the last to leave restores the setting it found. Where numpy has no
    such switch, this does nothing.
    """

    _switch = _numpy_hugepage_switch()
    _lock = threading.Lock()
    _depth = 0
    _previous = True

    def __enter__(self) -> None:
        cls = type(self)
        with cls._lock:
            if cls._switch is not None and cls._depth == 0:
                cls._previous = cls._switch(False)
            cls._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._switch is not None and cls._depth == 0:
                cls._switch(cls._previous)


def relation(name: str | Sequence[str]) -> Relation:
    """The edge type of a relation name: ``relation("click") == ("user", "click", "item")``.

    Args:
        name: a relation name, or an edge type ``("user", name, "item")`` (returned as is).

    Raises:
        InputError: for an empty name or an edge type that is not user -> item.
    """
    if isinstance(name, str):
        if not name.strip():
            raise InputError("relation name is empty")
        return (USER, name, ITEM)
    edge_type = tuple(name)
    if len(edge_type) != 3 or edge_type[0] != USER or edge_type[2] != ITEM:
        raise InputError(f"relation {edge_type!r} is not a ('user', name, 'item') edge type")
    return (USER, edge_type[1], ITEM)


def reverse_relation(edge_type: Relation) -> Relation:
    """The reverse edge type PyG uses: ``("item", "rev_click", "user")`` for :data:`CLICK`."""
    src, name, dst = edge_type
    return (dst, f"rev_{name}", src)


def _index_dtype(size: int) -> type[np.signedinteger[Any]]:
    return np.int32 if size <= _INT32_MAX else np.int64


def _bit_width(size: int) -> int:
    """Bits that hold the codes ``0..size-1`` (0 for a single code or none)."""
    return max(int(size) - 1, 0).bit_length()


def _pack_key(columns: Sequence[np.ndarray | None], widths: Sequence[int],
              out: np.ndarray | None = None, first_position: int = 0) -> np.ndarray:
    """``(n,)`` int64 keys holding ``columns`` side by side, the first most significant.

    Sorting the keys sorts the rows by the columns in turn. ``None`` stands for the row's
    position ``first_position..first_position+n-1``: as the last column it makes every key
    unique, so an unstable sort orders equal leading columns by position, as a stable sort
    would.

    Keys are built a block at a time, each block staying in cache while its columns are
    shifted in: whole-array ``<<`` and ``|`` would allocate an ``(n,)`` int64 temporary per
    column, and fresh pages are what a build spends most of its system time on.

    Args:
        columns: ``(n,)`` non-negative integer arrays, or None; at least one array.
        widths: bits of each column (:func:`_bit_width`), summing to at most
            :data:`_KEY_BITS`.
        out: ``(n,)`` int64 array to write the keys to (default: a new one), sharing no
            memory with ``columns``.
        first_position: the position of the first row (default 0).
    """
    n = len(next(column for column in columns if column is not None))
    key = np.empty(n, dtype=np.int64) if out is None else out
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        block = key[start:stop]
        for position, (column, width) in enumerate(zip(columns, widths)):
            part = (np.arange(first_position + start, first_position + stop) if column is None
                    else column[start:stop])
            if position == 0:
                np.copyto(block, part, casting="unsafe")
            else:
                block <<= width
                np.bitwise_or(block, part, out=block, dtype=np.int64, casting="unsafe")
    return key


def _low_bits(key: np.ndarray, width: int, out: np.ndarray) -> np.ndarray:
    """Writes the ``width`` least significant bits of every key to ``out`` (any int dtype)."""
    return np.bitwise_and(key, (1 << width) - 1, out=out, casting="unsafe")


def _add_counts(counts: np.ndarray, sorted_codes: np.ndarray) -> None:
    """Adds to ``counts[c]`` the occurrences of each code ``c`` of ascending ``sorted_codes``.

    One addition per run of equal codes: over a block of sorted keys this is several times
    faster than a bincount (whose increments of one counter wait on each other) or a search
    per code.
    """
    starts = np.flatnonzero(_run_starts(sorted_codes))
    counts[sorted_codes[starts]] += np.diff(starts, append=len(sorted_codes))


def _run_starts(values: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True where a value differs from the one before (and at position 0)."""
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts


def _compress_into(values: np.ndarray, mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``values[mask]``, written over the start of ``out`` (a view of it), a block at a time.

    The same as ``values[mask]`` without allocating a new array (see :func:`_pack_key`).
    ``out`` may be ``values`` itself: each block is copied out before anything is written,
    and writes stay behind the reads.
    """
    kept = 0
    for start in range(0, len(values), _BLOCK):
        block = values[start:start + _BLOCK][mask[start:start + _BLOCK]]
        out[kept:kept + len(block)] = block
        kept += len(block)
    return out[:kept]


def _counting_sort(
    keys: np.ndarray, num_keys: int, payload: np.ndarray, group_indptr: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stable sort of entries by ``keys`` (values in ``0..num_keys-1``), in linear time.

    The entries are the rows of a CSR matrix whose columns are the keys, one entry per row, or
    grouped into rows by ``group_indptr``; converting it to CSC is scipy's counting sort, which
    keeps the input order among equal keys.

    Args:
        keys: ``(n,)`` key of each entry.
        num_keys: the number of keys.
        payload: ``(n,)`` values carried along.
        group_indptr: ``(G + 1,)`` entries ``group_indptr[g]:group_indptr[g + 1]`` form
            group ``g`` (default: each entry its own group).

    Returns:
        ``(indptr (num_keys + 1,) int64, group (n,), payload (n,))``: key ``k`` holds sorted
        positions ``indptr[k]:indptr[k + 1]``; ``group`` is the group of each sorted entry
        (its input position by default) and ``payload`` its value.
    """
    n = len(keys)
    if group_indptr is None:
        group_indptr = np.arange(n + 1, dtype=_index_dtype(n + 1))
    by_key = sp.csr_matrix((payload, keys, group_indptr),
                           shape=(len(group_indptr) - 1, num_keys)).tocsc()
    return by_key.indptr.astype(np.int64, copy=False), by_key.indices, by_key.data


# --------------------------------------------------------------------------------------------
# One relation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RelationEdges:
    """The deduplicated edges of one relation, stored both ways.

    Attributes:
        relation: the edge type, e.g. :data:`CLICK`.
        indptr: ``(U + 1,)`` int64 CSR row pointers; user ``u``'s edges are
            ``indptr[u]:indptr[u + 1]``, which are also their edge ids.
        indices: ``(E,)`` item code of each edge (int32 when it fits), sorted within a user.
        rev_indptr: ``(I + 1,)`` int64 CSC pointers over items.
        rev_indices: ``(E,)`` user codes in CSC order (sorted within an item).
        rev_edge: ``(E,)`` edge id of each CSC position.
        edge_ts: ``(E,)`` int64 earliest ``ts`` of the edge's rows.
        edge_row: ``(E,)`` the row (of the input the graph was built from) holding
            ``edge_ts``, the first such row on ties; int32 when it fits.
    """

    relation: Relation
    indptr: np.ndarray
    indices: np.ndarray
    rev_indptr: np.ndarray
    rev_indices: np.ndarray
    rev_edge: np.ndarray
    edge_ts: np.ndarray
    edge_row: np.ndarray

    @property
    def name(self) -> str:
        return self.relation[1]

    @property
    def num_edges(self) -> int:
        return len(self.indices)

    def edge_user(self) -> np.ndarray:
        """``(E,)`` user code of each edge (computed, not stored)."""
        return _expand_pointers(self.indptr)

    def user_degree(self) -> np.ndarray:
        """``(U,)`` int64 number of edges of each user."""
        return np.diff(self.indptr)

    def item_degree(self) -> np.ndarray:
        """``(I,)`` int64 number of edges of each item."""
        return np.diff(self.rev_indptr)


def _expand_pointers(indptr: np.ndarray) -> np.ndarray:
    """The row of every stored entry of a CSR structure: ``(indptr[-1],)``."""
    num_rows = len(indptr) - 1
    rows = np.arange(num_rows, dtype=_index_dtype(num_rows))
    return np.repeat(rows, np.diff(indptr))


@dataclass(frozen=True, eq=False)
class _SortedPairs:
    """A relation's ``(user, item)`` pairs sorted by ``(user, item, row)`` and merged into edges.

    Attributes:
        order: ``(n,)`` the pair (input position) at each sorted position.
        new_edge: ``(n,)`` bool, True at the first sorted position of each edge.
        indptr, indices, rev_indptr, rev_indices, rev_edge: as in :class:`RelationEdges`.
        spare: ``(E,)`` memory of ``order``'s dtype that the sorts no longer need, for
            ``edge_row`` (see :func:`_earliest`); None when there is none.
    """

    order: np.ndarray
    new_edge: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    rev_indptr: np.ndarray
    rev_indices: np.ndarray
    rev_edge: np.ndarray
    spare: np.ndarray | None = None


def _fits_key(num_users: int, num_items: int, n: int) -> bool:
    """Whether ``(user, item, row)`` (and so ``(item, user, edge)``) packs into one int64."""
    return _bit_width(num_users) + _bit_width(num_items) + _bit_width(n) <= _KEY_BITS


def _sort_by_key(user: np.ndarray, item: np.ndarray, num_users: int,
                 num_items: int) -> _SortedPairs:
    """:class:`_SortedPairs` by two sorts of packed int64 keys (see :func:`_fits_key`).

    One ``(n,)`` int64 buffer holds the keys of both sorts and then two of the results: a
    build's time goes as much to mapping fresh pages as to sorting, so every array that can
    live in memory already written is one fewer to map. The passes between and after the
    sorts (:func:`_merge_sorted_keys`, :func:`_split_csc_keys`) each read the keys once, a
    block at a time.
    """
    n = len(user)
    user_bits, item_bits, row_bits = _bit_width(num_users), _bit_width(num_items), _bit_width(n)
    key = _pack_key([user, item, None], [user_bits, item_bits, row_bits])
    key.sort()
    order, new_edge, indptr, indices = _merge_sorted_keys(key, user_bits, item_bits, row_bits,
                                                          num_users, num_items)
    num_edges = len(indices)
    # Only the first num_edges keys are still needed: give the rest back (realloc shrinks in
    # place). No view of the buffer exists yet, so nothing can point into freed memory.
    key.resize(num_edges, refcheck=False)
    key.sort()
    # After the split, the keys' memory holds rev_edge (written behind the reads) and, where
    # two of them fit in a key, edge_row next to it.
    slots = key.view(_index_dtype(num_edges))
    rev_edge = slots[:num_edges]
    rev_indptr, rev_indices = _split_csc_keys(key, rev_edge, user_bits, row_bits, num_users,
                                              num_items)
    spare = (slots[num_edges:] if len(slots) == 2 * num_edges and slots.dtype == order.dtype
             else None)
    return _SortedPairs(order, new_edge, indptr, indices, rev_indptr, rev_indices, rev_edge,
                        spare)


def _merge_sorted_keys(
    key: np.ndarray, user_bits: int, item_bits: int, row_bits: int, num_users: int,
    num_items: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merges sorted ``(user, item, row)`` keys into edges, in one pass over them.

    Rows with equal ``(user, item)`` make one edge, numbered in key order. The CSC key
    ``(item, user, edge)`` of every edge is written over the start of ``key``, behind the
    reads, ready for the second sort; the edge id, last, makes the keys unique and comes back
    out as ``rev_edge``. It takes ``row_bits`` bits: there are no more edges than rows.

    Args:
        key: ``(n,)`` sorted keys, from :func:`_pack_key` with ``widths`` ``(user_bits,
            item_bits, row_bits)``.
        num_users: ``U``.
        num_items: ``I``.

    Returns:
        ``(order, new_edge, indptr, indices)`` as in :class:`_SortedPairs`; ``len(indices)``
        is the number of edges ``E``, and ``key[:E]`` holds their CSC keys.
    """
    n = len(key)
    order = np.empty(n, dtype=_index_dtype(n))
    new_edge = np.empty(n, dtype=bool)
    indices = np.empty(n, dtype=_index_dtype(num_items))  # one per row until edges are known
    indptr = np.zeros(num_users + 1, dtype=np.int64)  # edges per user, then their cumsum
    scratch = np.empty(min(n, _BLOCK), dtype=np.int64)
    previous, num_edges = -1, 0
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        block, starts = scratch[:stop - start], new_edge[start:stop]
        _low_bits(key[start:stop], row_bits, out=order[start:stop])
        np.right_shift(key[start:stop], row_bits, out=block)  # (user, item); keys now free
        starts[0] = block[0] != previous
        np.not_equal(block[1:], block[:-1], out=starts[1:])
        previous = block[-1]
        pair = block[starts]  # one (user, item) per edge
        edges = slice(num_edges, num_edges + len(pair))
        num_edges = edges.stop
        _low_bits(pair, item_bits, out=indices[edges])
        user = np.right_shift(pair, item_bits, out=pair)
        _add_counts(indptr[1:], user)
        _pack_key([indices[edges], user, None], [item_bits, user_bits, row_bits],
                  out=key[edges], first_position=edges.start)
    np.cumsum(indptr, out=indptr)
    indices.resize(num_edges, refcheck=False)  # shrinks in place; no view of it is left
    return order, new_edge, indptr, indices


def _split_csc_keys(
    key: np.ndarray, rev_edge: np.ndarray, user_bits: int, edge_bits: int, num_users: int,
    num_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits sorted ``(item, user, edge)`` keys into the CSC, in one pass over them.

    Args:
        key: ``(E,)`` sorted CSC keys (see :func:`_merge_sorted_keys`).
        rev_edge: ``(E,)`` where the edge ids go; it may share memory with ``key`` as long as
            no id lands past its key (as with ``key.view(np.int32)[:E]`` or ``key`` itself).
        num_users: ``U``.
        num_items: ``I``.

    Returns:
        ``(rev_indptr, rev_indices)`` as in :class:`RelationEdges`.
    """
    num_edges = len(key)
    rev_indptr = np.zeros(num_items + 1, dtype=np.int64)  # edges per item, then their cumsum
    rev_indices = np.empty(num_edges, dtype=_index_dtype(num_users))
    scratch = np.empty(min(num_edges, _BLOCK), dtype=np.int64)
    for start in range(0, num_edges, _BLOCK):
        stop = min(start + _BLOCK, num_edges)
        block = scratch[:stop - start]
        np.copyto(block, key[start:stop])  # before rev_edge[start:stop] can overwrite them
        _low_bits(block, edge_bits, out=rev_edge[start:stop])
        block >>= edge_bits
        _low_bits(block, user_bits, out=rev_indices[start:stop])
        block >>= user_bits
        _add_counts(rev_indptr[1:], block)
    np.cumsum(rev_indptr, out=rev_indptr)
    return rev_indptr, rev_indices


def _sort_by_counting(user: np.ndarray, item: np.ndarray, num_users: int,
                      num_items: int) -> _SortedPairs:
    """:class:`_SortedPairs` by three stable counting sorts, for codes too wide for one key."""
    n = len(user)
    # Sort by (user, item, input order): a stable sort by item carrying the user, then a
    # stable sort by user of the item groups carrying the row; the group is the item.
    item_pointers, by_item, user_by_item = _counting_sort(item, num_items, user)
    user_pointers, item_sorted, order = _counting_sort(user_by_item, num_users, by_item,
                                                       item_pointers)
    new_edge = _run_starts(item_sorted)
    user_starts = user_pointers[:-1]
    new_edge[user_starts[user_starts < n]] = True  # a user's first pair starts an edge
    indices = item_sorted[new_edge].astype(_index_dtype(num_items), copy=False)
    indptr = np.searchsorted(np.flatnonzero(new_edge), user_pointers).astype(np.int64)
    # The CSC: a stable sort of the edges by item keeps them sorted by user within an item.
    edge_ids = np.arange(len(indices), dtype=_index_dtype(len(indices)))
    rev_indptr, rev_indices, rev_edge = _counting_sort(indices, num_items, edge_ids, indptr)
    return _SortedPairs(order, new_edge, indptr, indices, rev_indptr,
                        rev_indices.astype(_index_dtype(num_users), copy=False), rev_edge)


def _edge_of_sorted(new_edge: np.ndarray) -> np.ndarray:
    """``(n,)`` the edge id of every sorted position."""
    edge = np.cumsum(new_edge, dtype=_index_dtype(len(new_edge)))
    edge -= 1
    return edge


def _earliest(pairs: _SortedPairs, ts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each edge's earliest ``ts`` and the first of its pairs holding it.

    An edge's first sorted position is its first pair (pairs are in input order within an
    edge); only its other pairs, the duplicates, usually few, can hold an earlier ``ts``, so
    only they are looked at, instead of gathering ``ts`` in sorted order for every pair.

    Returns:
        ``(edge_ts (E,) int64, first (E,))``: ``first`` is an input position.
    """
    order, new_edge = pairs.order, pairs.new_edge
    first = order[new_edge] if pairs.spare is None else _compress_into(order, new_edge,
                                                                         pairs.spare)
    if ts is None:
        return np.zeros(len(first), dtype=np.int64), first
    ts = np.asarray(ts)
    edge_ts = ts[first].astype(np.int64, copy=False)
    duplicate = np.flatnonzero(~new_edge)  # sorted positions of the duplicates
    if len(duplicate) == 0:
        return edge_ts, first
    # The k-th duplicate (from 0), at position p, follows p - k edge starts: it is edge p - k - 1.
    duplicate_edge = duplicate - np.arange(1, len(duplicate) + 1)
    duplicate_ts = ts[order[duplicate]].astype(np.int64, copy=False)
    first_ts = edge_ts[duplicate_edge]
    np.minimum.at(edge_ts, duplicate_edge, duplicate_ts)
    # Where the first pair is later than the minimum, the first duplicate at it holds it.
    earliest = edge_ts[duplicate_edge]
    takes = (duplicate_ts == earliest) & (first_ts != earliest)
    edge, row = duplicate_edge[takes], order[duplicate[takes]]
    leading = _run_starts(edge)
    first[edge[leading]] = row[leading]
    return edge_ts, first


def _build_relation(
    edge_type: Relation, user: np.ndarray, item: np.ndarray, ts: np.ndarray | None,
    rows: np.ndarray | None, num_users: int, num_items: int,
) -> tuple[RelationEdges, _SortedPairs]:
    """Deduplicates ``(user, item)`` pairs into a :class:`RelationEdges`.

    Args:
        user, item: ``(n,)`` codes of the rows that make edges.
        ts: ``(n,)`` timestamps, or None (every edge gets ts 0).
        rows: ``(n,)`` the input row of each pair (default ``arange(n)``).

    Returns:
        The edges, and the sorted pairs they came from (what ``row_edge`` is computed from).
    """
    n = len(user)
    sort = _sort_by_key if _fits_key(num_users, num_items, n) else _sort_by_counting
    with _SmallPages():  # see there: fresh huge pages cost a build more than they save
        pairs = sort(user, item, num_users, num_items)
        edge_ts, first_rows = _earliest(pairs, ts)
    if rows is None:
        edge_row = first_rows  # input positions, of _index_dtype(n) already
    else:
        edge_row = rows[first_rows]
        edge_row = edge_row.astype(_index_dtype(max(n, int(edge_row.max(initial=0)) + 1)),
                                   copy=False)
    edges = RelationEdges(
        relation=edge_type,
        indptr=pairs.indptr,
        indices=pairs.indices,
        rev_indptr=pairs.rev_indptr,
        rev_indices=pairs.rev_indices,
        rev_edge=pairs.rev_edge,
        edge_ts=edge_ts,
        edge_row=edge_row,
    )
    return edges, pairs


class _RowEdge:
    """:attr:`BipartiteGraph.row_edge`, computed on first use from the builds' sorted pairs.

    Scattering edge ids back to input rows is a random write per row, about 0.3 s for 20M
    rows (as long as either sort of the build), and only row-level callers need it:
    expansion works on edges.

    Args:
        num_rows: ``N``, the rows the graph was built from.
        parts: per relation, ``(rows, order, new_edge)``: its input rows (None: all ``N``)
            and the ``order`` and ``new_edge`` of its :class:`_SortedPairs`.
    """

    def __init__(self, num_rows: int,
                 parts: list[tuple[np.ndarray | None, np.ndarray, np.ndarray]]) -> None:
        self._num_rows = num_rows
        self._parts = parts
        self._value: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self._value is None:
            dtype = _index_dtype(self._num_rows)
            every_row = len(self._parts) == 1 and self._parts[0][0] is None
            row_edge = (np.empty(self._num_rows, dtype=dtype) if every_row
                        else np.full(self._num_rows, -1, dtype=dtype))
            for rows, order, new_edge in self._parts:
                row_edge[order if rows is None else rows[order]] = _edge_of_sorted(new_edge)
            self._value, self._parts = row_edge, []  # the sort orders are no longer needed
        return self._value



def _bool_matrix(indptr: np.ndarray, indices: np.ndarray, num_columns: int,
                 values: np.ndarray) -> sp.csr_matrix:
    shape = (len(indptr) - 1, num_columns)
    return sp.csr_matrix((values, indices, indptr), shape=shape)


def _compress(major: np.ndarray, minor: np.ndarray,
              num_major: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of pairs ``(major, minor)``, in input order within a row."""
    indptr, _, indices = _counting_sort(major, num_major, minor)
    return indptr, indices
