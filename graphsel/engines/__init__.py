"""Engines that run graphsel's selection on something other than one process's memory.

The in-memory engine ("local") is graphsel itself: the stages of :mod:`graphsel.select`. This
layer sits above it and runs those stages elsewhere, taking the stage objects themselves
(their parameters, defaults and checks), so the in-memory stage is both the specification
and the test oracle:

- :mod:`graphsel.engines.histogram`: the hub cap ``"auto"`` (numpy's 99th percentile of the
  node degrees) computed from a degree histogram, which is all a distributed engine collects;
- :mod:`graphsel.engines.spark`: the graph stage
  (:class:`~graphsel.select.expansion.GraphExpansion`) on Spark SQL. pyspark is imported
  there only, when a function that needs it runs, so ``import graphsel`` never imports it.
"""

from __future__ import annotations

__all__ = ["ENGINES"]

ENGINES: tuple[str, ...] = ("local", "spark")
"""The engines ``graphsel select --engine`` accepts."""
