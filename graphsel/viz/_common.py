"""What every figure module shares: a pyplot-free figure, bar labels, PNG files written atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphsel.data.io import atomic_path
from graphsel.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and the figure that holds it, or a new pyplot-free figure with one axes.

    An ``ax`` inside a sub-figure gives the top-level figure, the one that can be saved.
    """
    from matplotlib.figure import Figure

    if ax is not None:
        holder = ax.figure
        return (holder if isinstance(holder, Figure) else holder.figure), ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def _annotate_bars(ax: Axes, bars: Any, labels: Sequence[str], **kw: Any) -> None:
    ax.bar_label(bars, labels=list(labels), fontsize=8, padding=2, **kw)


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_axis_off()


def write_png(figure: Figure, target: Any, dpi: int) -> None:
    """``figure`` as PNG into ``target`` (a path or a binary file), cropped to what is drawn
    (a title or legend outside the axes is never cut off)."""
    figure.savefig(target, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15)


def _save(figure: Figure, path: Path, dpi: int) -> Path:
    with atomic_path(path) as tmp:
        write_png(figure, tmp, dpi)
    return path


def _save_all(figures: Iterable[tuple[str, Callable[[], Figure]]], out_dir: Path,
              dpi: int) -> list[Path]:
    """Makes ``out_dir`` and writes each ``(name, make)`` figure into it (:func:`_save`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_save(make(), out_dir / name, dpi) for name, make in figures]
