"""One self-contained HTML page per command: ``graphsel select --html`` and ``graphsel run
--html``.

A page holds the command's tables (as the terminal prints them), its figures embedded as
base64 PNG (``<img src="data:image/png;base64,...">``: nothing is fetched, the file can be
mailed or archived alone) with a one-line caption each, and the configuration used. It has
no script, and its CSS is inline.

>>> page = render_page("A title", [Section("Summary", text="a  1\\nb  2")], {"k": 1})
>>> page.startswith("<!DOCTYPE html>"), "<pre>a  1\\nb  2</pre>" in page
(True, True)
>>> "&lt;b&gt;" in render_page("<b>", [], {})  # text is escaped
True
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphsel._table import format_table
from graphsel.data.io import atomic_path
from graphsel.select.pipeline import SampleSelector
from graphsel.transfer.protocol.results import Results
from graphsel.viz._common import write_png
from graphsel.viz.selection import SELECTION_FIGURES, selection_figures
from graphsel.viz.transfer import TRANSFER_FIGURES, transfer_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["Section", "png_bytes", "render_page", "selection_page", "run_page", "write_html"]


@dataclass(frozen=True)
class Section:
    """One part of a page: a heading, a preformatted text (a table) and figures.

    Attributes:
        heading: the ``<h2>``.
        text: shown in ``<pre>`` (default none).
        figures: ``(caption, PNG bytes)`` pairs, each an embedded ``<img>`` (default none).
    """

    heading: str
    text: str = ""
    figures: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


def png_bytes(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (default 100 dpi)."""
    buffer = io.BytesIO()
    write_png(figure, buffer, dpi)
    return buffer.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
"""


def render_page(title: str, sections: Sequence[Section], config: Any,
                command: str | None = None) -> str:
    """The HTML of a page: the title, the command that made it, the sections, and the
    configuration used (as indented JSON) last.

    Args:
        title: the page's ``<title>`` and ``<h1>``.
        sections: in order.
        config: the configuration used: a dataclass, or anything :func:`json.dumps` takes
            (values it cannot write are written as their ``str``).
        command: the command line (default None: not shown).

    Returns:
        The page, every text escaped.
    """
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
             "<body>", f"<h1>{html.escape(title)}</h1>"]
    if command is not None:
        parts.append(f"<p>Command: <code>{html.escape(command)}</code></p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<pre>{html.escape(section.text)}</pre>")
        for caption, png in section.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(caption)}" '
                         f'src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += ["<h2>Configuration used</h2>", f"<pre>{html.escape(_config_text(config))}</pre>",
              "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _config_text(config: Any) -> str:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)

    def plain(value: Any) -> Any:
        return value.tolist() if hasattr(value, "tolist") else str(value)

    return json.dumps(config, indent=2, default=plain)


def _drawn(figures: Sequence[tuple[str, Callable[[], Figure]]], captions: Mapping[str, str],
           dpi: int) -> list[tuple[str, bytes]]:
    return [(captions[name], png_bytes(make(), dpi)) for name, make in figures]


def selection_page(selector: SampleSelector, *, truth: Any = None,
                   command: str | None = None, dpi: int = 100) -> str:
    """The page of ``graphsel select --html``: the report's table and warnings, every figure
    of ``--plots`` (:func:`~graphsel.viz.selection.selection_figures`), and each stage's
    parameters as fitted.

    Args:
        selector: a fitted :class:`~graphsel.select.pipeline.SampleSelector`.
        truth: ``(N_src,)`` bool planted truth (default None).
        command: the command line, shown at the top (default None).
        dpi: of the figures (default 100).
    """
    report = selector.selection_.report
    summary = "" if report is None else report.format()
    if report is not None and report.warnings:
        summary += "\n\n" + "\n".join(f"warning: {line}" for line in report.warnings)
    config = {"stages": [stage.name for stage in selector.stages_],
              **{stage.name: stage.get_params() for stage in selector.stages_}}
    sections = [Section("Selection", summary),
                Section("Figures", figures=_drawn(selection_figures(selector, truth),
                                                  SELECTION_FIGURES, dpi))]
    return render_page("graphsel select", sections, config, command)


def run_page(results: Results, config: Any, *, command: str | None = None,
             dpi: int = 100) -> str:
    """The page of ``graphsel run --html``: the comparison's tables (as
    :meth:`~graphsel.transfer.protocol.results.Results.table` prints them), the funnel of its
    selection, the figures of ``--plots``
    (:func:`~graphsel.viz.transfer.transfer_figures`), and the experiment's configuration.

    Args:
        results: from :func:`~graphsel.transfer.protocol.runner.compare_strategies`.
        config: the :class:`~graphsel.transfer.config.ExperimentConfig` run (after flags).
        command: the command line, shown at the top (default None).
        dpi: of the figures (default 100).
    """
    sections = [Section("Strategies", results.table()),
                Section("Figures", figures=_drawn(transfer_figures(results),
                                                  TRANSFER_FIGURES, dpi))]
    if results.selection is not None:
        funnel = format_table(["stage", "rows kept", "seconds"],
                              [[stage.name, stage.kept, stage.seconds]
                               for stage in results.selection.stages],
                              title=results.selection.format())
        sections.insert(1, Section("Selection funnel", funnel))
    return render_page("graphsel run", sections, config, command)


def write_html(page: str, path: str | os.PathLike) -> Path:
    """Writes ``page`` to ``path`` atomically (a temporary file, then a rename); returns the
    path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
