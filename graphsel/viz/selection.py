"""Figures of a selection: the funnel, score histograms, selected rows per hop, the domain
classifier's calibration, and :func:`save_selection_plots`, which writes them all."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphsel.data.io import check_output_dir
from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.select.domain import DomainClassifier
from graphsel.select.expansion import GraphExpansion
from graphsel.select.pipeline import SampleSelector, Selection, SelectionReport
from graphsel.select.stage import RuleMixin, SelectionRule, SelectionStage
from graphsel.transfer.train.metrics import (
    CalibrationBins,
    calibration_bins,
    expected_calibration_error,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from graphsel.viz._common import _annotate_bars, _check_count, _figure, _no_data, _save_all
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
    "stage_cutoff",
    "plot_selected_hops",
    "CalibrationBins",
    "calibration_bins",
    "plot_calibration",
    "SELECTION_FIGURES",
    "selection_figures",
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
    from matplotlib.ticker import StrMethodFormatter

    figure, ax = _figure(ax, (8.0, 1.2 + 0.55 * (len(report.stages) + 1)))
    source = report.source_rows
    names = ["source"] + [stage.name for stage in report.stages]
    kept = [source] + [stage.kept for stage in report.stages]
    positions = np.arange(len(names))
    bars = ax.barh(positions, kept, color=[USER_COLOR] + [hop_color(2)] * len(report.stages))
    notes = [""] + [f", {note}" if (note := stage.details.note()) else ""
                    for stage in report.stages]
    labels = [f"{n:,} ({n / max(source, 1):.1%}){note}" for n, note in zip(kept, notes)]
    _annotate_bars(ax, bars, labels)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    # room right of each bar for its label (a character takes about 0.85 % of the axes at
    # this size), and counts in full: no "1e6" offset
    ax.set_xlim(0, max(max(n / (1 - min(0.8, 0.0085 * len(label)))
                           for n, label in zip(kept, labels)), 1))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
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


def stage_cutoff(stage: SelectionStage) -> float | None:
    """The cut-off of a fitted scoring stage: the score from which it keeps a row.

    The threshold of its keep rule (given, or its ``DEFAULT_RULE``), else (``keep_quantile``,
    ``budget``) the lowest score it kept; None when the stage cut nothing (e.g. the domain classifier's default, whose
    weights are its output), kept nothing, or has no keep rule (the graph stage).

    >>> from graphsel.select.neighbors import NeighborScorer
    >>> stage = NeighborScorer(budget=2)
    >>> stage.knn_score_, stage.support_ = np.array([0.2, 0.9, 0.7]), np.array([False, True, True])
    >>> stage_cutoff(stage)
    0.7
    """
    if not isinstance(stage, RuleMixin) or not stage.SCORES:
        return None
    kept = np.asarray(stage.support_, dtype=bool)
    if kept.all() or not kept.any():
        return None
    rule = SelectionRule.from_params(stage.threshold, stage.keep_quantile, stage.budget,
                                     default=stage.DEFAULT_RULE)
    if rule.kind == "threshold":
        return float(rule.value)
    return float(np.asarray(getattr(stage, stage.SCORES[0].attribute))[kept].min())


def _mark_cutoff(ax: Axes, cutoff: float | None) -> None:
    if cutoff is None:
        return
    ax.axvline(cutoff, color="black", ls="--", lw=1.2, label=f"cut-off {cutoff:.3g}: kept at or "
                                                              f"above")
    ax.legend(frameon=False, fontsize=8)


def plot_scores(selection: Selection, target_p: Any = None, truth: Any = None,
                bins: int = 30, cutoffs: dict[str, float | None] | None = None) -> Figure:
    """Score histograms: ``p_target`` of candidates vs target rows, ``knn_score`` vs truth,
    each with its stage's cut-off.

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
        cutoffs: per score (``"p_target"``, ``"knn_score"``), the cut-off to mark as a dashed
            vertical line (:func:`stage_cutoff`); None or a missing key: none drawn. Default
            None.

    Returns:
        A figure with two axes: ``p_target``, then ``knn_score``; a cut-off is a line
        labelled ``"cut-off ..."``.
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
        cutoff = (cutoffs or {}).get("p_target")
        p_axes.set_title("domain classifier" + ("" if cutoff is not None
                                                else ": no cut (weights only)"), fontsize=10)
        _mark_cutoff(p_axes, cutoff)
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
        cutoff = (cutoffs or {}).get("knn_score")
        knn_axes.set_title("neighbour scorer" + ("" if cutoff is not None else ": no cut"),
                           fontsize=10)
        _mark_cutoff(knn_axes, cutoff)
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


def _compact(count: int) -> str:
    """``"950"``, ``"12k"``, ``"1.2M"``: a count short enough to sit on a narrow bar.

    >>> _compact(950), _compact(12_345), _compact(1_234_567)
    ('950', '12k', '1.2M')
    """
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    return f"{count / 1000:.0f}k" if count >= 10_000 else f"{count:,}"


def plot_calibration(y_true: Any, p_pred: Any, n_bins: int = 10,
                     ax: Axes | None = None, *, title: str | None = None,
                     xlabel: str = "mean predicted probability in the bin",
                     ylabel: str = "observed share of label 1 in the bin") -> Figure:
    """Reliability diagram: the observed share of label 1 against the mean prediction of
    each bin, with the expected calibration error in the legend.

    Args:
        y_true, p_pred, n_bins: as for :func:`calibration_bins`.
        ax: axes to draw on (default None: a new figure).
        title: the axes' title (default None: none).
        xlabel: the x axis's label (default: the mean prediction of the bin).
        ylabel: the y axis's label (default: the share of label 1 in the bin).

    Returns:
        The figure; its line labelled ``"model (ECE ...)"`` goes through the non-empty bins'
        ``(mean_pred, frac_pos)``, and bars on a second y axis count each bin's rows, each
        labelled with its count (no axis offset such as ``1e6``: counts print in full).
    """
    from matplotlib.ticker import StrMethodFormatter

    bins = calibration_bins(y_true, p_pred, n_bins)
    figure, ax = _figure(ax, (5.0, 4.5))
    counts = ax.twinx()
    bars = counts.bar(bins.edges[:-1], bins.count, width=np.diff(bins.edges), align="edge",
                      color="#DDDDDD", zorder=0)
    _annotate_bars(counts, bars, [_compact(int(n)) if n else "" for n in bins.count],
                   color="gray")
    counts.set_ylim(0, 3 * max(int(bins.count.max()), 1))  # keep the bars in the lower third
    counts.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    counts.set_ylabel("rows per bin (grey bars)", color="gray")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], ls=":", color="gray", label="perfectly calibrated")
    filled = bins.count > 0
    ece = expected_calibration_error(y_true, p_pred, n_bins)
    ax.plot(bins.mean_pred[filled], bins.frac_pos[filled], marker="o", color=USER_COLOR,
            label=f"model (ECE {ece:.3f}, {n_bins} bins)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, loc="upper left", fontsize=8)
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
    ``funnel.png`` (:func:`plot_funnel`), ``scores.png`` (:func:`plot_scores`, each
    stage's cut-off marked: :func:`stage_cutoff`) and, with a
    ``"graph"`` stage, ``hops.png`` (:func:`plot_hops`), ``selected_hops.png``
    (:func:`plot_selected_hops`) and ``expansion.png`` (:func:`draw_expansion` around a seed
    user at the 90th degree percentile, edges of selected rows solid); with a ``"da"``
    stage, ``calibration.png`` (:func:`plot_calibration` of the domain classifier's
    out-of-fold ``p_target``: candidates 0, target rows 1).

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
    return _save_all(selection_figures(selector, truth=truth), out_dir, dpi)


SELECTION_FIGURES: dict[str, str] = {
    "funnel.png": "Source rows kept by each stage, with the share of the source.",
    "scores.png": "Histograms of p_target (candidates vs target rows) and knn_score, each "
                  "stage's cut-off dashed.",
    "hops.png": "Users and items first reached at each hop of the expansion, capped hubs "
                "counted.",
    "selected_hops.png": "Rows per hop: graph candidates vs finally selected.",
    "expansion.png": "One seed user's neighbourhood, ring d = d hops away, at most 12 nodes "
                     "per ring (hubs, then by degree), hubs outlined, edges of selected rows "
                     "solid.",
    "calibration.png": "Reliability diagram of the domain classifier's out-of-fold p_target "
                       "(target rows 1, candidates 0), with its ECE.",
}
"""The files of :func:`save_selection_plots`, each with the one line that says what it shows
(the captions of the HTML report)."""


def selection_figures(selector: SampleSelector,
                      truth: Any = None) -> list[tuple[str, Callable[[], Figure]]]:
    """The figures of a fitted selector, each as ``(file name, function that draws it)``:
    those of :data:`SELECTION_FIGURES` that its stages allow, in that order (see
    :func:`save_selection_plots`).

    Args:
        selector: a fitted :class:`~graphsel.select.pipeline.SampleSelector`.
        truth: ``(N_src,)`` bool planted truth (default None).
    """
    selection = selector.selection_
    report = selection.report
    graph_stage = next((s for s in selector.stages_ if isinstance(s, GraphExpansion)), None)
    classifier = next((s for s in selector.stages_ if isinstance(s, DomainClassifier)), None)
    target_p = None if classifier is None else classifier.p_target_in_target_
    figures: list[tuple[str, Callable[[], Figure]]] = []
    if report is not None:
        figures.append(("funnel.png", lambda: plot_funnel(report)))
    cutoffs = {stage.SCORES[0].column: stage_cutoff(stage) for stage in selector.stages_
               if stage.SCORES}
    figures.append(("scores.png", lambda: plot_scores(selection, target_p, truth,
                                                      cutoffs=cutoffs)))
    if graph_stage is not None:
        graph, expansion = graph_stage.graph_, graph_stage.expansion_
        figures.append(("hops.png", lambda: plot_hops(expansion)))
        if (selection.hop >= 0).any():
            figures.append(("selected_hops.png", lambda: plot_selected_hops(selection)))
        focus = None if graph is None else typical_seed(graph, expansion)  # keep_graph=False
        if graph is not None and focus is not None:
            figures.append(("expansion.png", lambda: draw_expansion(
                graph, expansion, seed_users=focus, selected_edges=_row_mask(graph, selection))))
    if target_p is not None:
        scored = selection.p_target[~np.isnan(selection.p_target)]
        figures.append(("calibration.png", lambda: plot_calibration(
            np.r_[np.zeros(len(scored)), np.ones(len(target_p))], np.r_[scored, target_p],
            title="Calibration of the domain classifier (out-of-fold p_target)",
            xlabel="mean predicted p_target in the bin",
            ylabel="share of target rows in the bin")))
    return figures


def _row_mask(graph: BipartiteGraph, selection: Selection) -> np.ndarray | None:
    """``selection.mask`` when it lines up with the graph's rows, else None (edge_mask)."""
    return selection.mask if selection.mask.shape == graph.row_edge.shape else None
