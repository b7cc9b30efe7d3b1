"""Figures of a next-item comparison (``task: next_item``): the test metric per domain and
model, each model minus the reference, LC-NTG's gaps and weights per epoch, and
:func:`save_next_item_plots`, which writes them.

Every function reads a :class:`~graphsel.transfer.sequential.runner.SequentialResults`; the
plotted numbers are its own (the table's means, its intervals and comparisons, its runs'
per-epoch gaps and weights), nothing is recomputed here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphsel.data.io import check_output_dir
from graphsel.errors import InputError
from graphsel.viz._common import _figure, _save_all
from graphsel.viz.expansion import HOP_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from graphsel.transfer.sequential.runner import SequentialResults

__all__ = [
    "plot_domain_metric",
    "plot_model_differences",
    "plot_ntg",
    "epoch_bands",
    "NEXT_ITEM_FIGURES",
    "NEXT_ITEM_PLOT_FILES",
    "next_item_figures",
    "save_next_item_plots",
]


def _color(number: int) -> str:
    return HOP_COLORS[number % len(HOP_COLORS)]


def _groups(results: SequentialResults) -> list[str]:
    """``"overall"`` and every domain some run has a test value for (the table's columns)."""
    from graphsel.transfer.sequential.evaluate import OVERALL

    return [OVERALL, *[d for d in results.domain_names
                       if any(d in run.sampled for run in results.runs)]]


def _group_labels(results: SequentialResults, groups: Sequence[str]) -> list[str]:
    return [f"{g}\n(n={results.group_users[g]:,})" if g in results.group_users else g
            for g in groups]


def _offsets(count: int, width: float = 0.8) -> np.ndarray:
    """Centres of ``count`` side-by-side marks within one group of ``width``."""
    step = width / count
    return (np.arange(count) - (count - 1) / 2) * step


def plot_domain_metric(results: SequentialResults, ax: Axes | None = None) -> Figure:
    """The test metric (``evaluation.metric``, sampled negatives) per group and model.

    One group of bars per column of the table (overall, then each domain, with its test
    users), one bar per model: its height is the table's number
    (``results.mean(model, group, metric)``, the mean over seeds) and its error bar spans
    ``results.intervals[model][group]`` (a bootstrap 95 % CI over the group's users; none
    when ``results`` has no interval for it).

    Args:
        results: from :func:`~graphsel.transfer.sequential.runner.run_next_item`.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure; bar container ``i`` of the axes (``ax.containers``, in model order) holds
        model ``i``'s bars, in group order.
    """
    metric, models, groups = results.config.evaluation.metric, results.config.models, \
        _groups(results)
    figure, ax = _figure(ax, (max(6.0, 1.1 * len(groups) * max(1, len(models)) / 2), 4.2))
    x, offsets = np.arange(len(groups)), _offsets(len(models))
    for number, model in enumerate(models):
        heights = np.array([results.mean(model, g, metric) for g in groups])
        intervals = results.intervals.get(model, {})
        low = np.array([heights[i] - intervals[g][1] if g in intervals else np.nan
                        for i, g in enumerate(groups)])
        high = np.array([intervals[g][2] - heights[i] if g in intervals else np.nan
                         for i, g in enumerate(groups)])
        ax.bar(x + offsets[number], heights, width=0.8 / len(models), label=model,
               color=_color(number), yerr=np.vstack([low, high]), capsize=2,
               error_kw={"elinewidth": 0.8, "ecolor": "black"})
    ax.set_xticks(x, _group_labels(results, groups), fontsize=8)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"test {metric}, {results.config.evaluation.negatives} sampled negatives: "
                 f"mean of {results.config.seeds} seed(s), 95% CI over users", fontsize=10)
    ax.legend(frameon=False, fontsize=8, ncols=min(3, len(models)),
              loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return figure


def plot_model_differences(results: SequentialResults, ax: Axes | None = None) -> Figure:
    """Each model's test metric minus the reference's, per group, with the paired bootstrap
    95 % CI of ``results.comparisons``.

    Args:
        results: from :func:`~graphsel.transfer.sequential.runner.run_next_item`.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure; error-bar container ``i`` (``ax.containers``) is comparison ``i``: its
        points are the differences, its bars the intervals, in group order (a group the
        comparison lacks is NaN).

    Raises:
        InputError: if ``results`` has no comparison (one model only).
    """
    if not results.comparisons:
        raise InputError("plot_model_differences: no model besides the reference "
                         f"{results.config.reference!r}")
    groups, models = _groups(results), list(results.config.models)
    figure, ax = _figure(ax, (max(6.0, 1.1 * len(groups) * len(results.comparisons) / 2), 4.2))
    x, offsets = np.arange(len(groups)), _offsets(len(results.comparisons))
    nan = (np.nan, np.nan, np.nan)
    for number, comparison in enumerate(results.comparisons):
        diff, lo, hi = np.array([comparison.groups.get(g, nan) for g in groups]).T
        ax.errorbar(x + offsets[number], diff, yerr=np.vstack([diff - lo, hi - diff]),
                    fmt="o", markersize=4, capsize=2, label=comparison.model,
                    color=_color(models.index(comparison.model)))
    ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_xticks(x, _group_labels(results, groups), fontsize=8)
    metric = results.comparisons[0].metric
    ax.set_ylabel(f"test {metric} minus {results.config.reference}'s")
    ax.set_title(f"{metric} minus {results.config.reference}'s (mean of "
                 f"{results.config.seeds} seed(s)): paired bootstrap 95% CI over users",
                 fontsize=10)
    ax.legend(frameon=False, fontsize=8, ncols=min(3, len(results.comparisons)),
              loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return figure


def epoch_bands(series: Sequence[Sequence[Sequence[float]]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per epoch and domain, the mean, min and max over the seeds that reached the epoch.

    >>> mean, low, high = epoch_bands([[[1.0, 2.0], [3.0, 4.0]], [[3.0, float("nan")]]])
    >>> mean.tolist(), low.tolist(), high.tolist()
    ([[2.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]], [[3.0, 2.0], [3.0, 4.0]])

    Args:
        series: per seed, per epoch, one value per domain (NaN: no value that epoch); seeds
            may have run different numbers of epochs (early stopping).

    Returns:
        ``(mean, low, high)``, each ``(E, D)`` with ``E`` the longest run; NaN where no
        seed has a value.
    """
    epochs = max(len(seed) for seed in series)
    domains = max(len(row) for seed in series for row in seed)
    values = np.full((len(series), epochs, domains), np.nan)
    for number, seed in enumerate(series):
        if seed:
            values[number, :len(seed)] = np.asarray(seed, dtype=float)
    finite = np.isfinite(values)
    count = finite.sum(0)
    mean = np.where(count > 0, np.where(finite, values, 0.0).sum(0) / np.maximum(count, 1),
                    np.nan)
    low = np.where(finite, values, np.inf).min(0)
    high = np.where(finite, values, -np.inf).max(0)
    return mean, np.where(count > 0, low, np.nan), np.where(count > 0, high, np.nan)


def _ntg_models(results: SequentialResults) -> list[str]:
    """The models whose runs logged gaps (the two-path variants), in config order."""
    return [m for m in results.config.models
            if any(run.model == m and run.gaps for run in results.runs)]


def plot_ntg(results: SequentialResults) -> Figure:
    """LC-NTG per epoch: for each two-path model, the gap ``phi_d = L_S(d) - L_C(d)`` per
    domain (the epoch's mean; negative: joint training hurts the domain) and the CDSR weight
    per domain at the epoch's end.

    One row per model (left: gaps, right: weights), one line per domain: the mean over the
    seeds that reached the epoch (:func:`epoch_bands`), with a min-max band when there are
    several; dotted vertical lines mark the epochs the seeds chose on validation.

    Args:
        results: from :func:`~graphsel.transfer.sequential.runner.run_next_item`.

    Returns:
        The figure; row ``r`` is ``figure.axes[2 r]`` (gaps) and ``figure.axes[2 r + 1]``
        (weights), line ``d`` of each (``ax.lines``, before the dotted ones) is domain ``d``.

    Raises:
        InputError: if no run logged gaps (no two-path model in the comparison).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from graphsel.transfer.sequential.options import variant_config

    models = _ntg_models(results)
    if not models:
        raise InputError("plot_ntg: no model with both paths (SyNCRec or an ablation) ran")
    figure = Figure(figsize=(11.0, 3.0 * len(models) + 0.6), layout="constrained")
    panels = figure.subplots(len(models), 2, squeeze=False)
    for row, model in enumerate(models):
        runs = [run for run in results.runs if run.model == model]
        chosen = sorted({run.best_epoch for run in runs})
        weighted = variant_config(model, results.config.model).lc_ntg
        for ax, key, label in ((panels[row, 0], "gaps", "gap L_S - L_C"),
                               (panels[row, 1], "weights", "CDSR weight" if weighted
                                else "CDSR weight (uniform: no LC-NTG)")):
            mean, low, high = epoch_bands([getattr(run, key) or [] for run in runs])
            epochs = np.arange(len(mean))
            for number, domain in enumerate(results.domain_names):
                (line,) = ax.plot(epochs, mean[:, number], marker=".", label=domain,
                                  color=_color(number))
                if len(runs) > 1:
                    ax.fill_between(epochs, low[:, number], high[:, number],
                                    color=line.get_color(), alpha=0.15, linewidth=0)
            for epoch in chosen:
                ax.axvline(epoch, color="gray", linestyle=":", linewidth=1)
            if key == "gaps":
                ax.axhline(0.0, color="gray", linewidth=0.8)
            ax.set_title(f"{model}: {label} (mean of {len(runs)} seed(s)); epochs chosen: "
                         f"{', '.join(map(str, chosen))}", fontsize=9)
            ax.set_xlabel("epoch (from 0)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(label)
    panels[0, 1].legend(frameon=False, fontsize=8, loc="upper left",
                        bbox_to_anchor=(1.01, 1.0))
    return figure


NEXT_ITEM_FIGURES: dict[str, str] = {
    "domains.png": "The test metric (evaluation.metric, sampled negatives) per domain and model, "
                   "the mean over seeds, with a bootstrap 95% CI over the domain's users.",
    "differences.png": "Each model's test metric minus the reference's, overall and per "
                       "domain, with a paired bootstrap 95% CI over users.",
    "ntg.png": "LC-NTG per epoch for each model with both paths: the gap L_S - L_C per "
               "domain (negative: joint training hurts) and the CDSR weight per domain.",
}
"""The files :func:`save_next_item_plots` may write, each with the line that says what it
shows."""
NEXT_ITEM_PLOT_FILES: tuple[str, ...] = tuple(NEXT_ITEM_FIGURES)
"""The files :func:`save_next_item_plots` may write."""


def next_item_figures(results: SequentialResults) -> list[tuple[str, Callable[[], Figure]]]:
    """The figures of a next-item comparison, each as ``(file name, function that draws
    it)``: ``domains.png`` always, ``differences.png`` with a model besides the reference,
    ``ntg.png`` with a two-path model."""
    figures: list[tuple[str, Callable[[], Figure]]] = [
        ("domains.png", lambda: plot_domain_metric(results))]
    if results.comparisons:
        figures.append(("differences.png", lambda: plot_model_differences(results)))
    if _ntg_models(results):
        figures.append(("ntg.png", lambda: plot_ntg(results)))
    return figures


def save_next_item_plots(results: SequentialResults, out_dir: str | os.PathLike, *,
                         dpi: int = 100) -> list[Path]:
    """Writes the figures of a next-item comparison as PNG files into ``out_dir`` (made if
    needed), each to a temporary file renamed into place, cropped to what is drawn.

    Files (:data:`NEXT_ITEM_FIGURES`, see :func:`next_item_figures` for which):
    ``domains.png`` (:func:`plot_domain_metric`), ``differences.png``
    (:func:`plot_model_differences`), ``ntg.png`` (:func:`plot_ntg`).

    Args:
        results: from :func:`~graphsel.transfer.sequential.runner.run_next_item`.
        out_dir: the folder to write to.
        dpi: resolution (default 100).

    Returns:
        The paths written, in the order above.

    Raises:
        InputError: if ``out_dir`` is a file.
    """
    out_dir = check_output_dir(out_dir)
    return _save_all(next_item_figures(results), out_dir, dpi)
