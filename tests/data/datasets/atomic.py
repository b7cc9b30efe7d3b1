"""Tiny RecBole atomic files (``ml-1m.{item,user,inter}.gz``) for the MovieLens tests."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

Rows = Sequence[Sequence[str]]


def write_atomic(path: Path, rows: Rows) -> None:
    """One gzipped, tab-separated atomic file; the first row is the ``name:type`` header."""
    with gzip.open(path, "wt") as handle:
        handle.write("".join("\t".join(row) + "\n" for row in rows))


def write_ml1m_folder(folder: Path, items: Rows, users: Rows, inter: Rows) -> Path:
    """Writes ``ml-1m.item.gz``, ``ml-1m.user.gz`` and ``ml-1m.inter.gz`` into ``folder``."""
    for name, rows in (("item", items), ("user", users), ("inter", inter)):
        write_atomic(folder / f"ml-1m.{name}.gz", rows)
    return folder
