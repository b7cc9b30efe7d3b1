"""What every command shares: error handling, ``--json`` output and summary tables."""

from __future__ import annotations

import json
from typing import Any

import click
import numpy as np

from graphsel._table import format_table
from graphsel.errors import InputError

__all__ = ["GraphselGroup", "json_option", "emit", "format_table", "to_jsonable"]


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


def to_jsonable(obj: Any) -> Any:
    """Converts numpy scalars/arrays and nested containers to plain JSON types."""
    if isinstance(obj, dict):
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


def emit(as_json: bool, payload: dict, text: str) -> None:
    """Prints ``payload`` as JSON when ``as_json``, else the human-readable ``text``."""
    if as_json:
        click.echo(json.dumps(to_jsonable(payload), indent=2))
    else:
        click.echo(text)
