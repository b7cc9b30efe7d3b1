"""SampleSelector: the scikit-learn contract, a hand-checked case, and the synthetic truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from graphsel import InputError, InteractionLog, read_pair
from graphsel.select.domain import DomainClassifier, DomainReport
from graphsel.select.expansion import GraphExpansion, GraphReport, HopCount
from graphsel.select.neighbors import NeighborScorer
from graphsel.select.pipeline import (
    OUTPUT_COLUMNS,
    SampleSelector,
    SelectionQuality,
    SelectionReport,
    StageReport,
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
    selector = SampleSelector([GraphExpansion(2, max_degree=None)]).fit(source, target)
    selection = selector.selection_
    # rows whose user and item are both reached: users a,b,c; items 1,2,3,9
    assert selection.indices().tolist() == [0, 1, 2, 3, 4, 9]
    assert selection.hop.tolist() == [0, 1, 2, 2, 1, -1, -1, -1, -1, 2]
    assert selection.weight.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 1]
    assert np.isnan(selection.p_target).all() and np.isnan(selection.knn_score).all()
    assert list(selection.scores) == ["hop", "p_target", "knn_score"]
    report = selection.report
    assert (report.source_rows, report.target_rows) == (10, 2)
    assert report.selected == 6
    graph = report.stages[0]
    assert (graph.name, graph.kept, graph.users, graph.items) == ("graph", 6, 3, 4)
    assert graph.details == GraphReport(1, 2, None, (HopCount(0, 1, 2), HopCount(1, 2, 0),
                                                     HopCount(2, 0, 2)), 0, 0)
    assert (report.target_user_coverage, report.target_item_coverage) == (1.0, 1.0)
    assert report.selected_label_rate == pytest.approx(4 / 6, abs=1e-6)


def test_one_hop_keeps_less():
    source, target = _pair()
    selection = SampleSelector([GraphExpansion(1, max_degree=None)]).fit(
        source, target).selection_
    assert selection.indices().tolist() == [0, 1, 4]


def test_hub_cap_stops_expansion_through_item_1():
    source, target = _pair()
    # item 1 has degree 2 (a, b): capped at 1, so b is not reached through it
    selection = SampleSelector([GraphExpansion(2, max_degree=1)]).fit(
        source, target).selection_
    assert selection.report.stages[0].details.capped_items >= 1
    assert 1 not in selection.indices().tolist()


def test_truth_gives_precision_and_recall():
    source, target = _pair()
    truth = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    selection = SampleSelector([GraphExpansion(max_degree=None)]).fit(
        source, target, truth).selection_
    assert selection.report.truth == SelectionQuality(round(5 / 6, 6), 1.0)


def test_selection_quality_by_hand():
    assert selection_quality(np.array([1, 0, 1, 1], bool), np.array([1, 1, 0, 1], bool)) == (
        SelectionQuality(round(2 / 3, 6), round(2 / 3, 6)))


def test_contract_fit_returns_self_and_transform_equals_support():
    source, target = _pair()
    selector = SampleSelector([GraphExpansion(max_degree=None)])
    assert selector.fit(source, target) is selector
    kept = selector.transform(source)
    assert kept.table.equals(source[selector.get_support()].table)
    assert selector.get_support(indices=True).tolist() == selector.selection_.indices().tolist()


def test_unfitted_use_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        SampleSelector().get_support()


def test_stage_instances_are_cloned_and_names_resolved():
    source, target = _pair()
    given = GraphExpansion(1, max_degree=None)
    selector = SampleSelector([given]).fit(source, target)
    assert not hasattr(given, "support_")  # the selector fitted a clone
    assert selector.stages_[0].get_params() == given.get_params()
    assert selector.named_stages_["graph"] is selector.stages_[0]
    assert selector.get_params() == {"stages": [given], "progress": False}
    assert clone(selector).get_params()["stages"][0].num_hops == 1
    assert [type(s) for s in SampleSelector().check_params()] == [
        GraphExpansion, DomainClassifier, NeighborScorer]


@pytest.mark.parametrize("stages, message", [
    (["graph", "magic"], "Could not resolve stage 'magic'"),
    ([], "stages is empty"),
    (["graph", "graph"], "twice"),
    (["graph", GraphExpansion()], "twice"),
    ([GraphExpansion(mode="all")], "Could not resolve mode"),
    (["graph", NeighborScorer(index="hnsw32")], "index"),
    ([GraphExpansion(max_degree="big")], "max_degree"),
    ([3], "a stage is a name among"),
])
def test_bad_parameters_name_the_choice(stages, message):
    source, target = _pair()
    with pytest.raises(InputError, match=message):
        SampleSelector(stages).fit(source, target)


def test_to_table_adds_the_score_columns():
    source, target = _pair()
    selection = SampleSelector([GraphExpansion(max_degree=None)]).fit(
        source, target).selection_
    table = selection.to_table(source)
    assert table.column_names[-4:] == list(OUTPUT_COLUMNS)
    assert table.column("item_id").to_pylist() == [1, 1, 2, 2, 3, 9]
    assert table.column("hop").to_pylist() == [0, 1, 2, 2, 1, 2]


def test_format_report_lists_every_stage():
    source, target = _pair()
    report = SampleSelector([GraphExpansion(max_degree=None)]).fit(
        source, target).selection_.report
    text = report.format()
    assert "graph" in text and "coverage of target users 100.0%" in text
    assert "2 hops, capped 0 users / 0 items" in text


def test_report_json_keeps_the_keys_of_graphsel_select():
    report = SelectionReport(
        10, 2, (StageReport("graph", 6, 3, 4, 0.01, GraphReport(
            1, 2, 50.0, (HopCount(0, 1, 2), HopCount(1, 2, 0)), 0, 1)),
                StageReport("da", 5, 3, 3, 0.5, DomainReport(0.75))),
        5, 1.0, 0.5, 0.5, 0.6, 0.4, SelectionQuality(0.8, 1.0))
    assert json.loads(json.dumps(report.to_json())) == {
        "rows": {"source": 10, "target": 2},
        "stages": [
            {"name": "graph", "seeds": {"users": 1, "items": 2}, "max_degree": 50.0,
             "hops": [{"hop": 0, "users": 1, "items": 2}, {"hop": 1, "users": 2, "items": 0}],
             "capped": {"users": 0, "items": 1},
             "user_rows": {"max": None, "users": 0, "dropped": 0},
             "kept": 6, "users": 3, "items": 4, "seconds": 0.01},
            {"name": "da", "auc": 0.75, "kept": 5, "users": 3, "items": 3, "seconds": 0.5}],
        "selected": 5,
        "coverage": {"target_users": 1.0, "target_items": 0.5},
        "label_rate": {"target": 0.5, "selected": 0.6, "source": 0.4},
        "truth": {"precision": 0.8, "recall": 1.0}}
    assert list(report.to_json()["stages"][0]) == [
        "name", "seeds", "max_degree", "hops", "capped", "user_rows", "kept", "users", "items",
        "seconds"]
    lines = report.format().splitlines()
    assert "1 hop, capped 0 users / 1 items" in lines[4] and "AUC 0.750" in lines[5]
    assert lines[-1] == "planted truth: precision 0.800, recall 1.000"


@pytest.fixture(scope="module")
def synthetic():
    from graphsel.data.datasets import get_dataset

    split = get_dataset("synthetic")(scale=0.25)
    return split.source, split.target, split.truth.column("in_target_community").to_numpy()


def test_graph_then_knn_recovers_the_planted_communities(synthetic):
    source, target, truth = synthetic
    selection = SampleSelector(["graph", "knn"]).fit(source, target, truth).selection_
    quality = selection.report.truth
    assert quality.precision >= 0.9 and quality.recall >= 0.9, quality
    # the graph stage alone lets neighbouring communities in; kNN must remove rows
    graph, knn = selection.report.stages
    assert knn.kept < graph.kept
    assert np.isfinite(selection.knn_score[selection.mask]).all()


def test_full_chain_weights_are_density_ratios(synthetic):
    source, target, truth = synthetic
    selector = SampleSelector(["graph", DomainClassifier(cv=3), "knn"]).fit(source, target, truth)
    selection = selector.selection_
    kept = selection.mask
    graph, da, _ = selection.report.stages
    assert da.details.auc > 0.5
    assert (selection.weight[kept] >= 0.05).all() and (selection.weight[kept] <= 20).all()
    assert (selection.weight[~kept] == 0).all()
    # the domain classifier keeps every candidate by default: its cut is the weight
    assert da.kept == graph.kept
    assert selection.report.truth.precision >= 0.9
    # the weight is the domain classifier's, on the rows it scored
    scored = np.flatnonzero(~np.isnan(selection.p_target))
    np.testing.assert_array_equal(selection.weight[kept],
                                  selector.named_stages_["da"].weight_[
                                      np.searchsorted(scored, np.flatnonzero(kept))]
                                  .astype(np.float32))


def test_coverage_of_domains_that_share_no_item_is_explained():
    # the target shares user a but no item with the source: items 0.0%, and why
    source, _ = _pair()
    target = InteractionLog.from_columns(["a", "a", "z"], [70, 71, 70], [200, 201, 202],
                                         [1, 0, 1], "target", name="target")
    source, target = read_pair(source, target)
    report = SampleSelector([GraphExpansion(max_degree=None)]).fit(
        source, target).selection_.report
    assert report.format().splitlines()[-3:-1] == [
        "coverage of target users 50.0%, items 0.0%",
        ("no item is shared: the target's items are disjoint from the source's, so the "
         "selection covers none of them")]


def test_graph_note_counts_with_separators_and_says_where_the_expansion_stopped():
    hops = (HopCount(0, 1, 2), HopCount(1, 2, 0), HopCount(2, 0, 0), HopCount(3, 0, 0))
    note = GraphReport(1, 2, 50.0, hops, 1234, 1, max_user_rows=50, row_capped_users=1500,
                       dropped_rows=123456).note()
    assert note == ("3 hops (none new after hop 1), capped 1,234 users / 1 items, "
                    "123,456 rows of 1,500 users")
    assert GraphReport(1, 2, None, hops[:2], 0, 0).note() == "1 hop, capped 0 users / 0 items"
