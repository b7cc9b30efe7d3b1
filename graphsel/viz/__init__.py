"""Figures of graphsel, built without pyplot (each function returns a Figure).

- :mod:`graphsel.viz.expansion`: a seed's drawn neighbourhood, nodes per hop, reach;
- :mod:`graphsel.viz.selection`: the funnel, score histograms, calibration, the plot files of
  ``graphsel select --plots``;
- :mod:`graphsel.viz.transfer`: metrics per period and calibration per strategy, the plot files
  of ``graphsel run --plots``;
- :mod:`graphsel.viz.sequential`: a next-item comparison's metric per domain and model, the
  differences from the reference, LC-NTG's gaps and weights per epoch, the plot files of
  ``graphsel run --plots`` for ``task: next_item``;
- :mod:`graphsel.viz.report`: the self-contained HTML page of ``graphsel select --html`` and
  ``graphsel run --html`` (imported on its own: ``from graphsel.viz.report import ...``).
"""

from graphsel.viz.expansion import (
    HOP_COLORS,
    draw_expansion,
    expansion_subgraph,
    hop_color,
    plot_hops,
    plot_reach,
    typical_seed,
)
from graphsel.viz.selection import (
    CalibrationBins,
    calibration_bins,
    plot_calibration,
    plot_funnel,
    plot_scores,
    plot_selected_hops,
    SELECTION_FIGURES,
    save_selection_plots,
    selection_figures,
    stage_cutoff,
)
from graphsel.viz.sequential import (
    epoch_bands,
    NEXT_ITEM_FIGURES,
    next_item_figures,
    plot_domain_metric,
    plot_model_differences,
    plot_ntg,
    save_next_item_plots,
)
from graphsel.viz.transfer import (
    average_over_seeds,
    plot_calibrations,
    plot_periods,
    plot_transfer_periods,
    save_transfer_plots,
    TRANSFER_FIGURES,
    transfer_figures,
)

__all__ = [
    "HOP_COLORS",
    "hop_color",
    "expansion_subgraph",
    "draw_expansion",
    "plot_hops",
    "plot_reach",
    "typical_seed",
    "plot_funnel",
    "plot_scores",
    "plot_selected_hops",
    "stage_cutoff",
    "CalibrationBins",
    "calibration_bins",
    "plot_calibration",
    "SELECTION_FIGURES",
    "selection_figures",
    "save_selection_plots",
    "plot_periods",
    "average_over_seeds",
    "plot_transfer_periods",
    "plot_calibrations",
    "TRANSFER_FIGURES",
    "transfer_figures",
    "save_transfer_plots",
    "plot_domain_metric",
    "plot_model_differences",
    "plot_ntg",
    "epoch_bands",
    "NEXT_ITEM_FIGURES",
    "next_item_figures",
    "save_next_item_plots",
]
