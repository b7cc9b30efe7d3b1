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


def _distances(graph: BipartiteGraph, expansion: Expansion, users: np.ndarray,
               items: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Hops from ``users``/``items`` along the expansion's edges, never through capped hubs.

    Returns:
        ``(user_distance (U,), item_distance (I,))`` int32, -1 beyond ``radius``.
    """
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
    by_item = by_user.T.tocsr()
    walk_user = np.ones(graph.num_users, dtype=bool)
    walk_user[expansion.capped_users] = False
    walk_item = np.ones(graph.num_items, dtype=bool)
    walk_item[expansion.capped_items] = False

    user_distance = np.full(graph.num_users, -1, dtype=np.int32)
    item_distance = np.full(graph.num_items, -1, dtype=np.int32)
    user_distance[users] = 0
    item_distance[items] = 0
    for distance in range(1, radius + 1):
        next_items = np.unique(by_user[users[walk_user[users]]].indices)
        next_users = np.unique(by_item[items[walk_item[items]]].indices)
        items = next_items[item_distance[next_items] < 0]
        users = next_users[user_distance[next_users] < 0]
        item_distance[items] = distance
        user_distance[users] = distance
    return user_distance, item_distance


def expansion_subgraph(
    graph: BipartiteGraph,
    expansion: Expansion,
    seed_users: Any = None,
    seed_items: Any = None,
    radius: int | None = None,
    max_nodes: int = 200,
    selected_edges: Any = None,
    seed: int = 0,
) -> nx.Graph:
    """The nodes and edges :func:`draw_expansion` draws: the expansion around some seeds.

    Nodes are those within ``radius`` hops of the seeds, walking the expansion's edges
    (``expansion.edge_mask``) and never through a capped hub, as :func:`graphsel.graph.expansion.expand`
    walked. From the expansion's own seeds (the default) this is exactly the nodes with
    ``0 <= hop <= radius`` (without ``fanout``, whose sampled hub edges are not walked here).
    Above ``max_nodes`` nodes, the nearest are kept: the seeds, then distance 1, 2, ...; the
    one layer that does not fit whole is sampled at random (seeded), so every kept node past
    the seeds keeps a neighbour one hop nearer.

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

    Returns:
        An ``nx.Graph`` from :meth:`BipartiteGraph.to_networkx` (nodes ``("user", code)`` /
        ``("item", code)`` with ``node_type``, ``id``, ``degree``) whose nodes also carry
        ``hop`` (the expansion's), ``distance`` (from the seeds given here), ``is_seed`` and
        ``capped`` (a hub the expansion did not walk through), and whose edges carry
        ``selected``. ``sub.graph`` holds ``radius``, ``num_nodes_within_radius`` and
        ``sampled``.

    Raises:
        InputError: for an expansion not run on ``graph``, a seed it did not reach, a bad
            ``radius`` or ``max_nodes``, or a ``selected_edges`` of the wrong shape.
    """
    if (len(expansion.user_hop), len(expansion.item_hop)) != (graph.num_users, graph.num_items):
        raise InputError(f"the expansion has {len(expansion.user_hop)} users and "
                         f"{len(expansion.item_hop)} items, the graph {graph.num_users} and "
                         f"{graph.num_items}; pass the graph the expansion was run on")
    radius = expansion.num_hops if radius is None else _check_count("radius", radius, 0)
    max_nodes = _check_count("max_nodes", max_nodes, 1)
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
    user_distance, item_distance = _distances(graph, expansion, users, items, radius)

    user_codes = np.flatnonzero(user_distance >= 0)
    item_codes = np.flatnonzero(item_distance >= 0)
    distance = np.concatenate([user_distance[user_codes], item_distance[item_codes]])
    total = len(distance)
    if total > max_nodes:
        tie_break = np.random.default_rng(seed).permutation(total)
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
    for (_, user), (_, item), attributes in _user_item_edges(sub):
        attributes["selected"] = any(_has_marked_edge(edges, masks[edges.relation], user, item)
                                     for edges in graph.relation_edges)
    sub.graph.update(radius=radius, num_nodes_within_radius=total, sampled=total > max_nodes)
    return sub


def _user_item_edges(sub: nx.Graph) -> Iterable[tuple[tuple, tuple, dict]]:
    """The edges of a :meth:`BipartiteGraph.to_networkx` graph as ``(user, item, data)``."""
    for a, b, attributes in sub.edges(data=True):
        yield (a, b, attributes) if a[0] == USER else (b, a, attributes)


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
) -> Figure:
    """Draws the expansion around some seeds (see :func:`expansion_subgraph` for the nodes).

    Users are circles and items squares, coloured by the hop at which the expansion first
    reached them (:func:`hop_color`) and sized by degree; a thick black outline marks a
    capped hub (reached but not expanded through); the seeds given here are labelled with
    their original ids (up to five). Selected edges are solid, the others dashed and pale.
    Node collections have the gids ``"user"`` and ``"item"`` and list their nodes in sorted
    order; edge collections have the gids ``"selected"`` and ``"rejected"``.

    Args:
        graph, expansion, seed_users, seed_items, radius, max_nodes, selected_edges, seed:
            as for :func:`expansion_subgraph`; ``seed`` also seeds the spring layout.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure.
    """
    import networkx as nx
    from matplotlib.lines import Line2D

    sub = expansion_subgraph(graph, expansion, seed_users, seed_items, radius, max_nodes,
                             selected_edges, seed)
    figure, ax = _figure(ax, (8.0, 7.0))
    positions = nx.spring_layout(sub, seed=seed, k=1.5 / math.sqrt(max(len(sub), 1)),
                                 iterations=100)
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
            node_size=[30 + 270 * math.sqrt(d["degree"] / largest) for d in data],
            edgecolors=[color for color, _ in outline],
            linewidths=[width for _, width in outline])
        collection.set_gid(node_type)
        collection.set_zorder(2)
    for gid, style, wanted in (("rejected", _REJECTED_EDGE, False),
                               ("selected", _SELECTED_EDGE, True)):
        edgelist = [(u, i) for u, i, d in _user_item_edges(sub) if d["selected"] == wanted]
        if edgelist:
            drawn = nx.draw_networkx_edges(sub, positions, edgelist=edgelist, ax=ax,
                                           edge_color=style.color, style=style.style,
                                           width=style.width, alpha=style.alpha)
            drawn.set_gid(gid)
    seeds = sorted(node for node in sub if sub.nodes[node]["is_seed"])
    if len(seeds) <= 5:
        # above the node, so the label does not hide the seed it names
        span = np.ptp(np.array(list(positions.values())).reshape(-1, 2)[:, 1]) or 1.0
        above = {n: positions[n] + np.array([0.0, 0.03 * span]) for n in seeds}
        nx.draw_networkx_labels(sub, above, ax=ax, font_size=8,
                                labels={n: f"{n[0]} {sub.nodes[n]['id']}" for n in seeds},
                                verticalalignment="bottom",
                                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "gray",
                                      "alpha": 0.85})
    hops = sorted({sub.nodes[node]["hop"] for node in sub})
    handles = [Line2D([], [], ls="", marker="o", color=hop_color(h), label=f"hop {h}")
               for h in hops]
    handles += [Line2D([], [], ls="", marker=_NODE_SHAPES[t], mfc="white", mec="black",
                       label=f"{t}s") for t in (USER, ITEM)]
    handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="black", mew=2.5,
                          label="capped hub"))
    handles += [Line2D([], [], ls=s.style, color=s.color, label=f"{label} edge")
                for label, s in (("selected", _SELECTED_EDGE), ("other", _REJECTED_EDGE))]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
    users = sum(1 for node in sub if node[0] == USER)
    sampled = (f", sampled from {sub.graph['num_nodes_within_radius']:,}"
               if sub.graph["sampled"] else "")
    ax.set_title(f"{len(seeds)} seed(s), radius {sub.graph['radius']}: {users} users, "
                 f"{len(sub) - users} items{sampled}", fontsize=10)
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
