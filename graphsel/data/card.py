"""Dataset cards: what a source and a target log hold, in numbers.

A card is a plain JSON-able dict (written as ``card.json`` next to prepared data, printed by
``graphsel validate`` and ``graphsel demo``)::

    {"domains": {"source": {"rows": ..., "users": ..., "items": ..., "label_rate": ...,
                            "ts_min": ..., "ts_max": ..., "start": "2017-11-25", ...},
                 "target": {...}},
     "shared": {"users": ..., "items": ...}}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from graphsel._table import format_table
from graphsel.data.log import InteractionLog, overlap

__all__ = ["domain_card", "make_card", "format_card"]


def domain_card(log: InteractionLog) -> dict[str, Any]:
    """Counts for one log: rows, users, items, label rate, time span, behaviours."""
    card: dict[str, Any] = {
        "rows": len(log),
        "users": int(len(log.unique_users())),
        "items": int(len(log.unique_items())),
        "label_rate": round(float(log.label.mean()), 6),
        "ts_min": int(log.ts.min()),
        "ts_max": int(log.ts.max()),
        "start": _date(log.ts.min()),
        "end": _date(log.ts.max()),
        "domains": log.domains,
    }
    if log.has_behavior:
        values, counts = np.unique(log.column("behavior").astype(str), return_counts=True)
        card["behaviors"] = {str(v): int(c) for v, c in zip(values, counts)}
    card["features"] = log.feature_columns
    return card


def make_card(
    source: InteractionLog, target: InteractionLog | None = None, **extra: Any
) -> dict[str, Any]:
    """The card of a source log and, optionally, a target log sharing its id index.

    Args:
        source: the source log.
        target: the target log (default ``None``: a one-log card).
        **extra: more top-level entries (dataset name, options, files).
    """
    card: dict[str, Any] = dict(extra)
    card["domains"] = {"source": domain_card(source)}
    if target is not None:
        card["domains"]["target"] = domain_card(target)
        shared = overlap(source, target) or {"users": 0, "items": 0}
        card["shared"] = {"users": int(shared["users"]), "items": int(shared["items"])}
    return card


def format_card(card: dict[str, Any]) -> str:
    """A readable table of a card: one column per domain."""
    domains = card["domains"]
    names = list(domains)
    keys = ["rows", "users", "items", "label_rate", "start", "end"]
    rows = [[key] + [domains[d][key] for d in names] for key in keys]
    if "shared" in card:
        rows.append(["shared users"] + [card["shared"]["users"]] + [""] * (len(names) - 1))
        rows.append(["shared items"] + [card["shared"]["items"]] + [""] * (len(names) - 1))
    title = f"dataset: {card['dataset']}" if "dataset" in card else ""
    return format_table([""] + names, rows, title=title)


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
