"""Tests of graphsel.viz: what each figure draws, read back from the figure's artists."""

from __future__ import annotations

import copy
import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from graphsel import viz  # noqa: E402
from graphsel.data.datasets import get_dataset  # noqa: E402
from graphsel.errors import InputError  # noqa: E402
from graphsel.graph.bipartite import BipartiteGraph  # noqa: E402
from graphsel.graph.build import CLICK  # noqa: E402
from graphsel.graph.expansion import expand, shared_seeds  # noqa: E402
from graphsel.select.domain import DomainClassifier  # noqa: E402
from graphsel.select.neighbors import NeighborReport  # noqa: E402
from graphsel.select.neighbors import NeighborScorer  # noqa: E402
from graphsel.select.pipeline import (  # noqa: E402
    Selection,
    SelectionReport,
    StageReport,
)
from graphsel.select.stage import StageDetails  # noqa: E402
from graphsel.transfer.protocol.results import Scores  # noqa: E402
from graphsel.transfer.train.metrics import expected_calibration_error  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


def _hub_graph() -> BipartiteGraph:
    """Item 0 is a hub with 4 users; user 0 also has item 1; user 3 also has item 2.

    Rows (and CSR edges): (u0,i0) (u1,i0) (u2,i0) (u3,i0) (u0,i1) (u3,i2).
    """
    return BipartiteGraph.from_arrays([0, 1, 2, 3, 0, 3], [0, 0, 0, 0, 1, 2])


def _nodes(*spec: str) -> set[tuple[str, int]]:
    """``_nodes("u0", "i1")`` -> ``{("user", 0), ("item", 1)}``."""
    kinds = {"u": "user", "i": "item"}
    return {(kinds[s[0]], int(s[1:])) for s in spec}


def _within(expansion, radius: int) -> set[tuple[str, int]]:
    users = np.flatnonzero((expansion.user_hop >= 0) & (expansion.user_hop <= radius))
    items = np.flatnonzero((expansion.item_hop >= 0) & (expansion.item_hop <= radius))
    return {("user", int(u)) for u in users} | {("item", int(i)) for i in items}


@pytest.fixture(scope="module")
def synthetic():
    return get_dataset("synthetic")()


@pytest.fixture(scope="module")
def synthetic_graph(synthetic):
    return BipartiteGraph.from_log(synthetic.source)


@pytest.fixture(scope="module")
def capped_expansion(synthetic, synthetic_graph):
    users, items = shared_seeds(synthetic.source, synthetic.target)
    return expand(synthetic_graph, users, items, num_hops=2, max_degree=50)


def _node_collections(figure: Figure) -> dict[str, PathCollection]:
    (ax,) = figure.axes
    return {c.get_gid(): c for c in ax.collections if isinstance(c, PathCollection)}


def _edge_segments(figure: Figure, gid: str) -> int:
    (ax,) = figure.axes
    found = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_gid() == gid]
    return sum(len(c.get_segments()) for c in found)


# --------------------------------------------------------------------------------------------
# expansion_subgraph: which nodes are drawn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius, expected", [
    (0, ["u0"]),
    (1, ["u0", "i0", "i1"]),
    (2, ["u0", "i0", "i1", "u1", "u2", "u3"]),
])
def test_subgraph_nodes_are_the_expansion_within_the_radius(radius, expected):
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    sub = viz.expansion_subgraph(graph, expansion, radius=radius)
    assert set(sub.nodes) == _nodes(*expected) == _within(expansion, radius)
    assert {n: sub.nodes[n]["hop"] for n in sub} == {
        n: int((expansion.user_hop if n[0] == "user" else expansion.item_hop)[n[1]])
        for n in sub}
    within = [1, 2, 3][:radius + 1]  # u0; i0, i1; u1, u2, u3
    assert sub.graph == {"radius": radius, "num_nodes_within_radius": len(expected),
                         "within_by_distance": within, "per_hop": 12, "sampled": False}


def test_radius_defaults_to_the_expansion_hops_and_item_2_is_not_reached():
    graph = _hub_graph()
    sub = viz.expansion_subgraph(graph, expand(graph, seed_users=0, num_hops=2))
    assert set(sub.nodes) == _nodes("u0", "i0", "i1", "u1", "u2", "u3")
    assert sub.number_of_edges() == 5  # (u3, i2) leaves the drawing with item 2


def test_a_capped_hub_is_drawn_marked_but_not_walked_through():
    graph = _hub_graph()
    expansion = expand(graph, seed_items=[0, 1], num_hops=1, max_degree=3)
    sub = viz.expansion_subgraph(graph, expansion)
    # item 0 (4 users) is a capped seed: only item 1's user is reached
    assert set(sub.nodes) == _nodes("i0", "i1", "u0")
    assert [n for n in sub if sub.nodes[n]["capped"]] == [("item", 0)]
    # centred on user 0, the walk stops at the hub as the expansion did
    around = viz.expansion_subgraph(graph, expansion, seed_users=0, radius=3)
    assert set(around.nodes) == _nodes("u0", "i0", "i1")


def test_a_hub_shortcut_the_expansion_did_not_take_is_not_taken_either():
    # i0 is a hub (4 users); u1 is reached the long way, u0-i1-u2-i2-u1, at hop 4, but the
    # edge (u1, i0) is in the expansion's edge mask because both its ends were reached
    graph = BipartiteGraph.from_arrays([0, 1, 3, 4, 0, 2, 2, 1], [0, 0, 0, 0, 1, 1, 2, 2])
    expansion = expand(graph, seed_users=0, num_hops=4, max_degree=3)
    assert expansion.user_hop.tolist() == [0, 4, 2, -1, -1]
    sub = viz.expansion_subgraph(graph, expansion, radius=2)
    assert set(sub.nodes) == _nodes("u0", "i0", "i1", "u2") == _within(expansion, 2)
    full = viz.expansion_subgraph(graph, expansion)
    assert all(d["distance"] == d["hop"] for _, d in full.nodes(data=True))


def test_centring_on_one_seed_gives_distances_from_it_and_keeps_the_expansion_hops():
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    sub = viz.expansion_subgraph(graph, expansion, seed_items=1, radius=2)
    assert set(sub.nodes) == _nodes("i1", "u0", "i0")
    assert {n: (d["distance"], d["hop"], d["is_seed"]) for n, d in sub.nodes(data=True)} == {
        ("item", 1): (0, 1, True), ("user", 0): (1, 0, False), ("item", 0): (2, 1, False)}
    with pytest.raises(InputError, match="seed item 2 was not reached"):
        viz.expansion_subgraph(graph, expansion, seed_items=2)
    with pytest.raises(InputError, match="radius"):
        viz.expansion_subgraph(graph, expansion, radius=-1)
    with pytest.raises(InputError, match="pass the graph the expansion was run on"):
        viz.expansion_subgraph(BipartiteGraph.from_arrays([0], [0]), expansion)


def test_sampling_keeps_the_nearest_layers_whole_and_is_deterministic():
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    nearest = viz.expansion_subgraph(graph, expansion, max_nodes=3)
    assert set(nearest.nodes) == _nodes("u0", "i0", "i1")
    assert nearest.graph == {"radius": 2, "num_nodes_within_radius": 6,
                             "within_by_distance": [1, 2, 3], "per_hop": 12, "sampled": True}
    four = [set(viz.expansion_subgraph(graph, expansion, max_nodes=4, seed=s).nodes)
            for s in range(8)]
    for nodes in four:
        assert len(nodes) == 4 and _nodes("u0", "i0", "i1") < nodes
    assert four[0] == set(viz.expansion_subgraph(graph, expansion, max_nodes=4, seed=0).nodes)
    assert len({frozenset(n) for n in four}) > 1  # the seed does choose among the last layer


def test_selected_edges_from_a_row_mask_or_edge_masks():
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    rows = np.array([True, False, False, False, True, False])  # (u0,i0) and (u0,i1)
    by_rows = viz.expansion_subgraph(graph, expansion, selected_edges=rows)
    chosen = {(u[1], i[1]) for u, i, d in viz.expansion._user_item_edges(by_rows) if d["selected"]}
    assert chosen == {(0, 0), (0, 1)}
    edge_mask = {CLICK: np.array([False, False, True, True, False, False])}  # CSR order
    by_edges = viz.expansion_subgraph(graph, expansion, selected_edges=edge_mask)
    chosen = {(u[1], i[1]) for u, i, d in viz.expansion._user_item_edges(by_edges) if d["selected"]}
    assert chosen == {(1, 0), (2, 0)}
    default = viz.expansion_subgraph(graph, expansion)
    assert all(d["selected"] for _, _, d in default.edges(data=True))
    with pytest.raises(InputError, match="selected_edges"):
        viz.expansion_subgraph(graph, expansion, selected_edges=rows[:3])


@pytest.mark.parametrize("radius", [1, 2])
def test_subgraph_on_the_synthetic_default_is_the_expansion_within_the_radius(
        synthetic_graph, capped_expansion, radius):
    sub = viz.expansion_subgraph(synthetic_graph, capped_expansion, radius=radius,
                                 max_nodes=10**6, per_hop=None)
    assert set(sub.nodes) == _within(capped_expansion, radius)
    assert all(d["hop"] == d["distance"] for _, d in sub.nodes(data=True))


def test_uncapped_synthetic_subgraph_matches_too(synthetic, synthetic_graph):
    users, items = shared_seeds(synthetic.source, synthetic.target)
    expansion = expand(synthetic_graph, users, items, num_hops=2)
    sub = viz.expansion_subgraph(synthetic_graph, expansion, radius=1, max_nodes=10**6,
                                 per_hop=None)
    assert set(sub.nodes) == _within(expansion, 1)


# --------------------------------------------------------------------------------------------
# draw_expansion: what is drawn and how
# --------------------------------------------------------------------------------------------


def _check_drawn_colours(figure: Figure, sub) -> None:
    collections = _node_collections(figure)
    for node_type, collection in collections.items():
        nodes = sorted(n for n in sub if n[0] == node_type)
        data = [sub.nodes[n] for n in nodes]
        expected = np.array([to_rgba(viz.hop_color(d["hop"])) for d in data])
        np.testing.assert_allclose(collection.get_facecolors(), expected)
        widths = np.broadcast_to(collection.get_linewidths(), (len(nodes),))
        assert [w == 2.5 for w in widths] == [d["capped"] for d in data]
    assert sum(len(c.get_offsets()) for c in collections.values()) == len(sub)


def test_drawn_nodes_and_colours_follow_the_hops_on_a_hand_graph():
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2, max_degree=3)
    figure = viz.draw_expansion(graph, expansion, radius=1)
    assert isinstance(figure, Figure)
    sub = viz.expansion_subgraph(graph, expansion, radius=1)
    collections = _node_collections(figure)
    assert set(collections) == {"user", "item"}
    assert len(collections["user"].get_offsets()) == 1
    assert len(collections["item"].get_offsets()) == 2
    _check_drawn_colours(figure, sub)
    # hop 0 and hop 1 get different colours, and item 0 (the capped hub) the thick outline
    assert viz.hop_color(0) != viz.hop_color(1)
    assert list(np.broadcast_to(collections["item"].get_linewidths(), (2,))) == [2.5, 0.5]


def test_selected_and_rejected_edges_are_drawn_apart():
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    rows = np.array([True, False, False, False, True, False])
    figure = viz.draw_expansion(graph, expansion, selected_edges=rows)
    assert _edge_segments(figure, "selected") == 2
    assert _edge_segments(figure, "rejected") == 3


def test_drawing_one_seed_of_the_synthetic_default(synthetic_graph, capped_expansion):
    seed_user = viz.typical_seed(synthetic_graph, capped_expansion)
    assert capped_expansion.user_hop[seed_user] == 0
    figure = viz.draw_expansion(synthetic_graph, capped_expansion, seed_users=seed_user,
                                radius=2, max_nodes=40)
    sub = viz.expansion_subgraph(synthetic_graph, capped_expansion, seed_users=seed_user,
                                 radius=2, max_nodes=40)
    assert len(sub) <= 40 and ("user", seed_user) in sub
    assert set(sub.nodes) <= _within(capped_expansion, 2)
    _check_drawn_colours(figure, sub)


def _fan_graph() -> BipartiteGraph:
    """User 0 has items 0-3. Item 0 is a hub (users 0-4, capped at max_degree 4); item 1 has
    users 0, 5, 6; item 2 users 0, 7; item 3 user 0 only (it leads nowhere). User 5 also has
    items 4 and 5 (degree 3), user 7 item 4 (degree 2), user 6 nothing else (degree 1)."""
    rows = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1), (5, 1), (6, 1), (0, 2), (7, 2),
            (0, 3), (5, 4), (5, 5), (7, 4)]
    return BipartiteGraph.from_arrays([u for u, _ in rows], [i for _, i in rows])


def test_per_hop_keeps_hubs_first_then_goes_round_the_parents():
    graph = _fan_graph()
    expansion = expand(graph, seed_users=0, num_hops=2, max_degree=4)
    assert expansion.capped_items.tolist() == [0]
    # ring 1: the hub (a quarter of 2 places, at least one), then the item that leads on with
    # the highest degree; ring 2: item 1's users by degree
    two = viz.expansion_subgraph(graph, expansion, per_hop=2)
    assert set(two.nodes) == _nodes("u0", "i0", "i1", "u5", "u6")
    assert {n: d["parent"] for n, d in two.nodes(data=True)} == {
        ("user", 0): None, ("item", 0): ("user", 0), ("item", 1): ("user", 0),
        ("user", 5): ("item", 1), ("user", 6): ("item", 1)}
    assert two.graph["within_by_distance"] == [1, 4, 3] and two.graph["sampled"]
    # three places: item 2 joins ring 1, and ring 2 goes round items 1 and 2 in turn
    three = viz.expansion_subgraph(graph, expansion, per_hop=3)
    assert set(three.nodes) == _nodes("u0", "i0", "i1", "i2", "u5", "u7", "u6")
    assert three.nodes[("user", 7)]["parent"] == ("item", 2)
    everything = viz.expansion_subgraph(graph, expansion, per_hop=None)
    assert set(everything.nodes) == _within(expansion, 2)
    assert all(d["parent"] is None for _, d in everything.nodes(data=True))
    with pytest.raises(InputError, match="per_hop must be an integer >= 1"):
        viz.expansion_subgraph(graph, expansion, per_hop=0)


def test_drawing_shows_a_tree_of_the_kept_nodes_and_says_what_it_shows():
    graph = _fan_graph()
    expansion = expand(graph, seed_users=0, num_hops=2, max_degree=4)
    figure = viz.draw_expansion(graph, expansion, seed_users=0, per_hop=2)
    (ax,) = figure.axes
    assert ax.get_title().splitlines() == [
        "Expansion around user 0: ring d = d hops away",
        "nodes shown per ring: 1 of 1 · 2 of 4 · 2 of 3 (at most 2: hubs, then by degree)",
        "one edge per node to a parent; 0 other edges among them not drawn"]
    assert _edge_segments(figure, "selected") == 4  # one per node past the seed
    labels = sorted(text.get_text() for text in ax.texts)
    assert labels == ["5 edges", "user 0"]  # the hub's degree, the seed's id
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[:2] == ["a seed of the expansion", "reached at hop 1"]
    assert "capped hub (not expanded)" in legend and "edge of a selected row" in legend


def test_bounded_drawing_of_the_synthetic_default_reaches_hop_2(synthetic_graph,
                                                                capped_expansion):
    seed_user = viz.typical_seed(synthetic_graph, capped_expansion)
    sub = viz.expansion_subgraph(synthetic_graph, capped_expansion, seed_users=seed_user)
    distances = [d["distance"] for _, d in sub.nodes(data=True)]
    within = sub.graph["within_by_distance"]
    assert within[2] > 12  # a hairball of 100+ nodes without the bound
    assert np.bincount(distances).tolist() == [1, min(within[1], 12), 12]
    for node, data in sub.nodes(data=True):
        if node != ("user", seed_user):
            parent = data["parent"]
            assert sub.nodes[parent]["distance"] == data["distance"] - 1
            assert sub.has_edge(node, parent) and not sub.nodes[parent]["capped"]


# --------------------------------------------------------------------------------------------
# Statistics figures
# --------------------------------------------------------------------------------------------


def _bar_heights(container) -> list[float]:
    return [patch.get_height() for patch in container.patches]


def test_plot_hops_bars_are_the_hop_counts(capped_expansion):
    figure = viz.plot_hops(capped_expansion)
    (ax,) = figure.axes
    users, items = (c for c in ax.containers)
    assert _bar_heights(users) == [u for u, _ in capped_expansion.hop_counts]
    assert _bar_heights(items) == [i for _, i in capped_expansion.hop_counts]
    # the capped hubs of each hop are annotated on its bar
    capped_items_at = np.bincount(capped_expansion.item_hop[capped_expansion.capped_items],
                                  minlength=3)
    labels = [t.get_text() for t in ax.texts]
    for hop, count in enumerate(capped_items_at):
        if count:
            assert f"{capped_expansion.hop_counts[hop][1]:,}\n{count} capped" in labels


def test_plot_reach_is_the_cumulative_share():
    graph = _hub_graph()
    figure = viz.plot_reach({"no cap": expand(graph, seed_users=0, num_hops=2)})
    (ax,) = figure.axes
    users, items = ax.get_lines()
    np.testing.assert_allclose(users.get_ydata(), [1 / 4, 1 / 4, 4 / 4])
    np.testing.assert_allclose(items.get_ydata(), [0, 2 / 3, 2 / 3])
    with pytest.raises(InputError):
        viz.plot_reach({})


def test_funnel_bars_equal_the_reports_kept_rows(fitted):
    selector, _, _ = fitted
    report = selector.selection_.report
    figure = viz.plot_funnel(report)
    (ax,) = figure.axes
    (bars,) = ax.containers
    assert [p.get_width() for p in bars.patches] == (
        [report.source_rows] + [stage.kept for stage in report.stages])
    auc = report.stages[1].details.auc
    assert ax.texts[2].get_text().endswith(f", AUC {auc:.3f}")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["source", "graph", "da", "knn"]
    with pytest.raises(InputError, match="selection.report"):
        viz.plot_funnel({"rows": {"source": 3}})


class _NoNote(StageDetails):
    def to_json(self):  # not a dataclass
        return {}

    def note(self):
        return ""


def _hand_report(source, target, kept, details=None):
    stages = tuple(StageReport(name, count, 0, 0, 0.0, details or _NoNote())
                   for name, count in kept)
    return SelectionReport(source, target, stages, kept[-1][1], 1.0, 1.0, 0.5, 0.5, 0.5)


def test_funnel_on_a_hand_report():
    report = _hand_report(100, 10, [("graph", 40), ("knn", 20)])
    (ax,) = viz.plot_funnel(report).axes
    assert [p.get_width() for p in ax.containers[0].patches] == [100, 40, 20]
    assert [t.get_text() for t in ax.texts] == ["100 (100.0%)", "40 (40.0%)", "20 (20.0%)"]
    noted = _hand_report(100, 10, [("knn", 20)], NeighborReport("Flat"))
    assert viz.plot_funnel(noted).axes[0].texts[1].get_text() == "20 (20.0%), index Flat"


def test_funnel_labels_fit_and_counts_print_in_full():
    # ML-1M's shape: a million source rows, the graph stage keeps nearly all, with a long note
    report = _hand_report(992_299, 7_910, [("graph", 990_013), ("knn", 14_357)],
                          NeighborReport("IVF64,Flat, and a note as long as the graph stage's"))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = viz.plot_funnel(report)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    (ax,) = figure.axes
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert "1,000,000" in [tick.get_text() for tick in ax.get_xticklabels()]
    right = ax.get_window_extent().x1
    assert all(text.get_window_extent(canvas.get_renderer()).x1 <= right for text in ax.texts)


def test_plot_scores_groups_and_missing_stages(fitted):
    selector, truth, _ = fitted
    selection = selector.selection_
    target_p = selector.named_stages_["da"].p_target_in_target_
    p_axes, knn_axes = viz.plot_scores(selection, target_p, truth).axes
    scored = ~np.isnan(selection.knn_score)
    assert [t.get_text() for t in p_axes.get_legend().get_texts()] == [
        f"candidates (n={np.count_nonzero(~np.isnan(selection.p_target)):,})",
        f"target rows (n={len(target_p):,})"]
    assert [t.get_text() for t in knn_axes.get_legend().get_texts()] == [
        f"target-like (truth) (n={np.count_nonzero(scored & truth):,})",
        f"other (n={np.count_nonzero(scored & ~truth):,})"]

    n = 4
    nan = np.full(n, np.nan, dtype=np.float32)
    bare = Selection(np.ones(n, bool), np.ones(n, np.float32),
                     {"hop": np.zeros(n, np.int32), "p_target": nan, "knn_score": nan})
    p_axes, knn_axes = viz.plot_scores(bare).axes
    assert "without the 'da' stage" in p_axes.texts[0].get_text()
    assert "without the 'knn' stage" in knn_axes.texts[0].get_text()


def test_stage_cutoff_is_the_threshold_or_the_lowest_kept_score():
    scores = np.array([0.1, 0.8, 0.4, 0.6])
    by_quantile = DomainClassifier(keep_quantile=0.5)
    by_quantile.p_target_ = scores
    by_quantile.support_ = np.array([False, True, False, True])
    assert viz.stage_cutoff(by_quantile) == 0.6
    by_threshold = NeighborScorer(threshold=0.5)
    by_threshold.knn_score_ = scores
    by_threshold.support_ = scores >= 0.5
    assert viz.stage_cutoff(by_threshold) == 0.5
    by_threshold.support_ = np.ones(4, dtype=bool)  # nothing cut: nothing to mark
    assert viz.stage_cutoff(by_threshold) is None


def test_scores_figure_marks_the_cutoffs(fitted):
    selector, truth, _ = fitted
    figures = dict(viz.selection_figures(selector, truth))
    p_axes, knn_axes = figures["scores.png"]().axes
    assert p_axes.get_title() == "domain classifier: no cut (weights only)"
    (cut,) = [line for line in knn_axes.get_lines() if line.get_label().startswith("cut-off")]
    assert cut.get_xdata()[0] == 0.9 and cut.get_label() == "cut-off 0.9: kept at or above"
    assert "cut-off 0.9: kept at or above" in [t.get_text()
                                               for t in knn_axes.get_legend().get_texts()]


def test_plot_selected_hops_counts_rows_per_hop():
    hop = np.array([0, 0, 1, 1, 1, 2, -1], dtype=np.int32)
    mask = np.array([1, 0, 1, 1, 0, 0, 0], dtype=bool)
    nan = np.full(7, np.nan, dtype=np.float32)
    selection = Selection(mask, mask.astype(np.float32),
                          {"hop": hop, "p_target": nan, "knn_score": nan})
    (ax,) = viz.plot_selected_hops(selection).axes
    candidates, selected = ax.containers
    assert _bar_heights(candidates) == [2, 3, 1]
    assert _bar_heights(selected) == [1, 2, 0]


# --------------------------------------------------------------------------------------------
# Calibration and periods
# --------------------------------------------------------------------------------------------


def test_calibration_bins_on_a_hand_case():
    # bins (0, .25] (.25, .5] (.5, .75] (.75, 1]; 0.25 falls in the first, 0 too
    y = [0, 0, 1, 1, 1, 0]
    p = [0.0, 0.25, 0.2, 0.6, 1.0, 0.7]
    bins = viz.calibration_bins(y, p, n_bins=4)
    np.testing.assert_allclose(bins.edges, [0, 0.25, 0.5, 0.75, 1.0])
    assert bins.count.tolist() == [3, 0, 2, 1]
    np.testing.assert_allclose(bins.mean_pred, [0.15, np.nan, 0.65, 1.0])
    np.testing.assert_allclose(bins.frac_pos, [1 / 3, np.nan, 0.5, 1.0])


def test_calibration_bins_equal_sklearn():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    p = rng.random(500) ** 2
    y = (rng.random(500) < p).astype(int)
    bins = viz.calibration_bins(y, p, n_bins=10)
    frac_pos, mean_pred = calibration_curve(y, p, n_bins=10)
    filled = bins.count > 0
    np.testing.assert_allclose(bins.frac_pos[filled], frac_pos)
    np.testing.assert_allclose(bins.mean_pred[filled], mean_pred)


def test_plot_calibration_draws_the_filled_bins():
    y, p = [0, 0, 1, 1, 1, 0], [0.0, 0.25, 0.2, 0.6, 1.0, 0.7]
    figure = viz.plot_calibration(y, p, n_bins=4)
    ax = figure.axes[0]
    (model,) = [line for line in ax.get_lines() if line.get_label().startswith("model")]
    # ECE: (3 * |0.15 - 1/3| + 2 * |0.65 - 0.5| + 1 * 0) / 6 = 0.141667
    assert model.get_label() == "model (ECE 0.142, 4 bins)"
    np.testing.assert_allclose(model.get_xdata(), [0.15, 0.65, 1.0])
    np.testing.assert_allclose(model.get_ydata(), [1 / 3, 0.5, 1.0])
    counts = figure.axes[1]
    assert [patch.get_height() for patch in counts.patches] == [3, 0, 2, 1]


def test_domain_classifier_calibration_is_titled_and_labelled(fitted):
    selector, truth, _ = fitted
    ax = dict(viz.selection_figures(selector, truth))["calibration.png"]().axes[0]
    assert ax.get_title() == "Calibration of the domain classifier (out-of-fold p_target)"
    assert ax.get_xlabel() == "mean predicted p_target in the bin"
    assert ax.get_ylabel() == "share of target rows in the bin"


def test_calibration_counts_print_in_full_without_an_axis_offset():
    rows = 1_200_000  # the default formatter would print "1e6" above the axis
    figure = viz.plot_calibration(np.zeros(rows), np.full(rows, 0.05))
    figure.draw_without_rendering()
    counts = figure.axes[1]
    assert counts.yaxis.get_offset_text().get_text() == ""
    assert "1,000,000" in [tick.get_text() for tick in counts.get_yticklabels()]
    assert [text.get_text() for text in counts.texts if text.get_text()] == ["1.2M"]


@pytest.mark.parametrize("y, p, match", [
    ([0, 1], [0.5], "one length"),
    ([0, 2], [0.5, 0.5], "0 or 1"),
    ([0, 1], [0.5, 1.5], r"\[0, 1\]"),
    ([], [], "non-empty"),
])
def test_calibration_rejects_bad_input(y, p, match):
    with pytest.raises(InputError, match=match):
        viz.calibration_bins(y, p)


def test_plot_periods_one_line_per_strategy_in_period_order():
    results = [
        {"strategy": "target_only", "period": 1, "auc": 0.72},
        {"strategy": "target_only", "period": 0, "auc": 0.71},
        {"strategy": "selected", "period": 0, "auc": 0.74, "auc_low": 0.73, "auc_high": 0.75},
        {"strategy": "selected", "period": 1, "auc": 0.76, "auc_low": 0.75, "auc_high": 0.77},
    ]
    (ax,) = viz.plot_periods(results).axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["target_only", "selected"]
    assert list(lines["target_only"].get_xdata()) == [0, 1]
    assert list(lines["target_only"].get_ydata()) == [0.71, 0.72]
    assert list(lines["selected"].get_ydata()) == [0.74, 0.76]
    assert len(ax.collections) == 1  # only "selected" has a confidence band
    with pytest.raises(InputError, match="twice"):
        viz.plot_periods(results + [results[0]])
    with pytest.raises(InputError, match="'auc'"):
        viz.plot_periods([{"strategy": "a", "period": 0}])


def test_plot_periods_of_real_results_averaged_over_seeds(transfer_results):
    records = transfer_results.records
    averaged = viz.average_over_seeds(records)
    (ax,) = viz.plot_periods(averaged).axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["target_only", "merge_all"]
    for name, line in lines.items():
        assert list(line.get_xdata()) == [0, 1]
        for period, y in zip(line.get_xdata(), line.get_ydata()):
            values = [r.scores.auc for r in records if r.strategy == name
                      and r.period == period]
            assert len(values) == 2 and values[0] != values[1]  # two seeds, two scores
            assert y == pytest.approx(np.mean(values), abs=1e-12)
    # one min-max band per strategy, spanning its seeds' scores at each period
    assert len(ax.collections) == 2
    for row in averaged:
        values = [r.scores.auc for r in records if (r.strategy, r.period) == (
            row["strategy"], row["period"])]
        assert (row["auc_low"], row["auc_high"], row["n_seeds"]) == (min(values),
                                                                     max(values), 2)


def test_plot_transfer_periods_averages_and_marks_the_test_period(transfer_results):
    records = transfer_results.records
    (ax,) = viz.plot_transfer_periods(records).axes
    (expected,) = viz.plot_periods(viz.average_over_seeds(records)).axes
    assert [(line.get_label(), list(line.get_ydata())) for line in ax.get_lines()] == [
        (line.get_label(), list(line.get_ydata())) for line in expected.get_lines()]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "1\n(test)"]
    assert ax.get_title() == "AUC per period: mean of 2 seeds (band: min to max)"
    one_seed = [r for r in records if r.seed == 0]
    assert viz.plot_transfer_periods(one_seed).axes[0].get_title() == "AUC per period (one seed)"
    with pytest.raises(InputError, match="no record"):
        viz.plot_transfer_periods([{"strategy": "a", "period": 0, "auc": None}])


def test_average_over_seeds_skips_undefined_values_and_single_seeds():
    records = [{"strategy": "a", "period": 1, "auc": 0.6},
               {"strategy": "a", "period": 0, "auc": None},
               {"strategy": "a", "period": 0, "auc": 0.5},
               {"strategy": "b", "period": 0, "auc": None}]
    assert viz.average_over_seeds(records) == [
        {"strategy": "a", "period": 0, "auc": 0.5, "n_seeds": 1},
        {"strategy": "a", "period": 1, "auc": 0.6, "n_seeds": 1}]
    with pytest.raises(InputError, match="'period'"):
        viz.average_over_seeds([{"strategy": "a", "auc": 0.5}])


def test_plot_periods_styles_override_colour_and_line():
    results = [{"strategy": "a", "period": 0, "auc": 0.5, "auc_low": 0.4, "auc_high": 0.6}]
    (ax,) = viz.plot_periods(results, styles={"a": {"color": "black",
                                                    "linestyle": "--"}}).axes
    (line,) = ax.get_lines()
    assert line.get_linestyle() == "--" and to_rgba(line.get_color()) == to_rgba("black")
    assert tuple(ax.collections[0].get_facecolor()[0][:3]) == (0.0, 0.0, 0.0)


def test_plot_calibrations_one_panel_per_strategy(transfer_results):
    labels, predictions = transfer_results.test_labels, transfer_results.test_predictions
    figure = viz.plot_calibrations(labels, predictions, n_bins=5)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title().splitlines()[0] for ax in panels] == ["target_only", "merge_all"]
    assert panels[0].get_title().splitlines()[1] == (
        f"predicted CTR {np.mean(predictions['target_only']):.3f} · actual CTR "
        f"{np.mean(labels):.3f} · ECE "
        f"{expected_calibration_error(labels, predictions['target_only'], 5):.3f}")
    assert panels[0].get_ylabel() == "observed CTR (share of clicks) in the bin"
    for ax, p in zip(panels, predictions.values()):
        bins = viz.calibration_bins(labels, p, n_bins=5)
        (model,) = [line for line in ax.get_lines() if line.get_label().startswith("model")]
        assert f"ECE {expected_calibration_error(labels, p, 5):.3f}" in model.get_label()
        np.testing.assert_allclose(model.get_xdata(), bins.mean_pred[bins.count > 0])
        np.testing.assert_allclose(model.get_ydata(), bins.frac_pos[bins.count > 0])
    with pytest.raises(InputError, match="no predictions"):
        viz.plot_calibrations(labels, {})


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_every_figure_saves_a_png(tmp_path):
    graph = _hub_graph()
    expansion = expand(graph, seed_users=0, num_hops=2)
    figures = {
        "expansion": viz.draw_expansion(graph, expansion),
        "hops": viz.plot_hops(expansion, log=True),
        "reach": viz.plot_reach({"a": expansion}),
        "funnel": viz.plot_funnel(_hand_report(3, 1, [("graph", 2)])),
        "calibration": viz.plot_calibration([0, 1], [0.2, 0.9]),
        "periods": viz.plot_periods([{"strategy": "a", "period": 0, "auc": 0.5}]),
    }
    for name, figure in figures.items():
        assert isinstance(figure, Figure), name
        figure.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def _only_knn(selector):
    """The fitted selector as if its only stage had been the neighbour scorer."""
    few = copy.copy(selector)
    few.stages_ = [selector.named_stages_["knn"]]
    return few


def test_save_selection_plots_writes_every_png(tmp_path, fitted):
    selector, truth, _ = fitted
    out = tmp_path / "plots" / "nested"
    paths = viz.save_selection_plots(selector, out, truth=truth)
    assert [p.name for p in paths] == ["funnel.png", "scores.png", "hops.png",
                                       "selected_hops.png", "expansion.png", "calibration.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    # without a graph stage and a domain classifier: only the funnel and the scores
    few = viz.save_selection_plots(_only_knn(selector), tmp_path / "few")
    assert [p.name for p in few] == ["funnel.png", "scores.png"]


def test_save_selection_plots_leaves_no_partial_file(tmp_path, fitted, failing_savefig):
    selector, _, _ = fitted
    with pytest.raises(RuntimeError, match="disk full"):
        viz.save_selection_plots(_only_knn(selector), tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        viz.save_selection_plots(_only_knn(selector), tmp_path / "file")


def test_save_transfer_plots_writes_the_pngs(tmp_path, transfer_results):
    out = tmp_path / "plots" / "nested"
    paths = viz.save_transfer_plots(transfer_results, out)
    assert [p.name for p in paths] == ["periods.png", "calibration.png"]
    assert sorted(p.name for p in out.iterdir()) == ["calibration.png", "periods.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    # plain data: the to_json() payload has no predictions, so only the periods
    few = viz.save_transfer_plots(dataclasses.replace(transfer_results, test_predictions={}),
                                  tmp_path / "json")
    assert [p.name for p in few] == ["periods.png"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        viz.save_transfer_plots(transfer_results, tmp_path / "file")
    with pytest.raises(InputError, match="no record"):
        viz.save_transfer_plots(dataclasses.replace(transfer_results, records=[
            dataclasses.replace(r, scores=Scores(None, None, None))
            for r in transfer_results.records]), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_save_transfer_plots_leaves_no_partial_file(tmp_path, transfer_results,
                                                    failing_savefig):
    with pytest.raises(RuntimeError, match="disk full"):
        viz.save_transfer_plots(transfer_results, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_docstring_examples():
    import doctest

    assert doctest.testmod(viz).failed == 0
