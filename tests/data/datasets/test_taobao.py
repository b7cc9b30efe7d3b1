"""Taobao UserBehavior: page views labelled by the deepest later action, split by category."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from graphsel.data.card import DatasetCard
from graphsel.data.datasets import get_dataset, prepare
from graphsel.data.datasets.taobao import DEFAULT_TARGET_CATEGORIES, view_labels
from graphsel.data.log import Overlap
from graphsel.errors import InputError

taobao = get_dataset("taobao-userbehavior")

# user, item, category, behaviour, ts; one line with an empty and one with no timestamp
LINES = """\
1,100,7,pv,1000
1,100,7,cart,1010
1,100,7,pv,1020
1,100,7,buy,1030
1,100,7,pv,1040
1,101,7,pv,1000
3,301,8,pv,
1,101,7,fav,1005
1,101,7,cart,1006
2,100,7,pv,1001
2,200,9,pv,1002
2,200,9,fav,1003
2,201,9,buy,1004
2,201,9,pv,1005
1,202,9,pv,1006
3,300,8,pv"""


@pytest.fixture
def folder(tmp_path):
    with gzip.open(tmp_path / "UserBehavior.csv.gz", "wt") as handle:
        handle.write(LINES)
    return tmp_path


def _rows(log):
    columns = ["user_id", "item_id", "ts", "label", "behavior", "category_id"]
    return [tuple(row[c] for c in columns) for row in log.table.to_pylist()]


def test_views_get_the_deepest_later_action(folder):
    source, target, truth = taobao(path=folder, target_categories=[9])
    assert truth is None
    assert _rows(source) == [
        (1, 100, 1000, 1, "buy", 7),   # cart then buy follow
        (1, 100, 1020, 1, "buy", 7),   # the buy follows
        (1, 100, 1040, 0, "pv", 7),    # nothing follows
        (1, 101, 1000, 0, "cart", 7),  # fav and cart follow: cart is deeper
        (2, 100, 1001, 0, "pv", 7),    # user 1's buy of item 100 is not user 2's
    ]
    assert _rows(target) == [
        (2, 200, 1002, 0, "fav", 9),
        (2, 201, 1005, 0, "pv", 9),    # the buy came BEFORE this view
        (1, 202, 1006, 0, "pv", 9),
    ]
    assert source.domains == ["source"] and target.domains == ["target"]
    assert DatasetCard.of(source, target).shared == Overlap(users=2, items=0)


def test_engagement_label_counts_any_later_fav_cart_or_buy(folder):
    source, target, _ = taobao(path=folder, target_categories=[9], label="engagement")
    assert [row[3] for row in _rows(source)] == [1, 1, 0, 1, 0]  # cart / buy / - / cart / -
    assert [row[3] for row in _rows(target)] == [1, 0, 0]        # the fav counts
    with pytest.raises(InputError, match="Could not resolve label 'click' among"):
        taobao(path=folder, target_categories=[9], label="click")


def test_categories_as_a_comma_separated_string(folder):
    _, target, _ = taobao(path=folder, target_categories=" 9 ,")
    assert target.column("category_id").tolist() == [9, 9, 9]


def test_every_category_in_the_target_leaves_an_empty_source(folder):
    with pytest.raises(InputError, match=r"\(source\): no rows"):
        taobao(path=folder, target_categories="7,9")


def test_view_labels_keep_file_order():
    actions = pd.DataFrame({"user_id": [5, 5, 5], "item_id": [1, 2, 1],
                            "category_id": [3, 3, 3], "behavior_type": ["pv", "pv", "fav"],
                            "timestamp": [9, 1, 9]})
    views = view_labels(actions)
    assert views["item_id"].tolist() == [1, 2]
    assert views["behavior"].tolist() == ["fav", "pv"]  # a fav at the same second counts


@pytest.mark.parametrize("categories, message", [
    ([42], "target category 42 has no page view"),
    (["x"], "option 'target_categories': 'x' is not an integer category id"),
    ([], "option 'target_categories' is empty"),
])
def test_bad_categories(folder, categories, message):
    with pytest.raises(InputError, match=message):
        taobao(path=folder, target_categories=categories)


def test_unknown_behaviour_names_the_file(tmp_path):
    (tmp_path / "UserBehavior.csv.gz").write_bytes(gzip.compress(b"1,2,3,like,10\n"))
    with pytest.raises(InputError, match=r"UserBehavior.csv.gz: column 'behavior_type' has "
                                         r"value 'like', expected one of pv, fav, cart, buy"):
        taobao(path=tmp_path)


def test_extra_column_names_the_file(tmp_path):
    (tmp_path / "UserBehavior.csv.gz").write_bytes(gzip.compress(b"1,2,3,pv,10,11\n"))
    with pytest.raises(InputError, match="UserBehavior.csv.gz: not a readable UserBehavior"):
        taobao(path=tmp_path)


def test_path_errors(tmp_path):
    with pytest.raises(InputError, match="needs option 'path'"):
        taobao()
    with pytest.raises(InputError, match=f"{tmp_path / 'nope'}: no such directory"):
        taobao(path=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=f"{tmp_path / 'file'}: is a file, expected"):
        taobao(path=tmp_path / "file")
    with pytest.raises(InputError, match=f"{tmp_path / 'UserBehavior.csv.gz'}: no such file"):
        taobao(path=tmp_path)


@pytest.mark.data
def test_head_card(taobao_path, tmp_path):
    card = prepare("taobao-userbehavior", tmp_path, path=taobao_path)
    assert card.options == {"path": str(taobao_path),
                            "target_categories": list(DEFAULT_TARGET_CATEGORIES),
                            "label": "buy"}
    source, target = card.source, card.target
    assert target is not None
    assert (source.rows, source.users, source.items) == (73_910, 813, 50_811)
    assert (target.rows, target.users, target.items) == (1_962, 330, 1_252)
    assert card.shared == Overlap(users=330, items=0)
    assert source.behaviors == {"buy": 1916, "cart": 963, "fav": 292, "pv": 70_739}
    assert target.behaviors == {"buy": 83, "cart": 20, "fav": 2, "pv": 1_857}
    assert (source.label_rate, target.label_rate) == (round(1916 / 73_910, 6),
                                                      round(83 / 1_962, 6))
    assert source.features == target.features == ("category_id",)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "card.json", "source.parquet", "target.parquet"]


@pytest.mark.data
def test_head_engagement_has_more_positives(taobao_path):
    categories = [4756105, 3607361, 2735466, 3002561, 4801426, 4145813, 285583, 2465336,
                  965809, 4069500]  # configs/taobao.yaml
    buy = taobao(path=taobao_path, target_categories=categories).target
    engaged = taobao(path=taobao_path, target_categories=categories, label="engagement").target
    assert (len(buy), int(buy.label.sum()), int(engaged.label.sum())) == (15_390, 400, 665)
