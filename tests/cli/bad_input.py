"""The bad-input table's parts: input builders and :class:`Case`, one line per case.

A case runs one command in a fresh workspace folder (the working directory, so paths in
arguments and messages are relative, as a user types them). Its ``inputs`` map a path in the
workspace to a builder that writes it. After the run the suite checks the exit code, that
stderr is exactly one line ``error: ...`` holding every expected word, that stdout is empty,
and that the workspace holds exactly the same files with the same bytes (sha256): no output,
no temporary file, no input changed.

``{root}`` in the arguments and words is the workspace's absolute path, ``{name}`` its folder
name (to spell a path through ``..``).

Adding a case is one line in the table, e.g.::

    Case("select", "out-is-source", "select --source s.parquet --target t.parquet "
         "--out ./s.parquet", {"s.parquet": src(), "t.parquet": tgt()}, ("--out", "is the input"))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.data.datasets.atomic import write_atomic

Builder = Callable[[Path, Path], object]
"""Writes an input at ``path``; the second argument is the workspace root."""

SOURCE: dict[str, Any] = {
    "user_id": [1, 2, 3, 1, 2], "item_id": [10, 11, 10, 11, 12],
    "ts": [100, 200, 300, 400, 500], "label": [0, 1, 1, 0, 1], "domain": ["source"] * 5}
"""A valid source log: 5 rows (the domain classifier's 5 folds), both labels."""
TARGET: dict[str, Any] = {
    "user_id": [3, 4, 5, 4, 5], "item_id": [10, 14, 15, 14, 15],
    "ts": [600, 700, 800, 900, 1000], "label": [1, 0, 1, 0, 0], "domain": ["target"] * 5}
"""A valid target log sharing user 3 and item 10 with :data:`SOURCE`."""


def table(base: Mapping[str, Any], **changes: Any) -> pa.Table:
    """``base`` with columns replaced (a ``pa.Array`` keeps its type), added, or dropped
    (``None``)."""
    columns = {**base, **changes}
    return pa.table({name: values for name, values in columns.items() if values is not None})


def src(**changes: Any) -> Builder:
    """The valid source as Parquet, with ``changes`` (see :func:`table`)."""
    return parquet(table(SOURCE, **changes))


def tgt(**changes: Any) -> Builder:
    """The valid target as Parquet, with ``changes``."""
    return parquet(table(TARGET, **changes))


def parquet(data: pa.Table) -> Builder:
    return lambda path, root: pq.write_table(data, path)


def duplicated(column: str) -> Builder:
    """The valid source with ``column`` a second time."""
    base = table(SOURCE)
    names = [*base.column_names, column]
    return parquet(pa.Table.from_arrays([*base.columns, base.column(column)], names=names))


def text(content: str) -> Builder:
    return lambda path, root: path.write_text(content)


def raw(content: bytes) -> Builder:
    return lambda path, root: path.write_bytes(content)


def gz(content: str | bytes) -> Builder:
    data = content.encode() if isinstance(content, str) else content
    return lambda path, root: path.write_bytes(gzip.compress(data, mtime=0))


def half(builder: Builder) -> Builder:
    """What ``builder`` writes, cut in the middle (a truncated download)."""

    def build(path: Path, root: Path) -> None:
        builder(path, root)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return build


def folder(**files: Builder) -> Builder:
    """A folder holding ``files`` (names with dots: pass a dict with ``**{...}``)."""

    def build(path: Path, root: Path) -> None:
        path.mkdir()
        for name, builder in files.items():
            builder(path / name, root)

    return build


def link(to: str) -> Builder:
    """A symbolic link to ``to`` (relative to the link's folder)."""
    return lambda path, root: path.symlink_to(to)


def hardlink(to: str) -> Builder:
    """A hard link to the workspace file ``to`` (build it first: inputs are built in order)."""
    return lambda path, root: os.link(root / to, path)


ML_ITEMS = [("item_id:token", "release_year:float", "genre:token"),
            ("A (1990)", "1990", "Documentary Drama"), ("B (1991)", "1991", "Comedy")]
ML_USERS = [("user_id:token", "age:float", "gender:token", "occupation:float"),
            ("u1", "1", "F", "10"), ("u2", "56", "M", "16")]
ML_INTER = [("user_id:token", "item_id:token", "rating:float", "timestamp:float"),
            ("u1", "A (1990)", "5", "100"), ("u1", "B (1991)", "3", "200"),
            ("u2", "B (1991)", "4", "300"), ("u2", "A (1990)", "1", "400")]


def ml1m(items: Any = ML_ITEMS, users: Any = ML_USERS, inter: Any = ML_INTER) -> Builder:
    """A tiny MovieLens-1M folder; a part given as a :data:`Builder` replaces that file,
    ``None`` leaves it out."""

    def build(path: Path, root: Path) -> None:
        path.mkdir()
        for name, rows in (("item", items), ("user", users), ("inter", inter)):
            if rows is None:
                continue
            target = path / f"ml-1m.{name}.gz"
            rows(target, root) if callable(rows) else write_atomic(target, rows)

    return build


def ml_inter(*rows: tuple[str, ...], header: tuple[str, ...] = ML_INTER[0]) -> list:
    return [header, *rows]


TAOBAO = "1,100,7,pv,1000\n1,100,7,buy,1030\n2,100,7,pv,1001\n2,200,9,pv,1002\n"


def taobao(content: str = TAOBAO, *, compress: Callable[[str], Builder] = gz) -> Builder:
    """A Taobao UserBehavior folder with ``UserBehavior.csv.gz`` holding ``content``."""
    return folder(**{"UserBehavior.csv.gz": compress(content)})


@dataclass(frozen=True)
class Case:
    """One bad input: the command it belongs to (for the counts), an id, the arguments, the
    inputs to build, the words the error line must hold, and the exit code."""

    command: str
    id: str
    args: str
    inputs: Mapping[str, Builder] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    code: int = 2

    def argv(self, root: Path) -> list[str]:
        return [part.format(root=root, name=root.name) for part in shlex.split(self.args)]

    def expected(self, root: Path) -> list[str]:
        return [word.format(root=root, name=root.name) for word in self.words]

    def build(self, root: Path) -> None:
        for name, builder in self.inputs.items():
            builder(root / name, root)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones too) with its sha256 (folders and links by
    kind), so that any new, removed or changed file shows."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                state[key] = "link -> " + os.readlink(path)
            elif path.is_dir():
                state[key] = "dir"
            else:
                state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state
