"""SampleSelector: the scikit-learn contract, a hand-checked case, and the synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel import InputError, InteractionLog, read_pair
from graphsel.select.pipeline import (
    OUTPUT_COLUMNS,
    SampleSelector,
    format_report,
    selection_quality,
)


def _pair() -> tuple[InteractionLog, InteractionLog]:
    """Two communities: users a,b,c with items 1,2,3 (the target's), and x,y with 8,9.

    Source rows (by number):
      0 a-1  1 b-1  2 b-2  3 c-2  4 c-3  5 x-8  6 y-8  7 y-9  8 x-9  9 c-9
    Target rows: a-1, a-3. Seeds: user a, items 1 and 3.
    1 hop: users a (0), b (1: clicked item 1), c (1: clicked item 3); items 1 (0), 3 (0).
    2 hops: items 2 (via b or c) and 9 (via c); users unchanged.
    """
    source = InteractionLog.from_columns(
        ["a", "b", "b", "c", "c", "x", "y", "y", "x", "c"],
        [1, 1, 2, 2, 3, 8, 8, 9, 9, 9],
        list(range(100, 110)), [1, 0, 1, 1, 0, 1, 1, 0, 1, 1], "source", name="source")
    target = InteractionLog.from_columns(["a", "a"], [1, 3], [200, 201], [1, 0], "target",
                                         name="target")
    return read_pair(source, target)


def test_graph_stage_by_hand():
    source, target = _pair()
    selector = SampleSelector(["graph"], num_hops=2, max_degree=None).fit(source, target)
    selection = selector.selection_
    # rows whose user and item are both reached: users a,b,c; items 1,2,3,9
    assert selection.indices().tolist() == [0, 1, 2, 3, 4, 9]
    assert selection.hop.tolist() == [0, 1, 2, 2, 1, -1, -1, -1, -1, 2]
    assert selection.weight.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 1]
    assert np.isnan(selection.p_target).all() and np.isnan(selection.knn_score).all()
    report = selection.report
    assert report["rows"] == {"source": 10, "target": 2}
    assert report["selected"] == 6
    assert report["stages"][0]["seeds"] == {"users": 1, "items": 2}
    assert report["coverage"] == {"target_users": 1.0, "target_items": 1.0}
    assert report["label_rate"]["selected"] == pytest.approx(4 / 6, abs=1e-6)


def test_one_hop_keeps_less():
    source, target = _pair()
    selection = SampleSelector(["graph"], num_hops=1, max_degree=None).fit(
        source, target).selection_
    assert selection.indices().tolist() == [0, 1, 4]


def test_hub_cap_stops_expansion_through_item_1():
    source, target = _pair()
    # item 1 has degree 2 (a, b): capped at 1, so b is not reached through it
    selection = SampleSelector(["graph"], num_hops=2, max_degree=1).fit(
        source, target).selection_
    assert selection.report["stages"][0]["capped"]["items"] >= 1
    assert 1 not in selection.indices().tolist()


def test_truth_gives_precision_and_recall():
    source, target = _pair()
    truth = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    selection = SampleSelector(["graph"], max_degree=None).fit(source, target, truth).selection_
    assert selection.report["truth"] == {"precision": round(5 / 6, 6), "recall": 1.0}


def test_selection_quality_by_hand():
    assert selection_quality(np.array([1, 0, 1, 1], bool), np.array([1, 1, 0, 1], bool)) == {
        "precision": round(2 / 3, 6), "recall": round(2 / 3, 6)}


def test_contract_fit_returns_self_and_transform_equals_support():
    source, target = _pair()
    selector = SampleSelector(["graph"], max_degree=None)
    assert selector.fit(source, target) is selector
    kept = selector.transform(source)
    assert kept.table.equals(source[selector.get_support()].table)
    assert selector.get_support(indices=True).tolist() == selector.selection_.indices().tolist()


def test_unfitted_use_raises():
    with pytest.raises(InputError, match="not fitted"):
        SampleSelector().get_support()


@pytest.mark.parametrize("params, message", [
    ({"stages": ["graph", "magic"]}, "Could not resolve stage 'magic'"),
    ({"stages": []}, "stages is empty"),
    ({"stages": ["graph", "graph"]}, "twice"),
    ({"mode": "all"}, "Could not resolve mode"),
    ({"knn_index": "hnsw32"}, "index"),
    ({"stages": ["graph"], "budget": 5}, "'da' stage"),
    ({"max_degree": "big"}, "max_degree"),
])
def test_bad_parameters_name_the_choice(params, message):
    source, target = _pair()
    stages = params.pop("stages", ("graph", "da", "knn"))
    with pytest.raises(InputError, match=message):
        SampleSelector(stages, **params).fit(source, target)


def test_to_table_adds_the_score_columns():
    source, target = _pair()
    selection = SampleSelector(["graph"], max_degree=None).fit(source, target).selection_
    table = selection.to_table(source)
    assert table.column_names[-4:] == list(OUTPUT_COLUMNS)
    assert table.column("item_id").to_pylist() == [1, 1, 2, 2, 3, 9]
    assert table.column("hop").to_pylist() == [0, 1, 2, 2, 1, 2]


def test_format_report_lists_every_stage():
    source, target = _pair()
    report = SampleSelector(["graph"], max_degree=None).fit(source, target).selection_.report
    text = format_report(report)
    assert "graph" in text and "coverage of target users 100.0%" in text


@pytest.fixture(scope="module")
def synthetic():
    from graphsel.data.datasets import get_dataset

    split = get_dataset("synthetic")(scale=0.25)
    return split.source, split.target, split.truth.column("in_target_community").to_numpy()


def test_graph_then_knn_recovers_the_planted_communities(synthetic):
    source, target, truth = synthetic
    selection = SampleSelector(["graph", "knn"]).fit(source, target, truth).selection_
    quality = selection.report["truth"]
    assert quality["precision"] >= 0.9 and quality["recall"] >= 0.9, quality
    # the graph stage alone lets neighbouring communities in; kNN must remove rows
    graph, knn = selection.report["stages"]
    assert knn["kept"] < graph["kept"]
    assert np.isfinite(selection.knn_score[selection.mask]).all()


def test_full_chain_weights_are_density_ratios(synthetic):
    source, target, truth = synthetic
    selector = SampleSelector(cv=3).fit(source, target, truth)
    selection = selector.selection_
    kept = selection.mask
    assert selection.report["stages"][1]["auc"] > 0.5
    assert (selection.weight[kept] >= 0.05).all() and (selection.weight[kept] <= 20).all()
    assert (selection.weight[~kept] == 0).all()
    # the domain classifier keeps every candidate by default: its cut is the weight
    assert selection.report["stages"][1]["kept"] == selection.report["stages"][0]["kept"]
    assert selection.report["truth"]["precision"] >= 0.9
