"""Engines that run graphsel's selection on something other than one process's memory.

The in-memory engine ("local") is graphsel itself: the stages of :mod:`graphsel.select`. This
layer sits above it and runs those stages elsewhere, taking the stage objects themselves
(their parameters, defaults and checks), so the in-memory stage is both the specification
and the test oracle:

- :mod:`graphsel.engines.histogram`: the hub cap ``"auto"`` (numpy's 99th percentile of the
  node degrees) computed from a degree histogram, which is all a distributed engine collects;
- :mod:`graphsel.engines.spark`: the graph stage
  (:class:`~graphsel.select.expansion.GraphExpansion`) on Spark SQL, and the whole selection
  (:func:`~graphsel.engines.spark.run_selection`);
- :mod:`graphsel.engines.spark_scoring`: the domain classifier and the neighbour scorer on
  Spark (models and the FAISS index built on the driver, rows scored on executors).

pyspark is imported only when a function that needs it runs, so ``import graphsel`` never
imports it. :data:`ENGINES` (what ``--engine`` and YAML ``engine:`` accept) lives with
:class:`~graphsel.select.config.SelectionConfig`, which holds the choice.
"""

from __future__ import annotations

from graphsel.select.config import ENGINES

__all__ = ["ENGINES"]
