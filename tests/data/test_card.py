"""Dataset cards: exact counts, JSON keys in their order, the table, the round trip."""

from __future__ import annotations

import json

from graphsel.data.card import DatasetCard, DomainCard, TruthSummary
from graphsel.data.log import InteractionLog, Overlap, read_pair

DAY = 86_400


def _logs() -> tuple[InteractionLog, InteractionLog]:
    source = InteractionLog.from_columns(
        ["u1", "u2", "u1", "u3"], ["i1", "i1", "i2", "i3"], [0, 60, DAY, 2 * DAY],
        [1, 0, 1, 1], "source", behavior=["click", "impression", "purchase", "click"],
        city=["a", "b", "a", "c"], name="source")
    target = InteractionLog.from_columns(
        ["u3", "u9"], ["i7", "i3"], [DAY, DAY + 120], [0, 1], "target", name="target")
    return read_pair(source, target)


def test_a_two_log_card_counts_each_domain_and_what_they_share():
    card = DatasetCard.of(*_logs())
    assert card.source == DomainCard(rows=4, users=3, items=3, label_rate=0.75, ts_min=0,
                                     ts_max=2 * DAY, domains=("source",), features=("city",),
                                     behaviors={"click": 2, "impression": 1, "purchase": 1})
    assert card.target is not None and card.target.behaviors is None
    assert (card.target.start, card.target.end) == ("1970-01-02 00:00", "1970-01-02 00:02")
    assert card.shared == Overlap(users=1, items=1)  # u3 and i3
    assert (card.dataset, card.options, card.files, card.truth) == (None, None, None, None)


def test_json_keys_and_their_order_are_those_of_card_json():
    source, target = _logs()
    card = DatasetCard.of(source, target, dataset="toy", options={"seed": 0},
                          files={"source": "source.parquet", "card": "card.json"},
                          truth=TruthSummary(rows=4, in_target_community=1))
    payload = card.to_json()
    assert list(payload) == ["dataset", "options", "files", "domains", "shared", "truth"]
    assert list(payload["domains"]) == ["source", "target"]
    assert list(payload["domains"]["source"]) == [
        "rows", "users", "items", "label_rate", "ts_min", "ts_max", "start", "end", "domains",
        "behaviors", "features"]
    assert "behaviors" not in payload["domains"]["target"]
    assert payload["domains"]["target"] == {
        "rows": 2, "users": 2, "items": 2, "label_rate": 0.5, "ts_min": DAY,
        "ts_max": DAY + 120, "start": "1970-01-02 00:00", "end": "1970-01-02 00:02",
        "domains": ["target"], "features": []}
    assert payload["shared"] == {"users": 1, "items": 1}
    assert payload["truth"] == {"rows": 4, "in_target_community": 1}
    assert DatasetCard.from_json(json.loads(json.dumps(payload))) == card


def test_a_one_log_card_has_no_target_and_no_shared_entry():
    source, _ = _logs()
    card = DatasetCard.of(source)
    assert list(card.to_json()) == ["domains"]
    assert list(card.to_json()["domains"]) == ["source"]
    assert DatasetCard.from_json(card.to_json()) == card
    assert card.format().splitlines()[:2] == ["            source", "----------  ----------------"]


def test_the_table_has_a_title_a_column_per_domain_and_the_truth_line():
    source, target = _logs()
    card = DatasetCard.of(source, target, dataset="toy",
                          truth=TruthSummary(rows=4000, in_target_community=1234))
    assert card.format().splitlines() == [
        "dataset: toy",
        "              source            target",
        "------------  ----------------  ----------------",
        "rows          4                 2",
        "users         3                 2",
        "items         3                 2",
        "label_rate    0.7500            0.5000",
        "start         1970-01-01 00:00  1970-01-02 00:00",
        "end           1970-01-03 00:00  1970-01-02 00:02",
        "shared users  1",
        "shared items  1",
        "truth: 1,234 of 4,000 source rows are in the target communities",
    ]


def test_a_shared_count_of_zero_is_explained():
    # ML-1M's genre splits share users but no movie: "shared items 0" says why
    source = InteractionLog.from_columns(["u1", "u2"], ["i1", "i2"], [0, 60], [1, 0], "source")
    same_users = InteractionLog.from_columns(["u1"], ["i9"], [120], [1], "target")
    lines = DatasetCard.of(*read_pair(source, same_users)).format().splitlines()
    assert lines[-2:] == [
        "shared items  0",
        "no item is shared: the target's items are disjoint from the source's"]
    same_items = InteractionLog.from_columns(["u9"], ["i1"], [120], [1], "target")
    lines = DatasetCard.of(*read_pair(source, same_items)).format().splitlines()
    assert lines[-3:] == [
        "shared users  0",
        "shared items  1",
        "no user is shared: the target's users are disjoint from the source's"]
