"""Figures of an expansion and a selection: a seed's neighbourhood, hops, funnel, scores.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so library
code never touches global figure state or opens a window; a notebook shows a returned figure
as the value of its cell, and :func:`save_selection_plots` writes them as PNG files.

What a figure draws is computed by a pure function that tests can check without reading
pixels: :func:`expansion_subgraph` gives the nodes and edges :func:`draw_expansion` draws,
:func:`calibration_bins` the bins of :func:`plot_calibration`.

>>> from graphsel.expand import expand
>>> from graphsel.graph import BipartiteGraph
>>> graph = BipartiteGraph.from_arrays([0, 0, 1, 2], [0, 1, 1, 2])
>>> sub = expansion_subgraph(graph, expand(graph, seed_users=0, num_hops=2), radius=1)
>>> sorted(sub.nodes)
[('item', 0), ('item', 1), ('user', 0)]
>>> [sub.nodes[node]["hop"] for node in sorted(sub.nodes)]
[1, 1, 0]
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from graphsel._io import atomic_path, check_output_dir
from graphsel.errors import InputError
from graphsel.expand import Expansion, seed_codes
from graphsel.graph import ITEM, USER, BipartiteGraph, Relation, RelationEdges

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from graphsel.selector import Selection

__all__ = [
    "HOP_COLORS",
    "hop_color",
    "expansion_subgraph",
    "draw_expansion",
    "plot_hops",
    "plot_reach",
    "plot_funnel",
    "plot_scores",
    "plot_selected_hops",
    "CalibrationBins",
    "calibration_bins",
    "plot_calibration",
    "plot_periods",
    "average_over_seeds",
    "plot_transfer_periods",
    "plot_calibrations",
    "typical_seed",
    "save_selection_plots",
    "save_transfer_plots",
]

HOP_COLORS: tuple[str, ...] = (
    "#D55E00", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#F0E442", "#999999")
"""Node colour of hop 0, 1, 2, ... (Okabe-Ito, colour-blind safe); the last one for later hops."""

USER_COLOR, ITEM_COLOR, TARGET_COLOR = "#0072B2", "#E69F00", "#D55E00"
_SELECTED_EDGE = {"style": "solid", "color": "#333333", "width": 1.0, "alpha": 0.7}
_REJECTED_EDGE = {"style": "dashed", "color": "#BBBBBB", "width": 0.6, "alpha": 0.8}
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


# --------------------------------------------------------------------------------------------
# A seed's neighbourhood
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


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
    (``expansion.edge_mask``) and never through a capped hub, as :func:`graphsel.expand.expand`
    walked. From the expansion's own seeds (the default) this is exactly the nodes with
    ``0 <= hop <= radius`` (without ``fanout``, whose sampled hub edges are not walked here).
    Above ``max_nodes`` nodes, the nearest are kept: the seeds, then distance 1, 2, ...; the
    one layer that does not fit whole is sampled at random (seeded), so every kept node past
    the seeds keeps a neighbour one hop nearer.

    Args:
        graph: the graph the expansion was run on.
        expansion: the result of :func:`graphsel.expand.expand`.
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


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new pyplot-free figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


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
                                           edge_color=style["color"], style=style["style"],
                                           width=style["width"], alpha=style["alpha"])
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
    handles += [Line2D([], [], ls=s["style"], color=s["color"], label=f"{label} edge")
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


# --------------------------------------------------------------------------------------------
# Expansion statistics
# --------------------------------------------------------------------------------------------


def _annotate_bars(ax: Axes, bars: Any, labels: Sequence[str], **kw: Any) -> None:
    ax.bar_label(bars, labels=list(labels), fontsize=8, padding=2, **kw)


def plot_hops(expansion: Expansion, ax: Axes | None = None, log: bool = False) -> Figure:
    """Users and items first reached at each hop, with the capped hubs of each hop.

    Args:
        expansion: the result of :func:`graphsel.expand.expand`.
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
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("hops")
    ax.set_ylabel("share of all nodes reached")
    ax.legend(frameon=False, fontsize=8)
    return figure


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


def plot_funnel(report: Mapping[str, Any], ax: Axes | None = None) -> Figure:
    """Source rows kept by each stage of a selection report (:meth:`SampleSelector.fit`).

    Args:
        report: ``selection.report``: ``rows.source``, ``rows.target`` and ``stages`` (each
            with ``name`` and ``kept``; ``auc`` for ``"da"``).
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure: one horizontal bar per row of the funnel, ``source`` first, whose widths
        are the source rows and each stage's ``kept``.
    """
    try:
        source = int(report["rows"]["source"])
        target = int(report["rows"]["target"])
        stages = [(str(stage["name"]), int(stage["kept"]), stage) for stage in report["stages"]]
    except (KeyError, TypeError) as exc:
        raise InputError(f"plot_funnel: the report lacks {exc}; pass selection.report") from None
    figure, ax = _figure(ax, (6.0, 1.2 + 0.55 * (len(stages) + 1)))
    names = ["source"] + [name for name, _, _ in stages]
    kept = [source] + [count for _, count, _ in stages]
    positions = np.arange(len(names))
    bars = ax.barh(positions, kept, color=[USER_COLOR] + [hop_color(2)] * len(stages))
    notes = [""] + [f", AUC {stage['auc']:.3f}" if "auc" in stage else ""
                    for _, _, stage in stages]
    _annotate_bars(ax, bars, [f"{n:,} ({n / max(source, 1):.1%}){note}"
                              for n, note in zip(kept, notes)])
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.margins(x=0.35)
    ax.set_xlabel("source rows kept")
    ax.set_title(f"selection funnel (target: {target:,} rows)", fontsize=10)
    return figure


def _shares(values: np.ndarray) -> np.ndarray:
    """Weights that make a histogram of ``values`` sum to 1."""
    return np.full(len(values), 1.0 / max(len(values), 1))


def _histograms(ax: Axes, groups: Sequence[tuple[str, np.ndarray, str]], bins: np.ndarray,
                xlabel: str) -> None:
    for label, values, color in groups:
        ax.hist(values, bins=bins, weights=_shares(values), histtype="stepfilled", alpha=0.45,
                color=color, edgecolor=color, label=f"{label} (n={len(values):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of rows")
    ax.legend(frameon=False, fontsize=8)


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_axis_off()


def plot_scores(selection: Selection, target_p: Any = None, truth: Any = None,
                bins: int = 30) -> Figure:
    """Score histograms: ``p_target`` of candidates vs target rows, ``knn_score`` vs truth.

    Each histogram is normalised to shares (its bars sum to 1), so groups of very different
    sizes compare.

    Args:
        selection: a :class:`graphsel.selector.Selection`; rows with a NaN score were not
            scored and are left out.
        target_p: ``(N_tgt,)`` out-of-fold ``p_target`` of the target rows
            (``selector.domain_classifier_.p_target_in_target_``); default None: not drawn.
        truth: ``(N_src,)`` bool, the rows known to be target-like (default None: the
            ``knn_score`` panel shows all scored rows as one group).
        bins: bins per histogram (default 30).

    Returns:
        A figure with two axes: ``p_target``, then ``knn_score``.
    """
    from matplotlib.figure import Figure

    bins = _check_count("bins", bins, 1)
    if truth is not None:
        truth = np.asarray(truth, dtype=bool)
        if truth.shape != selection.mask.shape:
            raise InputError(f"truth has shape {truth.shape}, expected {selection.mask.shape}")
    figure = Figure(figsize=(10.0, 3.8), layout="constrained")
    p_axes, knn_axes = figure.subplots(1, 2)
    scored = ~np.isnan(selection.p_target)
    if scored.any():
        groups = [("candidates", selection.p_target[scored], USER_COLOR)]
        if target_p is not None:
            groups.append(("target rows", np.asarray(target_p, dtype=float), TARGET_COLOR))
        _histograms(p_axes, groups, np.linspace(0.0, 1.0, bins + 1), "p_target (out of fold)")
        p_axes.set_title("domain classifier", fontsize=10)
    else:
        _no_data(p_axes, "no p_target: the selection ran without the 'da' stage")
    scored = ~np.isnan(selection.knn_score)
    if scored.any():
        scores = selection.knn_score[scored]
        edges = np.linspace(float(scores.min()), float(scores.max()) + 1e-9, bins + 1)
        if truth is None:
            groups = [("scored rows", scores, USER_COLOR)]
        else:
            groups = [("target-like (truth)", selection.knn_score[scored & truth], TARGET_COLOR),
                      ("other", selection.knn_score[scored & ~truth], USER_COLOR)]
        _histograms(knn_axes, groups, edges, "knn_score")
        knn_axes.set_title("neighbour scorer", fontsize=10)
    else:
        _no_data(knn_axes, "no knn_score: the selection ran without the 'knn' stage")
    return figure


def plot_selected_hops(selection: Selection, ax: Axes | None = None) -> Figure:
    """Rows at each hop: reached by the graph stage vs finally selected.

    Args:
        selection: a :class:`graphsel.selector.Selection` with a ``"graph"`` stage.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure: bar containers ``"graph candidates"`` and ``"selected"``, one bar per hop.
    """
    reached = selection.hop >= 0
    if not reached.any():
        raise InputError("plot_selected_hops: no row has a hop; run the 'graph' stage")
    figure, ax = _figure(ax, (6.0, 4.0))
    size = int(selection.hop.max()) + 1
    candidates = np.bincount(selection.hop[reached], minlength=size)
    selected = np.bincount(selection.hop[reached & selection.mask], minlength=size)
    hops = np.arange(size)
    width = 0.4
    _annotate_bars(ax, ax.bar(hops - width / 2, candidates, width, label="graph candidates",
                              color=USER_COLOR), [f"{n:,}" for n in candidates])
    _annotate_bars(ax, ax.bar(hops + width / 2, selected, width, label="selected",
                              color=hop_color(2)),
                   [f"{n:,}\n({n / max(c, 1):.0%})" for n, c in zip(selected, candidates)])
    ax.margins(y=0.2)
    ax.set_xticks(hops, [str(h) for h in hops])
    ax.set_xlabel("hop of the row (larger of its user's and item's)")
    ax.set_ylabel("source rows")
    ax.legend(frameon=False)
    return figure


# --------------------------------------------------------------------------------------------
# Calibration and periods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationBins:
    """A reliability diagram's bins.

    Attributes:
        edges: ``(n_bins + 1,)`` bin edges over [0, 1].
        count: ``(n_bins,)`` predictions per bin.
        mean_pred: ``(n_bins,)`` mean prediction per bin, NaN where empty.
        frac_pos: ``(n_bins,)`` share of positive labels per bin, NaN where empty.
    """

    edges: np.ndarray
    count: np.ndarray
    mean_pred: np.ndarray
    frac_pos: np.ndarray


def calibration_bins(y_true: Any, p_pred: Any, n_bins: int = 10) -> CalibrationBins:
    """Bins predictions into ``n_bins`` equal-width bins of [0, 1].

    Bin ``b`` holds ``edges[b] < p <= edges[b + 1]`` (the first bin also holds 0), the rule of
    ``sklearn.calibration.calibration_curve``, whose output equals the non-empty bins here.

    >>> bins = calibration_bins([0, 1, 1, 0], [0.25, 0.5, 0.75, 1.0], n_bins=2)
    >>> bins.count.tolist(), bins.mean_pred.tolist(), bins.frac_pos.tolist()
    ([2, 2], [0.375, 0.875], [0.5, 0.5])

    Args:
        y_true: ``(N,)`` labels, 0 or 1.
        p_pred: ``(N,)`` predicted probabilities in [0, 1].
        n_bins: number of bins, >= 1 (default 10).

    Raises:
        InputError: for mismatched lengths, no rows, labels outside {0, 1} or probabilities
            outside [0, 1].
    """
    n_bins = _check_count("n_bins", n_bins, 1)
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    p_pred = np.asarray(p_pred, dtype=float).reshape(-1)
    if y_true.shape != p_pred.shape or len(y_true) == 0:
        raise InputError(f"y_true and p_pred must be non-empty and of one length, got "
                         f"{len(y_true)} and {len(p_pred)}")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise InputError(f"y_true must hold 0 or 1, got {y_true[~np.isin(y_true, (0, 1))][0]}")
    if not ((p_pred >= 0) & (p_pred <= 1)).all():
        raise InputError(f"p_pred must lie in [0, 1], got "
                         f"{p_pred[~((p_pred >= 0) & (p_pred <= 1))][0]}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p_pred)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=p_pred, minlength=n_bins) / count
        frac_pos = np.bincount(which, weights=y_true, minlength=n_bins) / count
    return CalibrationBins(edges, count, mean_pred, frac_pos)


def plot_calibration(y_true: Any, p_pred: Any, n_bins: int = 10,
                     ax: Axes | None = None) -> Figure:
    """Reliability diagram: share of positives against the mean prediction of each bin.

    Args:
        y_true, p_pred, n_bins: as for :func:`calibration_bins`.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure; its line labelled ``"model"`` goes through the non-empty bins'
        ``(mean_pred, frac_pos)``, and bars on a second y axis count each bin's rows.
    """
    bins = calibration_bins(y_true, p_pred, n_bins)
    figure, ax = _figure(ax, (5.0, 4.5))
    counts = ax.twinx()
    counts.bar(bins.edges[:-1], bins.count, width=np.diff(bins.edges), align="edge",
               color="#DDDDDD", zorder=0)
    counts.set_ylim(0, 3 * max(int(bins.count.max()), 1))  # keep the bars in the lower third
    counts.set_ylabel("rows per bin", color="gray")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], ls=":", color="gray", label="perfectly calibrated")
    filled = bins.count > 0
    ax.plot(bins.mean_pred[filled], bins.frac_pos[filled], marker="o", color=USER_COLOR,
            label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share of positives")
    ax.legend(frameon=False, loc="upper left")
    return figure


def plot_periods(results: Iterable[Mapping[str, Any]], metric: str = "auc",
                 ax: Axes | None = None,
                 styles: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """A metric per period, one line per strategy (continual training results).

    With several seeds, average the records first (:func:`average_over_seeds`): a strategy
    may give each period once.

    Args:
        results: dicts like ``{"strategy": "target_only", "period": 0, "auc": 0.71}``;
            optional ``f"{metric}_low"`` and ``f"{metric}_high"`` draw a confidence band.
        metric: the key to plot (default ``"auc"``).
        ax: axes to draw on (default None: a new figure).
        styles: per strategy, keyword arguments of its line (e.g. ``{"color": "k",
            "linestyle": "--"}``) replacing the defaults; its band takes the line's colour.
            Default None.

    Returns:
        The figure; one line per strategy, in order of first appearance, labelled with
        the strategy and going through its periods in increasing order.

    Raises:
        InputError: for no results, a result lacking a key, or one period given twice for a
            strategy.
    """
    by_strategy: dict[str, dict[int, Mapping[str, Any]]] = {}
    for number, result in enumerate(results):
        missing = [key for key in ("strategy", "period", metric) if key not in result]
        if missing:
            raise InputError(f"plot_periods: result {number} has no {missing[0]!r} "
                             f"(keys: {sorted(result)})")
        periods = by_strategy.setdefault(str(result["strategy"]), {})
        if int(result["period"]) in periods:
            raise InputError(f"plot_periods: strategy {result['strategy']!r} has period "
                             f"{result['period']} twice")
        periods[int(result["period"])] = result
    if not by_strategy:
        raise InputError("plot_periods: no results")
    figure, ax = _figure(ax, (6.0, 4.0))
    for number, (strategy, periods) in enumerate(by_strategy.items()):
        x = sorted(periods)
        y = [float(periods[p][metric]) for p in x]
        style = {"marker": "o", "color": HOP_COLORS[number % len(HOP_COLORS)],
                 **(styles or {}).get(strategy, {})}
        (line,) = ax.plot(x, y, label=strategy, **style)
        color = line.get_color()
        low, high = f"{metric}_low", f"{metric}_high"
        if all(low in periods[p] and high in periods[p] for p in x):
            ax.fill_between(x, [periods[p][low] for p in x], [periods[p][high] for p in x],
                            color=color, alpha=0.15, linewidth=0)
    all_periods = sorted({p for periods in by_strategy.values() for p in periods})
    ax.set_xticks(all_periods, [str(p) for p in all_periods])
    ax.set_xlabel("period (evaluated on the next one)")
    ax.set_ylabel(metric.upper() if metric.lower() in ("auc", "gauc") else metric)
    ax.legend(frameon=False, fontsize=8)
    return figure


def average_over_seeds(records: Iterable[Mapping[str, Any]],
                       metric: str = "auc") -> list[dict[str, Any]]:
    """Per (strategy, period), the mean of ``metric`` over the seeds and its spread.

    >>> average_over_seeds([{"strategy": "a", "period": 0, "auc": 0.6},
    ...                     {"strategy": "a", "period": 0, "auc": 0.8}])
    [{'strategy': 'a', 'period': 0, 'auc': 0.7, 'n_seeds': 2, 'auc_low': 0.6, 'auc_high': 0.8}]

    Args:
        records: dicts with ``strategy``, ``period`` and ``metric`` (e.g.
            ``Results.records``: one per seed, strategy and period). A value of None (a
            metric undefined on those rows) is left out of the mean.
        metric: the key to average (default ``"auc"``).

    Returns:
        One dict per (strategy, period) with at least one value: ``strategy``, ``period``,
        ``metric`` (the mean), ``n_seeds`` (the values averaged) and, from two values on,
        ``f"{metric}_low"`` / ``f"{metric}_high"`` (their min and max, the band
        :func:`plot_periods` draws). Strategies in order of first appearance, then periods
        in increasing order.

    Raises:
        InputError: for a record lacking a key.
    """
    values: dict[str, dict[int, list[float]]] = {}
    for number, record in enumerate(records):
        missing = [key for key in ("strategy", "period", metric) if key not in record]
        if missing:
            raise InputError(f"average_over_seeds: record {number} has no {missing[0]!r} "
                             f"(keys: {sorted(record)})")
        periods = values.setdefault(str(record["strategy"]), {})
        bucket = periods.setdefault(int(record["period"]), [])
        if record[metric] is not None:
            bucket.append(float(record[metric]))
    out = []
    for strategy, periods in values.items():
        for period in sorted(periods):
            found = periods[period]
            if not found:
                continue
            row: dict[str, Any] = {"strategy": strategy, "period": period,
                                   metric: float(np.mean(found)), "n_seeds": len(found)}
            if len(found) > 1:
                row[f"{metric}_low"], row[f"{metric}_high"] = min(found), max(found)
            out.append(row)
    return out


def plot_transfer_periods(records: Iterable[Mapping[str, Any]], metric: str = "auc",
                          ax: Axes | None = None,
                          styles: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """:func:`plot_periods` of the seed means (:func:`average_over_seeds`) of a comparison.

    The title says how many seeds were averaged, the band spans their min to max, and the
    last period's tick is marked ``(test)``: it is scored on the test set, the others on
    the next period's target rows.

    Args:
        records: ``Results.records`` (one dict per seed, strategy and period), or several
            comparisons' records with distinct strategy names.
        metric, ax, styles: as for :func:`plot_periods`.

    Raises:
        InputError: for a record lacking a key, or no record with a defined ``metric``.
    """
    averaged = average_over_seeds(records, metric)
    if not averaged:
        raise InputError(f"no record with a defined {metric!r}")
    figure = plot_periods(averaged, metric, ax=ax, styles=styles)
    ax = figure.axes[0] if ax is None else ax
    seeds = max(row["n_seeds"] for row in averaged)
    name = metric.upper() if metric.lower() in ("auc", "gauc") else metric
    ax.set_title(f"{name} per period: mean of {seeds} seeds (band: min to max)" if seeds > 1
                 else f"{name} per period (one seed)", fontsize=10)
    periods = sorted({row["period"] for row in averaged})
    ax.set_xticks(periods, [f"{p}\n(test)" if p == periods[-1] else str(p) for p in periods])
    return figure


def plot_calibrations(y_true: Any, predictions: Mapping[str, Any], n_bins: int = 10,
                      ncols: int = 3) -> Figure:
    """One reliability diagram (:func:`plot_calibration`) per model, side by side.

    Args:
        y_true: ``(N,)`` labels, 0 or 1, shared by every model (e.g. ``Results.test_labels``).
        predictions: per model name, its ``(N,)`` predicted probabilities (e.g.
            ``Results.test_predictions``), one panel each in this order.
        n_bins: as for :func:`calibration_bins`.
        ncols: panels per row, >= 1 (default 3).

    Returns:
        The figure; panel ``i`` (``figure.axes``, the count axes excepted) is titled with the
        ``i``-th name, the mean prediction and the share of positives.

    Raises:
        InputError: for no predictions, or as :func:`calibration_bins`.
    """
    from matplotlib.figure import Figure

    if not predictions:
        raise InputError("plot_calibrations: no predictions")
    ncols = min(_check_count("ncols", ncols, 1), len(predictions))
    nrows = math.ceil(len(predictions) / ncols)
    figure = Figure(figsize=(3.8 * ncols, 3.6 * nrows), layout="constrained")
    panels = figure.subplots(nrows, ncols, squeeze=False).ravel()
    y = np.asarray(y_true, dtype=float).reshape(-1)
    for number, (ax, (name, p)) in enumerate(zip(panels, predictions.items())):
        p = np.asarray(p, dtype=float).reshape(-1)
        plot_calibration(y, p, n_bins, ax=ax)
        ax.set_title(f"{name}\nmean prediction {p.mean():.3f} · positives {y.mean():.3f}",
                     fontsize=9)
        if number:
            ax.get_legend().remove()
    for ax in panels[len(predictions):]:
        ax.set_visible(False)
    return figure


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _save(figure: Figure, path: Path, dpi: int) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path


def typical_seed(graph: BipartiteGraph, expansion: Expansion,
                 quantile: float = 0.9) -> int | None:
    """A seed user worth drawing: the one at ``quantile`` of the seed users' degrees.

    The most active seed's neighbourhood is a hairball of hundreds of nodes and the median
    one often has a single item, so the default is an active but not extreme seed. Capped
    hubs and seeds without edges are left out; ties are broken by code.

    Args:
        graph: the graph the expansion ran on.
        expansion: the result of :func:`graphsel.expand.expand`.
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


def save_selection_plots(
    graph: BipartiteGraph | None,
    expansion: Expansion | None,
    selection: Selection,
    report: Mapping[str, Any] | None,
    out_dir: str | os.PathLike,
    *,
    target_p: Any = None,
    truth: Any = None,
    dpi: int = 100,
) -> list[Path]:
    """Writes the figures of a selection as PNG files into ``out_dir`` (made if needed).

    Files (each written to a temporary file and renamed, so none is ever partial):
    ``funnel.png`` (:func:`plot_funnel`), ``scores.png`` (:func:`plot_scores`) and, when
    the selection had a ``"graph"`` stage and ``graph``/``expansion`` are given,
    ``hops.png`` (:func:`plot_hops`), ``selected_hops.png`` (:func:`plot_selected_hops`) and
    ``expansion.png`` (:func:`draw_expansion` around a seed user at the 90th degree percentile,
    edges of selected rows solid); with ``target_p``, ``calibration.png``
    (:func:`plot_calibration` of the domain classifier: candidates 0, target rows 1).

    Args:
        graph: the graph the expansion ran on, or None: ``BipartiteGraph.from_log(source,
            edges=selector.edges, relations=selector.relations)``.
        expansion: ``selector.expansion_``, or None.
        selection: ``selector.selection_``.
        report: the funnel report (default None: ``selection.report``).
        out_dir: the folder to write to.
        target_p: ``selector.domain_classifier_.p_target_in_target_`` (default None).
        truth: ``(N_src,)`` bool planted truth (default None).
        dpi: resolution (default 100).

    Returns:
        The paths written, in the order above.

    Raises:
        InputError: if ``out_dir`` is a file.
    """
    out_dir = check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = selection.report if report is None else report
    figures: list[tuple[str, Any]] = [
        ("funnel.png", lambda: plot_funnel(report)),
        ("scores.png", lambda: plot_scores(selection, target_p, truth)),
    ]
    if graph is not None and expansion is not None:
        figures.append(("hops.png", lambda: plot_hops(expansion)))
        if (selection.hop >= 0).any():
            figures.append(("selected_hops.png", lambda: plot_selected_hops(selection)))
        focus = typical_seed(graph, expansion)
        if focus is not None:
            figures.append(("expansion.png", lambda: draw_expansion(
                graph, expansion, seed_users=focus, selected_edges=_row_mask(graph, selection))))
    if target_p is not None:
        scored = selection.p_target[~np.isnan(selection.p_target)]
        target_p = np.asarray(target_p, dtype=float)
        figures.append(("calibration.png", lambda: plot_calibration(
            np.r_[np.zeros(len(scored)), np.ones(len(target_p))], np.r_[scored, target_p])))
    return [_save(make(), out_dir / name, dpi) for name, make in figures]


def _row_mask(graph: BipartiteGraph, selection: Selection) -> np.ndarray | None:
    """``selection.mask`` when it lines up with the graph's rows, else None (edge_mask)."""
    return selection.mask if selection.mask.shape == graph.row_edge.shape else None


def save_transfer_plots(
    results: Any,
    out_dir: str | os.PathLike,
    *,
    metric: str = "auc",
    labels: Any = None,
    predictions: Mapping[str, Any] | None = None,
    dpi: int = 100,
) -> list[Path]:
    """Writes the figures of a strategy comparison as PNG files into ``out_dir`` (made if
    needed).

    Files (each written to a temporary file and renamed, so none is ever partial):
    ``periods.png`` (:func:`plot_transfer_periods`: the seed means of ``metric`` per strategy
    and period, with a min-max band over the seeds when there are several; the last period
    is the test set) and, when test predictions are known, ``calibration.png``
    (:func:`plot_calibrations`: one reliability diagram per strategy of its seed-averaged
    test predictions).

    Args:
        results: a ``graphsel.transfer.protocol.Results`` (read through its ``records`` and,
            if present, ``test_labels`` and ``test_predictions``), the dict of its
            ``to_json()`` (records under ``"periods"``), or an iterable of record dicts.
        out_dir: the folder to write to.
        metric: the record key plotted per period (default ``"auc"``).
        labels: ``(N_test,)`` test labels (default None: ``results.test_labels``).
        predictions: per strategy, ``(N_test,)`` test predictions (default None:
            ``results.test_predictions``).
        dpi: resolution (default 100).

    Returns:
        The paths written, in the order above.

    Raises:
        InputError: if ``out_dir`` is a file, or for records lacking a key or without any
            defined ``metric``.
    """
    out_dir = check_output_dir(out_dir)
    if hasattr(results, "records"):
        records = list(results.records)
    elif isinstance(results, Mapping):
        records = list(results.get("periods", []))
    else:
        records = list(results)
    labels = getattr(results, "test_labels", None) if labels is None else labels
    predictions = (getattr(results, "test_predictions", None) if predictions is None
                   else predictions)
    if not average_over_seeds(records, metric):  # fail before making the folder
        raise InputError(f"save_transfer_plots: no record with a defined {metric!r}")
    figures: list[tuple[str, Any]] = [
        ("periods.png", lambda: plot_transfer_periods(records, metric))]
    if labels is not None and predictions:
        figures.append(("calibration.png", lambda: plot_calibrations(labels, predictions)))
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_save(make(), out_dir / name, dpi) for name, make in figures]
