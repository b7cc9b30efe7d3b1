"""The user-item bipartite graph and the merged adjacency an expansion walks.

:class:`BipartiteGraph` holds one :class:`~graphsel.graph.build.RelationEdges` per relation
(built by :mod:`graphsel.graph.build`); :class:`Adjacency` merges some relations before a time
cut into one CSR and one CSC for :func:`graphsel.graph.expansion.expand`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import scipy.sparse as sp

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, choice_error
from graphsel.graph.build import (
    CLICK,
    EDGE_CHOICES,
    ITEM,
    USER,
    Relation,
    RelationEdges,
    _bool_matrix,
    _build_relation,
    _compress,
    _index_dtype,
    _RowEdge,
    _SmallPages,
    relation,
    reverse_relation,
)

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from torch_geometric.data import HeteroData

__all__ = ["Adjacency", "BipartiteGraph", "is_one_relation"]



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



# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BipartiteGraph:
    """A user-item graph with one :class:`RelationEdges` per relation.

    Build one with :meth:`from_log` or :meth:`from_arrays`. User and item codes are those of
    the log's :class:`~graphsel.data.log.IdIndex`, so ``graph.num_users == log.index.num_users``
    and ``log.user`` indexes the graph's users.

    >>> from graphsel.data.log import InteractionLog
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
        if is_one_relation(relations):
            relations = [relations]
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


def is_one_relation(relations: object) -> TypeGuard[str | Relation]:
    """Whether ``relations`` is one name or one edge type, not a collection of them."""
    return isinstance(relations, str) or (
        isinstance(relations, tuple) and len(relations) == 3
        and all(isinstance(part, str) for part in relations) and relations[0] == USER)
