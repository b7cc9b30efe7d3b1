"""What every command shares: error handling, interrupts, ``--json`` output and summary
tables."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import click
import numpy as np

from graphsel._table import format_table
from graphsel.errors import InputError

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "GraphselGroup", "Jsonable", "Terminated", "emit",
           "format_table", "interrupt_exit", "json_option", "sigterm_raises", "to_jsonable"]

EXIT_SIGINT = 130
"""Exit code after Ctrl-C (SIGINT): 128 + 2, as shells report it."""
EXIT_SIGTERM = 143
"""Exit code after SIGTERM: 128 + 15."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by :func:`sigterm_raises`.

    A ``KeyboardInterrupt`` subclass, so that whatever cleans up after Ctrl-C (atomic writes
    remove their temporary files, progress bars close) cleans up after SIGTERM the same way.
    """


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing the process.

    A second SIGTERM while the first one unwinds is ignored, so the cleanup it triggered
    finishes. The previous handler is restored on exit. (The main thread only: signal
    handlers cannot be set elsewhere, and there it does nothing.)
    """
    def terminate(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupt_exit(exc: KeyboardInterrupt) -> tuple[int, str]:
    """The exit code and the one-line message for an interrupt (Ctrl-C or SIGTERM).

    >>> interrupt_exit(Terminated())
    (143, 'error: terminated by SIGTERM; unfinished output files were removed')
    """
    if isinstance(exc, Terminated):
        return EXIT_SIGTERM, "error: terminated by SIGTERM; unfinished output files were removed"
    return EXIT_SIGINT, "error: interrupted (Ctrl-C); unfinished output files were removed"


class GraphselGroup(click.Group):
    """A click group that reports bad input, usage errors and interrupts in one line.

    :class:`InputError` and click's usage errors (a missing or malformed option) give
    ``error: ...`` on stderr and exit code 2; Ctrl-C gives exit code 130 and SIGTERM (with
    :func:`sigterm_raises`) 143, each with one line instead of click's ``Aborted!`` (exit 1).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            message = " ".join(exc.format_message().split())
            click.echo(f"error: {message} (see '{where} -h')", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            code, message = interrupt_exit(exc)
            click.echo(message, err=True)
            ctx.exit(code)


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
