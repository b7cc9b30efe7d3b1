"""The graph stage: the estimator contract, the hub cap rule and the shared context."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from graphsel import InputError, InteractionLog, read_pair
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.select.expansion import (
    AUTO_MIN_DEGREE,
    GraphExpansion,
    GraphReport,
    HopCount,
    resolve_max_degree,
)
from graphsel.select.stage import STAGES, SelectionContext


def _pair() -> tuple[InteractionLog, InteractionLog]:
    """Source rows 0 a-1, 1 b-1, 2 b-2, 3 x-9 (label 0 on row 2); target a-1."""
    source = InteractionLog.from_columns(["a", "b", "b", "x"], [1, 1, 2, 9], [0, 1, 2, 3],
                                         [1, 1, 0, 1], "source", name="source")
    target = InteractionLog.from_columns(["a"], [1], [5], [1], "target", name="target")
    return read_pair(source, target)


def test_registered_as_graph():
    assert STAGES.get("graph") is GraphExpansion and GraphExpansion.name == "graph"


def test_fit_by_hand_and_report():
    source, target = _pair()
    stage = GraphExpansion(num_hops=2, max_degree=None)
    assert stage.fit(source, target) is stage
    assert stage.hop_.tolist() == [0, 1, 2, -1]
    assert stage.get_support(indices=True).tolist() == [0, 1, 2]
    assert stage.transform(source).item.tolist() == source.item[:3].tolist()
    assert stage.report_ == GraphReport(1, 1, None, (HopCount(0, 1, 1), HopCount(1, 1, 0),
                                                     HopCount(2, 0, 1)), 0, 0)
    assert stage.report_.note() == "2 hops, capped 0 users / 0 items"


def test_positive_edges_leave_unclicked_rows_out_of_the_graph():
    source, target = _pair()
    stage = GraphExpansion(max_degree=None, edges="positive").fit(source, target)
    # b-2 (label 0) makes no edge: item 2 is not reached, so row 2 is not kept
    assert stage.hop_.tolist() == [0, 1, -1, -1]


def test_auto_cap_is_the_99th_percentile_at_least_the_floor():
    small = BipartiteGraph.from_arrays([0, 1], [0, 0])
    assert resolve_max_degree(small, "auto") == AUTO_MIN_DEGREE
    # 100 users who each clicked the same 100 items, and one more user of degree 1
    users = np.r_[np.repeat(np.arange(100), 100), 100]
    items = np.r_[np.tile(np.arange(100), 100), 0]
    dense = BipartiteGraph.from_arrays(users, items)
    degrees = np.r_[np.full(100, 100.0), 1.0, 101.0, np.full(99, 100.0)]
    assert resolve_max_degree(dense, "auto") == pytest.approx(np.percentile(degrees, 99))
    assert resolve_max_degree(dense, "auto") > AUTO_MIN_DEGREE
    assert resolve_max_degree(dense, None) is None and resolve_max_degree(dense, 7) == 7
    # over one relation before a time, as the expansion counts them
    timed = BipartiteGraph.from_arrays(users, items, ts=np.r_[np.zeros(10_000), 1])
    assert resolve_max_degree(timed, "auto", as_of=1) == pytest.approx(100.0)


def test_max_degree_resolved_and_reported():
    source, target = _pair()
    stage = GraphExpansion().fit(source, target)
    assert stage.max_degree_ == AUTO_MIN_DEGREE == stage.report_.max_degree
    capped = GraphExpansion(max_degree=1).fit(source, target)
    # item 1 has degree 2: reached, not expanded through, so b is not reached
    assert capped.report_.capped_items == 1 and capped.hop_.tolist() == [0, -1, -1, -1]


def test_the_context_builds_the_graph_once():
    source, target = _pair()
    context = SelectionContext(target)
    first = GraphExpansion(1).fit(source, target, context=context)
    second = GraphExpansion(2, relations=["click"]).fit(source, target, context=context)
    assert first.graph_ is second.graph_
    third = GraphExpansion(2, edges="positive").fit(source, target, context=context)
    assert third.graph_ is not first.graph_


def test_without_keep_graph_the_graph_is_freed_and_the_rest_is_the_same():
    source, target = _pair()
    kept = GraphExpansion(2, max_degree=None).fit(source, target)
    context = SelectionContext(target)
    freed = GraphExpansion(2, max_degree=None, keep_graph=False).fit(source, target,
                                                                       context=context)
    assert freed.graph_ is None and kept.graph_ is not None
    assert context._graphs == {}  # nothing else holds it
    assert freed.hop_.tolist() == kept.hop_.tolist() == [0, 1, 2, -1]
    assert freed.support_.tolist() == kept.support_.tolist()
    assert freed.report_ == kept.report_
    assert freed.expansion_.user_hop.tolist() == kept.expansion_.user_hop.tolist()


@pytest.mark.parametrize("params, message", [
    ({"num_hops": -1}, "num_hops must be an integer >= 0 and <= 100, got -1"),
    ({"max_degree": "big"}, "max_degree must be a number >= 0, 'auto' or None, got 'big'"),
    ({"max_degree": -1}, "max_degree must be a number >= 0"),
    ({"fanout": 0}, "fanout must be an integer >= 1 or None, got 0"),
    ({"mode": "edge"}, r"Could not resolve mode 'edge' among \['any', 'both', 'item', 'user'\]"),
    ({"edges": "some"}, r"Could not resolve edges 'some' among \['all', 'positive'\]"),
    ({"as_of": 1.5}, "as_of must be integer Unix seconds or None, got 1.5"),
    ({"keep_graph": "no"}, "keep_graph must be true or false, got 'no'"),
])
def test_bad_parameters(params, message):
    source, target = _pair()
    with pytest.raises(InputError, match=message):
        GraphExpansion(**params).fit(source, target)


def test_contract():
    with pytest.raises(NotFittedError):
        GraphExpansion().get_support()
    stage = GraphExpansion(3, fanout=2, relations=["click"])
    assert clone(stage).get_params() == stage.get_params()
    assert stage.get_params()["num_hops"] == 3


def test_a_seed_hub_is_capped_like_other_hubs():
    """Seed user h has 12 rows (items 1-3), u and v 2 each; the hub cap 3 keeps 3 of h's."""
    users = ["h"] * 12 + ["u", "u", "v", "v"]
    items = [1, 2, 3] * 4 + [1, 2, 2, 3]
    source = InteractionLog.from_columns(users, items, list(range(16)), [1, 0] * 8, "source")
    target = InteractionLog.from_columns(["h"], [1], [99], [1], "target")
    source, target = read_pair(source, target)
    uncapped = GraphExpansion(max_degree=3, max_user_rows=None).fit(source, target)
    assert uncapped.get_support().sum() == 16  # the hub fills 12 of 16 rows
    stage = GraphExpansion(max_degree=3).fit(source, target)
    kept = stage.get_support()
    assert stage.max_user_rows_ == 3
    assert np.bincount(source.user[kept]).tolist() == [3, 2, 2]
    assert kept[12:].all()
    assert (stage.hop_ == uncapped.hop_).all()  # a dropped row keeps its hop
    assert (stage.report_.max_user_rows, stage.report_.row_capped_users,
            stage.report_.dropped_rows) == (3, 1, 9)
    assert stage.report_.note().endswith(", 9 rows of 1 users")
    assert GraphExpansion(max_degree=3, max_user_rows=5).fit(
        source, target).get_support().sum() == 9
    # the draw follows random_state
    draws = {tuple(GraphExpansion(max_degree=3, random_state=seed).fit(
        source, target).get_support(indices=True)) for seed in range(10)}
    assert len(draws) > 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "all", True])
def test_max_user_rows_is_checked(bad):
    with pytest.raises(InputError, match="max_user_rows must be an integer >= 1, 'auto' or None"):
        GraphExpansion(max_user_rows=bad).check_params()


def test_the_report_rounds_the_hub_cap_for_json():
    report = GraphReport(1, 2, 75.11000000000013, (HopCount(0, 1, 2),), 0, 0)
    assert report.to_json()["max_degree"] == 75.11
