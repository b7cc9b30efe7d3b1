"""Tests of graphsel.graph.bipartite: the bipartite graph built from a log or from arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import graphsel.graph.build as graph_module
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.build import CLICK, PURCHASE, relation, reverse_relation


def _log(rows, name="source", index=None):
    """A log from ``(user, item, ts, label, behavior)`` tuples."""
    user, item, ts, label, behavior = map(list, zip(*rows))
    return InteractionLog.from_columns(user, item, ts, label, "source", behavior, name=name,
                                       index=index)


def test_relation_constants():
    assert relation("click") == CLICK == ("user", "click", "item")
    assert relation(PURCHASE) == ("user", "purchase", "item")
    assert reverse_relation(CLICK) == ("item", "rev_click", "user")
    with pytest.raises(InputError, match="not a"):
        relation(("item", "click", "user"))
    with pytest.raises(InputError, match="empty"):
        relation(" ")


def test_from_log_merges_duplicates_keeping_earliest_row():
    # users a, b; items x, y. (a, x) three times: the earliest ts is 2 at row 3.
    log = _log([
        ("a", "x", 5, 1, "click"),
        ("a", "y", 7, 1, "click"),
        ("b", "x", 4, 1, "click"),
        ("a", "x", 2, 1, "click"),
        ("a", "x", 2, 1, "click"),
    ])
    graph = BipartiteGraph.from_log(log)
    assert graph.relations == [CLICK]
    assert (graph.num_users, graph.num_items) == (2, 2)
    edges = graph.edges("click")
    assert edges.indptr.tolist() == [0, 2, 3]
    assert edges.indices.tolist() == [0, 1, 0]
    assert edges.edge_user().tolist() == [0, 0, 1]
    assert edges.edge_ts.tolist() == [2, 7, 4]
    assert edges.edge_row.tolist() == [3, 1, 2]
    assert graph.row_edge.tolist() == [0, 1, 2, 0, 0]
    assert graph.row_relation.tolist() == [0, 0, 0, 0, 0]
    # CSC: item x has users a, b (edges 0, 2); item y has user a (edge 1).
    assert edges.rev_indptr.tolist() == [0, 2, 3]
    assert edges.rev_indices.tolist() == [0, 1, 0]
    assert edges.rev_edge.tolist() == [0, 2, 1]
    assert edges.indices.dtype == np.int32
    assert graph.user_ids.tolist() == ["a", "b"]


def test_positive_edges_drop_negative_rows_and_all_keeps_them():
    log = _log([("a", "x", 1, 1, "click"), ("a", "y", 2, 0, "click"), ("b", "y", 3, 1, "click")])
    positive = BipartiteGraph.from_log(log)
    assert positive.edges(CLICK).indices.tolist() == [0, 1]
    assert positive.edges(CLICK).edge_row.tolist() == [0, 2]
    assert positive.row_edge.tolist() == [0, -1, 1]
    assert positive.row_relation.tolist() == [0, -1, 0]
    everything = BipartiteGraph.from_log(log, edges="all")
    assert everything.edges(CLICK).indices.tolist() == [0, 1, 1]
    assert everything.row_edge.tolist() == [0, 1, 2]
    with pytest.raises(InputError, match=r"edges 'some' among \['all', 'positive'\]"):
        BipartiteGraph.from_log(log, edges="some")


def test_relations_come_from_the_behavior_column():
    log = _log([
        ("a", "x", 1, 1, "click"),
        ("a", "x", 2, 1, "purchase"),
        ("b", "y", 3, 1, "click"),
        ("b", "x", 4, 1, "purchase"),
    ])
    graph = BipartiteGraph.from_log(log)
    assert graph.relations == [CLICK, PURCHASE]
    assert graph.edges(CLICK).indices.tolist() == [0, 1]
    assert graph.edges(PURCHASE).indices.tolist() == [0, 0]
    assert graph.edges("purchase").edge_row.tolist() == [1, 3]
    assert graph.row_relation.tolist() == [0, 1, 0, 1]
    assert graph.row_edge.tolist() == [0, 0, 1, 1]
    assert graph.degree("item").tolist() == [3, 1]
    assert graph.degree("item", relations=["purchase"]).tolist() == [2, 0]
    purchases = BipartiteGraph.from_log(log, relations=["purchase"])
    assert purchases.relations == [PURCHASE]
    assert purchases.row_relation.tolist() == [-1, 0, -1, 0]
    unknown = r"relation of source 'cart' among \['click', 'purchase'\]"
    with pytest.raises(InputError, match=unknown):
        BipartiteGraph.from_log(log, relations=["cart"])
    with pytest.raises(InputError, match=r"relation 'fav' among \['click', 'purchase'\]"):
        graph.degree("user", relations=["fav"])


def test_log_without_behavior_is_one_click_relation():
    log = InteractionLog.from_columns([1, 2], [10, 10], [0, 0], [1, 1], "source")
    graph = BipartiteGraph.from_log(log)
    assert graph.relations == [CLICK]
    assert graph.degree("item").tolist() == [2]


def test_codes_line_up_with_a_shared_index():
    source = InteractionLog.from_columns([1, 2], [10, 11], [0, 0], [1, 1], "source", name="s")
    target = InteractionLog.from_columns([3, 1], [12, 10], [0, 0], [1, 1], "target", name="t")
    source, target = read_pair(source, target)
    graph = BipartiteGraph.from_log(source)
    assert (graph.num_users, graph.num_items) == (3, 3)
    assert graph.degree("user").tolist() == [1, 1, 0]
    assert graph.degree("item").tolist() == [1, 1, 0]
    assert graph.node_ids("user", np.array([2])).tolist() == [3]


def test_degree_as_of_counts_edges_before_the_cut():
    graph = BipartiteGraph.from_arrays([0, 0, 1], [0, 1, 1], ts=[10, 20, 30])
    assert graph.degree("user").tolist() == [2, 1]
    assert graph.degree("user", as_of=20).tolist() == [1, 0]
    assert graph.degree("item", as_of=31).tolist() == [1, 2]
    assert graph.degree("item", as_of=0).tolist() == [0, 0]
    with pytest.raises(InputError, match="node_type 'edge'"):
        graph.degree("edge")


def test_from_arrays_validates_codes():
    with pytest.raises(InputError, match="user code -1 is negative"):
        BipartiteGraph.from_arrays([-1], [0])
    with pytest.raises(InputError, match="item code 3 is out of range for 2 items"):
        BipartiteGraph.from_arrays([0], [3], num_items=2)
    with pytest.raises(InputError, match="one length"):
        BipartiteGraph.from_arrays([0, 1], [0])
    empty = BipartiteGraph.from_arrays(np.zeros(0, int), np.zeros(0, int), num_users=2,
                                       num_items=1)
    assert empty.num_edges == 0
    assert empty.degree("user").tolist() == [0, 0]


def _pandas_oracle(user, item, ts, num_users, num_items):
    """Edges sorted by (user, item) with min ts and the first row holding it, via pandas."""
    frame = pd.DataFrame({"user": user, "item": item, "ts": ts, "row": np.arange(len(user))})
    first = frame.sort_values(["user", "item", "ts", "row"]).drop_duplicates(["user", "item"])
    return first.reset_index(drop=True)


# The ways a relation's pairs get sorted: packed int64 keys, the same with blocks of 7 rows (so
# the blockwise packing and compression cross block edges), and the counting sorts used when
# the codes do not fit one key.
SORT_PATHS = {"key": {}, "key, 7-row blocks": {"_BLOCK": 7}, "counting": {"_KEY_BITS": 0}}


@pytest.fixture(params=list(SORT_PATHS))
def sort_path(request, monkeypatch):
    for name, value in SORT_PATHS[request.param].items():
        monkeypatch.setattr(graph_module, name, value)
    return request.param


def test_sort_path_follows_the_key_width():
    # 20 + 18 + 25 bits: 1,048,576 users, 262,144 items and 33,554,432 rows fit in 63
    assert graph_module._fits_key(2**20, 2**18, 2**25)
    assert not graph_module._fits_key(2**20, 2**18, 2**25 + 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dedup_matches_a_pandas_oracle(seed, sort_path):
    rng = np.random.default_rng(seed)
    num_users, num_items, n = 30, 20, 400
    user = rng.integers(0, num_users, n)
    item = rng.integers(0, num_items, n)
    ts = rng.integers(0, 5, n)
    graph = BipartiteGraph.from_arrays(user, item, ts, num_users=num_users, num_items=num_items)
    edges = graph.edges(CLICK)
    expected = _pandas_oracle(user, item, ts, num_users, num_items)
    assert edges.edge_user().tolist() == expected["user"].tolist()
    assert edges.indices.tolist() == expected["item"].tolist()
    assert edges.edge_ts.tolist() == expected["ts"].tolist()
    assert edges.edge_row.tolist() == expected["row"].tolist()
    # every row maps to the edge of its pair
    assert (edges.edge_user()[graph.row_edge] == user).all()
    assert (edges.indices[graph.row_edge] == item).all()
    # the CSC holds the same edges sorted by (item, user)
    by_item = expected.sort_values(["item", "user"])
    assert edges.rev_indices.tolist() == by_item["user"].tolist()
    assert edges.rev_edge.tolist() == by_item.index.tolist()
    assert np.diff(edges.rev_indptr).tolist() == np.bincount(
        expected["item"], minlength=num_items).tolist()


def test_without_timestamps_edges_keep_their_first_row(sort_path):
    # (0, 1) at rows 0, 2, 5; (1, 0) at rows 1, 4; (0, 0) at row 3.
    graph = BipartiteGraph.from_arrays([0, 1, 0, 0, 1, 0], [1, 0, 1, 0, 0, 1])
    edges = graph.edges(CLICK)
    assert edges.indptr.tolist() == [0, 2, 3]
    assert edges.indices.tolist() == [0, 1, 0]
    assert edges.edge_row.tolist() == [3, 0, 1]
    assert edges.edge_ts.tolist() == [0, 0, 0]
    assert edges.rev_indptr.tolist() == [0, 2, 3]
    assert edges.rev_indices.tolist() == [0, 1, 0]
    assert edges.rev_edge.tolist() == [0, 2, 1]
    assert graph.row_edge.tolist() == [1, 2, 1, 0, 2, 1]
    assert graph.row_relation.tolist() == [0] * 6
    # results that share the sort buffer do not overlap
    assert not np.shares_memory(edges.rev_edge, edges.edge_row)


def test_add_counts_adds_runs_of_sorted_codes():
    counts = np.zeros(6, dtype=np.int64)
    graph_module._add_counts(counts, np.array([1, 1, 2, 4, 4, 4]))
    graph_module._add_counts(counts, np.array([4, 5]))  # the run of 4 goes on
    assert counts.tolist() == [0, 2, 1, 0, 4, 1]


def test_small_pages_restores_numpy_huge_page_setting():
    switch = graph_module._SmallPages._switch
    if switch is None:
        pytest.skip("this numpy has no huge-page switch")
    before = switch(True)
    try:
        with graph_module._SmallPages():
            with graph_module._SmallPages():
                pass
            assert switch(False) is False  # still off after the inner one left
        assert switch(True) is True  # restored
        with pytest.raises(RuntimeError), graph_module._SmallPages():
            raise RuntimeError
        assert switch(True) is True  # restored after an error too
    finally:
        switch(before)


def test_multi_relation_arrays_match_per_relation_builds(sort_path):
    rng = np.random.default_rng(7)
    n = 200
    user, item = rng.integers(0, 12, n), rng.integers(0, 9, n)
    names = rng.choice(["click", "purchase"], n)
    graph = BipartiteGraph.from_arrays(user, item, relation=names, num_users=12, num_items=9)
    assert graph.relation_names == ["click", "purchase"]
    for position, name in enumerate(["click", "purchase"]):
        rows = np.flatnonzero(names == name)
        alone = BipartiteGraph.from_arrays(user[rows], item[rows], num_users=12, num_items=9)
        assert graph.edges(name).indices.tolist() == alone.edges(CLICK).indices.tolist()
        assert graph.edges(name).edge_row.tolist() == rows[alone.edges(CLICK).edge_row].tolist()
        assert (graph.row_relation[rows] == position).all()
        assert graph.row_edge[rows].tolist() == alone.row_edge.tolist()


def test_a_relation_of_every_row_matches_the_general_path(sort_path):
    # Every row positive and one behaviour: built from the columns as they are. One negative
    # row more sends the same rows through the general path (selected by relation, copied).
    rng = np.random.default_rng(11)
    n = 300
    rows = [(int(u), int(i), int(t), 1, "click") for u, i, t in zip(
        rng.integers(0, 25, n), rng.integers(0, 15, n), rng.integers(0, 6, n))]
    log = _log(rows)
    fast = BipartiteGraph.from_log(log)
    general = BipartiteGraph.from_log(_log(rows + [(rows[0][0], rows[0][1], 0, 0, "click")],
                                           index=log.index))
    assert fast.relations == general.relations == [CLICK]
    for name in ("indptr", "indices", "rev_indptr", "rev_indices", "rev_edge", "edge_ts",
                 "edge_row"):
        assert getattr(fast.edges(CLICK), name).tolist() == getattr(
            general.edges(CLICK), name).tolist(), name
    assert general.row_edge.tolist() == fast.row_edge.tolist() + [-1]
    assert general.row_relation.tolist() == fast.row_relation.tolist() + [-1]
    assert fast.row_edge is fast.row_edge  # computed on first use, then kept


def test_adjacency_merges_relations_and_cuts_time():
    graph = BipartiteGraph.from_arrays([0, 0, 1, 0], [0, 1, 1, 0], ts=[1, 2, 3, 4],
                                       relation=["click", "click", "click", "purchase"])
    merged = graph.adjacency()
    assert merged.indptr.tolist() == [0, 3, 4]
    assert sorted(merged.indices[:3].tolist()) == [0, 0, 1]
    assert graph.adjacency(as_of=3).indptr.tolist() == [0, 2, 2]
    assert graph.adjacency("click") is graph.adjacency(["click"])
    matrix = merged.user_matrix()
    assert matrix.shape == (2, 2)
    assert (matrix @ np.array([False, True])).tolist() == [True, True]


def test_to_pyg_has_relations_reverse_edges_and_times():
    pytest.importorskip("torch_geometric")
    graph = BipartiteGraph.from_arrays([0, 0, 1], [0, 1, 1], ts=[5, 6, 7],
                                       relation=["click", "purchase", "click"])
    data = graph.to_pyg()
    assert data["user"].num_nodes == 2 and data["item"].num_nodes == 2
    assert data[CLICK].edge_index.tolist() == [[0, 1], [0, 1]]
    assert data[CLICK].edge_time.tolist() == [5, 7]
    assert data["item", "rev_click", "user"].edge_index.tolist() == [[0, 1], [0, 1]]
    assert data[PURCHASE].edge_index.tolist() == [[0], [1]]
    assert data["item", "rev_purchase", "user"].edge_index.tolist() == [[1], [0]]
    assert len(data.edge_types) == 4


def test_to_networkx_induces_a_small_subgraph():
    log = _log([
        ("a", "x", 3, 1, "click"),
        ("a", "x", 1, 1, "purchase"),
        ("a", "y", 2, 1, "click"),
        ("b", "y", 4, 1, "click"),
    ])
    graph = BipartiteGraph.from_log(log)
    small = graph.to_networkx(users=[0], items=[0, 1])
    assert sorted(small.nodes) == [("item", 0), ("item", 1), ("user", 0)]
    assert small.nodes["user", 0] == {"node_type": "user", "id": "a", "degree": 3}
    assert small.nodes["item", 1] == {"node_type": "item", "id": "y", "degree": 2}
    assert small.edges[("user", 0), ("item", 0)] == {
        "relation": "purchase", "relations": ["purchase", "click"], "ts": 1}
    assert small.edges[("user", 0), ("item", 1)]["ts"] == 2
    assert small.number_of_edges() == 2
    with pytest.raises(InputError, match="user code 5 is out of range"):
        graph.to_networkx(users=[5])
