"""Taobao UserBehavior (Tianchi) page views, split into domains by item category.

``UserBehavior.csv.gz`` has no header: ``user_id,item_id,category_id,behavior_type,
timestamp`` with ``behavior_type`` in ``pv`` / ``cart`` / ``fav`` / ``buy``. A row with a
missing timestamp (the staged head ends with a truncated line) is dropped.

One log row per page view (``pv``):

* ``behavior`` = the deepest action the user took on that item AT OR AFTER the view, ranked
  ``"pv"`` < ``"fav"`` < ``"cart"`` < ``"buy"`` (a cart is the stronger purchase intent, so
  a later cart and fav together give ``"cart"``);
* ``label`` (option ``label``, :data:`LABELS`): with ``"buy"`` (the default) 1 when the user
  bought the item at or after the view, i.e. ``label == (behavior == "buy")``: a purchase
  (CVR-style) label, since every row is a click; with ``"engagement"`` 1 when any of
  fav / cart / buy followed, i.e. ``label == (behavior != "pv")``: on the staged head 1.7x
  the positives of ``buy`` (665 instead of 400 of the 15,390 views of the ten categories
  of ``configs/taobao.yaml``), so a small target's test set can rank strategies;
* ``category_id`` (int64, categorical) is the side feature; ``ts`` is the view's time.

TARGET = views of items in ``target_categories``, SOURCE = all other views; rows keep the
file order. The default target categories (:data:`DEFAULT_TARGET_CATEGORIES`) were chosen on
the staged 84k-line head by measuring: three mid-sized categories (1,007 / 480 / 475 views),
each with 11-20 buyers, which together give 1,962 target views by 330 users (all of whom
also browse source categories) on 1,252 items, 83 views followed by a buy (4.2 %, against
2.6 % in the source: the target has its own conversion rate).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from graphsel.data.datasets._files import data_file, data_folder
from graphsel.data.datasets._registry import DatasetSplit, register_dataset
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError, choice_error

__all__ = ["taobao_userbehavior", "read_user_behavior", "view_labels", "category_ids",
           "DEFAULT_TARGET_CATEGORIES", "DEPTH", "LABELS"]

_NAME = "taobao-userbehavior"
_EXAMPLE = "../shared/data/taobao-userbehavior-head"
_FILE = "UserBehavior.csv.gz"
_COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
DEPTH = ("pv", "fav", "cart", "buy")
"""Behaviours from shallow to deep; a view's ``behavior`` is the deepest one that follows."""

LABELS: dict[str, str] = {"buy": "buy", "engagement": "fav"}
"""Label option -> the shallowest behaviour that counts as positive (see :data:`DEPTH`)."""

DEFAULT_TARGET_CATEGORIES: tuple[int, ...] = (2735466, 1464116, 1299190)
"""Target categories by default (measured on the staged head, see the module docstring)."""


def read_user_behavior(path: Path) -> pd.DataFrame:
    """Reads a headerless UserBehavior CSV; drops rows with a missing timestamp.

    Returns:
        A frame with columns ``user_id``, ``item_id``, ``category_id`` (int64),
        ``behavior_type`` (str) and ``timestamp`` (int64), in file order.

    Raises:
        InputError: unreadable file, an extra column, or an unknown behaviour, naming the file.
    """

    def skip_short(row: pacsv.InvalidRow) -> str:
        # A truncated line (fewer fields) has no timestamp: dropped like a null one.
        return "skip" if row.actual_columns < row.expected_columns else "error"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(_COLUMNS)),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip_short),
            convert_options=pacsv.ConvertOptions(column_types={
                "user_id": pa.int64(), "item_id": pa.int64(), "category_id": pa.int64(),
                "behavior_type": pa.string(), "timestamp": pa.int64()}),
        )
    except (pa.ArrowException, OSError, EOFError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable UserBehavior CSV ({reason})") from None
    frame = table.to_pandas()
    frame = frame[frame["timestamp"].notna()].reset_index(drop=True)
    for column in ("user_id", "item_id", "category_id"):
        if frame[column].isna().any():
            row = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
            raise InputError(f"{path}: column '{column}' is empty at data row {row}")
    unknown = ~frame["behavior_type"].isin(DEPTH).to_numpy()
    if unknown.any():
        value = frame["behavior_type"].iloc[int(np.flatnonzero(unknown)[0])]
        raise InputError(f"{path}: column 'behavior_type' has value {value!r}, expected one "
                         f"of {', '.join(DEPTH)}")
    return frame.astype({c: np.int64 for c in ("user_id", "item_id", "category_id",
                                                  "timestamp")})


def view_labels(actions: pd.DataFrame, label: str = "buy") -> pd.DataFrame:
    """The page views of ``actions`` with their ``behavior`` and ``label``.

    Args:
        actions: columns ``user_id``, ``item_id``, ``category_id``, ``behavior_type``,
            ``timestamp`` (as from :func:`read_user_behavior`).
        label: ``"buy"`` (1 when that action is ``buy``) or ``"engagement"`` (1 when it is
            any of fav / cart / buy). Default ``"buy"``.

    Returns:
        The ``pv`` rows in their original order, plus ``behavior`` (deepest action on the
        same user and item at or after the view, see :data:`DEPTH`) and ``label`` (int8).

    Raises:
        InputError: an unknown ``label``.

    >>> actions = pd.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [7, 7, 7, 8],
    ...     "category_id": [3, 3, 3, 3], "behavior_type": ["pv", "buy", "pv", "pv"],
    ...     "timestamp": [10, 20, 30, 40]})
    >>> view_labels(actions)[["timestamp", "behavior", "label"]].values.tolist()
    [[10, 'buy', 1], [30, 'pv', 0], [40, 'pv', 0]]
    >>> actions.loc[1, "behavior_type"] = "fav"
    >>> view_labels(actions, "engagement")[["behavior", "label"]].values.tolist()
    [['fav', 1], ['pv', 0], ['pv', 0]]
    """
    if label not in LABELS:
        raise choice_error("label", label, list(LABELS))
    keys = ["user_id", "item_id"]
    views = actions[actions["behavior_type"] == "pv"]
    deeper = actions[actions["behavior_type"] != "pv"]
    last = deeper.groupby(keys + ["behavior_type"])["timestamp"].max().unstack()
    at = views[keys].merge(last, how="left", left_on=keys, right_index=True)
    depth = np.zeros(len(views), dtype=np.int64)
    ts = views["timestamp"].to_numpy()
    for level, behavior in enumerate(DEPTH[1:], start=1):
        if behavior in at.columns:
            later = at[behavior].to_numpy(dtype=np.float64) >= ts  # NaN (never) is False
            depth = np.where(later, level, depth)
    views = views.reset_index(drop=True).copy()
    views["behavior"] = np.asarray(DEPTH, dtype=object)[depth]
    views["label"] = (depth >= DEPTH.index(LABELS[label])).astype(np.int8)
    return views


def category_ids(value: Iterable[int] | int | str) -> list[int]:
    """Category ids from a list, one id, or a comma-separated string (``"1, 2"``).

    Raises:
        InputError: a part that is not an integer, or no id at all.
    """
    parts: Iterable[int | str]
    if isinstance(value, str):
        parts = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, Iterable):
        parts = value
    else:
        parts = [value]
    categories = []
    for part in parts:
        try:
            categories.append(int(part))
        except (TypeError, ValueError):
            raise InputError(f"option 'target_categories': {part!r} is not an integer "
                             f"category id") from None
    if not categories:
        raise InputError("option 'target_categories' is empty, expected category ids")
    return categories


CategoryIds = Annotated[Iterable[int] | str, category_ids]
"""Category ids, or their comma-separated text (read by :func:`category_ids` on the command
line, so the card records the ids)."""


@register_dataset(_NAME)
def taobao_userbehavior(
    *, path: str | os.PathLike | None = None,
    target_categories: CategoryIds = DEFAULT_TARGET_CATEGORIES,
    label: str = "buy",
) -> DatasetSplit:
    """Taobao UserBehavior page views; target = a few item categories (needs path).

    Args:
        path: the folder holding ``UserBehavior.csv.gz`` (required).
        target_categories: category ids of the target domain, comma-separated on the command
            line (default 2735466, 1464116 and 1299190: :data:`DEFAULT_TARGET_CATEGORIES`).
        label: ``buy`` (a purchase followed the view) or ``engagement`` (any of fav, cart,
            buy followed) (default ``buy``).

    Raises:
        InputError: missing folder or file, unreadable file, a bad category id, or a target
            category with no page view in the file.
    """
    categories = category_ids(target_categories)
    folder = data_folder(_NAME, path, _EXAMPLE)
    file = data_file(folder, _FILE)
    if label not in LABELS:
        raise choice_error("label", label, list(LABELS))
    views = view_labels(read_user_behavior(file), label)
    present = set(views["category_id"].unique().tolist())
    absent = [c for c in categories if c not in present]
    if absent:
        raise InputError(f"{file}: target category {absent[0]} has no page view "
                         f"(option 'target_categories')")
    in_target = views["category_id"].isin(categories).to_numpy()
    table = pa.table({
        "user_id": pa.array(views["user_id"].to_numpy()),
        "item_id": pa.array(views["item_id"].to_numpy()),
        "ts": pa.array(views["timestamp"].to_numpy()),
        "label": pa.array(views["label"].to_numpy()),
        "domain": pa.array(np.where(in_target, "target", "source").astype(object), pa.string()),
        "behavior": pa.array(views["behavior"].to_numpy(dtype=object), pa.string()),
        "category_id": pa.array(views["category_id"].to_numpy()),
    })
    source = InteractionLog.from_table(table.filter(pa.array(~in_target)),
                                       name=f"{file} (source)")
    target = InteractionLog.from_table(table.filter(pa.array(in_target)),
                                       name=f"{file} (target)")
    return DatasetSplit(*read_pair(source, target))
