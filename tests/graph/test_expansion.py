"""Tests of graphsel.graph.expansion: k-hop expansion with hub control, and GST row selection."""

from __future__ import annotations

import collections
import functools
import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphsel.graph.expansion as expand_module
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.build import CLICK, PURCHASE
from graphsel.graph.expansion import (
    MAX_HOPS,
    cap_user_rows,
    expand,
    graph_select,
    shared_seeds,
)

# --------------------------------------------------------------------------------------------
# Hand-built graphs
# --------------------------------------------------------------------------------------------


def _hub_graph():
    """Item 0 is a hub with 4 users; user 0 also has item 1; user 3 also has item 2.

    u0 - i0 - u1        u0 - i1
       \\  | \\           u3 - i2
        u2  u3
    """
    return BipartiteGraph.from_arrays([0, 1, 2, 3, 0, 3], [0, 0, 0, 0, 1, 2])


def test_uncapped_hops_on_the_hub_graph():
    result = expand(_hub_graph(), seed_users=0, num_hops=2)
    assert result.user_hop.tolist() == [0, 2, 2, 2]
    assert result.item_hop.tolist() == [1, 1, -1]
    assert result.hop_counts == [(1, 0), (0, 2), (3, 0)]
    assert result.user_mask.tolist() == [True, True, True, True]
    assert result.item_mask.tolist() == [True, True, False]
    # edges in CSR order: (u0,i0) (u0,i1) (u1,i0) (u2,i0) (u3,i0) (u3,i2)
    assert result.edge_mask[CLICK].tolist() == [True, True, True, True, True, False]
    assert result.capped_users.tolist() == [] and result.capped_items.tolist() == []
    assert expand(_hub_graph(), seed_users=[0], num_hops=3).item_hop.tolist() == [1, 1, 3]


def test_edge_mask_when_every_item_is_reached():
    # the every-item shortcut of the edge mask: only the users' side decides
    result = expand(_hub_graph(), seed_users=1, seed_items=[0, 1, 2], num_hops=0)
    assert result.edge_mask[CLICK].tolist() == [False, False, True, False, False, False]


def test_a_hub_is_reached_but_not_expanded_through():
    result = expand(_hub_graph(), seed_users=0, num_hops=2, max_degree=3)
    assert result.user_hop.tolist() == [0, -1, -1, -1]
    assert result.item_hop.tolist() == [1, 1, -1]
    assert result.capped_items.tolist() == [0]
    assert result.capped_users.tolist() == []
    assert result.edge_mask[CLICK].tolist() == [True, True, False, False, False, False]
    # a hub seed is not expanded either
    seeded = expand(_hub_graph(), seed_items=0, num_hops=1, max_degree=3)
    assert seeded.user_hop.tolist() == [-1, -1, -1, -1]
    assert seeded.capped_items.tolist() == [0]
    # a hub first reached at the last hop is not "capped": it would not be expanded anyway
    last = expand(_hub_graph(), seed_users=0, num_hops=1, max_degree=3)
    assert last.capped_items.tolist() == []


def test_fanout_expands_a_hub_through_a_seeded_sample():
    first = expand(_hub_graph(), seed_items=0, num_hops=1, max_degree=3, fanout=2, seed=5)
    again = expand(_hub_graph(), seed_items=0, num_hops=1, max_degree=3, fanout=2, seed=5)
    assert first.user_hop.tolist() == again.user_hop.tolist()
    assert first.num_users == 2
    assert first.capped_items.tolist() == [0]
    draws = {tuple(expand(_hub_graph(), seed_items=0, num_hops=1, fanout=2, seed=s)
                   .user_mask.tolist()) for s in range(20)}
    assert len(draws) > 1
    assert all(sum(draw) == 2 for draw in draws)


def test_as_of_ignores_later_edges():
    # u0 -(10)- i0 -(20)- u1 -(30)- i1
    graph = BipartiteGraph.from_arrays([0, 1, 1], [0, 0, 1], ts=[10, 20, 30])
    hops = {as_of: expand(graph, seed_users=0, num_hops=3, as_of=as_of)
            for as_of in (None, 31, 30, 20, 10)}
    assert hops[None].user_hop.tolist() == [0, 2] and hops[None].item_hop.tolist() == [1, 3]
    assert hops[31].item_hop.tolist() == [1, 3]
    assert hops[30].user_hop.tolist() == [0, 2] and hops[30].item_hop.tolist() == [1, -1]
    assert hops[30].edge_mask[CLICK].tolist() == [True, True, False]
    assert hops[20].user_hop.tolist() == [0, -1] and hops[20].item_hop.tolist() == [1, -1]
    assert hops[10].user_hop.tolist() == [0, -1] and hops[10].item_hop.tolist() == [-1, -1]
    # the cap counts degrees at as_of: item 0 has 2 edges in all, 1 before ts 20
    assert expand(graph, seed_items=0, num_hops=1, max_degree=1).user_hop.tolist() == [-1, -1]
    assert expand(graph, seed_items=0, num_hops=1, max_degree=1,
                  as_of=20).user_hop.tolist() == [1, -1]


def test_two_relations():
    # clicks: u0-i0, u1-i1; purchase: u1-i0
    graph = BipartiteGraph.from_arrays([0, 1, 1], [0, 1, 0],
                                       relation=["click", "click", "purchase"])
    clicks = expand(graph, seed_users=0, num_hops=2, relations=["click"])
    assert clicks.user_hop.tolist() == [0, -1] and clicks.item_hop.tolist() == [1, -1]
    assert clicks.edge_mask[PURCHASE].tolist() == [False]
    both = expand(graph, seed_users=0, num_hops=2)
    assert both.user_hop.tolist() == [0, 2] and both.item_hop.tolist() == [1, -1]
    assert both.edge_mask[CLICK].tolist() == [True, False]
    assert both.edge_mask[PURCHASE].tolist() == [True]
    assert both.relations == [CLICK, PURCHASE]
    assert expand(graph, seed_users=0, num_hops=3).item_hop.tolist() == [1, 3]
    purchases = expand(graph, seed_users=0, num_hops=2, relations="purchase")
    assert purchases.user_hop.tolist() == [0, -1] and purchases.item_hop.tolist() == [-1, -1]
    # a hub in the merged relations: u1 has two edges over both relations, one per relation
    assert expand(graph, seed_users=1, num_hops=1, max_degree=1).item_hop.tolist() == [-1, -1]
    assert expand(graph, seed_users=1, num_hops=1, max_degree=1,
                  relations=["click"]).item_hop.tolist() == [-1, 1]


def test_seeds_accept_int_list_array_mask_and_tensor():
    torch = pytest.importorskip("torch")
    graph = _hub_graph()
    expected = expand(graph, seed_users=[0, 3], seed_items=[2]).user_hop.tolist()
    for users, items in [
        ([3, 0, 3], 2),
        (np.array([0, 3]), np.array([2])),
        (np.array([True, False, False, True]), [2]),
        (torch.tensor([0, 3]), torch.tensor(2)),
    ]:
        assert expand(graph, seed_users=users, seed_items=items).user_hop.tolist() == expected


@pytest.mark.parametrize("kwargs, message", [
    ({"seed_users": 9}, "seed_users has code 9, expected 0..3"),
    ({"seed_users": [-1]}, "seed_users has code -1"),
    ({"seed_users": [0.5]}, "seed_users must be integer codes"),
    ({"seed_items": [True, False]}, r"seed_items is a boolean mask of shape \(2,\)"),
    ({}, "no seed users and no seed items"),
    ({"seed_users": 0, "num_hops": -1}, "num_hops must be an integer >= 0 and <= 100, got -1"),
    ({"seed_users": 0, "max_degree": -2}, "max_degree must be a number >= 0"),
    ({"seed_users": 0, "fanout": 0}, "fanout must be an integer >= 1"),
    ({"seed_users": 0, "as_of": 1.5}, "as_of must be integer"),
    ({"seed_users": 0, "relations": ["buy"]}, r"relation 'buy' among \['click'\]"),
])
def test_bad_input_raises_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        expand(_hub_graph(), **kwargs)


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


def _pair():
    source = InteractionLog.from_columns(
        ["a", "b", "c", "a", "d"], ["x", "x", "y", "z", "w"], [1, 2, 3, 4, 5], [1, 1, 1, 0, 1],
        "source", name="source")
    target = InteractionLog.from_columns(["a", "e"], ["v", "v"], [6, 7], [1, 1], "target",
                                         name="target")
    return read_pair(source, target)


def test_shared_seeds_and_graph_select_modes():
    source, target = _pair()
    seed_users, seed_items = shared_seeds(source, target)
    assert source.index.users[seed_users].tolist() == ["a"]
    assert seed_items.tolist() == []
    graph = BipartiteGraph.from_log(source)
    result = expand(graph, seed_users, seed_items, num_hops=2)
    # a (hop 0) -> x (1) -> b (2); the (a, z) row is a negative, so z is not reached.
    reached = {source.index.users[u]: h for u, h in enumerate(result.user_hop) if h >= 0}
    assert reached == {"a": 0, "b": 2}
    mask, hop = graph_select(source, result)  # rows: a-x, b-x, c-y, a-z, d-w
    assert mask.tolist() == [True, True, False, False, False]
    assert hop.tolist() == [1, 2, -1, -1, -1]
    assert graph_select(source, result, "user")[1].tolist() == [0, 2, -1, 0, -1]
    assert graph_select(source, result, "item")[1].tolist() == [1, 1, -1, -1, -1]
    assert graph_select(source, result, "any")[1].tolist() == [0, 1, -1, 0, -1]
    with pytest.raises(InputError, match=r"mode 'edge' among \['any', 'both', 'item', 'user'\]"):
        graph_select(source, result, "edge")
    other = InteractionLog.from_columns([1], [2], [0], [1], "x", name="other")
    with pytest.raises(InputError, match="other: its index has 1 users"):
        graph_select(other, result)
    with pytest.raises(InputError, match="do not share an id index"):
        shared_seeds(source, other)


def test_both_mode_matches_the_edge_mask_on_edge_rows():
    source, target = _pair()
    graph = BipartiteGraph.from_log(source)
    result = expand(graph, *shared_seeds(source, target), num_hops=3)
    mask, _ = graph_select(source, result)
    edge_rows = graph.row_edge >= 0
    assert (mask[edge_rows] == result.edge_mask[CLICK][graph.row_edge[edge_rows]]).all()


# --------------------------------------------------------------------------------------------
# Oracles and laws on random graphs
# --------------------------------------------------------------------------------------------


def _bfs_oracle(pairs, seed_users, seed_items, num_hops, cap=None):
    """Plain-Python multi-source BFS; hubs with more than ``cap`` edges are not expanded.

    ``pairs`` are ``(user, item)`` or ``(user, item, relation)``; repeats of one make one edge.
    """
    neighbours = collections.defaultdict(list)
    for user, item, *_ in sorted(set(pairs)):
        neighbours["u", user].append(("i", item))
        neighbours["i", item].append(("u", user))
    hop = {("u", u): 0 for u in seed_users} | {("i", i): 0 for i in seed_items}
    frontier = list(hop)
    for step in range(1, num_hops + 1):
        following = []
        for node in frontier:
            if cap is not None and len(neighbours[node]) > cap:
                continue
            for other in neighbours[node]:
                if other not in hop:
                    hop[other] = step
                    following.append(other)
        frontier = following
    return hop


@st.composite
def random_graphs(draw):
    num_users = draw(st.integers(1, 8))
    num_items = draw(st.integers(1, 8))
    pairs = draw(st.lists(st.tuples(st.integers(0, num_users - 1), st.integers(0, num_items - 1)),
                          max_size=24))
    names = draw(st.lists(st.sampled_from(["click", "purchase"]), min_size=len(pairs),
                          max_size=len(pairs)))
    seed_users = draw(st.lists(st.integers(0, num_users - 1), max_size=3))
    seed_items = draw(st.lists(st.integers(0, num_items - 1), max_size=3,
                               min_size=0 if seed_users else 1))
    user = np.array([p[0] for p in pairs], dtype=np.int64)
    item = np.array([p[1] for p in pairs], dtype=np.int64)
    graph = BipartiteGraph.from_arrays(user, item, relation=np.array(names, dtype=str),
                                       num_users=num_users, num_items=num_items)
    return graph, [(u, i, name) for (u, i), name in zip(pairs, names)], seed_users, seed_items


_fast = settings(max_examples=60, derandomize=True, deadline=None)


@_fast
@given(random_graphs(), st.integers(0, 5), st.sampled_from([None, 0, 1, 2, 3]))
def test_expand_equals_a_bfs_oracle(case, num_hops, cap):
    graph, pairs, seed_users, seed_items = case
    result = expand(graph, seed_users, seed_items, num_hops=num_hops, max_degree=cap)
    expected = _bfs_oracle(pairs, seed_users, seed_items, num_hops, cap)
    assert {u: h for u, h in enumerate(result.user_hop.tolist()) if h >= 0} == {
        u: h for (kind, u), h in expected.items() if kind == "u"}
    assert {i: h for i, h in enumerate(result.item_hop.tolist()) if h >= 0} == {
        i: h for (kind, i), h in expected.items() if kind == "i"}
    for edges in graph.relation_edges:
        both_reached = result.user_mask[edges.edge_user()] & result.item_mask[edges.indices]
        assert result.edge_mask[edges.relation].tolist() == both_reached.tolist()
    counts = [(int((result.user_hop == h).sum()), int((result.item_hop == h).sum()))
              for h in range(num_hops + 1)]
    assert result.hop_counts == counts


@_fast
@given(random_graphs(), st.integers(0, 4))
def test_laws(case, num_hops):
    graph, _, seed_users, seed_items = case
    zero = expand(graph, seed_users, seed_items, num_hops=0)
    assert np.flatnonzero(zero.user_mask).tolist() == sorted(set(seed_users))
    assert np.flatnonzero(zero.item_mask).tolist() == sorted(set(seed_items))
    now = expand(graph, seed_users, seed_items, num_hops=num_hops)
    later = expand(graph, seed_users, seed_items, num_hops=num_hops + 1)
    assert (later.user_mask >= now.user_mask).all() and (later.item_mask >= now.item_mask).all()
    assert (later.user_hop[now.user_mask] == now.user_hop[now.user_mask]).all()
    infinite = expand(graph, seed_users, seed_items, num_hops=num_hops, max_degree=float("inf"))
    assert infinite.user_hop.tolist() == now.user_hop.tolist()
    assert infinite.item_hop.tolist() == now.item_hop.tolist()
    largest = int(max(graph.degree("user").max(initial=0), graph.degree("item").max(initial=0)))
    wide = expand(graph, seed_users, seed_items, num_hops=num_hops, fanout=max(largest, 1))
    assert wide.user_hop.tolist() == now.user_hop.tolist()
    assert wide.item_hop.tolist() == now.item_hop.tolist()
    for capped in (expand(graph, seed_users, seed_items, num_hops=num_hops, max_degree=1),
                   expand(graph, seed_users, seed_items, num_hops=num_hops, fanout=1, seed=3)):
        assert (capped.user_mask <= now.user_mask).all()
        assert (capped.item_mask <= now.item_mask).all()


@pytest.mark.parametrize("parallel_edges", [0, 1 << 62])  # two threads always / never
def test_push_and_pull_agree_on_a_larger_random_graph(monkeypatch, parallel_edges):
    monkeypatch.setattr(expand_module, "_PARALLEL_EDGES", parallel_edges)
    rng = np.random.default_rng(0)
    num_users, num_items, n = 3000, 800, 20000
    user = (num_users * rng.random(n) ** 2).astype(np.int64)
    item = (num_items * rng.random(n) ** 3).astype(np.int64)
    graph = BipartiteGraph.from_arrays(user, item, num_users=num_users, num_items=num_items)
    seeds = rng.choice(num_users, 30, replace=False)
    pairs = list(zip(user.tolist(), item.tolist()))
    for cap in (None, 50):
        result = expand(graph, seeds, num_hops=4, max_degree=cap)
        expected = _bfs_oracle(pairs, seeds.tolist(), [], 4, cap)
        assert {u: h for u, h in enumerate(result.user_hop.tolist()) if h >= 0} == {
            u: h for (kind, u), h in expected.items() if kind == "u"}
        assert {i: h for i, h in enumerate(result.item_hop.tolist()) if h >= 0} == {
            i: h for (kind, i), h in expected.items() if kind == "i"}


# --------------------------------------------------------------------------------------------
# Taobao head: networkx and PyG oracles
# --------------------------------------------------------------------------------------------

_BEHAVIORS = {"pv": "click", "buy": "purchase", "cart": "cart", "fav": "fav"}


def read_taobao(folder, target_categories=3):
    """The Taobao head as a (source, target) pair: target = the most frequent categories."""
    rows = []
    with gzip.open(folder / "UserBehavior.csv.gz", "rt") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(",")
            if len(fields) == 5 and fields[4]:  # the last line is truncated
                rows.append(fields)
    user, item, category, behavior, ts = (np.array(c) for c in zip(*rows))
    counts = collections.Counter(category.tolist())
    target = np.isin(category, [c for c, _ in counts.most_common(target_categories)])
    logs = []
    for name, keep in (("source", ~target), ("target", target)):
        logs.append(InteractionLog.from_columns(
            user[keep].astype(np.int64), item[keep].astype(np.int64), ts[keep].astype(np.int64),
            np.ones(keep.sum(), dtype=np.int8), name,
            np.array([_BEHAVIORS[b] for b in behavior[keep]]), name=f"taobao-{name}"))
    return read_pair(*logs)


@functools.lru_cache(maxsize=1)
def _taobao_graph(folder):
    source, target = read_taobao(folder)
    return source, target, BipartiteGraph.from_log(source)


@pytest.fixture
def taobao(taobao_path):
    return _taobao_graph(taobao_path)


def _homogeneous_edges(graph, relations=None):
    """``(2, 2E)`` edge index of the graph made homogeneous and undirected; items shifted."""
    edges = [graph.edges(r) for r in graph.resolve_relations(relations)]
    user = np.concatenate([e.edge_user() for e in edges]).astype(np.int64)
    item = np.concatenate([e.indices for e in edges]).astype(np.int64) + graph.num_users
    return np.stack([np.concatenate([user, item]), np.concatenate([item, user])])


@pytest.mark.data
@pytest.mark.parametrize("num_hops", [1, 2, 3])
def test_taobao_equals_networkx_bfs_and_pyg_k_hop_subgraph(taobao, num_hops):
    nx = pytest.importorskip("networkx")
    torch = pytest.importorskip("torch")
    utils = pytest.importorskip("torch_geometric.utils")
    source, target, graph = taobao
    seed_users, shared_items = shared_seeds(source, target)
    # a category split shares users only; add every 997th item so items seed too
    assert len(seed_users) and not len(shared_items)
    seed_items = np.arange(0, graph.num_items, 997)
    result = expand(graph, seed_users, seed_items, num_hops=num_hops)
    num_users = graph.num_users
    ours = np.concatenate([result.user_hop, result.item_hop])
    seeds = np.concatenate([seed_users, seed_items + num_users])

    edge_index = _homogeneous_edges(graph)
    homogeneous = nx.Graph()
    homogeneous.add_nodes_from(range(num_users + graph.num_items))
    homogeneous.add_edges_from(edge_index.T.tolist())
    distance = nx.multi_source_dijkstra_path_length(homogeneous, set(seeds.tolist()),
                                                    cutoff=num_hops)
    assert {n: h for n, h in enumerate(ours.tolist()) if h >= 0} == distance

    subset, _, _, edge_mask = utils.k_hop_subgraph(
        torch.from_numpy(seeds), num_hops, torch.from_numpy(edge_index),
        num_nodes=num_users + graph.num_items)
    assert subset.tolist() == np.flatnonzero(ours >= 0).tolist()
    ours_edges = np.concatenate([result.edge_mask[r] for r in graph.relations])
    assert edge_mask.numpy().tolist() == np.concatenate([ours_edges, ours_edges]).tolist()


@pytest.mark.data
def test_taobao_caps_only_shrink_and_select_rows(taobao):
    source, target, graph = taobao
    seeds = shared_seeds(source, target)
    selected = []
    for cap in (None, 200, 50):
        result = expand(graph, *seeds, num_hops=2, max_degree=cap)
        mask, hop = graph_select(source, result)
        selected.append(int(mask.sum()))
        assert (hop[mask] <= 2).all() and (hop[~mask] == -1).all()
    assert selected[0] >= selected[1] >= selected[2] > 0


def test_edge_mask_is_the_same_gathered_in_blocks(monkeypatch):
    # Gathering the item mask through int32 endpoints goes a block at a time (_gather):
    # with 5-edge blocks the mask must still be "both ends reached", edge by edge.
    rng = np.random.default_rng(5)
    graph = BipartiteGraph.from_arrays(rng.integers(0, 40, 300), rng.integers(0, 30, 300),
                                       np.arange(300), num_users=40, num_items=30)
    monkeypatch.setattr(expand_module, "_GATHER_BLOCK", 5)
    edges = graph.edges(CLICK)
    for parallel_edges in (0, 1 << 62):  # the mask in two halves on two threads, or in one
        monkeypatch.setattr(expand_module, "_PARALLEL_EDGES", parallel_edges)
        result = expand(graph, seed_users=[0, 1], num_hops=1, as_of=250)
        expected = (result.user_mask[edges.edge_user()] & result.item_mask[edges.indices]
                    & (edges.edge_ts < 250))
        assert 0 < expected.sum() < edges.num_edges
        assert result.edge_mask[CLICK].tolist() == expected.tolist()


def test_cap_user_rows_keeps_a_seeded_draw_of_heavy_users_only():
    user = np.array([0] * 6 + [1, 1, 2])
    mask = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1], bool)
    kept = cap_user_rows(user, mask, max_rows=2, seed=3)
    assert np.bincount(user[kept]).tolist() == [2, 2, 1]
    assert not (kept & ~mask).any()  # only selected rows stay selected
    assert kept[6:].all()  # users at or under the cap keep every row
    assert (cap_user_rows(user, mask, 2, seed=3) == kept).all()
    draws = {tuple(np.flatnonzero(cap_user_rows(user, mask, 2, seed=s))) for s in range(20)}
    assert len(draws) > 1  # the draw depends on the seed
    assert (cap_user_rows(user, mask, 5) == mask).all()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_cap_user_rows_refuses_a_bad_cap(bad):
    with pytest.raises(InputError, match="max_user_rows must be an integer >= 1"):
        cap_user_rows(np.zeros(3, int), np.ones(3, bool), bad)


def test_num_hops_is_bounded():
    graph = BipartiteGraph.from_arrays([0, 1], [0, 0])
    assert expand(graph, seed_users=0, num_hops=MAX_HOPS).hop_counts[2] == (1, 0)
    with pytest.raises(InputError, match=f"<= {MAX_HOPS}, got {MAX_HOPS + 1}"):
        expand(graph, seed_users=0, num_hops=MAX_HOPS + 1)
