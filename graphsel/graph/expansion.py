"""Hub-aware k-hop expansion on the user-item graph, and graph-guided sample selection (GST).

A hop is one step across the bipartite graph: user -> item or item -> user. Starting from
seed users and seed items (by default those present in both the source and the target log,
:func:`shared_seeds`), :func:`expand` records the hop at which every node is first reached.

Hub control is part of the result, not an afterthought: on a power-law graph two hops from 1%
of the nodes reach 99.8% of them, because every popular item links to everyone. A node whose
degree exceeds ``max_degree`` is reached but not expanded through (or, with ``fanout=K``,
expanded through K of its edges drawn at random).

>>> from graphsel.graph.bipartite import BipartiteGraph
>>> graph = BipartiteGraph.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], num_users=3, num_items=3)
>>> result = expand(graph, seed_users=0, num_hops=2)
>>> result.user_hop.tolist(), result.item_hop.tolist(), result.hop_counts
([0, 2, -1], [1, 1, -1], [(1, 0), (0, 2), (1, 0)])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, choice_error
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.build import Relation

__all__ = [
    "MAX_HOPS",
    "SELECT_MODES",
    "Expansion",
    "cap_user_rows",
    "expand",
    "graph_select",
    "last_hop",
    "rank_in_runs",
    "seed_codes",
    "shared_seeds",
]

SELECT_MODES: tuple[str, ...] = ("both", "user", "item", "any")

MAX_HOPS = 100
"""The most hops :func:`expand` takes. More hops than a graph's diameter change nothing (the
frontier is empty), so any real expansion needs far fewer; the bound refuses a mistyped
``--hops 100000`` that would spin through empty hops."""

# Above this share of all edges a frontier is gathered by one pass over the edge list
# instead of per-node slices: at hop 2 on a power-law graph the frontier touches most edges.
_DENSE_SHARE = 0.25

# Edges per block when gathering a node table through int32 edge endpoints (see _gather).
_GATHER_BLOCK = 1 << 16

# Graphs with at least this many edges split a hop's two directions, and the edge mask's two
# halves, between two threads (numpy's gathers and scipy's sparse products release the GIL);
# below it a thread hand-off costs more than it saves.
_PARALLEL_EDGES = 1 << 20


def _run_all(calls: list[Callable[[], Any]], parallel: bool) -> list[Any]:
    """``[call() for call in calls]``, on two threads when ``parallel``."""
    if not parallel or len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda call: call(), calls))


@dataclass(frozen=True)
class _Side:
    """One side's view of the adjacency: CSR slices, degrees and the boolean matrix."""

    indptr: np.ndarray
    indices: np.ndarray
    degree: np.ndarray
    matrix: Callable[[], Any]


@dataclass(frozen=True, eq=False)
class Expansion:
    """What :func:`expand` reached.

    Attributes:
        user_hop: ``(U,)`` int32 hop at which each user was first reached; -1 if never.
        item_hop: ``(I,)`` int32, the same for items.
        edge_mask: for every relation of the graph, ``(E_r,)`` bool over its edge ids: True
            when the edge belongs to a relation used, has ``ts < as_of`` and both its user
            and its item were reached. This is the subgraph induced on the reached nodes,
            which is what PyG's ``k_hop_subgraph`` returns as ``edge_mask``; it includes
            edges of hubs and edges that ``fanout`` did not sample, as long as both ends
            were reached some other way. Relations not used are all False.
        hop_counts: ``num_hops + 1`` pairs ``(users, items)`` first reached at hop 0, 1, ...
        capped_users: sorted codes of users reached before the last hop whose degree
            exceeds the cap: not expanded through (or subsampled, with ``fanout``).
        capped_items: the same for items.
        num_hops: the number of hops asked for.
        relations: the relations walked.
    """

    user_hop: np.ndarray
    item_hop: np.ndarray
    edge_mask: dict[Relation, np.ndarray]
    hop_counts: list[tuple[int, int]]
    capped_users: np.ndarray
    capped_items: np.ndarray
    num_hops: int
    relations: list[Relation]

    @property
    def user_mask(self) -> np.ndarray:
        """``(U,)`` bool: reached users."""
        return self.user_hop >= 0

    @property
    def item_mask(self) -> np.ndarray:
        """``(I,)`` bool: reached items."""
        return self.item_hop >= 0

    @property
    def num_users(self) -> int:
        """Users reached."""
        return int(np.count_nonzero(self.user_mask))

    @property
    def num_items(self) -> int:
        """Items reached."""
        return int(np.count_nonzero(self.item_mask))


def last_hop(hop_counts: Sequence[tuple[int, int]]) -> int:
    """The last hop that reached a new user or item (0 when only the seeds were reached).

    An expansion stops growing at the first hop that reaches nothing new (its frontier is
    then empty), so the hops after this one are all empty: reports print hops ``0..last``.

    Args:
        hop_counts: ``(users, items)`` first reached at hop 0, 1, ... (``Expansion.hop_counts``).

    >>> last_hop([(1, 2), (3, 0), (0, 1), (0, 0), (0, 0)])
    2
    """
    reached = [hop for hop, (users, items) in enumerate(hop_counts) if users or items]
    return reached[-1] if reached else 0


def seed_codes(seeds: Any, size: int, what: str) -> np.ndarray:
    """Normalises seeds (None, int, list, array, boolean mask or tensor) to sorted codes."""
    if seeds is None:
        return np.zeros(0, dtype=np.int64)
    if hasattr(seeds, "detach"):  # a torch tensor, without importing torch
        seeds = seeds.detach().cpu().numpy()
    codes = np.asarray(seeds)
    if codes.dtype == bool:
        if codes.shape != (size,):
            raise InputError(f"{what} is a boolean mask of shape {codes.shape}, "
                             f"expected ({size},)")
        return np.flatnonzero(codes).astype(np.int64)
    codes = codes.reshape(-1)
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(codes.dtype, np.integer):
        raise InputError(f"{what} must be integer codes (or a boolean mask of length {size}), "
                         f"got dtype {codes.dtype}")
    bad = codes[(codes < 0) | (codes >= size)]
    if len(bad):
        raise InputError(f"{what} has code {int(bad[0])}, expected 0..{size - 1}")
    return np.unique(codes.astype(np.int64))


def _check_options(num_hops: Any, max_degree: Any, fanout: Any, as_of: Any) -> None:
    if isinstance(num_hops, bool) or not isinstance(num_hops, (int, np.integer)) or \
            not 0 <= num_hops <= MAX_HOPS:
        raise InputError(f"num_hops must be an integer >= 0 and <= {MAX_HOPS}, got {num_hops!r}")
    if max_degree is not None and (isinstance(max_degree, bool) or not isinstance(
            max_degree, (int, float, np.integer, np.floating)) or not max_degree >= 0):
        raise InputError(f"max_degree must be a number >= 0 or None, got {max_degree!r}")
    if fanout is not None and (isinstance(fanout, bool) or not isinstance(
            fanout, (int, np.integer)) or fanout < 1):
        raise InputError(f"fanout must be an integer >= 1 or None, got {fanout!r}")
    if as_of is not None and (isinstance(as_of, bool) or not isinstance(as_of, (int, np.integer))):
        raise InputError(f"as_of must be integer Unix seconds or None, got {as_of!r}")


def _adjacent(frontier: np.ndarray, side: _Side, other: _Side) -> np.ndarray:
    """``(n_other,)`` bool: the nodes of the other side with an edge to ``frontier``.

    A small frontier pushes: it gathers its own CSR slices. A frontier touching more than a
    quarter of the edges pulls instead: the other side's boolean CSR matrix times the
    frontier bitmap, one sequential pass over the edges (direction-optimising BFS; at hop 2
    on a power-law graph most edges are touched).
    """
    counts = side.degree[frontier]
    total = int(counts.sum())
    if total <= _DENSE_SHARE * len(side.indices):
        reached = np.zeros(len(other.degree), dtype=bool)
        reached[side.indices[_slice_positions(side.indptr[frontier], counts, total)]] = True
        return reached
    in_frontier = np.zeros(len(side.degree), dtype=bool)
    in_frontier[frontier] = True
    return np.asarray(other.matrix() @ in_frontier, dtype=bool)


def _slice_positions(starts: np.ndarray, counts: np.ndarray, total: int) -> np.ndarray:
    """Concatenated ``arange(start, start + count)`` for each slice, without a Python loop."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a long int32 ``index``, a block at a time.

    numpy gathers with intp indices only: ``table[index]`` first converts a whole int32
    index to a new intp array (160 MB for 20M edges), which doubles the time of a gather
    from a small table. Converting a block at a time stays in cache.
    """
    out = np.empty(len(index), dtype=table.dtype)
    for start in range(0, len(index), _GATHER_BLOCK):
        stop = start + _GATHER_BLOCK
        np.take(table, index[start:stop], out=out[start:stop])
    return out


def _induced_edges(edges: Any, user_reached: np.ndarray, item_reached: np.ndarray,
                   as_of: int | None) -> np.ndarray:
    """``(E,)`` bool over one relation's edges: both ends reached (and ``ts < as_of``).

    Computed over two halves of the users (two contiguous halves of the CSR edges) on two
    threads when the relation is large.
    """
    indptr, degree = edges.indptr, edges.user_degree()
    mask = np.empty(edges.num_edges, dtype=bool)
    middle = int(np.searchsorted(indptr, edges.num_edges // 2))

    # at 2 hops on a power-law graph every item is often reached: the gather of an all-True
    # table (one random read per edge) is then skipped
    every_item = bool(item_reached.all())

    def part(first: int, last: int) -> None:
        start, stop = int(indptr[first]), int(indptr[last])
        out = mask[start:stop]
        reached, degrees = user_reached[first:last], degree[first:last]
        # at 2 hops nearly every user is reached: fill the part and clear the few other
        # users' edge slices, instead of repeating each user's flag over its edges
        other = np.flatnonzero(~reached)
        other_edges = int(degrees[other].sum())
        if other_edges <= _DENSE_SHARE * (stop - start):
            out[:] = True
            out[_slice_positions(indptr[first + other] - start, degrees[other],
                                 other_edges)] = False
        else:
            out[:] = np.repeat(reached, degrees)
        if not every_item:
            out &= _gather(item_reached, edges.indices[start:stop])
        if as_of is not None:
            out &= edges.edge_ts[start:stop] < as_of

    _run_all([partial(part, 0, middle), partial(part, middle, len(degree))],
             edges.num_edges >= _PARALLEL_EDGES)
    return mask


def _sampled_neighbours(side: _Side, hubs: np.ndarray, fanout: int,
                        rng: np.random.Generator) -> np.ndarray:
    """``fanout`` entries of each hub's CSR row, drawn without replacement."""
    counts = side.degree[hubs]
    total = int(counts.sum())
    positions = _slice_positions(side.indptr[hubs], counts, total)
    owner = np.repeat(np.arange(len(hubs)), counts)
    shuffled = np.lexsort((rng.random(total), owner))
    rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return side.indices[positions[shuffled][rank < fanout]]


def expand(
    graph: BipartiteGraph,
    seed_users: Any = None,
    seed_items: Any = None,
    num_hops: int = 2,
    relations: Iterable[str | Relation] | None = None,
    max_degree: float | None = None,
    fanout: int | None = None,
    as_of: int | None = None,
    seed: int = 0,
) -> Expansion:
    """Expands ``num_hops`` hops from seed users and items.

    Args:
        graph: the user-item graph.
        seed_users: user codes: an int, a list, an array, a tensor, or a ``(U,)`` boolean
            mask (default None: no seed users). See :func:`shared_seeds`.
        seed_items: item codes, likewise (default None).
        num_hops: hops to take, 0 to :data:`MAX_HOPS` (default 2); 0 returns the seeds.
        relations: relation names or edge types to walk (default None: all of the graph's).
        max_degree: hub cap (default None: no cap). A node with more edges than this, over
            ``relations`` before ``as_of``, is reached but not expanded through.
            ``float("inf")`` is the same as None.
        fanout: expand hubs through this many of their edges drawn at random instead of
            skipping them (default None). Without ``max_degree``, hubs are the nodes with
            more than ``fanout`` edges, so a ``fanout`` at least the largest degree changes
            nothing.
        as_of: ignore edges with ``ts >= as_of`` (default None: use every edge), so nothing
            from the future leaks into an expansion.
        seed: seeds the ``fanout`` draw (default 0); equal seeds give equal results.

    Returns:
        An :class:`Expansion`.

    Raises:
        InputError: for no seeds, a seed out of range, an unknown relation or a bad option.
    """
    _check_options(num_hops, max_degree, fanout, as_of)
    users = seed_codes(seed_users, graph.num_users, "seed_users")
    items = seed_codes(seed_items, graph.num_items, "seed_items")
    if len(users) == 0 and len(items) == 0:
        raise InputError("expand: no seed users and no seed items")
    used = graph.resolve_relations(relations)
    adjacency = graph.adjacency(used, as_of)
    cap = max_degree if max_degree is not None else fanout
    if cap is not None and np.isinf(cap):
        cap = None
    rng = np.random.default_rng(seed)

    user_hop = np.full(graph.num_users, -1, dtype=np.int32)
    item_hop = np.full(graph.num_items, -1, dtype=np.int32)
    user_hop[users] = 0
    item_hop[items] = 0
    hop_counts = [(len(users), len(items))]
    user_side = _Side(adjacency.indptr, adjacency.indices, adjacency.user_degree(),
                      adjacency.user_matrix)
    item_side = _Side(adjacency.rev_indptr, adjacency.rev_indices, adjacency.item_degree(),
                      adjacency.item_matrix)
    capped_users: list[np.ndarray] = []
    capped_items: list[np.ndarray] = []
    # fanout draws from one generator: its two directions stay in order, on one thread
    parallel = fanout is None and len(adjacency.indices) >= _PARALLEL_EDGES
    for hop in range(1, int(num_hops) + 1):
        new_items, new_users = _run_all([
            partial(_step, users, user_side, item_side, cap, fanout, rng, capped_users),
            partial(_step, items, item_side, user_side, cap, fanout, rng, capped_items)],
            parallel)
        new_items &= item_hop < 0
        new_users &= user_hop < 0
        item_hop[new_items] = hop
        user_hop[new_users] = hop
        users = np.flatnonzero(new_users)
        items = np.flatnonzero(new_items)
        hop_counts.append((len(users), len(items)))

    user_reached = user_hop >= 0
    item_reached = item_hop >= 0
    edge_mask = {}
    for edges in graph.relation_edges:
        if edges.relation not in used:
            edge_mask[edges.relation] = np.zeros(edges.num_edges, dtype=bool)
            continue
        edge_mask[edges.relation] = _induced_edges(edges, user_reached, item_reached, as_of)
    return Expansion(
        user_hop=user_hop,
        item_hop=item_hop,
        edge_mask=edge_mask,
        hop_counts=hop_counts,
        capped_users=_sorted_codes(capped_users),
        capped_items=_sorted_codes(capped_items),
        num_hops=int(num_hops),
        relations=used,
    )


def _step(frontier: np.ndarray, side: _Side, other: _Side, cap: float | None,
          fanout: int | None, rng: np.random.Generator, capped: list[np.ndarray]) -> np.ndarray:
    """One hop from ``frontier``: ``(n_other,)`` bool of the nodes it reaches.

    Hubs (degree above ``cap``) are appended to ``capped`` and skipped, or, with ``fanout``,
    expanded through ``fanout`` random edges each.
    """
    if cap is None:
        return _adjacent(frontier, side, other)
    is_hub = side.degree[frontier] > cap
    hubs = frontier[is_hub]
    capped.append(hubs)
    reached = _adjacent(frontier[~is_hub], side, other)
    if fanout is not None and len(hubs):
        reached[_sampled_neighbours(side, hubs, fanout, rng)] = True
    return reached


def _sorted_codes(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts)).astype(np.int64)


def shared_seeds(source_log: InteractionLog,
                 target_log: InteractionLog) -> tuple[np.ndarray, np.ndarray]:
    """The default seeds: users and items present in both logs.

    Args:
        source_log, target_log: logs on one shared index (see :func:`graphsel.data.log.read_pair`).

    Returns:
        ``(seed_users, seed_items)``, sorted int64 codes.

    Raises:
        InputError: if the logs do not share an index.
    """
    if source_log.index is not target_log.index:
        raise InputError(f"{source_log.name} and {target_log.name} do not share an id index; "
                         f"read them with graphsel.data.log.read_pair")
    users = np.intersect1d(source_log.unique_users(), target_log.unique_users(),
                           assume_unique=True)
    items = np.intersect1d(source_log.unique_items(), target_log.unique_items(),
                           assume_unique=True)
    return users.astype(np.int64), items.astype(np.int64)


def graph_select(source_log: InteractionLog, expansion: Expansion,
                 mode: str = "both") -> tuple[np.ndarray, np.ndarray]:
    """The source rows an expansion selects (graph-guided sample transfer, GST).

    A row joins a user and an item, so its hop follows from theirs:

    - ``"both"`` (default): selected when its user and its item were both reached; its hop
      is the larger of the two, i.e. the hop by which the whole row is near the target.
      The default because a row is a user-item pair: requiring both ends keeps exactly the
      edges of the expansion (its ``edge_mask``), whereas ``"user"`` or ``"any"`` would
      bring in every row of a reached heavy user, items far from the target included.
    - ``"user"``: selected when its user was reached; hop = the user's hop.
    - ``"item"``: selected when its item was reached; hop = the item's hop.
    - ``"any"``: selected when its user or its item was reached; hop = the smaller hop of
      the reached ends.

    Rows of relations the expansion did not walk are selected by the same rule.

    Args:
        source_log: ``N_src`` rows, on the index the expanded graph was built with.
        expansion: the result of :func:`expand`.
        mode: one of :data:`SELECT_MODES` (default ``"both"``).

    Returns:
        ``(mask (N_src,) bool, hop (N_src,) int32)``; ``hop`` is -1 for unselected rows.

    Raises:
        InputError: for an unknown mode, or a log whose index does not match the graph.
    """
    if mode not in SELECT_MODES:
        raise choice_error("mode", mode, SELECT_MODES)
    if (source_log.index.num_users, source_log.index.num_items) != (
            len(expansion.user_hop), len(expansion.item_hop)):
        raise InputError(f"{source_log.name}: its index has {source_log.index.num_users} users "
                         f"and {source_log.index.num_items} items but the expansion has "
                         f"{len(expansion.user_hop)} and {len(expansion.item_hop)}; build the "
                         f"graph from logs sharing its index")
    user_hop = expansion.user_hop[source_log.user]
    item_hop = expansion.item_hop[source_log.item]
    if mode == "user":
        hop = user_hop
    elif mode == "item":
        hop = item_hop
    elif mode == "both":
        hop = np.where((user_hop >= 0) & (item_hop >= 0), np.maximum(user_hop, item_hop), -1)
    else:
        hop = np.where(user_hop < 0, item_hop,
                       np.where(item_hop < 0, user_hop, np.minimum(user_hop, item_hop)))
    hop = hop.astype(np.int32, copy=False)
    return hop >= 0, hop


def cap_user_rows(user: np.ndarray, mask: np.ndarray, max_rows: int,
                  seed: int = 0) -> np.ndarray:
    """``mask`` with at most ``max_rows`` selected rows per user, the rest dropped at random.

    The hub cap of :func:`expand` bounds how far a heavy node reaches, not how many of its
    own rows a selection keeps: a seed user with a million rows, all to reached items, would
    otherwise make up most of the selection. Users with ``max_rows`` selected rows or fewer
    keep them all; a heavier user keeps ``max_rows`` of them, drawn uniformly (seeded).

    Args:
        user: ``(N,)`` user code of each row.
        mask: ``(N,)`` bool, the selected rows.
        max_rows: rows kept per user, >= 1.
        seed: seeds the draw (default 0); equal seeds give equal masks.

    Returns:
        ``(N,)`` bool, a subset of ``mask``.

    >>> user = np.array([0, 0, 0, 0, 1, 1, 2])
    >>> kept = cap_user_rows(user, np.array([1, 1, 1, 1, 1, 0, 1], bool), max_rows=2)
    >>> np.bincount(user[kept]).tolist(), kept[4:].tolist()
    ([2, 1, 1], [True, False, True])
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise InputError(f"max_user_rows must be an integer >= 1, got {max_rows!r}")
    user = np.asarray(user)
    mask = np.array(mask, dtype=bool)
    rows = np.flatnonzero(mask)
    heavy = np.bincount(user[rows]) > max_rows
    if not heavy.any():
        return mask
    rows = rows[heavy[user[rows]]]
    # each heavy user's rows in a random order, users one after another
    order = np.lexsort((np.random.default_rng(seed).random(len(rows)), user[rows]))
    rows = rows[order]
    mask[rows[rank_in_runs(user[rows]) >= max_rows]] = False
    return mask


def rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 position of each element within its run of equal consecutive ``keys``
    (sort by key first to rank within groups).

    >>> rank_in_runs(np.array([4, 4, 4, 1, 1, 4])).tolist()
    [0, 1, 2, 0, 1, 0]
    """
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return np.arange(len(keys)) - np.repeat(first, np.diff(np.r_[first, len(keys)]))
