"""What every command shares: error handling, ``--json`` output and summary tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import click
import numpy as np

from graphsel._table import format_table
from graphsel.errors import InputError

__all__ = ["GraphselGroup", "Jsonable", "emit", "format_table", "json_option", "to_jsonable"]


class GraphselGroup(click.Group):
    """A click group that turns :class:`InputError` into ``error: ...`` and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of tables.")


@runtime_checkable
class Jsonable(Protocol):
    """A typed result that knows its JSON form (a card, a report, run results)."""

    def to_json(self) -> Any: ...


def to_jsonable(obj: Any) -> Any:
    """Converts typed results, numpy scalars/arrays and nested containers to plain JSON types.

    >>> import numpy as np
    >>> to_jsonable({"rows": np.int64(3), "mask": np.array([True, False]), 1: (0.5,)})
    {'rows': 3, 'mask': [True, False], '1': [0.5]}
    """
    if isinstance(obj, Jsonable):
        return to_jsonable(obj.to_json())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def emit(as_json: bool, payload: Mapping[str, Any] | Jsonable, text: str) -> None:
    """Prints ``payload`` as JSON when ``as_json``, else the human-readable ``text``.

    ``payload`` is a mapping or a typed result; either may hold typed results (converted by
    :func:`to_jsonable`).
    """
    if as_json:
        click.echo(json.dumps(to_jsonable(payload), indent=2))
    else:
        click.echo(text)
