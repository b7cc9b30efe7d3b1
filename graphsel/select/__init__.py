"""Sample selection: stage estimators (graph expansion, domain classifier, neighbour scorer)
composed by :class:`~graphsel.select.pipeline.SampleSelector` into a
:class:`~graphsel.select.pipeline.Selection`.
"""

from graphsel.select.pipeline import SampleSelector, Selection, format_report

__all__ = ["SampleSelector", "Selection", "format_report"]
