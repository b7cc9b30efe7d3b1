"""Sample selection: stage estimators (graph expansion, domain classifier, neighbour scorer)
composed by :class:`~graphsel.select.pipeline.SampleSelector` into a
:class:`~graphsel.select.pipeline.Selection`; :class:`~graphsel.select.config.SelectionConfig`
holds the typed options that YAML and the command line give.
"""

from graphsel.select.config import SelectionConfig
from graphsel.select.pipeline import SampleSelector, Selection, SelectionReport
from graphsel.select.stage import STAGES, SelectionStage, register_stage

__all__ = ["STAGES", "SampleSelector", "Selection", "SelectionConfig", "SelectionReport",
           "SelectionStage", "register_stage"]
