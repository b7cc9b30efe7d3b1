"""Figures of an expansion and a selection: a seed's neighbourhood, hops, funnel, scores.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so library
code never touches global figure state or opens a window; a notebook shows a returned figure
as the value of its cell, and :func:`save_selection_plots` writes them as PNG files.

What a figure draws is computed by a pure function that tests can check without reading
pixels: :func:`expansion_subgraph` gives the nodes and edges :func:`draw_expansion` draws,
:func:`calibration_bins` the bins of :func:`plot_calibration`.

>>> from graphsel.graph.expansion import expand
>>> from graphsel.graph.bipartite import BipartiteGraph
>>> graph = BipartiteGraph.from_arrays([0, 0, 1, 2], [0, 1, 1, 2])
>>> sub = expansion_subgraph(graph, expand(graph, seed_users=0, num_hops=2), radius=1)
>>> sorted(sub.nodes)
[('item', 0), ('item', 1), ('user', 0)]
>>> [sub.nodes[node]["hop"] for node in sorted(sub.nodes)]
[1, 1, 0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.build import ITEM, USER, Relation, RelationEdges
from graphsel.graph.expansion import Expansion, seed_codes

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator


from graphsel.viz._common import _annotate_bars, _check_count, _figure

__all__ = [
    "HOP_COLORS",
    "hop_color",
    "expansion_subgraph",
    "draw_expansion",
    "plot_hops",
    "plot_reach",
    "typical_seed",
]


HOP_COLORS: tuple[str, ...] = (
    "#D55E00", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#F0E442", "#999999")
"""Node colour of hop 0, 1, 2, ... (Okabe-Ito, colour-blind safe); the last one for later hops."""

USER_COLOR, ITEM_COLOR, TARGET_COLOR = "#0072B2", "#E69F00", "#D55E00"
@dataclass(frozen=True)
class _EdgeStyle:
    style: str
    color: str
    width: float
    alpha: float


_SELECTED_EDGE = _EdgeStyle("solid", "#333333", 1.0, 0.7)
_REJECTED_EDGE = _EdgeStyle("dashed", "#BBBBBB", 0.6, 0.8)
_NODE_SHAPES = {USER: "o", ITEM: "s"}
_CAPPED_OUTLINE, _PLAIN_OUTLINE = ("black", 2.5), ("white", 0.5)


def hop_color(hop: int) -> str:
    """The colour of nodes first reached at ``hop`` (:data:`HOP_COLORS`, clamped at the end).

    >>> hop_color(0), hop_color(100) == HOP_COLORS[-1]
    ('#D55E00', True)
    """
    if hop < 0:
        raise InputError(f"hop must be >= 0, got {hop}")
    return HOP_COLORS[min(int(hop), len(HOP_COLORS) - 1)]


def _marked_edges(graph: BipartiteGraph, expansion: Expansion,
                  selected_edges: Any) -> dict[Relation, np.ndarray]:
    """Normalises ``selected_edges`` to one ``(E_r,)`` bool mask per relation of the graph."""
    if selected_edges is None:
        selected_edges = expansion.edge_mask
    if isinstance(selected_edges, Mapping):
        masks = {}
        for edges in graph.relation_edges:
            mask = np.asarray(selected_edges.get(edges.relation,
                                                 np.zeros(edges.num_edges, dtype=bool)), bool)
            if mask.shape != (edges.num_edges,):
                raise InputError(f"selected_edges[{edges.relation!r}] has shape {mask.shape}, "
                                 f"expected ({edges.num_edges},)")
            masks[edges.relation] = mask
        return masks
    rows = np.asarray(selected_edges)
    if rows.dtype != bool or rows.shape != graph.row_edge.shape:
        raise InputError(f"selected_edges must be a dict of edge masks or a boolean mask over "
                         f"the {len(graph.row_edge)} rows the graph was built from, got "
                         f"dtype {rows.dtype} and shape {rows.shape}")
    masks = {}
    for position, edges in enumerate(graph.relation_edges):
        mask = np.zeros(edges.num_edges, dtype=bool)
        mask[graph.row_edge[rows & (graph.row_relation == position)]] = True
        masks[edges.relation] = mask
    return masks


def _has_marked_edge(edges: RelationEdges, mask: np.ndarray, user: int, item: int) -> bool:
    start, stop = int(edges.indptr[user]), int(edges.indptr[user + 1])
    position = start + int(np.searchsorted(edges.indices[start:stop], item))
    return position < stop and int(edges.indices[position]) == item and bool(mask[position])


@dataclass(frozen=True)
class _Walk:
    """The expansion's edges as adjacency, and the nodes a walk may go through (not hubs).

    Attributes:
        by_user: ``(U, I)`` bool CSR, the expansion's edges.
        by_item: ``(I, U)``, its transpose.
        walk_user: ``(U,)`` bool, False for a capped user.
        walk_item: ``(I,)`` bool, False for a capped item.
    """

    by_user: sp.csr_matrix
    by_item: sp.csr_matrix
    walk_user: np.ndarray
    walk_item: np.ndarray


def _walk(graph: BipartiteGraph, expansion: Expansion) -> _Walk:
    user_parts, item_parts = [], []
    for edges in graph.relation_edges:
        mask = expansion.edge_mask.get(edges.relation)
        if mask is None or mask.shape != (edges.num_edges,):
            raise InputError(f"the expansion was not run on this graph: its edge mask of "
                             f"relation {edges.name!r} does not line up with the graph's edges")
        user_parts.append(edges.edge_user()[mask])
        item_parts.append(edges.indices[mask])
    edge_user, edge_item = np.concatenate(user_parts), np.concatenate(item_parts)
    by_user = sp.csr_matrix((np.ones(len(edge_user), dtype=bool), (edge_user, edge_item)),
                            shape=(graph.num_users, graph.num_items))
    walk_user = np.ones(graph.num_users, dtype=bool)
    walk_user[expansion.capped_users] = False
    walk_item = np.ones(graph.num_items, dtype=bool)
    walk_item[expansion.capped_items] = False
    return _Walk(by_user, by_user.T.tocsr(), walk_user, walk_item)


def _distances(graph: BipartiteGraph, walk: _Walk, users: np.ndarray, items: np.ndarray,
               radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Hops from ``users``/``items`` along the expansion's edges, never through capped hubs.

    Returns:
        ``(user_distance (U,), item_distance (I,))`` int32, -1 beyond ``radius``.
    """
    user_distance = np.full(graph.num_users, -1, dtype=np.int32)
    item_distance = np.full(graph.num_items, -1, dtype=np.int32)
    user_distance[users] = 0
    item_distance[items] = 0
    for distance in range(1, radius + 1):
        next_items = np.unique(walk.by_user[users[walk.walk_user[users]]].indices)
        next_users = np.unique(walk.by_item[items[walk.walk_item[items]]].indices)
        items = next_items[item_distance[next_items] < 0]
        users = next_users[user_distance[next_users] < 0]
        item_distance[items] = distance
        user_distance[users] = distance
    return user_distance, item_distance


_Node = tuple[str, int]


def _pick_per_distance(graph: BipartiteGraph, walk: _Walk, distance: dict[str, np.ndarray],
                       radius: int, per_hop: int) -> dict[_Node, _Node | None]:
    """At most ``per_hop`` nodes at each distance ``0..radius``, each past the seeds next to a
    kept node one hop nearer that the walk goes through.

    Seeds are ranked like every layer: first the nodes that lead on to the next distance,
    then by degree (then type and code). At distance ``d >= 1``, the capped hubs among the
    kept nodes' neighbours take up to a quarter of the places (at least one: hubs are what a
    reader looks for), by degree; the other places go round the kept parents in rank order,
    each taking its best-ranked child not yet kept, so the drawing fans out instead of
    showing one parent's children only. Hubs fill places left over.

    Args:
        graph: the graph (for degrees).
        walk: its expansion's walk (:func:`_walk`).
        distance: per node type, ``(U,)`` / ``(I,)`` distances from the seeds, -1 beyond.
        radius: the last distance.
        per_hop: places per distance, >= 1.

    Returns:
        The kept nodes, each with the node one hop nearer that it was kept for (None for the
        seeds).
    """
    degree = {USER: graph.degree(USER), ITEM: graph.degree(ITEM)}
    walkable = {USER: walk.walk_user, ITEM: walk.walk_item}
    adjacency = {USER: walk.by_user, ITEM: walk.by_item}
    other = {USER: ITEM, ITEM: USER}

    def at_distance(node: _Node, at: int) -> np.ndarray:
        """The codes of ``node``'s neighbours at distance ``at``."""
        kind, code = node
        matrix = adjacency[kind]
        found = matrix.indices[matrix.indptr[code]:matrix.indptr[code + 1]]
        return found[distance[other[kind]][found] == at]

    def neighbours(node: _Node, at: int) -> list[_Node]:
        return [(other[node[0]], int(c)) for c in at_distance(node, at)]

    def ranked(nodes: Iterable[_Node], at: int) -> list[_Node]:
        def key(node: _Node) -> tuple[bool, int, _Node]:
            leads_on = (at < radius and bool(walkable[node[0]][node[1]])
                        and len(at_distance(node, at + 1)) > 0)
            return (not leads_on, -int(degree[node[0]][node[1]]), node)
        return sorted(set(nodes), key=key)

    layer = ranked([(kind, int(code)) for kind in (USER, ITEM)
                    for code in np.flatnonzero(distance[kind] == 0)], 0)[:per_hop]
    kept: dict[_Node, _Node | None] = dict.fromkeys(layer)
    for at in range(1, radius + 1):
        parents = [parent for parent in layer if walkable[parent[0]][parent[1]]]
        queues = [ranked(neighbours(parent, at), at) for parent in parents]
        hub_parents: dict[_Node, list[int]] = {}
        for number, queue in enumerate(queues):
            for child in queue:
                if not walkable[child[0]][child[1]]:
                    hub_parents.setdefault(child, []).append(number)
        hubs = sorted(hub_parents, key=lambda node: (-int(degree[node[0]][node[1]]), node))
        chosen: dict[_Node, _Node | None] = dict.fromkeys(hubs[:max(1, per_hop // 4)])
        queues = [[child for child in queue if walkable[child[0]][child[1]]]
                  for queue in queues]
        while len(chosen) < per_hop and any(queues):
            for parent, queue in zip(parents, queues):
                while queue and queue[0] in chosen:
                    queue.pop(0)
                if queue and len(chosen) < per_hop:
                    chosen[queue.pop(0)] = parent
        for hub in hubs:
            if len(chosen) >= per_hop:
                break
            chosen.setdefault(hub)
        # each hub hangs from the neighbouring parent with the fewest children so far
        children = [sum(1 for p in chosen.values() if p == parent) for parent in parents]
        for hub in (node for node, parent in chosen.items() if parent is None):
            number = min(hub_parents[hub], key=lambda n: (children[n], n))
            chosen[hub] = parents[number]
            children[number] += 1
        layer = list(chosen)
        kept.update(chosen)
    return kept


def expansion_subgraph(
    graph: BipartiteGraph,
    expansion: Expansion,
    seed_users: Any = None,
    seed_items: Any = None,
    radius: int | None = None,
    max_nodes: int = 200,
    selected_edges: Any = None,
    seed: int = 0,
    per_hop: int | None = 12,
) -> nx.Graph:
    """The nodes and edges :func:`draw_expansion` draws: the expansion around some seeds.

    Nodes are those within ``radius`` hops of the seeds, walking the expansion's edges
    (``expansion.edge_mask``) and never through a capped hub, as :func:`graphsel.graph.expansion.expand`
    walked. From the expansion's own seeds this is exactly the nodes with
    ``0 <= hop <= radius`` (without ``fanout``, whose sampled hub edges are not walked here).
    With ``per_hop``, at most that many nodes are kept at each distance, so that a reader
    sees the whole neighbourhood at a glance: at each distance the capped hubs first (up to
    a quarter of the places, at least one), then, in turn, the best child of each kept node
    one hop nearer, nodes that lead on to the next distance before the others, then by
    degree; every kept node past the seeds keeps a neighbour one hop nearer. Above
    ``max_nodes`` nodes, the nearest are kept: the seeds, then distance 1, 2, ...; the one
    layer that does not fit whole is sampled at random (seeded).

    Args:
        graph: the graph the expansion was run on.
        expansion: the result of :func:`graphsel.graph.expansion.expand`.
        seed_users: user codes to centre on (an int, a list, an array or a ``(U,)`` mask).
            Default None; with no ``seed_users`` and no ``seed_items``, the expansion's own
            seeds (hop 0).
        seed_items: item codes to centre on (default None).
        radius: hops from the seeds, >= 0 (default None: ``expansion.num_hops``).
        max_nodes: most nodes to keep, >= 1 (default 200).
        selected_edges: which edges count as selected: a dict of ``(E_r,)`` bool masks per
            relation, or a ``(N,)`` bool mask over the rows of the log the graph was built
            from (e.g. ``selection.mask``; an edge is selected when one of its rows is).
            Default None: the expansion's ``edge_mask``.
        seed: seeds the sampling of the last layer (default 0).
        per_hop: most nodes kept at each distance, >= 1 (default 12); None keeps them all.

    Returns:
        An ``nx.Graph`` from :meth:`BipartiteGraph.to_networkx` (nodes ``("user", code)`` /
        ``("item", code)`` with ``node_type``, ``id``, ``degree``) whose nodes also carry
        ``hop`` (the expansion's), ``distance`` (from the seeds given here), ``is_seed``,
        ``capped`` (a hub the expansion did not walk through) and ``parent`` (with
        ``per_hop``, the node one hop nearer it was kept for; else None), and whose edges carry
        ``selected``. ``sub.graph`` holds ``radius``, ``num_nodes_within_radius``,
        ``within_by_distance`` (nodes within the radius at each distance ``0..radius``),
        ``per_hop`` and ``sampled`` (some node within the radius is left out).

    Raises:
        InputError: for an expansion not run on ``graph``, a seed it did not reach, a bad
            ``radius``, ``max_nodes`` or ``per_hop``, or a ``selected_edges`` of the wrong
            shape.
    """
    if (len(expansion.user_hop), len(expansion.item_hop)) != (graph.num_users, graph.num_items):
        raise InputError(f"the expansion has {len(expansion.user_hop)} users and "
                         f"{len(expansion.item_hop)} items, the graph {graph.num_users} and "
                         f"{graph.num_items}; pass the graph the expansion was run on")
    radius = expansion.num_hops if radius is None else _check_count("radius", radius, 0)
    max_nodes = _check_count("max_nodes", max_nodes, 1)
    if per_hop is not None:
        per_hop = _check_count("per_hop", per_hop, 1)
    if seed_users is None and seed_items is None:
        users = np.flatnonzero(expansion.user_hop == 0)
        items = np.flatnonzero(expansion.item_hop == 0)
    else:
        users = seed_codes(seed_users, graph.num_users, "seed_users")
        items = seed_codes(seed_items, graph.num_items, "seed_items")
    for what, codes, hop in (("user", users, expansion.user_hop),
                             ("item", items, expansion.item_hop)):
        unreached = codes[hop[codes] < 0]
        if len(unreached):
            raise InputError(f"seed {what} {int(unreached[0])} was not reached by the expansion")
    masks = _marked_edges(graph, expansion, selected_edges)
    walk = _walk(graph, expansion)
    user_distance, item_distance = _distances(graph, walk, users, items, radius)
    reached = np.r_[user_distance[user_distance >= 0], item_distance[item_distance >= 0]]
    within = np.bincount(reached, minlength=radius + 1)
    total = len(reached)

    picked: dict[_Node, _Node | None] = {}
    if per_hop is None:
        user_codes = np.flatnonzero(user_distance >= 0)
        item_codes = np.flatnonzero(item_distance >= 0)
    else:
        picked = _pick_per_distance(graph, walk, {USER: user_distance, ITEM: item_distance},
                                    radius, per_hop)
        user_codes, item_codes = (np.array(sorted(code for kind, code in picked if kind == k),
                                           dtype=np.int64) for k in (USER, ITEM))
    distance = np.concatenate([user_distance[user_codes], item_distance[item_codes]])
    if len(distance) > max_nodes:
        tie_break = np.random.default_rng(seed).permutation(len(distance))
        keep = np.sort(np.lexsort((tie_break, distance))[:max_nodes])
        num_users = len(user_codes)
        user_codes = user_codes[keep[keep < num_users]]
        item_codes = item_codes[keep[keep >= num_users] - num_users]

    sub = graph.to_networkx(user_codes, item_codes)
    capped = {USER: set(expansion.capped_users.tolist()),
              ITEM: set(expansion.capped_items.tolist())}
    hops = {USER: expansion.user_hop, ITEM: expansion.item_hop}
    distances = {USER: user_distance, ITEM: item_distance}
    for node, attributes in sub.nodes(data=True):
        node_type, code = node
        attributes["hop"] = int(hops[node_type][code])
        attributes["distance"] = int(distances[node_type][code])
        attributes["is_seed"] = attributes["distance"] == 0
        attributes["capped"] = code in capped[node_type]
        parent = picked.get(node)
        attributes["parent"] = parent if parent in sub else None
    for (_, user), (_, item), attributes in _user_item_edges(sub):
        attributes["selected"] = any(_has_marked_edge(edges, masks[edges.relation], user, item)
                                     for edges in graph.relation_edges)
    sub.graph.update(radius=radius, num_nodes_within_radius=total,
                     within_by_distance=within.tolist(), per_hop=per_hop,
                     sampled=len(sub) < total)
    return sub


def _user_item_edges(sub: nx.Graph) -> Iterable[tuple[tuple, tuple, dict]]:
    """The edges of a :meth:`BipartiteGraph.to_networkx` graph as ``(user, item, data)``."""
    for a, b, attributes in sub.edges(data=True):
        yield (a, b, attributes) if a[0] == USER else (b, a, attributes)


def _shells(sub: nx.Graph) -> tuple[list[list[_Node]], dict[_Node, _Node]]:
    """The drawn nodes by distance from the seeds, and each one's parent.

    A node's parent is the one it was kept for (its ``parent`` attribute), else its first
    neighbour (in ring order) in the ring one hop nearer that the walk goes through (not a
    capped hub); each ring is ordered by its nodes' parents, so that children sit beside
    their parent. Seeds have no parent.
    """
    by_distance: dict[int, list[_Node]] = {}
    for node, data in sub.nodes(data=True):
        by_distance.setdefault(data["distance"], []).append(node)
    shells: list[list[_Node]] = []
    parents: dict[_Node, _Node] = {}
    for distance in sorted(by_distance):
        nodes = by_distance[distance]
        if shells:
            inner = {node: position for position, node in enumerate(shells[-1])
                     if not sub.nodes[node]["capped"]}
            for node in nodes:
                found = [n for n in sub[node] if n in inner]
                if sub.nodes[node]["parent"] in inner:
                    parents[node] = sub.nodes[node]["parent"]
                elif found:
                    parents[node] = min(found, key=inner.__getitem__)
            nodes = sorted(nodes, key=lambda n: (inner[parents[n]] if n in parents
                                                 else len(inner), -sub.nodes[n]["degree"], n))
        else:
            nodes = sorted(nodes, key=lambda n: (-sub.nodes[n]["degree"], n))
        shells.append(nodes)
    return shells, parents


def _radial_layout(shells: list[list[_Node]], parents: dict[_Node, _Node]) -> dict[_Node, np.ndarray]:
    """Ring ``d`` at radius ``d`` (one seed in the middle, several on a ring of radius 0.5);
    the children of a node share its sector of the ring inside, evenly, so that each sits
    beside its parent. A node without a parent takes the sector after the last one."""
    positions: dict[_Node, np.ndarray] = {}
    angle: dict[_Node, float] = {}
    sector = 2 * math.pi
    for distance, nodes in enumerate(shells):
        if distance == 0:
            for k, node in enumerate(nodes):
                angle[node] = 2 * math.pi * k / len(nodes)
            radius = 0.0 if len(nodes) == 1 else 0.5
        else:
            by_parent: dict[_Node | None, list[_Node]] = {}
            for node in nodes:
                by_parent.setdefault(parents.get(node), []).append(node)
            for parent, children in by_parent.items():
                centre = angle[parent] if parent is not None else math.pi
                for k, child in enumerate(children):
                    angle[child] = centre + sector * ((k + 0.5) / len(children) - 0.5)
            radius = float(distance)
        for node in nodes:
            positions[node] = radius * np.array([math.cos(angle[node]), math.sin(angle[node])])
        sector = 2 * math.pi / max(len(nodes), 1)
    return positions


def _describe_seeds(sub: nx.Graph, seeds: list[_Node]) -> str:
    if len(seeds) == 1:
        return f"{seeds[0][0]} {sub.nodes[seeds[0]]['id']}"
    return f"{len(seeds):,} seeds"


def draw_expansion(
    graph: BipartiteGraph,
    expansion: Expansion,
    seed_users: Any = None,
    seed_items: Any = None,
    radius: int | None = None,
    max_nodes: int = 200,
    ax: Axes | None = None,
    selected_edges: Any = None,
    seed: int = 0,
    per_hop: int | None = 12,
) -> Figure:
    """Draws the neighbourhood of some seeds (see :func:`expansion_subgraph` for the nodes).

    The seeds sit in the middle and the nodes ``d`` hops from them on ring ``d``, each
    joined to one parent (a neighbour on the ring inside), beside it: a tree that reads at a
    glance, whose other edges the title counts but does not draw. Users are circles and items squares, coloured by the hop at which
    the expansion first reached them (:func:`hop_color`) and sized by degree; a thick black
    outline marks a capped hub (reached but not expanded through), labelled with its degree;
    the seeds are labelled with their original ids (up to five). Edges of selected rows are
    solid, the others dashed and pale. The title names the seed and, per ring, how many
    nodes are shown of how many there are. _Node collections have the gids ``"user"`` and
    ``"item"`` and list their nodes in sorted order; edge collections have the gids
    ``"selected"`` and ``"rejected"``.

    Args:
        graph, expansion, seed_users, seed_items, radius, max_nodes, selected_edges, seed,
            per_hop: as for :func:`expansion_subgraph` (default ``per_hop``: 12 nodes per
            ring).
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure.
    """
    import networkx as nx
    from matplotlib.lines import Line2D

    sub = expansion_subgraph(graph, expansion, seed_users, seed_items, radius, max_nodes,
                             selected_edges, seed, per_hop)
    figure, ax = _figure(ax, (8.0, 8.0))
    shells, parents = _shells(sub)
    positions = _radial_layout(shells, parents)
    largest = max([sub.nodes[node]["degree"] for node in sub] + [1])
    for node_type in (USER, ITEM):
        nodes = sorted(node for node in sub if node[0] == node_type)
        if not nodes:
            continue
        data = [sub.nodes[node] for node in nodes]
        outline = [_CAPPED_OUTLINE if d["capped"] else _PLAIN_OUTLINE for d in data]
        collection = nx.draw_networkx_nodes(
            sub, positions, nodelist=nodes, ax=ax, node_shape=_NODE_SHAPES[node_type],
            node_color=[hop_color(d["hop"]) for d in data],
            node_size=[40 + 360 * math.sqrt(d["degree"] / largest) for d in data],
            edgecolors=[color for color, _ in outline],
            linewidths=[width for _, width in outline])
        collection.set_gid(node_type)
        collection.set_zorder(2)
    tree = sorted(parents.items())
    for gid, style, wanted in (("rejected", _REJECTED_EDGE, False),
                               ("selected", _SELECTED_EDGE, True)):
        edgelist = [edge for edge in tree if sub.edges[edge]["selected"] == wanted]
        if edgelist:
            drawn = nx.draw_networkx_edges(sub, positions, edgelist=edgelist, ax=ax,
                                           edge_color=style.color, style=style.style,
                                           width=style.width, alpha=style.alpha,
                                           node_size=0)
            drawn.set_gid(gid)
    seeds = shells[0] if shells and sub.nodes[shells[0][0]]["is_seed"] else []
    labels = {n: f"{n[0]} {sub.nodes[n]['id']}" for n in seeds[:5] if len(seeds) <= 5}
    labels.update({n: f"{sub.nodes[n]['degree']:,} edges" for n in sub
                   if sub.nodes[n]["capped"] and n not in labels})
    for node, label in labels.items():
        # outward from the middle, so the label hides neither its node nor the rings inside
        x, y = (float(v) for v in positions[node])
        length = math.hypot(x, y)
        dx, dy = (x / length, y / length) if length > 0 else (0.0, 1.0)
        ax.annotate(label, (x, y), xytext=(12 * dx, 12 * dy), textcoords="offset points",
                    fontsize=7, va="center",
                    ha="left" if dx > 0.3 else "right" if dx < -0.3 else "center",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "gray",
                          "alpha": 0.85})
    hops = sorted({sub.nodes[node]["hop"] for node in sub})
    handles = [Line2D([], [], ls="", marker="o", color=hop_color(h),
                      label="a seed of the expansion" if h == 0 else f"reached at hop {h}")
               for h in hops]
    handles += [Line2D([], [], ls="", marker=_NODE_SHAPES[t], mfc="white", mec="black",
                       label=f"{t} (size: degree)") for t in (USER, ITEM)]
    handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="black", mew=2.5,
                          label="capped hub (not expanded)"))
    handles += [Line2D([], [], ls=s.style, color=s.color, label=label)
                for label, s in (("edge of a selected row", _SELECTED_EDGE),
                                 ("edge, no row selected", _REJECTED_EDGE))]
    # below the drawing, so that the rings and the title get the figure's whole width
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
              frameon=False, ncol=3)
    within = sub.graph["within_by_distance"]
    shown = np.bincount([sub.nodes[n]["distance"] for n in sub], minlength=len(within))
    rings = " · ".join(f"{shown[d]:,} of {within[d]:,}" for d in range(len(within)))
    rule = (f" (at most {sub.graph['per_hop']}: hubs, then by degree)"
            if sub.graph["sampled"] and sub.graph["per_hop"] is not None else "")
    hidden = sub.number_of_edges() - len(tree)
    ax.set_title(f"Expansion around {_describe_seeds(sub, seeds)}: ring d = d hops away\n"
                 f"nodes shown per ring: {rings}{rule}\n"
                 f"one edge per node to a parent; {hidden:,} other edges among them not drawn",
                 fontsize=9)
    ax.margins(0.12)  # room for the labels of the outer ring
    ax.set_aspect("equal")
    ax.set_axis_off()
    return figure


def plot_hops(expansion: Expansion, ax: Axes | None = None, log: bool = False) -> Figure:
    """Users and items first reached at each hop, with the capped hubs of each hop.

    Args:
        expansion: the result of :func:`graphsel.graph.expansion.expand`.
        ax: axes to draw on (default None: a new figure).
        log: log-scale counts (default False), for reach that explodes over hops.

    Returns:
        The figure; its bar containers are labelled ``"users"`` and ``"items"``, one bar per
        hop ``0..num_hops`` with the counts of ``expansion.hop_counts``.
    """
    figure, ax = _figure(ax, (6.0, 4.0))
    hops = np.arange(len(expansion.hop_counts))
    counts = np.asarray(expansion.hop_counts, dtype=np.int64).reshape(-1, 2)
    capped = [np.bincount(hop_of[codes], minlength=len(hops))[: len(hops)]
              for hop_of, codes in ((expansion.user_hop, expansion.capped_users),
                                    (expansion.item_hop, expansion.capped_items))]
    width = 0.4
    for column, (label, color) in enumerate((("users", USER_COLOR), ("items", ITEM_COLOR))):
        bars = ax.bar(hops + (column - 0.5) * width, counts[:, column], width, label=label,
                      color=color)
        _annotate_bars(ax, bars, [f"{n:,}" + (f"\n{c} capped" if c else "")
                                  for n, c in zip(counts[:, column], capped[column])])
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.2)
    ax.set_xticks(hops, [str(h) for h in hops])
    ax.set_xlabel("hop")
    ax.set_ylabel("nodes first reached")
    ax.set_title(f"reached {expansion.num_users:,} users, {expansion.num_items:,} items; capped "
                 f"hubs: {len(expansion.capped_users)} users, {len(expansion.capped_items)} "
                 f"items", fontsize=10)
    ax.legend(frameon=False)
    return figure


def plot_reach(expansions: Mapping[str, Expansion], ax: Axes | None = None) -> Figure:
    """Share of all users and items reached within each hop, one line pair per expansion.

    Args:
        expansions: labelled expansions of one graph, e.g. ``{"no cap": a, "cap 50": b}``.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure: solid lines for users, dashed for items; y is the cumulative share.
    """
    if not expansions:
        raise InputError("plot_reach: no expansions given")
    figure, ax = _figure(ax, (6.0, 4.0))
    colors = [hop_color(i + 1) for i in range(len(expansions))]
    for color, (label, expansion) in zip(colors, expansions.items()):
        hops = np.arange(expansion.num_hops + 1)
        for style, what, hop_of in (("-", "users", expansion.user_hop),
                                    ("--", "items", expansion.item_hop)):
            reached = np.bincount(hop_of[hop_of >= 0], minlength=len(hops))[: len(hops)]
            ax.plot(hops, np.cumsum(reached) / max(len(hop_of), 1), style, marker="o",
                    color=color, label=f"{label}: {what}")
    ax.set_ylim(0, 1.05)
    cast("MaxNLocator", ax.xaxis.get_major_locator()).set_params(integer=True)
    ax.set_xlabel("hops")
    ax.set_ylabel("share of all nodes reached")
    ax.legend(frameon=False, fontsize=8)
    return figure


def typical_seed(graph: BipartiteGraph, expansion: Expansion,
                 quantile: float = 0.9) -> int | None:
    """A seed user worth drawing: the one at ``quantile`` of the seed users' degrees.

    The most active seed's neighbourhood is a hairball of hundreds of nodes and the median
    one often has a single item, so the default is an active but not extreme seed. Capped
    hubs and seeds without edges are left out; ties are broken by code.

    Args:
        graph: the graph the expansion ran on.
        expansion: the result of :func:`graphsel.graph.expansion.expand`.
        quantile: in [0, 1] (default 0.9).

    Returns:
        A user code, or None when no seed user qualifies.
    """
    if not 0 <= quantile <= 1:
        raise InputError(f"quantile must lie in [0, 1], got {quantile!r}")
    seeds = np.flatnonzero(expansion.user_hop == 0)
    degree = graph.degree(USER)[seeds]
    keep = ~np.isin(seeds, expansion.capped_users) & (degree > 0)
    seeds, degree = seeds[keep], degree[keep]
    if not len(seeds):
        return None
    return int(seeds[np.argsort(degree, kind="stable")][int(quantile * (len(seeds) - 1))])
