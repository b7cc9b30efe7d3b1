"""Figures of a transfer comparison: a metric per period per strategy, calibration per strategy,
and :func:`save_transfer_plots`, which writes them."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphsel.data.io import check_output_dir
from graphsel.errors import InputError
from graphsel.transfer.protocol.results import PeriodRecord, Results
from graphsel.transfer.train.metrics import expected_calibration_error
from graphsel.viz._common import _check_count, _figure, _save_all
from graphsel.viz.expansion import HOP_COLORS
from graphsel.viz.selection import plot_calibration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = PeriodRecord | Mapping[str, Any]
"""A :class:`~graphsel.transfer.protocol.results.PeriodRecord`, or its ``to_json()`` (e.g. read
back from ``graphsel run --out results.json``, under ``"periods"``)."""

__all__ = [
    "plot_periods",
    "average_over_seeds",
    "plot_transfer_periods",
    "plot_calibrations",
    "TRANSFER_FIGURES",
    "transfer_figures",
    "save_transfer_plots",
]


def plot_periods(results: Iterable[Mapping[str, Any]], metric: str = "auc",
                 ax: Axes | None = None,
                 styles: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """A metric per period, one line per strategy (continual training results).

    With several seeds, average the records first (:func:`average_over_seeds`): a strategy
    may give each period once.

    Args:
        results: dicts like ``{"strategy": "target_only", "period": 0, "auc": 0.71}``;
            optional ``f"{metric}_low"`` and ``f"{metric}_high"`` draw a confidence band.
        metric: the key to plot (default ``"auc"``).
        ax: axes to draw on (default None: a new figure).
        styles: per strategy, keyword arguments of its line (e.g. ``{"color": "k",
            "linestyle": "--"}``) replacing the defaults; its band takes the line's colour.
            Default None.

    Returns:
        The figure; one line per strategy, in order of first appearance, labelled with
        the strategy and going through its periods in increasing order.

    Raises:
        InputError: for no results, a result lacking a key, or one period given twice for a
            strategy.
    """
    by_strategy: dict[str, dict[int, Mapping[str, Any]]] = {}
    for number, result in enumerate(results):
        missing = [key for key in ("strategy", "period", metric) if key not in result]
        if missing:
            raise InputError(f"plot_periods: result {number} has no {missing[0]!r} "
                             f"(keys: {sorted(result)})")
        periods = by_strategy.setdefault(str(result["strategy"]), {})
        if int(result["period"]) in periods:
            raise InputError(f"plot_periods: strategy {result['strategy']!r} has period "
                             f"{result['period']} twice")
        periods[int(result["period"])] = result
    if not by_strategy:
        raise InputError("plot_periods: no results")
    figure, ax = _figure(ax, (6.0, 4.0))
    for number, (strategy, periods) in enumerate(by_strategy.items()):
        x = sorted(periods)
        y = [float(periods[p][metric]) for p in x]
        style = {"marker": "o", "color": HOP_COLORS[number % len(HOP_COLORS)],
                 **(styles or {}).get(strategy, {})}
        (line,) = ax.plot(x, y, label=strategy, **style)
        color = line.get_color()
        low, high = f"{metric}_low", f"{metric}_high"
        if all(low in periods[p] and high in periods[p] for p in x):
            ax.fill_between(x, [periods[p][low] for p in x], [periods[p][high] for p in x],
                            color=color, alpha=0.15, linewidth=0)
    all_periods = sorted({p for periods in by_strategy.values() for p in periods})
    ax.set_xticks(all_periods, [str(p) for p in all_periods])
    ax.set_xlabel("period (evaluated on the next one)")
    ax.set_ylabel(metric.upper() if metric.lower() in ("auc", "gauc") else metric)
    ax.legend(frameon=False, fontsize=8)
    return figure


def average_over_seeds(records: Iterable[Record], metric: str = "auc") -> list[dict[str, Any]]:
    """Per (strategy, period), the mean of ``metric`` over the seeds and its spread.

    >>> average_over_seeds([{"strategy": "a", "period": 0, "auc": 0.6},
    ...                     {"strategy": "a", "period": 0, "auc": 0.8}])
    [{'strategy': 'a', 'period': 0, 'auc': 0.7, 'n_seeds': 2, 'auc_low': 0.6, 'auc_high': 0.8}]

    Args:
        records: ``Results.records`` (one per seed, strategy and period), or dicts with
            ``strategy``, ``period`` and ``metric``. A value of None (a metric undefined on
            those rows) is left out of the mean.
        metric: the key to average (default ``"auc"``).

    Returns:
        One dict per (strategy, period) with at least one value: ``strategy``, ``period``,
        ``metric`` (the mean), ``n_seeds`` (the values averaged) and, from two values on,
        ``f"{metric}_low"`` / ``f"{metric}_high"`` (their min and max, the band
        :func:`plot_periods` draws). Strategies in order of first appearance, then periods
        in increasing order.

    Raises:
        InputError: for a record lacking a key.
    """
    values: dict[str, dict[int, list[float]]] = {}
    for number, given in enumerate(records):
        record = given.to_json() if isinstance(given, PeriodRecord) else given
        missing = [key for key in ("strategy", "period", metric) if key not in record]
        if missing:
            raise InputError(f"average_over_seeds: record {number} has no {missing[0]!r} "
                             f"(keys: {sorted(record)})")
        periods = values.setdefault(str(record["strategy"]), {})
        bucket = periods.setdefault(int(record["period"]), [])
        if record[metric] is not None:
            bucket.append(float(record[metric]))
    out = []
    for strategy, periods in values.items():
        for period in sorted(periods):
            found = periods[period]
            if not found:
                continue
            row: dict[str, Any] = {"strategy": strategy, "period": period,
                                   metric: float(np.mean(found)), "n_seeds": len(found)}
            if len(found) > 1:
                row[f"{metric}_low"], row[f"{metric}_high"] = min(found), max(found)
            out.append(row)
    return out


def plot_transfer_periods(records: Iterable[Record], metric: str = "auc",
                          ax: Axes | None = None,
                          styles: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """:func:`plot_periods` of the seed means (:func:`average_over_seeds`) of a comparison.

    The title says how many seeds were averaged, the band spans their min to max, and the
    last period's tick is marked ``(test)``: it is scored on the test set, the others on
    the next period's target rows.

    Args:
        records: ``Results.records`` (one per seed, strategy and period), or several
            comparisons' records with distinct strategy names (``dataclasses.replace(record,
            strategy=...)`` renames one), or their ``to_json()`` dicts.
        metric, ax, styles: as for :func:`plot_periods`.

    Raises:
        InputError: for a record lacking a key, or no record with a defined ``metric``.
    """
    averaged = average_over_seeds(records, metric)
    if not averaged:
        raise InputError(f"no record with a defined {metric!r}")
    figure = plot_periods(averaged, metric, ax=ax, styles=styles)
    ax = figure.axes[0] if ax is None else ax
    seeds = max(row["n_seeds"] for row in averaged)
    name = metric.upper() if metric.lower() in ("auc", "gauc") else metric
    ax.set_title(f"{name} per period: mean of {seeds} seeds (band: min to max)" if seeds > 1
                 else f"{name} per period (one seed)", fontsize=10)
    periods = sorted({row["period"] for row in averaged})
    ax.set_xticks(periods, [f"{p}\n(test)" if p == periods[-1] else str(p) for p in periods])
    return figure


def plot_calibrations(y_true: Any, predictions: Mapping[str, Any], n_bins: int = 10,
                      ncols: int = 3) -> Figure:
    """One reliability diagram (:func:`plot_calibration`) per model, side by side.

    Args:
        y_true: ``(N,)`` labels, 0 or 1, shared by every model (e.g. ``Results.test_labels``).
        predictions: per model name, its ``(N,)`` predicted probabilities (e.g.
            ``Results.test_predictions``), one panel each in this order.
        n_bins: as for :func:`calibration_bins`.
        ncols: panels per row, >= 1 (default 3).

    Returns:
        The figure; panel ``i`` (``figure.axes``, the count axes excepted) is titled with the
        ``i``-th name, the predicted CTR (mean prediction), the actual CTR (share of
        positives) and the ECE.

    Raises:
        InputError: for no predictions, or as :func:`calibration_bins`.
    """
    from matplotlib.figure import Figure

    if not predictions:
        raise InputError("plot_calibrations: no predictions")
    ncols = min(_check_count("ncols", ncols, 1), len(predictions))
    nrows = math.ceil(len(predictions) / ncols)
    figure = Figure(figsize=(3.8 * ncols, 3.6 * nrows), layout="constrained")
    panels = figure.subplots(nrows, ncols, squeeze=False).ravel()
    y = np.asarray(y_true, dtype=float).reshape(-1)
    for number, (ax, (name, p)) in enumerate(zip(panels, predictions.items())):
        p = np.asarray(p, dtype=float).reshape(-1)
        plot_calibration(y, p, n_bins, ax=ax, xlabel="mean predicted CTR in the bin",
                         ylabel="observed CTR (share of clicks) in the bin")
        ax.set_title(f"{name}\npredicted CTR {p.mean():.3f} · actual CTR {y.mean():.3f} · "
                     f"ECE {expected_calibration_error(y, p, n_bins):.3f}",
                     fontsize=9)
        if number:
            ax.get_legend().remove()
    for ax in panels[len(predictions):]:
        ax.set_visible(False)
    return figure


TRANSFER_FIGURES: dict[str, str] = {
    "periods.png": "AUC per period per strategy, the mean over seeds with a min-max band; the "
                   "last period is the test set.",
    "calibration.png": "One reliability diagram per strategy of its seed-averaged test "
                       "predictions: predicted vs actual CTR per bin, with its ECE.",
}
"""The files :func:`save_transfer_plots` may write, each with the one line that says what it
shows (the captions of the HTML report)."""
PLOT_FILES: tuple[str, ...] = tuple(TRANSFER_FIGURES)
"""The files :func:`save_transfer_plots` may write."""


def transfer_figures(results: Results,
                     metric: str = "auc") -> list[tuple[str, Callable[[], Figure]]]:
    """The figures of a strategy comparison, each as ``(file name, function that draws it)``
    (see :func:`save_transfer_plots`).

    Raises:
        InputError: if no record has a defined ``metric``.
    """
    records, labels, predictions = results.records, results.test_labels, results.test_predictions
    if not average_over_seeds(records, metric):
        raise InputError(f"no record with a defined {metric!r} to plot")
    figures: list[tuple[str, Callable[[], Figure]]] = [
        (PLOT_FILES[0], lambda: plot_transfer_periods(records, metric))]
    if labels is not None and predictions:
        figures.append((PLOT_FILES[1], lambda: plot_calibrations(labels, predictions)))
    return figures


def save_transfer_plots(results: Results, out_dir: str | os.PathLike, *, metric: str = "auc",
                        dpi: int = 100) -> list[Path]:
    """Writes the figures of a strategy comparison as PNG files into ``out_dir`` (made if
    needed).

    Files (each written to a temporary file and renamed, so none is ever partial):
    ``periods.png`` (:func:`plot_transfer_periods`: the seed means of ``metric`` per strategy
    and period, with a min-max band over the seeds when there are several; the last period
    is the test set) and, when ``results`` kept test predictions, ``calibration.png``
    (:func:`plot_calibrations`: one reliability diagram per strategy of its seed-averaged
    test predictions).

    Args:
        results: from :func:`~graphsel.transfer.protocol.runner.compare_strategies`.
        out_dir: the folder to write to.
        metric: the score plotted per period (default ``"auc"``).
        dpi: resolution (default 100).

    Returns:
        The paths written, in the order above.

    Raises:
        InputError: if ``out_dir`` is a file, or no record has a defined ``metric``.
    """
    out_dir = check_output_dir(out_dir)
    try:
        figures = transfer_figures(results, metric)  # fails before making the folder
    except InputError as exc:
        raise InputError(f"save_transfer_plots: {exc}") from None
    return _save_all(figures, out_dir, dpi)
