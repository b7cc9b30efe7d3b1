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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from graphsel.errors import InputError, choice_error
from graphsel.log import InteractionLog

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from torch_geometric.data import HeteroData

__all__ = [
    "CART",
    "CLICK",
    "EDGE_CHOICES",
    "FAV",
    "ITEM",
    "PURCHASE",
    "USER",
    "Adjacency",
    "BipartiteGraph",
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
    return edge_type  # type: ignore[return-value]


def reverse_relation(edge_type: Relation) -> Relation:
    """The reverse edge type PyG uses: ``("item", "rev_click", "user")`` for :data:`CLICK`."""
    src, name, dst = edge_type
    return (dst, f"rev_{name}", src)


def _index_dtype(size: int) -> type:
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


# --------------------------------------------------------------------------------------------
# The merged adjacency an expansion walks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Adjacency:
    """The edges of some relations before a time cut, merged into one CSR and one CSC.

    A ``(user, item)`` pair present in two relations is two parallel edges here, so a
    node's degree counts edges, not distinct neighbours.

    Attributes:
        indptr: ``(U + 1,)`` int64; ``indices[indptr[u]:indptr[u + 1]]`` are user ``u``'s items.
        indices: ``(E,)`` item codes.
        rev_indptr: ``(I + 1,)`` int64.
        rev_indices: ``(E,)`` user codes.
    """

    indptr: np.ndarray
    indices: np.ndarray
    rev_indptr: np.ndarray
    rev_indices: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_edges(self) -> int:
        return len(self.indices)

    def user_degree(self) -> np.ndarray:
        """``(U,)`` int64 edges per user."""
        return np.diff(self.indptr)

    def item_degree(self) -> np.ndarray:
        """``(I,)`` int64 edges per item."""
        return np.diff(self.rev_indptr)

    def user_matrix(self) -> sp.csr_matrix:
        """``(U, I)`` boolean CSR adjacency (built once, one byte per edge).

        ``user_matrix() @ item_mask`` marks the users with an edge to a masked item; scipy's
        boolean product is a logical or, so it never overflows.
        """
        if "user_matrix" not in self._cache:
            self._cache["user_matrix"] = _bool_matrix(self.indptr, self.indices,
                                                      len(self.rev_indptr) - 1, self._true())
        return self._cache["user_matrix"]

    def item_matrix(self) -> sp.csr_matrix:
        """``(I, U)`` boolean CSR adjacency of items."""
        if "item_matrix" not in self._cache:
            self._cache["item_matrix"] = _bool_matrix(self.rev_indptr, self.rev_indices,
                                                      len(self.indptr) - 1, self._true())
        return self._cache["item_matrix"]

    def _true(self) -> np.ndarray:
        """``(E,)`` all True: the values of both boolean matrices, one array for the two."""
        if "true" not in self._cache:
            with _SmallPages():
                self._cache["true"] = np.ones(self.num_edges, dtype=bool)
        return self._cache["true"]


def _bool_matrix(indptr: np.ndarray, indices: np.ndarray, num_columns: int,
                 values: np.ndarray) -> sp.csr_matrix:
    shape = (len(indptr) - 1, num_columns)
    return sp.csr_matrix((values, indices, indptr), shape=shape)


def _compress(major: np.ndarray, minor: np.ndarray,
              num_major: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of pairs ``(major, minor)``, in input order within a row."""
    indptr, _, indices = _counting_sort(major, num_major, minor)
    return indptr, indices


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BipartiteGraph:
    """A user-item graph with one :class:`RelationEdges` per relation.

    Build one with :meth:`from_log` or :meth:`from_arrays`. User and item codes are those of
    the log's :class:`~graphsel.log.IdIndex`, so ``graph.num_users == log.index.num_users``
    and ``log.user`` indexes the graph's users.

    >>> from graphsel.log import InteractionLog
    >>> log = InteractionLog.from_columns(
    ...     ["a", "a", "b", "a"], ["x", "y", "x", "x"], [3, 1, 2, 0], [1, 1, 1, 1], "source")
    >>> graph = BipartiteGraph.from_log(log)
    >>> graph.relations, graph.num_users, graph.num_items
    ([('user', 'click', 'item')], 2, 2)
    >>> edges = graph.edges(CLICK)
    >>> edges.indptr.tolist(), edges.indices.tolist(), edges.edge_ts.tolist()
    ([0, 2, 3], [0, 1, 0], [0, 1, 2])
    >>> edges.edge_row.tolist(), graph.row_edge.tolist()
    ([3, 1, 2], [0, 1, 2, 0])

    Attributes:
        num_users: ``U``, the number of user codes (``log.index.num_users``).
        num_items: ``I``.
        relation_edges: the edges of each relation, in order of ``relations``.
        row_relation: ``(N,)`` int8 position in ``relations`` of each input row's relation;
            -1 for rows that make no edge (a negative label, a relation left out).
        row_edge: ``(N,)`` edge id (within its relation) of each input row, int32 when it
            fits; -1 where ``row_relation`` is -1. Computed on first use, then kept.
        user_ids: ``(U,)`` original user ids, when built from a log (else None).
        item_ids: ``(I,)`` original item ids, when built from a log (else None).
    """

    num_users: int
    num_items: int
    relation_edges: tuple[RelationEdges, ...]
    row_relation: np.ndarray
    _row_edge: _RowEdge = field(repr=False, compare=False)
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_log(
        cls,
        log: InteractionLog,
        edges: str = "positive",
        relations: Iterable[str | Relation] | None = None,
    ) -> BipartiteGraph:
        """Builds the graph of a log.

        Args:
            log: the interaction log (``N`` rows). Its ``behavior`` column names the
                relations; without one every row is a :data:`CLICK`.
            edges: which rows make edges (default ``"positive"``): ``"positive"`` the rows
                with ``label == 1`` (an impression without a click is no interaction);
                ``"all"`` every row (for logs whose rows are all interactions, such as
                MovieLens ratings or Taobao behaviours, both give the same graph when every
                label is 1).
            relations: relation names or edge types to keep (default: every behaviour of
                the rows that make edges, sorted by name).

        Raises:
            InputError: for an unknown ``edges`` value or a relation the log does not have.
        """
        if edges not in EDGE_CHOICES:
            raise choice_error("edges", edges, EDGE_CHOICES)
        keep = log.label == 1 if edges == "positive" else np.ones(len(log), dtype=bool)
        if log.has_behavior:
            codes, names = log.codes("behavior")
        else:
            codes, names = np.zeros(len(log), dtype=np.int64), np.array([CLICK[1]])
        codes = np.where(keep, codes, -1)  # rows that make no edge
        return cls._from_codes(
            log.user, log.item, log.ts, codes, [str(n) for n in names], relations,
            log.index.num_users, log.index.num_items, what=log.name,
            ids=(log.index.users, log.index.items))

    @classmethod
    def from_arrays(
        cls,
        user: Any,
        item: Any,
        ts: Any = None,
        relation: Any = None,
        *,
        num_users: int | None = None,
        num_items: int | None = None,
        relations: Iterable[str | Relation] | None = None,
    ) -> BipartiteGraph:
        """Builds a graph from code arrays (for benchmarks and tests).

        Args:
            user: ``(N,)`` user codes in ``0..num_users-1``.
            item: ``(N,)`` item codes.
            ts: ``(N,)`` integer timestamps (default None: every edge has ts 0).
            relation: ``(N,)`` relation name of each row, or one name for all (default None:
                every row is a :data:`CLICK`).
            num_users: ``U`` (default ``user.max() + 1``).
            num_items: ``I`` (default ``item.max() + 1``).
            relations: relations to keep (default: all, sorted by name).

        Raises:
            InputError: for mismatched lengths, negative codes or codes past ``num_users`` /
                ``num_items``.
        """
        user = np.asarray(user)
        item = np.asarray(item)
        if user.ndim != 1 or item.shape != user.shape:
            raise InputError(f"user and item must be 1-D arrays of one length, got shapes "
                             f"{user.shape} and {item.shape}")
        n = len(user)
        num_users = _check_codes("user", user, num_users)
        num_items = _check_codes("item", item, num_items)
        if ts is not None:
            ts = np.asarray(ts)
            if ts.shape != user.shape:
                raise InputError(f"ts has shape {ts.shape}, expected ({n},)")
        if relation is None or isinstance(relation, str):
            names = [CLICK[1] if relation is None else relation]
            codes = None
        else:
            relation = np.asarray(relation)
            if relation.shape != user.shape:
                raise InputError(f"relation has shape {relation.shape}, expected ({n},)")
            unique_names, codes = np.unique(relation.astype(str), return_inverse=True)
            names = [str(v) for v in unique_names]
        return cls._from_codes(user, item, ts, codes, names, relations, num_users, num_items,
                               what="arrays")

    @classmethod
    def _from_codes(
        cls, user: np.ndarray, item: np.ndarray, ts: np.ndarray | None,
        codes: np.ndarray | None, names: list[str], relations: Iterable[str | Relation] | None,
        num_users: int, num_items: int, what: str,
        ids: tuple[np.ndarray, np.ndarray] | tuple[None, None] = (None, None),
    ) -> BipartiteGraph:
        """Builds one :class:`RelationEdges` per relation.

        A relation that every row belongs to (the usual single-behaviour log) is built from
        the arrays as given, without selecting and copying its rows.

        Args:
            codes: ``(N,)`` position in ``names`` of each row's relation, -1 for rows that
                make no edge; None when every row makes an edge of ``names[0]``.
            ids: ``(user_ids, item_ids)`` (default none).
        """
        n = len(user)
        counts = [n] if codes is None else np.bincount(codes[codes >= 0], minlength=len(names))
        present = sorted(name for name, count in zip(names, counts) if count)
        if relations is None:
            wanted = present if len(names) > 1 else names
        else:
            wanted = [relation(r)[1] for r in relations]
            for name in wanted:
                if name not in present:
                    raise choice_error(f"relation of {what}", name, present)
        # One relation of every row (the usual case) leaves row_relation all zeros: np.zeros
        # maps its pages only when they are read, where writing them costs a pass over N.
        every_row = len(wanted) == 1 and counts[names.index(wanted[0])] == n
        row_relation = (np.zeros(n, dtype=np.int8) if every_row
                        else np.full(n, -1, dtype=np.int8))
        built, row_edge_parts = [], []
        for position, name in enumerate(wanted):
            code = names.index(name)
            rows = (None if counts[code] == n  # every row: codes is None or all equal
                    else np.flatnonzero(codes == code).astype(_index_dtype(n), copy=False))
            if not every_row:
                row_relation[slice(None) if rows is None else rows] = position
            edges, pairs = _build_relation(
                relation(name), _take(user, rows), _take(item, rows),
                None if ts is None else _take(ts, rows), rows, num_users, num_items)
            built.append(edges)
            row_edge_parts.append((rows, pairs.order, pairs.new_edge))
        return cls(num_users, num_items, tuple(built), row_relation,
                   _RowEdge(n, row_edge_parts), *ids)

    @property
    def row_edge(self) -> np.ndarray:
        """``(N,)`` edge id of each input row (see the class attributes); computed once."""
        return self._row_edge()

    # -- access ------------------------------------------------------------------------------

    @property
    def relations(self) -> list[Relation]:
        """The edge types, e.g. ``[("user", "click", "item"), ("user", "purchase", "item")]``."""
        return [edges.relation for edges in self.relation_edges]

    @property
    def relation_names(self) -> list[str]:
        return [edges.name for edges in self.relation_edges]

    @property
    def num_edges(self) -> int:
        """Edges over all relations."""
        return sum(edges.num_edges for edges in self.relation_edges)

    def resolve_relations(self, relations: Iterable[str | Relation] | None) -> list[Relation]:
        """Checks relation names or edge types against this graph (None: all of them).

        Raises:
            InputError: naming the unknown relation and listing the valid ones.
        """
        if relations is None:
            return self.relations
        if isinstance(relations, str) or (isinstance(relations, tuple) and len(relations) == 3
                                          and all(isinstance(r, str) for r in relations)
                                          and relations[0] == USER):
            relations = [relations]  # one name or one edge type
        resolved = []
        for name in relations:
            edge_type = relation(name)
            if edge_type not in self.relations:
                raise choice_error("relation", edge_type[1], self.relation_names)
            if edge_type not in resolved:
                resolved.append(edge_type)
        if not resolved and self.relations:
            raise InputError(f"relations is empty; choose among {self.relation_names}")
        return sorted(resolved, key=self.relations.index)

    def edges(self, edge_type: str | Relation) -> RelationEdges:
        """The :class:`RelationEdges` of one relation (a name or an edge type)."""
        (edge_type,) = self.resolve_relations([edge_type])
        return self.relation_edges[self.relations.index(edge_type)]

    def adjacency(
        self, relations: Iterable[str | Relation] | None = None, as_of: int | None = None
    ) -> Adjacency:
        """The edges of ``relations`` (default all) with ``ts < as_of`` (default: no cut).

        Cached per ``(relations, as_of)``; one relation without a cut shares its arrays.
        """
        resolved = self.resolve_relations(relations)
        key = (tuple(resolved), as_of)
        if key in self._cache:
            return self._cache[key]
        parts = [self.relation_edges[self.relations.index(r)] for r in resolved]
        if len(parts) == 1 and as_of is None:
            only = parts[0]
            adjacency = Adjacency(only.indptr, only.indices, only.rev_indptr, only.rev_indices)
        else:
            users, items = [], []
            for edges in parts:
                kept = slice(None) if as_of is None else edges.edge_ts < as_of
                users.append(edges.edge_user()[kept])
                items.append(edges.indices[kept])
            user = np.concatenate(users) if users else np.zeros(0, dtype=np.int32)
            item = np.concatenate(items) if items else np.zeros(0, dtype=np.int32)
            indptr, indices = _compress(user, item, self.num_users)
            rev_indptr, rev_indices = _compress(item, user, self.num_items)
            adjacency = Adjacency(indptr, indices, rev_indptr, rev_indices)
        self._cache[key] = adjacency
        return adjacency

    def degree(
        self, node_type: str = USER, relations: Iterable[str | Relation] | None = None,
        as_of: int | None = None,
    ) -> np.ndarray:
        """Edges per node over ``relations`` (default all) with ``ts < as_of`` (default all).

        Args:
            node_type: ``"user"`` (default) or ``"item"``.

        Returns:
            ``(U,)`` or ``(I,)`` int64.
        """
        adjacency = self.adjacency(relations, as_of)
        if node_type == USER:
            return adjacency.user_degree()
        if node_type == ITEM:
            return adjacency.item_degree()
        raise choice_error("node_type", node_type, (USER, ITEM))

    def node_ids(self, node_type: str, codes: np.ndarray) -> np.ndarray:
        """Original ids of node codes (the codes themselves for a graph built from arrays)."""
        ids = self.user_ids if node_type == USER else self.item_ids
        return np.asarray(codes) if ids is None else ids[codes]

    # -- export ------------------------------------------------------------------------------

    def to_pyg(self) -> HeteroData:
        """A ``torch_geometric.data.HeteroData`` with node types ``user`` and ``item``.

        Every relation has ``edge_index`` ``(2, E)`` int64 (row 0 users, row 1 items, in
        edge-id order) and ``edge_time`` ``(E,)``, plus the reverse edge type
        (``("item", "rev_click", "user")``) with the same edges flipped.
        """
        import torch
        from torch_geometric.data import HeteroData

        data = HeteroData()
        data[USER].num_nodes = self.num_users
        data[ITEM].num_nodes = self.num_items
        for edges in self.relation_edges:
            edge_index = torch.from_numpy(np.stack([edges.edge_user().astype(np.int64),
                                                    edges.indices.astype(np.int64)]))
            edge_time = torch.from_numpy(edges.edge_ts.copy())
            data[edges.relation].edge_index = edge_index
            data[edges.relation].edge_time = edge_time
            data[reverse_relation(edges.relation)].edge_index = edge_index.flip(0)
            data[reverse_relation(edges.relation)].edge_time = edge_time.clone()
        return data

    def to_networkx(self, users: Any = (), items: Any = ()) -> nx.Graph:
        """The subgraph induced on some users and items, for drawing.

        Args:
            users: user codes to include (default none).
            items: item codes to include.

        Returns:
            An ``nx.Graph`` with nodes ``("user", code)`` and ``("item", code)``, node
            attributes ``node_type``, ``id`` (original id) and ``degree`` (edges over all
            relations), and one edge per linked pair with attributes ``relation`` (the
            name of its earliest relation), ``relations`` (all names) and ``ts`` (earliest).
        """
        import networkx as nx

        users = np.unique(np.asarray(users, dtype=np.int64).reshape(-1))
        items = np.unique(np.asarray(items, dtype=np.int64).reshape(-1))
        _check_codes("user", users, self.num_users)
        _check_codes("item", items, self.num_items)
        graph = nx.Graph()
        for node_type, codes in ((USER, users), (ITEM, items)):
            degree = self.degree(node_type)
            ids = self.node_ids(node_type, codes)
            for code, node_id in zip(codes.tolist(), ids.tolist()):
                graph.add_node((node_type, code), node_type=node_type, id=node_id,
                               degree=int(degree[code]))
        item_set = np.zeros(self.num_items, dtype=bool)
        item_set[items] = True
        links: list[tuple[int, int, int, str]] = []
        for edges in self.relation_edges:
            for user in users.tolist():
                span = slice(edges.indptr[user], edges.indptr[user + 1])
                linked = item_set[edges.indices[span]]
                for item, ts in zip(edges.indices[span][linked].tolist(),
                                    edges.edge_ts[span][linked].tolist()):
                    links.append((user, item, ts, edges.name))
        for user, item, ts, name in sorted(links, key=lambda link: (link[2], link[3])):
            key = ((USER, user), (ITEM, item))
            if graph.has_edge(*key):
                graph.edges[key]["relations"].append(name)
            else:
                graph.add_edge(*key, relation=name, relations=[name], ts=ts)
        return graph

    def __repr__(self) -> str:
        parts = ", ".join(f"{e.name}={e.num_edges}" for e in self.relation_edges)
        return f"BipartiteGraph(users={self.num_users}, items={self.num_items}, edges: {parts})"


def _take(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``values[rows]``, or ``values`` itself (no copy) when ``rows`` is None: every row."""
    return values if rows is None else values[rows]


def _check_codes(what: str, codes: np.ndarray, size: int | None) -> int:
    """Checks integer codes against ``0..size-1``; returns ``size`` (default ``max + 1``)."""
    if len(codes) and not np.issubdtype(codes.dtype, np.integer):
        raise InputError(f"{what} codes have dtype {codes.dtype}, expected integers")
    if len(codes) and codes.min() < 0:
        raise InputError(f"{what} code {int(codes.min())} is negative")
    largest = int(codes.max()) if len(codes) else -1
    if size is None:
        return largest + 1
    if largest >= size:
        raise InputError(f"{what} code {largest} is out of range for {size} {what}s")
    return int(size)
