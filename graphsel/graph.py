"""The user-item bipartite graph: one CSR (user -> item) and one CSC (item -> user) per relation.

A relation is a PyG edge type ``("user", name, "item")``; its name is a value of the log's
``behavior`` column (``click``, ``purchase``, ``cart``, ...). A log without a ``behavior``
column gives one relation, :data:`CLICK`.

Within a relation, repeated ``(user, item)`` rows make one edge. Edges are numbered in CSR
order (by user, then item), so edge ``e`` of a relation joins user ``u`` (the row whose
``indptr`` range holds ``e``) and item ``indices[e]``; ``edge_ts[e]`` is the earliest ``ts``
of its rows and ``edge_row[e]`` the log row holding it. :attr:`BipartiteGraph.row_edge`
maps every log row back to its edge, so a mask over edges is a mask over log rows.

Duplicates are merged by two stable counting sorts (scipy's CSR -> CSC conversion, linear
time), never by ``np.unique`` on pairs, which is twenty times slower on ten-million-row logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    "USER",
    "ITEM",
    "Relation",
    "CLICK",
    "PURCHASE",
    "CART",
    "FAV",
    "EDGE_CHOICES",
    "relation",
    "reverse_relation",
    "RelationEdges",
    "Adjacency",
    "BipartiteGraph",
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


def _build_relation(
    edge_type: Relation, user: np.ndarray, item: np.ndarray, ts: np.ndarray | None,
    rows: np.ndarray | None, num_users: int, num_items: int,
) -> tuple[RelationEdges, np.ndarray]:
    """Deduplicates ``(user, item)`` pairs into a :class:`RelationEdges`.

    Args:
        user, item: ``(n,)`` codes of the rows that make edges.
        ts: ``(n,)`` timestamps, or None (every edge gets ts 0).
        rows: ``(n,)`` the input row of each pair (default ``arange(n)``).

    Returns:
        The edges and ``(n,)`` the edge id of each pair.
    """
    n = len(user)
    # Sort by (user, item, input order): a stable sort by item carrying the user, then a
    # stable sort by user of the item groups carrying the row; the group is the item.
    item_pointers, by_item, user_by_item = _counting_sort(item, num_items, user)
    user_pointers, item_sorted, order = _counting_sort(user_by_item, num_users, by_item,
                                                       item_pointers)
    new_edge = np.ones(n, dtype=bool)
    if n:
        new_edge[1:] = item_sorted[1:] != item_sorted[:-1]
        user_starts = user_pointers[1:-1]
        new_edge[user_starts[user_starts < n]] = True
    starts = np.flatnonzero(new_edge).astype(_index_dtype(n), copy=False)
    del new_edge
    num_edges = len(starts)
    rows_per_edge = np.empty(num_edges, dtype=starts.dtype)
    if num_edges:
        np.subtract(starts[1:], starts[:-1], out=rows_per_edge[:-1])
        rows_per_edge[-1] = n - starts[-1]
    edge_ids = np.arange(num_edges, dtype=_index_dtype(n))
    edge_of_sorted = np.repeat(edge_ids, rows_per_edge)  # the edge of every sorted position
    indices = item_sorted[starts].astype(_index_dtype(num_items), copy=False)
    indptr = np.searchsorted(starts, user_pointers).astype(np.int64, copy=False)
    if ts is None:
        edge_ts = np.zeros(num_edges, dtype=np.int64)
        first_rows = order[starts]
    else:
        ts_sorted = np.asarray(ts, dtype=np.int64)[order]
        edge_ts = np.minimum.reduceat(ts_sorted, starts) if n else np.zeros(0, np.int64)
        at_min = np.flatnonzero(ts_sorted == np.repeat(edge_ts, rows_per_edge))
        edge_at_min = edge_of_sorted[at_min]
        first_at_min = np.ones(len(at_min), dtype=bool)
        first_at_min[1:] = edge_at_min[1:] != edge_at_min[:-1]
        first_rows = order[at_min[first_at_min]]
    edge_row = first_rows if rows is None else rows[first_rows]
    by_item_matrix = sp.csr_matrix((edge_ids, indices, indptr), shape=(num_users, num_items))
    reverse = by_item_matrix.tocsc()
    pair_edge = np.empty(n, dtype=edge_of_sorted.dtype)
    pair_edge[order] = edge_of_sorted
    edges = RelationEdges(
        relation=edge_type,
        indptr=indptr,
        indices=indices,
        rev_indptr=reverse.indptr.astype(np.int64, copy=False),
        rev_indices=reverse.indices.astype(_index_dtype(num_users), copy=False),
        rev_edge=reverse.data,
        edge_ts=edge_ts,
        edge_row=edge_row.astype(_index_dtype(max(n, int(edge_row.max(initial=0)) + 1)),
                                 copy=False),
    )
    return edges, pair_edge


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
                                                      len(self.rev_indptr) - 1)
        return self._cache["user_matrix"]

    def item_matrix(self) -> sp.csr_matrix:
        """``(I, U)`` boolean CSR adjacency of items."""
        if "item_matrix" not in self._cache:
            self._cache["item_matrix"] = _bool_matrix(self.rev_indptr, self.rev_indices,
                                                      len(self.indptr) - 1)
        return self._cache["item_matrix"]


def _bool_matrix(indptr: np.ndarray, indices: np.ndarray, num_columns: int) -> sp.csr_matrix:
    shape = (len(indptr) - 1, num_columns)
    return sp.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=shape)


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
            fits; -1 where ``row_relation`` is -1.
        user_ids: ``(U,)`` original user ids, when built from a log (else None).
        item_ids: ``(I,)`` original item ids, when built from a log (else None).
    """

    num_users: int
    num_items: int
    relation_edges: tuple[RelationEdges, ...]
    row_relation: np.ndarray
    row_edge: np.ndarray
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
        graph = cls._from_codes(
            log.user, log.item, log.ts, codes, [str(n) for n in names], relations,
            log.index.num_users, log.index.num_items, what=log.name)
        return cls(graph.num_users, graph.num_items, graph.relation_edges, graph.row_relation,
                   graph.row_edge, log.index.users, log.index.items)

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
    ) -> BipartiteGraph:
        """Builds one :class:`RelationEdges` per relation.

        Args:
            codes: ``(N,)`` position in ``names`` of each row's relation, -1 for rows that
                make no edge; None when every row makes an edge of ``names[0]``.
        """
        n = len(user)
        if codes is None:
            present = list(names) if n else []
        else:
            counts = np.bincount(codes[codes >= 0], minlength=len(names))
            present = sorted(name for name, count in zip(names, counts) if count)
        if relations is None:
            wanted = present if len(names) > 1 else names
        else:
            wanted = [relation(r)[1] for r in relations]
            for name in wanted:
                if name not in present:
                    raise choice_error(f"relation of {what}", name, present)
        if codes is None and wanted == names:
            edges, row_edge = _build_relation(relation(names[0]), user, item, ts, None,
                                              num_users, num_items)
            return cls(num_users, num_items, (edges,), np.zeros(n, dtype=np.int8), row_edge)
        if codes is None:
            codes = np.zeros(n, dtype=np.int8)
        row_relation = np.full(n, -1, dtype=np.int8)
        row_edge = np.full(n, -1, dtype=_index_dtype(n))
        built = []
        for position, name in enumerate(wanted):
            rows = np.flatnonzero(codes == names.index(name))
            edges, pair_edge = _build_relation(
                relation(name), user[rows], item[rows], None if ts is None else ts[rows], rows,
                num_users, num_items)
            built.append(edges)
            row_relation[rows] = position
            row_edge[rows] = pair_edge
        return cls(num_users, num_items, tuple(built), row_relation, row_edge)

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
