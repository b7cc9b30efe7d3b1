"""Figures of graphsel, built without pyplot (each function returns a Figure).

- :mod:`graphsel.viz.expansion`: a seed's drawn neighbourhood, nodes per hop, reach;
- :mod:`graphsel.viz.selection`: the funnel, score histograms, calibration, the plot files of
  ``graphsel select --plots``;
- :mod:`graphsel.viz.transfer`: metrics per period and calibration per strategy, the plot files
  of ``graphsel run --plots``.
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
    save_selection_plots,
)
from graphsel.viz.transfer import (
    average_over_seeds,
    plot_calibrations,
    plot_periods,
    plot_transfer_periods,
    save_transfer_plots,
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
    "CalibrationBins",
    "calibration_bins",
    "plot_calibration",
    "save_selection_plots",
    "plot_periods",
    "average_over_seeds",
    "plot_transfer_periods",
    "plot_calibrations",
    "save_transfer_plots",
]
