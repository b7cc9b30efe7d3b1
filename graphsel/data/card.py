"""Dataset cards: what a source and a target log hold, in numbers.

A :class:`DatasetCard` is written as ``card.json`` next to prepared data and printed by
``graphsel validate``, ``graphsel datasets prepare`` and ``graphsel demo``. Its JSON form::

    {"dataset": "synthetic", "options": {...}, "files": {...},      (prepared data only)
     "domains": {"source": {"rows": ..., "users": ..., "items": ..., "label_rate": ...,
                            "ts_min": ..., "ts_max": ..., "start": "2017-11-25 00:00",
                            "end": ..., "domains": [...], "behaviors": {...},
                            "features": [...]},
                 "target": {...}},                                    (with a target log)
     "shared": {"users": ..., "items": ...},                          (with a target log)
     "truth": {"rows": ..., "in_target_community": ...}}              (with ground truth)

``behaviors`` is there only for a log with a ``behavior`` column.

>>> from graphsel.data.log import read_pair
>>> source, target = read_pair(
...     InteractionLog.from_columns(["a", "b", "b"], ["x", "x", "y"], [0, 60, 86400],
...                                 [1, 0, 0], "source", name="source"),
...     InteractionLog.from_columns(["b"], ["z"], [120], [1], "target", name="target"))
>>> card = DatasetCard.of(source, target)
>>> card.shared, card.source.label_rate, card.target.end
(Overlap(users=1, items=0), 0.333333, '1970-01-01 00:02')
>>> print(card.format())
              source            target
------------  ----------------  ----------------
rows          3                 1
users         2                 1
items         2                 1
label_rate    0.3333            1.0000
start         1970-01-01 00:00  1970-01-01 00:02
end           1970-01-02 00:00  1970-01-01 00:02
shared users  1
shared items  0
no item is shared: the target's items are disjoint from the source's
>>> DatasetCard.from_json(card.to_json()) == card
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphsel._table import format_table
from graphsel.data.log import InteractionLog, Overlap, overlap

__all__ = ["DatasetCard", "DomainCard", "TruthSummary", "disjoint_line"]

_TABLE_KEYS = ("rows", "users", "items", "label_rate", "start", "end")


@dataclass(frozen=True)
class DomainCard:
    """Counts for one log.

    Attributes:
        rows: rows of the log.
        users: distinct users.
        items: distinct items.
        label_rate: mean label, rounded to 6 decimals.
        ts_min: first timestamp (Unix seconds).
        ts_max: last timestamp (Unix seconds).
        domains: the distinct values of its ``domain`` column, sorted.
        features: its side-feature columns, in file order.
        behaviors: rows per value of ``behavior`` (sorted by value), or ``None`` for a log
            without that column (default).
    """

    rows: int
    users: int
    items: int
    label_rate: float
    ts_min: int
    ts_max: int
    domains: tuple[str, ...]
    features: tuple[str, ...]
    behaviors: dict[str, int] | None = None

    @classmethod
    def of(cls, log: InteractionLog) -> DomainCard:
        """The counts of ``log``."""
        behaviors = None
        if log.has_behavior:
            values, counts = np.unique(log.column("behavior").astype(str), return_counts=True)
            behaviors = {str(v): int(c) for v, c in zip(values, counts)}
        return cls(rows=len(log), users=len(log.unique_users()),
                   items=len(log.unique_items()),
                   label_rate=round(float(log.label.mean()), 6), ts_min=int(log.ts.min()),
                   ts_max=int(log.ts.max()), domains=tuple(log.domains),
                   features=tuple(log.feature_columns), behaviors=behaviors)

    @property
    def start(self) -> str:
        """``ts_min`` as a UTC date and time, ``"2017-11-25 00:00"``."""
        return _date(self.ts_min)

    @property
    def end(self) -> str:
        """``ts_max`` as a UTC date and time."""
        return _date(self.ts_max)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the module docstring's ``domains.source``."""
        payload: dict[str, Any] = {
            "rows": self.rows, "users": self.users, "items": self.items,
            "label_rate": self.label_rate, "ts_min": self.ts_min, "ts_max": self.ts_max,
            "start": self.start, "end": self.end, "domains": list(self.domains)}
        if self.behaviors is not None:
            payload["behaviors"] = dict(self.behaviors)
        payload["features"] = list(self.features)
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> DomainCard:
        """The inverse of :meth:`to_json` (``start`` and ``end`` follow from the timestamps)."""
        return cls(rows=payload["rows"], users=payload["users"], items=payload["items"],
                   label_rate=payload["label_rate"], ts_min=payload["ts_min"],
                   ts_max=payload["ts_max"], domains=tuple(payload["domains"]),
                   features=tuple(payload["features"]), behaviors=payload.get("behaviors"))


@dataclass(frozen=True)
class TruthSummary:
    """How many source rows the ground truth marks as target-like.

    Attributes:
        rows: source rows (``N_src``).
        in_target_community: those flagged in the truth table.
    """

    rows: int
    in_target_community: int

    def to_json(self) -> dict[str, int]:
        """``{"rows": n, "in_target_community": k}``."""
        return {"rows": self.rows, "in_target_community": self.in_target_community}


@dataclass(frozen=True)
class DatasetCard:
    """The card of a source log and, optionally, a target log sharing its id index.

    Build one with :meth:`of`. Prepared data (:func:`graphsel.data.datasets.prepare`) also
    carries the dataset's name, options, files and ground-truth summary.

    Attributes:
        source: the source log's counts.
        target: the target log's counts, or ``None`` for a one-log card (default).
        shared: users and items present in both logs; ``None`` without a target (default).
        dataset: the registered dataset name, or ``None`` (default).
        options: every option the dataset was built with, defaults included, as JSON values,
            or ``None`` (default).
        files: the files written, by role (``"source"``, ``"target"``, ``"truth"``,
            ``"card"``), or ``None`` (default).
        truth: the ground-truth summary of a dataset that has one, or ``None`` (default).
    """

    source: DomainCard
    target: DomainCard | None = None
    shared: Overlap | None = None
    dataset: str | None = None
    options: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    truth: TruthSummary | None = None

    @classmethod
    def of(cls, source: InteractionLog, target: InteractionLog | None = None, *,
           dataset: str | None = None, options: dict[str, Any] | None = None,
           files: dict[str, str] | None = None,
           truth: TruthSummary | None = None) -> DatasetCard:
        """Counts ``source`` and ``target`` (default ``None``: a one-log card).

        The other arguments are stored as given (default ``None`` each: left out).
        """
        return cls(source=DomainCard.of(source),
                   target=None if target is None else DomainCard.of(target),
                   shared=None if target is None else overlap(source, target),
                   dataset=dataset, options=options, files=files, truth=truth)

    @property
    def domains(self) -> dict[str, DomainCard]:
        """``{"source": ..., "target": ...}`` (no ``"target"`` on a one-log card)."""
        return {"source": self.source} | ({} if self.target is None else {"target": self.target})

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the module docstring, with only the entries that are set."""
        payload: dict[str, Any] = {}
        for key, value in (("dataset", self.dataset), ("options", self.options),
                           ("files", self.files)):
            if value is not None:
                payload[key] = value
        payload["domains"] = {name: card.to_json() for name, card in self.domains.items()}
        if self.shared is not None:
            payload["shared"] = self.shared.to_json()
        if self.truth is not None:
            payload["truth"] = self.truth.to_json()
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> DatasetCard:
        """The inverse of :meth:`to_json`, e.g. for a ``card.json`` read back."""
        domains = payload["domains"]
        shared, truth = payload.get("shared"), payload.get("truth")
        return cls(source=DomainCard.from_json(domains["source"]),
                   target=DomainCard.from_json(domains["target"]) if "target" in domains
                   else None,
                   shared=None if shared is None else Overlap(**shared),
                   dataset=payload.get("dataset"), options=payload.get("options"),
                   files=payload.get("files"),
                   truth=None if truth is None else TruthSummary(**truth))

    def format(self) -> str:
        """A readable table, one column per domain, and a line on the ground truth if any."""
        domains = self.domains
        rows: list[list[Any]] = [
            [key, *(getattr(card, key) for card in domains.values())] for key in _TABLE_KEYS]
        if self.shared is not None:
            padding = [""] * (len(domains) - 1)
            rows.append(["shared users", self.shared.users, *padding])
            rows.append(["shared items", self.shared.items, *padding])
        title = f"dataset: {self.dataset}" if self.dataset is not None else ""
        text = format_table(["", *domains], rows, title=title)
        if self.shared is not None:
            for what, count in (("user", self.shared.users), ("item", self.shared.items)):
                if count == 0:
                    text += "\n" + disjoint_line(what)
        if self.truth is not None:
            text += (f"\ntruth: {self.truth.in_target_community:,} of {self.truth.rows:,} "
                     f"source rows are in the target communities")
        return text


def disjoint_line(what: str, source: str = "the source's") -> str:
    """The line that explains a shared count of 0 (and the coverage of 0 it implies).

    Args:
        what: ``"user"`` or ``"item"``.
        source: whose ``what``s the target's were compared with (default the source's).

    >>> disjoint_line("item")
    "no item is shared: the target's items are disjoint from the source's"
    """
    return f"no {what} is shared: the target's {what}s are disjoint from {source}"


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
