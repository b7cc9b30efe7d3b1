"""Figures of a selection: the funnel, score histograms, selected rows per hop, the domain
classifier's calibration, and :func:`save_selection_plots`, which writes them all."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphsel.data.io import check_output_dir
from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.select.domain import DomainClassifier
from graphsel.select.expansion import GraphExpansion
from graphsel.select.pipeline import SampleSelector, Selection, SelectionReport

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from graphsel.viz._common import _annotate_bars, _check_count, _figure, _no_data, _save
from graphsel.viz.expansion import (
    TARGET_COLOR,
    USER_COLOR,
    draw_expansion,
    hop_color,
    plot_hops,
    typical_seed,
)

__all__ = [
    "plot_funnel",
    "plot_scores",
    "plot_selected_hops",
    "CalibrationBins",
    "calibration_bins",
    "plot_calibration",
    "save_selection_plots",
]


def plot_funnel(report: SelectionReport, ax: Axes | None = None) -> Figure:
    """Source rows kept by each stage of a selection report.

    Args:
        report: ``selection.report``, a :class:`~graphsel.select.pipeline.SelectionReport`.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure: one horizontal bar per row of the funnel, ``source`` first, whose widths
        are the source rows and each stage's ``kept``, labelled with the share of the source
        and the stage's note (e.g. the domain classifier's AUC).
    """
    if not isinstance(report, SelectionReport):
        raise InputError(f"plot_funnel needs a SelectionReport (selection.report), got "
                         f"{type(report).__name__}")
    figure, ax = _figure(ax, (6.0, 1.2 + 0.55 * (len(report.stages) + 1)))
    source = report.source_rows
    names = ["source"] + [stage.name for stage in report.stages]
    kept = [source] + [stage.kept for stage in report.stages]
    positions = np.arange(len(names))
    bars = ax.barh(positions, kept, color=[USER_COLOR] + [hop_color(2)] * len(report.stages))
    notes = [""] + [f", {note}" if (note := stage.details.note()) else ""
                    for stage in report.stages]
    _annotate_bars(ax, bars, [f"{n:,} ({n / max(source, 1):.1%}){note}"
                              for n, note in zip(kept, notes)])
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.margins(x=0.35)
    ax.set_xlabel("source rows kept")
    ax.set_title(f"selection funnel (target: {report.target_rows:,} rows)", fontsize=10)
    return figure


def _shares(values: np.ndarray) -> np.ndarray:
    """Weights that make a histogram of ``values`` sum to 1."""
    return np.full(len(values), 1.0 / max(len(values), 1))


def _histograms(ax: Axes, groups: Sequence[tuple[str, np.ndarray, str]], bins: np.ndarray,
                xlabel: str) -> None:
    for label, values, color in groups:
        ax.hist(values, bins=bins.tolist(), weights=_shares(values), histtype="stepfilled", alpha=0.45,
                color=color, edgecolor=color, label=f"{label} (n={len(values):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of rows")
    ax.legend(frameon=False, fontsize=8)


def plot_scores(selection: Selection, target_p: Any = None, truth: Any = None,
                bins: int = 30) -> Figure:
    """Score histograms: ``p_target`` of candidates vs target rows, ``knn_score`` vs truth.

    Each histogram is normalised to shares (its bars sum to 1), so groups of very different
    sizes compare.

    Args:
        selection: a :class:`graphsel.select.pipeline.Selection`; rows with a NaN score were not
            scored and are left out.
        target_p: ``(N_tgt,)`` out-of-fold ``p_target`` of the target rows
            (``selector.named_stages_["da"].p_target_in_target_``); default None: not drawn.
        truth: ``(N_src,)`` bool, the rows known to be target-like (default None: the
            ``knn_score`` panel shows all scored rows as one group).
        bins: bins per histogram (default 30).

    Returns:
        A figure with two axes: ``p_target``, then ``knn_score``.
    """
    from matplotlib.figure import Figure

    bins = _check_count("bins", bins, 1)
    if truth is not None:
        truth = np.asarray(truth, dtype=bool)
        if truth.shape != selection.mask.shape:
            raise InputError(f"truth has shape {truth.shape}, expected {selection.mask.shape}")
    figure = Figure(figsize=(10.0, 3.8), layout="constrained")
    p_axes, knn_axes = figure.subplots(1, 2)
    scored = ~np.isnan(selection.p_target)
    if scored.any():
        groups = [("candidates", selection.p_target[scored], USER_COLOR)]
        if target_p is not None:
            groups.append(("target rows", np.asarray(target_p, dtype=float), TARGET_COLOR))
        _histograms(p_axes, groups, np.linspace(0.0, 1.0, bins + 1), "p_target (out of fold)")
        p_axes.set_title("domain classifier", fontsize=10)
    else:
        _no_data(p_axes, "no p_target: the selection ran without the 'da' stage")
    scored = ~np.isnan(selection.knn_score)
    if scored.any():
        scores = selection.knn_score[scored]
        edges = np.linspace(float(scores.min()), float(scores.max()) + 1e-9, bins + 1)
        if truth is None:
            groups = [("scored rows", scores, USER_COLOR)]
        else:
            groups = [("target-like (truth)", selection.knn_score[scored & truth], TARGET_COLOR),
                      ("other", selection.knn_score[scored & ~truth], USER_COLOR)]
        _histograms(knn_axes, groups, edges, "knn_score")
        knn_axes.set_title("neighbour scorer", fontsize=10)
    else:
        _no_data(knn_axes, "no knn_score: the selection ran without the 'knn' stage")
    return figure


def plot_selected_hops(selection: Selection, ax: Axes | None = None) -> Figure:
    """Rows at each hop: reached by the graph stage vs finally selected.

    Args:
        selection: a :class:`graphsel.select.pipeline.Selection` with a ``"graph"`` stage.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure: bar containers ``"graph candidates"`` and ``"selected"``, one bar per hop.
    """
    reached = selection.hop >= 0
    if not reached.any():
        raise InputError("plot_selected_hops: no row has a hop; run the 'graph' stage")
    figure, ax = _figure(ax, (6.0, 4.0))
    size = int(selection.hop.max()) + 1
    candidates = np.bincount(selection.hop[reached], minlength=size)
    selected = np.bincount(selection.hop[reached & selection.mask], minlength=size)
    hops = np.arange(size)
    width = 0.4
    _annotate_bars(ax, ax.bar(hops - width / 2, candidates, width, label="graph candidates",
                              color=USER_COLOR), [f"{n:,}" for n in candidates])
    _annotate_bars(ax, ax.bar(hops + width / 2, selected, width, label="selected",
                              color=hop_color(2)),
                   [f"{n:,}\n({n / max(c, 1):.0%})" for n, c in zip(selected, candidates)])
    ax.margins(y=0.2)
    ax.set_xticks(hops, [str(h) for h in hops])
    ax.set_xlabel("hop of the row (larger of its user's and item's)")
    ax.set_ylabel("source rows")
    ax.legend(frameon=False)
    return figure


@dataclass(frozen=True)
class CalibrationBins:
    """A reliability diagram's bins.

    Attributes:
        edges: ``(n_bins + 1,)`` bin edges over [0, 1].
        count: ``(n_bins,)`` predictions per bin.
        mean_pred: ``(n_bins,)`` mean prediction per bin, NaN where empty.
        frac_pos: ``(n_bins,)`` share of positive labels per bin, NaN where empty.
    """

    edges: np.ndarray
    count: np.ndarray
    mean_pred: np.ndarray
    frac_pos: np.ndarray


def calibration_bins(y_true: Any, p_pred: Any, n_bins: int = 10) -> CalibrationBins:
    """Bins predictions into ``n_bins`` equal-width bins of [0, 1].

    Bin ``b`` holds ``edges[b] < p <= edges[b + 1]`` (the first bin also holds 0), the rule of
    ``sklearn.calibration.calibration_curve``, whose output equals the non-empty bins here.

    >>> bins = calibration_bins([0, 1, 1, 0], [0.25, 0.5, 0.75, 1.0], n_bins=2)
    >>> bins.count.tolist(), bins.mean_pred.tolist(), bins.frac_pos.tolist()
    ([2, 2], [0.375, 0.875], [0.5, 0.5])

    Args:
        y_true: ``(N,)`` labels, 0 or 1.
        p_pred: ``(N,)`` predicted probabilities in [0, 1].
        n_bins: number of bins, >= 1 (default 10).

    Raises:
        InputError: for mismatched lengths, no rows, labels outside {0, 1} or probabilities
            outside [0, 1].
    """
    n_bins = _check_count("n_bins", n_bins, 1)
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    p_pred = np.asarray(p_pred, dtype=float).reshape(-1)
    if y_true.shape != p_pred.shape or len(y_true) == 0:
        raise InputError(f"y_true and p_pred must be non-empty and of one length, got "
                         f"{len(y_true)} and {len(p_pred)}")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise InputError(f"y_true must hold 0 or 1, got {y_true[~np.isin(y_true, (0, 1))][0]}")
    if not ((p_pred >= 0) & (p_pred <= 1)).all():
        raise InputError(f"p_pred must lie in [0, 1], got "
                         f"{p_pred[~((p_pred >= 0) & (p_pred <= 1))][0]}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p_pred)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=p_pred, minlength=n_bins) / count
        frac_pos = np.bincount(which, weights=y_true, minlength=n_bins) / count
    return CalibrationBins(edges, count, mean_pred, frac_pos)


def plot_calibration(y_true: Any, p_pred: Any, n_bins: int = 10,
                     ax: Axes | None = None) -> Figure:
    """Reliability diagram: share of positives against the mean prediction of each bin.

    Args:
        y_true, p_pred, n_bins: as for :func:`calibration_bins`.
        ax: axes to draw on (default None: a new figure).

    Returns:
        The figure; its line labelled ``"model"`` goes through the non-empty bins'
        ``(mean_pred, frac_pos)``, and bars on a second y axis count each bin's rows.
    """
    bins = calibration_bins(y_true, p_pred, n_bins)
    figure, ax = _figure(ax, (5.0, 4.5))
    counts = ax.twinx()
    counts.bar(bins.edges[:-1], bins.count, width=np.diff(bins.edges), align="edge",
               color="#DDDDDD", zorder=0)
    counts.set_ylim(0, 3 * max(int(bins.count.max()), 1))  # keep the bars in the lower third
    counts.set_ylabel("rows per bin", color="gray")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], ls=":", color="gray", label="perfectly calibrated")
    filled = bins.count > 0
    ax.plot(bins.mean_pred[filled], bins.frac_pos[filled], marker="o", color=USER_COLOR,
            label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share of positives")
    ax.legend(frameon=False, loc="upper left")
    return figure


def save_selection_plots(
    selector: SampleSelector,
    out_dir: str | os.PathLike,
    *,
    truth: Any = None,
    dpi: int = 100,
) -> list[Path]:
    """Writes the figures of a fitted selector as PNG files into ``out_dir`` (made if needed).

    Files (each written to a temporary file and renamed, so none is ever partial):
    ``funnel.png`` (:func:`plot_funnel`), ``scores.png`` (:func:`plot_scores`) and, with a
    ``"graph"`` stage, ``hops.png`` (:func:`plot_hops`), ``selected_hops.png``
    (:func:`plot_selected_hops`) and ``expansion.png`` (:func:`draw_expansion` around a seed
    user at the 90th degree percentile, edges of selected rows solid); with a ``"da"``
    stage, ``calibration.png`` (:func:`plot_calibration` of the domain classifier:
    candidates 0, target rows 1).

    Args:
        selector: a fitted :class:`~graphsel.select.pipeline.SampleSelector`.
        out_dir: the folder to write to.
        truth: ``(N_src,)`` bool planted truth (default None).
        dpi: resolution (default 100).

    Returns:
        The paths written, in the order above.

    Raises:
        InputError: if ``out_dir`` is a file.
    """
    out_dir = check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    selection = selector.selection_
    report = selection.report
    graph_stage = next((s for s in selector.stages_ if isinstance(s, GraphExpansion)), None)
    classifier = next((s for s in selector.stages_ if isinstance(s, DomainClassifier)), None)
    target_p = None if classifier is None else classifier.p_target_in_target_
    figures: list[tuple[str, Any]] = []
    if report is not None:
        figures.append(("funnel.png", lambda: plot_funnel(report)))
    figures.append(("scores.png", lambda: plot_scores(selection, target_p, truth)))
    if graph_stage is not None:
        graph, expansion = graph_stage.graph_, graph_stage.expansion_
        figures.append(("hops.png", lambda: plot_hops(expansion)))
        if (selection.hop >= 0).any():
            figures.append(("selected_hops.png", lambda: plot_selected_hops(selection)))
        focus = typical_seed(graph, expansion)
        if focus is not None:
            figures.append(("expansion.png", lambda: draw_expansion(
                graph, expansion, seed_users=focus, selected_edges=_row_mask(graph, selection))))
    if target_p is not None:
        scored = selection.p_target[~np.isnan(selection.p_target)]
        figures.append(("calibration.png", lambda: plot_calibration(
            np.r_[np.zeros(len(scored)), np.ones(len(target_p))], np.r_[scored, target_p])))
    return [_save(make(), out_dir / name, dpi) for name, make in figures]


def _row_mask(graph: BipartiteGraph, selection: Selection) -> np.ndarray | None:
    """``selection.mask`` when it lines up with the graph's rows, else None (edge_mask)."""
    return selection.mask if selection.mask.shape == graph.row_edge.shape else None
