"""What every command shares: error handling, interrupts, ``--json`` output, summary tables,
the terminal options (``--progress/--no-progress``, ``--quiet``) and the examples that end
each ``--help``."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any, Protocol, Self, TextIO, TypeVar, runtime_checkable

import click
import numpy as np
from tqdm import tqdm

from graphsel._table import format_table, round_floats
from graphsel.errors import InputError

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "GraphselGroup", "Jsonable", "StepBar", "Terminated",
           "echo_error", "echo_note", "emit", "examples", "format_table", "interrupt_exit",
           "json_option", "show_progress", "sigterm_raises", "terminal_options", "to_jsonable"]

F = TypeVar("F", bound=Callable[..., Any])

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


def echo_error(line: str) -> None:
    """Prints ``line`` on stderr on a clean line: progress bars still open are closed first
    (a bar that was drawing ends its line), so the error is never glued to a bar."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    click.echo(line, err=True)


def echo_note(line: str) -> None:
    """Prints ``line`` on stderr while progress bars may be drawing (a ``warning:`` during a
    run): the bars are cleared, the line printed, and the bars drawn again below it."""
    with tqdm.external_write_mode(file=sys.stderr):
        click.echo(line, err=True)


class GraphselGroup(click.Group):
    """A click group that reports bad input, usage errors and interrupts in one line.

    :class:`InputError` and click's usage errors (a missing or malformed option) give
    ``error: ...`` on stderr and exit code 2; Ctrl-C gives exit code 130 and SIGTERM (with
    :func:`sigterm_raises`) 143, each with one line instead of click's ``Aborted!`` (exit 1),
    printed on a clean line (:func:`echo_error`). Its ``--help`` lists each command with its
    whole first sentence (click cuts it to the width with "...").
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            echo_error(f"error: {exc}")
            ctx.exit(2)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            message = " ".join(exc.format_message().split())
            echo_error(f"error: {message} (see '{where} -h')")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            code, message = interrupt_exit(exc)
            echo_error(message)
            ctx.exit(code)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def examples(*lines: str) -> str:
    r"""The epilog that ends a command's ``--help``: its example command lines, kept as
    written (click rewraps other text to the terminal's width; a paragraph that starts with
    a ``\b`` line it leaves alone).

    >>> examples("graphsel datasets list").splitlines()
    ['Examples:', '', '\x08', '  graphsel datasets list']
    """
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def terminal_options(command: F) -> F:
    """Adds ``--progress/--no-progress`` and ``-q/--quiet`` to a command that does long work;
    its function takes ``progress`` (None when neither flag is given) and ``quiet``, and
    passes them to :func:`show_progress` and :func:`emit`."""
    command = click.option(
        "-q", "--quiet", is_flag=True,
        help="Print no progress bars, notes or tables: only warnings and errors (and the "
             "object of --json); the exit code says whether it worked.")(command)
    return click.option(
        "--progress/--no-progress", default=None,
        help="Draw progress bars on stderr [default: when stderr is a terminal and "
             "without --json].")(command)


def show_progress(progress: bool | None, quiet: bool = False, as_json: bool = False,
                  stream: TextIO | None = None) -> bool:
    """Whether a command draws progress bars.

    Args:
        progress: ``--progress`` (True: always) or ``--no-progress`` (False: never); None
            when neither is given: only when ``stream`` is a terminal and not ``as_json``.
        quiet: ``--quiet`` (default False): no bars.
        as_json: ``--json`` (default False).
        stream: where the bars go (default None: ``sys.stderr``).

    Raises:
        InputError: ``--progress`` with ``--quiet``.

    >>> import io
    >>> show_progress(None, stream=io.StringIO()), show_progress(True, stream=io.StringIO())
    (False, True)
    """
    if quiet:
        if progress:
            raise InputError("--progress and --quiet contradict each other; give one of them")
        return False
    if progress is not None:
        return progress
    stream = sys.stderr if stream is None else stream
    return not as_json and stream.isatty()


class StepBar:
    """One progress line over a command's named steps, for work that has no bar of its own
    (``expand:  33%|###  | 1/3 [00:01<00:02, expand]``: one step done, ``expand`` running);
    closed (its line cleared) when the ``with`` block ends, by an error too.

    Args:
        desc: what the bar is of, e.g. the command's name.
        steps: the step names, in order.
        show: draw it (see :func:`show_progress`).

    >>> with StepBar("expand", ["read", "expand", "write"], show=False) as bar:
    ...     bar.step("read")
    ...     bar.step("expand")
    """

    def __init__(self, desc: str, steps: Sequence[str], show: bool) -> None:
        self._bar = tqdm(total=len(steps), desc=desc, unit="step", leave=False,
                         disable=not show, file=sys.stderr)
        self._started = False

    def step(self, name: str) -> None:
        """Marks the step before as done and shows ``name`` as the one running."""
        if self._started:
            self._bar.n += 1  # drawn with the new step's name just below, not before it
        self._started = True
        self._bar.set_postfix_str(name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.close()


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


def emit(as_json: bool, payload: Mapping[str, Any] | Jsonable, text: str,
         quiet: bool = False) -> None:
    """Prints ``payload`` as JSON when ``as_json``, else the human-readable ``text`` (nothing
    with ``quiet``, default False).

    ``payload`` is a mapping or a typed result; either may hold typed results (converted by
    :func:`to_jsonable`); its floats are rounded (:func:`graphsel._table.round_floats`).
    """
    if as_json:
        click.echo(json.dumps(round_floats(to_jsonable(payload)), indent=2))
    elif not quiet:
        click.echo(text)
