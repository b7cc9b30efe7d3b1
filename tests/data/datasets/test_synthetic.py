"""The synthetic default: deterministic, sized by its options, and its truth is planted."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.data.datasets import get_dataset, prepare
from graphsel.data.datasets.synthetic import BEHAVIORS, START_TS
from graphsel.errors import InputError

SMALL = dict(num_users=2000, num_items=600, num_communities=10, num_target_communities=2,
             source_rows=20_000, target_rows=1_500)

synthetic = get_dataset("synthetic")


@pytest.fixture(scope="module")
def small():
    return synthetic(seed=7, **SMALL)


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path):
    prepare("synthetic", tmp_path / "a", seed=1, **SMALL)
    prepare("synthetic", tmp_path / "b", seed=1, **SMALL)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert list(first) == ["card.json", "source.parquet", "target.parquet", "truth.parquet"]
    assert first == second


def test_another_seed_gives_other_data(tmp_path):
    prepare("synthetic", tmp_path / "a", seed=1, **SMALL)
    prepare("synthetic", tmp_path / "b", seed=2, **SMALL)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    for name in ("source.parquet", "target.parquet", "truth.parquet"):
        assert first[name] != second[name]


def test_sizes_follow_the_options(small):
    source, target, truth = small
    assert (len(source), len(target), truth.num_rows) == (20_000, 1_500, 20_000)
    assert len(source.unique_users()) <= 2000 and len(source.unique_items()) <= 600


def test_scale_multiplies_rows_users_and_items():
    source, target, _ = synthetic(seed=7, scale=1.5, **SMALL)
    assert (len(source), len(target)) == (30_000, 2_250)
    assert source.index.num_users > 2000 and source.index.num_items > 600


def test_default_size():
    source, target, truth = synthetic()
    assert (len(source), len(target), truth.num_rows) == (200_000, 9_000, 200_000)


def test_schema_and_behaviours(small):
    source, target, _ = small
    for log, domain in ((source, "source"), (target, "target")):
        assert log.columns == ["user_id", "item_id", "ts", "label", "domain", "behavior",
                               "age_bucket", "city", "category", "price_bucket", "price"]
        assert log.domains == [domain]
        behavior = log.column("behavior").astype(str)
        assert set(behavior) == set(BEHAVIORS)
        assert (log.label == (behavior != "impression")).all()  # purchases are clicks
        assert 0 < (behavior == "purchase").sum() < (behavior == "click").sum()
        assert (np.diff(log.ts) >= 0).all()  # sorted by time
        assert log.ts.min() >= START_TS and log.ts.max() < START_TS + 30 * 86_400
        assert log.column("price").dtype == np.float64 and (log.column("price") > 0).all()
    assert abs(target.label.mean() - source.label.mean()) > 0.03  # the target's own CTR


def test_truth_lines_up_with_source_rows(small):
    source, _, truth = small
    assert truth.column_names == ["row", "in_target_community", "user_community",
                                  "item_community"]
    assert truth.column("row").to_numpy().tolist() == list(range(len(source)))
    user_community = truth.column("user_community").to_numpy()
    item_community = truth.column("item_community").to_numpy()
    # a user (item) has one community, whatever row it appears in
    for codes, community in ((source.user, user_community), (source.item, item_community)):
        per_node = np.full(codes.max() + 1, -1)
        per_node[codes] = community
        assert (per_node[codes] == community).all()


def _planted(truth):
    flags = truth.column("in_target_community").to_numpy(zero_copy_only=False)
    user_community = truth.column("user_community").to_numpy()
    item_community = truth.column("item_community").to_numpy()
    planted = np.unique(user_community[flags])
    assert (np.unique(item_community[flags]) == planted).all()
    expected = np.isin(user_community, planted) & np.isin(item_community, planted)
    assert (flags == expected).all()  # the documented rule: user's AND item's community
    return planted, user_community, item_community


def test_planted_communities_drive_the_target(small):
    source, target, truth = small
    planted, user_community, item_community = _planted(truth)
    assert len(planted) == 2
    shared_users = np.intersect1d(source.unique_users(), target.unique_users())
    shared_items = np.intersect1d(source.unique_items(), target.unique_items())
    community_of_user = dict(zip(source.user.tolist(), user_community.tolist()))
    community_of_item = dict(zip(source.item.tolist(), item_community.tolist()))
    assert {community_of_user[u] for u in shared_users.tolist()} <= set(planted.tolist())
    assert {community_of_item[i] for i in shared_items.tolist()} <= set(planted.tolist())
    # most target users and items are also in the source; a few are target-only
    assert 0.8 < len(shared_users) / len(target.unique_users()) < 1
    assert 0.8 < len(shared_items) / len(target.unique_items()) < 1


def test_communities_are_well_separated(small):
    source, _, truth = small
    _, user_community, item_community = _planted(truth)
    cross = user_community != item_community
    assert 0.9 < 1 - cross.mean() < 0.96
    # cross-community impressions go mostly to hub items (the top 5 % by popularity)
    counts = np.bincount(source.item)
    hubs = np.flatnonzero(counts >= np.quantile(counts[counts > 0], 0.95))
    assert np.isin(source.item[cross], hubs).mean() > 0.6


def test_side_features_carry_community_signal_without_naming_it(small):
    source, _, truth = small
    user_community = truth.column("user_community").to_numpy()
    city = source.codes("city")[0]
    # the most common city of a community's rows is shared by many, not all, of them
    share = [np.bincount(city[user_community == c]).max() / (user_community == c).sum()
             for c in np.unique(user_community)]
    assert 0.3 < np.mean(share) < 0.9


@pytest.mark.parametrize("options, message", [
    ({"scale": 0}, "option 'scale' must be > 0, got 0"),
    ({"seed": -1}, "option 'seed' must be >= 0, got -1"),
    ({"within_community": 1.5}, "option 'within_community' must be <= 1, got 1.5"),
    ({"num_users": "many"}, "option 'num_users' must be a number, got 'many'"),
    ({"num_communities": 2.5}, "option 'num_communities' must be an integer, got 2.5"),
    ({"num_target_communities": 20}, "'num_target_communities' (20) must be smaller than "
                                     "'num_communities' (20)"),
])
def test_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError) as info:
        synthetic(**options)
    assert message in str(info.value)


def test_too_few_items_for_a_community_is_an_input_error():
    with pytest.raises(InputError, match="has no items or users to draw from"):
        synthetic(num_items=3, num_communities=10, num_target_communities=2)
