"""The embedded default: a synthetic Taobao-like impression log with planted communities.

The generator needs no files and is deterministic for a seed. It models a big SOURCE feed
and a sparse TARGET domain (a mini-app) whose users and items come from a few planted
communities, so the source rows that "look like the target" are known exactly.

The model, for ``C`` communities of which ``T`` are planted target communities:

* Every user and every item belongs to one community (uniformly at random). Each community
  has a home city and age bucket (users) and three home categories and a price level
  (items); a member takes a home value with probability 0.5 (users) / 0.7 (category),
  otherwise a value drawn uniformly from all, so side features carry community signal
  without naming the community.
* User activity and item popularity follow power laws (weight ``rank ** -0.6`` and
  ``rank ** -0.8`` over a random ranking).
* A source impression picks a user by activity; with probability ``within_community``
  (0.93) its item comes from the user's community (by popularity), otherwise from all items
  by popularity squared, which lands mostly on the popular hub items of each community.
* Click probability ``sigmoid(base + 1.2 * same_community + user_bias + item_bias)`` with a
  per-domain ``base`` (source -3.0, target -2.4), so the target has its own CTR. A click is a
  ``purchase`` with probability ``sigmoid(-2.0 - 0.5 * log(price / 20))``, cheaper items
  converting more.
* The target domain's users are about half of the target-community users plus a few
  target-only users (``target_only`` = 5 %); its items are 60 % of the target-community
  items plus a few target-only items. Target impressions are drawn like source ones, among
  target users and items only.

Ground truth (``truth.parquet``, one row per source row, in source row order): a source
row is ``in_target_community`` when its user's community AND its item's community are both
planted target communities (not necessarily the same one). Cross-community rows touching a
non-target community are not target-like, even when the user is a target user.

Columns: ``user_id`` and ``item_id`` (int64), ``ts`` (int64 Unix seconds, uniform over
``days`` days from 2017-11-25 00:00 UTC, rows sorted by time), ``label`` (int8 click),
``domain``, ``behavior`` (``"impression"`` = no click, ``"click"``, ``"purchase"`` = a click
that converted), categorical ``age_bucket``, ``city``, ``category``, ``price_bucket``
(strings) and numeric ``price`` (float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from graphsel.data.datasets._registry import DatasetSplit, register_dataset
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError

__all__ = ["synthetic", "START_TS", "BEHAVIORS"]

START_TS = 1511568000  # 2017-11-25 00:00:00 UTC, the first day of the Taobao log
BEHAVIORS = ("impression", "click", "purchase")
AGE_BUCKETS = ("18-24", "25-29", "30-34", "35-39", "40-49", "50+")
_SOURCE_BASE, _TARGET_BASE, _SAME_COMMUNITY_BONUS = -3.0, -2.4, 1.2
_USER_ACTIVITY_EXPONENT, _ITEM_POPULARITY_EXPONENT = 0.6, 0.8
_TARGET_USER_SHARE, _TARGET_ITEM_SHARE = 0.5, 0.6


@dataclass(frozen=True)
class _Nodes:
    """Users or items of the generated world: ``(M,)`` arrays, index = id."""

    community: np.ndarray
    weight: np.ndarray
    bias: np.ndarray


@register_dataset("synthetic")
def synthetic(
    *,
    seed: int = 0,
    scale: float = 1.0,
    num_users: int = 20_000,
    num_items: int = 5_000,
    num_communities: int = 20,
    num_target_communities: int = 3,
    source_rows: int = 200_000,
    target_rows: int = 9_000,
    within_community: float = 0.93,
    target_only: float = 0.05,
    days: int = 30,
) -> DatasetSplit:
    """Synthetic Taobao-like click/purchase log with planted target communities (no files).

    Args:
        seed: random seed; the same seed gives the same logs (default 0).
        scale: multiplies ``num_users``, ``num_items``, ``source_rows`` and ``target_rows``
            (default 1.0; 10 gives about two million source rows).
        num_users: users of the world, before ``scale`` (default 20,000).
        num_items: items of the world, before ``scale`` (default 5,000).
        num_communities: communities ``C`` (default 20).
        num_target_communities: planted target communities ``T < C`` (default 3).
        source_rows: source impressions, before ``scale`` (default 200,000).
        target_rows: target impressions, before ``scale`` (default 9,000).
        within_community: share of impressions whose item is drawn from the user's own
            community (default 0.93); the rest go mostly to hub items.
        target_only: target-only users and items, as a share of the target's users and
            items (default 0.05).
        days: time span of the timestamps in days (default 30).

    Returns:
        The source and target logs on one id index, and the truth table (``N_src`` rows:
        ``row``, ``in_target_community``, ``user_community``, ``item_community``).

    Raises:
        InputError: an option out of range.
    """
    _check(seed=seed, scale=scale, num_users=num_users, num_items=num_items,
           num_communities=num_communities, num_target_communities=num_target_communities,
           source_rows=source_rows, target_rows=target_rows, within_community=within_community,
           target_only=target_only, days=days)
    rng = np.random.default_rng(seed)
    num_users, num_items = _scaled(num_users, scale), _scaled(num_items, scale)
    source_rows, target_rows = _scaled(source_rows, scale), _scaled(target_rows, scale)
    target_communities = np.sort(
        rng.choice(num_communities, num_target_communities, replace=False))

    users = _nodes(rng, num_users, num_communities, _USER_ACTIVITY_EXPONENT)
    items = _nodes(rng, num_items, num_communities, _ITEM_POPULARITY_EXPONENT)
    target_user_ids, new_users = _target_members(
        rng, users, target_communities, _TARGET_USER_SHARE, target_only, _USER_ACTIVITY_EXPONENT)
    target_item_ids, new_items = _target_members(
        rng, items, target_communities, _TARGET_ITEM_SHARE, target_only,
        _ITEM_POPULARITY_EXPONENT)
    users, items = _extend(users, new_users), _extend(items, new_items)
    features = _Features.draw(rng, users, items, num_communities)

    source_user, source_item = _impressions(
        rng, source_rows, users, items, np.arange(num_users), np.arange(num_items),
        within_community)
    target_user, target_item = _impressions(
        rng, target_rows, users, items, target_user_ids, target_item_ids, within_community)

    source_table, order = _table(rng, "source", source_user, source_item, users, items,
                                 features, _SOURCE_BASE, days)
    target_table, _ = _table(rng, "target", target_user, target_item, users, items, features,
                             _TARGET_BASE, days)
    user_community = users.community[source_user[order]]
    item_community = items.community[source_item[order]]
    truth = pa.table({
        "row": pa.array(np.arange(source_rows, dtype=np.int64)),
        "in_target_community": pa.array(np.isin(user_community, target_communities)
                                         & np.isin(item_community, target_communities)),
        "user_community": pa.array(user_community.astype(np.int32)),
        "item_community": pa.array(item_community.astype(np.int32)),
    })
    source, target = read_pair(
        InteractionLog.from_table(source_table, name="synthetic/source"),
        InteractionLog.from_table(target_table, name="synthetic/target"))
    return DatasetSplit(source, target, truth)


_REAL_OPTIONS = ("scale", "within_community", "target_only")


def _check(**options: float) -> None:
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                              np.floating)):
            raise InputError(f"synthetic: option {name!r} must be a number, got {value!r}")
        if name not in _REAL_OPTIONS and not isinstance(value, (int, np.integer)):
            raise InputError(f"synthetic: option {name!r} must be an integer, got {value!r}")
        if name == "seed" and value < 0:
            raise InputError(f"synthetic: option 'seed' must be >= 0, got {value!r}")
        if name != "seed" and not value > 0:
            raise InputError(f"synthetic: option {name!r} must be > 0, got {value!r}")
    for name in ("within_community", "target_only"):
        if options[name] > 1:
            raise InputError(f"synthetic: option {name!r} must be <= 1, got {options[name]!r}")
    if options["num_target_communities"] >= options["num_communities"]:
        raise InputError(f"synthetic: option 'num_target_communities' "
                         f"({options['num_target_communities']}) must be smaller than "
                         f"'num_communities' ({options['num_communities']})")


def _scaled(size: int, scale: float) -> int:
    return max(1, int(round(size * scale)))


def _power_law(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Weights ``rank ** -exponent`` over a random ranking of ``size`` nodes."""
    return (1.0 + rng.permutation(size)) ** -exponent


def _nodes(rng: np.random.Generator, size: int, communities: int, exponent: float) -> _Nodes:
    return _Nodes(rng.integers(communities, size=size), _power_law(rng, size, exponent),
                  rng.normal(0.0, 0.5, size))


def _target_members(
    rng: np.random.Generator, nodes: _Nodes, target_communities: np.ndarray, share: float,
    target_only: float, exponent: float,
) -> tuple[np.ndarray, _Nodes]:
    """Target-domain members: ids of a ``share`` of the target-community nodes plus new ones.

    Returns:
        ``(ids, new)``: the target's node ids (shared first, then target-only ids continuing
        after the existing ones) and the new target-only nodes.
    """
    in_target = np.isin(nodes.community, target_communities)
    shared = np.flatnonzero(in_target & (rng.random(len(nodes.community)) < share))
    num_new = int(round(len(shared) * target_only))
    new = _Nodes(rng.choice(target_communities, num_new), _power_law(rng, num_new, exponent),
                 rng.normal(0.0, 0.5, num_new))
    new_ids = len(nodes.community) + np.arange(num_new)
    return np.concatenate([shared, new_ids]), new


def _extend(nodes: _Nodes, new: _Nodes) -> _Nodes:
    return _Nodes(*(np.concatenate([getattr(nodes, f), getattr(new, f)])
                    for f in ("community", "weight", "bias")))


@dataclass(frozen=True)
class _Features:
    """Per-node side features (codes into the label tuples) and item prices."""

    age: np.ndarray
    city: np.ndarray
    category: np.ndarray
    price: np.ndarray
    num_cities: int
    num_categories: int

    @classmethod
    def draw(cls, rng: np.random.Generator, users: _Nodes, items: _Nodes,
             communities: int) -> _Features:
        num_cities, num_categories = 2 * communities + 10, 3 * communities
        home_age = rng.integers(len(AGE_BUCKETS), size=communities)
        home_city = rng.permutation(num_cities)[:communities]
        home_categories = rng.permutation(num_categories).reshape(communities, 3)
        price_level = rng.normal(3.0, 0.6, size=communities)
        age = _home_or_random(rng, home_age[users.community], len(AGE_BUCKETS), 0.5)
        city = _home_or_random(rng, home_city[users.community], num_cities, 0.5)
        home_category = home_categories[items.community, rng.integers(3, size=len(items.bias))]
        category = _home_or_random(rng, home_category, num_categories, 0.7)
        price = np.round(np.exp(rng.normal(price_level[items.community], 0.6)), 2)
        return cls(age, city, category, np.maximum(price, 0.01), num_cities, num_categories)


def _home_or_random(rng: np.random.Generator, home: np.ndarray, choices: int,
                    p_home: float) -> np.ndarray:
    random = rng.integers(choices, size=len(home))
    return np.where(rng.random(len(home)) < p_home, home, random)


def _impressions(
    rng: np.random.Generator, rows: int, users: _Nodes, items: _Nodes, user_ids: np.ndarray,
    item_ids: np.ndarray, within_community: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (user, item) draws among ``user_ids`` and ``item_ids``."""
    weight = users.weight[user_ids]
    user = user_ids[_draw(rng, np.zeros(rows, dtype=np.int64), np.zeros(len(user_ids),
                                                                         dtype=np.int64),
                          weight, 1)]
    communities = int(max(users.community.max(), items.community.max())) + 1
    within = rng.random(rows) < within_community
    item = np.empty(rows, dtype=np.int64)
    item[within] = item_ids[_draw(rng, users.community[user[within]],
                                  items.community[item_ids], items.weight[item_ids],
                                  communities)]
    hub_weight = items.weight[item_ids] ** 2
    num_cross = int((~within).sum())
    item[~within] = item_ids[_draw(rng, np.zeros(num_cross, dtype=np.int64),
                                   np.zeros(len(item_ids), dtype=np.int64), hub_weight, 1)]
    return user, item


def _draw(rng: np.random.Generator, draw_group: np.ndarray, candidate_group: np.ndarray,
          weight: np.ndarray, num_groups: int) -> np.ndarray:
    """For each draw, a candidate of its group, with probability proportional to ``weight``.

    Vectorised inverse-CDF sampling: candidates are sorted by group, so each group owns a
    contiguous slice of one cumulative sum.

    Args:
        draw_group: ``(R,)`` the group of each draw.
        candidate_group: ``(M,)`` the group of each candidate.
        weight: ``(M,)`` positive candidate weights.
        num_groups: groups are ``0..num_groups-1``.

    Returns:
        ``(R,)`` positions into the candidate arrays.

    Raises:
        InputError: if a draw's group has no candidate (sizes too small).
    """
    order = np.argsort(candidate_group, kind="stable")
    counts = np.bincount(candidate_group, minlength=num_groups)
    empty = np.flatnonzero(counts[np.unique(draw_group)] == 0)
    if len(empty):
        raise InputError(f"synthetic: community {np.unique(draw_group)[empty[0]]} has no "
                         f"items or users to draw from; increase num_users/num_items or scale")
    cumulative = np.cumsum(weight[order])
    totals = np.bincount(candidate_group, weights=weight, minlength=num_groups)
    starts = np.cumsum(totals) - totals
    first = np.cumsum(counts) - counts
    last = first + counts - 1
    point = starts[draw_group] + rng.random(len(draw_group)) * totals[draw_group]
    position = np.searchsorted(cumulative, point, side="right")
    position = np.clip(position, first[draw_group], last[draw_group])
    return order[position]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _table(
    rng: np.random.Generator, domain: str, user: np.ndarray, item: np.ndarray, users: _Nodes,
    items: _Nodes, features: _Features, base: float, days: int,
) -> tuple[pa.Table, np.ndarray]:
    """The log table of one domain, sorted by time, and the sorting permutation."""
    rows = len(user)
    same = users.community[user] == items.community[item]
    logit = base + _SAME_COMMUNITY_BONUS * same + users.bias[user] + items.bias[item]
    click = rng.random(rows) < _sigmoid(logit)
    price = features.price[item]
    purchase = click & (rng.random(rows) < _sigmoid(-2.0 - 0.5 * np.log(price / 20.0)))
    ts = START_TS + rng.integers(0, days * 86_400, size=rows)
    order = np.argsort(ts, kind="stable")
    behavior = click.astype(np.int8) + purchase.astype(np.int8)
    table = pa.table({
        "user_id": pa.array(user[order].astype(np.int64)),
        "item_id": pa.array(item[order].astype(np.int64)),
        "ts": pa.array(ts[order].astype(np.int64)),
        "label": pa.array(click[order].astype(np.int8)),
        "domain": _strings(np.zeros(rows, dtype=np.int32), [domain]),
        "behavior": _strings(behavior[order], BEHAVIORS),
        "age_bucket": _strings(features.age[user[order]], AGE_BUCKETS),
        "city": _strings(features.city[user[order]],
                         [f"city_{c:02d}" for c in range(features.num_cities)]),
        "category": _strings(features.category[item[order]],
                             [f"cat_{c:03d}" for c in range(features.num_categories)]),
        "price_bucket": _strings(_price_bucket(price[order]),
                                 [f"p{b:02d}" for b in range(_NUM_PRICE_BUCKETS)]),
        "price": pa.array(price[order].astype(np.float64)),
    })
    return table, order


_NUM_PRICE_BUCKETS = 12


def _price_bucket(price: np.ndarray) -> np.ndarray:
    """Fixed log2 bins, so buckets do not depend on the data drawn."""
    return np.clip(np.floor(np.log2(price)), 0, _NUM_PRICE_BUCKETS - 1).astype(np.int32)


def _strings(codes: np.ndarray, labels: list[str] | tuple[str, ...]) -> pa.Array:
    """A plain string column from integer codes (built through a dictionary: fast)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                pa.array(list(labels), pa.string()))
    return dictionary.cast(pa.string())
