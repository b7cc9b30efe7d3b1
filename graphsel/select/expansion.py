"""The graph stage (GST): keep the source rows near the target in the source's user-item graph.

The users and items that the candidates share with the target are the seeds; the expansion
walks ``num_hops`` hops through the candidates' graph, hubs capped
(:func:`graphsel.graph.expansion.expand`), and the stage keeps the rows whose ends were
reached (:func:`graphsel.graph.expansion.graph_select`). Its score is each row's ``hop``.
``graphsel expand`` runs this stage too, so both commands read ``--max-degree`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_choice, check_integer
from graphsel.graph.bipartite import EDGE_CHOICES, BipartiteGraph
from graphsel.graph.expansion import SELECT_MODES, expand, graph_select, shared_seeds
from graphsel.select.stage import (
    Score,
    SelectionContext,
    SelectionStage,
    StageDetails,
    register_stage,
)

__all__ = ["AUTO_MIN_DEGREE", "GraphExpansion", "GraphReport", "HopCount", "resolve_max_degree"]

AUTO_MIN_DEGREE = 50.0
"""The lowest hub cap ``max_degree="auto"`` gives."""


def resolve_max_degree(graph: BipartiteGraph, max_degree: float | str | None,
                       relations: Sequence[str] | None = None,
                       as_of: int | None = None) -> float | None:
    """The hub cap to expand with: ``max_degree`` itself, or the ``"auto"`` rule.

    ``"auto"`` caps at the 99th percentile of the degrees of the graph's users and items
    (over ``relations`` before ``as_of``; nodes without edges left out), at least
    :data:`AUTO_MIN_DEGREE`; a graph without edges is uncapped (None).

    >>> graph = BipartiteGraph.from_arrays([0, 1], [0, 0])
    >>> resolve_max_degree(graph, "auto"), resolve_max_degree(graph, 3)
    (50.0, 3)
    """
    if max_degree != "auto":
        return max_degree  # type: ignore[return-value]
    degrees = np.concatenate([graph.degree("user", relations, as_of),
                              graph.degree("item", relations, as_of)])
    degrees = degrees[degrees > 0]
    if len(degrees) == 0:
        return None
    return float(max(AUTO_MIN_DEGREE, np.percentile(degrees, 99)))


@dataclass(frozen=True)
class HopCount:
    """Nodes first reached at one hop."""

    hop: int
    users: int
    items: int


@dataclass(frozen=True)
class GraphReport(StageDetails):
    """What the graph stage reports.

    Attributes:
        seed_users, seed_items: seeds (nodes both logs have).
        max_degree: the hub cap used (``"auto"`` resolved), None when uncapped.
        hops: nodes first reached at each hop ``0..num_hops``.
        capped_users, capped_items: hubs reached but not expanded through.
    """

    seed_users: int
    seed_items: int
    max_degree: float | None
    hops: tuple[HopCount, ...]
    capped_users: int
    capped_items: int

    def to_json(self) -> dict[str, Any]:
        return {"seeds": {"users": self.seed_users, "items": self.seed_items},
                "max_degree": self.max_degree,
                "hops": [{"hop": h.hop, "users": h.users, "items": h.items} for h in self.hops],
                "capped": {"users": self.capped_users, "items": self.capped_items}}

    def note(self) -> str:
        return (f"{len(self.hops) - 1} hops, capped {self.capped_users} users "
                f"/ {self.capped_items} items")


@register_stage("graph")
class GraphExpansion(SelectionStage):
    """Keeps the candidates whose user and item lie within ``num_hops`` hops of the target.

    Args:
        num_hops: hops of the expansion. Defaults to 2.
        max_degree: hub cap: nodes of higher degree are reached but not expanded through.
            ``"auto"`` (default) caps at the 99th percentile of the degrees of the graph's
            users and items, at least 50 (:func:`resolve_max_degree`); None is uncapped.
        fanout: expand hubs through this many random edges instead of none. Defaults to None.
        mode: which rows are kept, one of :data:`graphsel.graph.expansion.SELECT_MODES`.
            Defaults to ``"both"``.
        edges: which candidate rows make graph edges: ``"all"`` (default) or ``"positive"``
            (label 1). Selection picks impressions, positives and negatives alike, so every
            logged row links its user and item: a user who never clicked is still reachable
            through what they were shown.
        relations: relation names to walk. Defaults to None (all).
        as_of: ignore edges at or after this Unix time. Defaults to None.
        random_state: seed of the ``fanout`` draw. Defaults to 0.

    Attributes:
        graph_: the candidates' :class:`~graphsel.graph.bipartite.BipartiteGraph` (every
            relation; the expansion walks ``relations``).
        expansion_: the :class:`~graphsel.graph.expansion.Expansion`.
        max_degree_: the hub cap used (``"auto"`` resolved; None: uncapped).
        hop_: ``(N_cand,)`` int32 hop of each candidate row, -1 where not reached.
        support_: ``(N_cand,)`` bool, the kept candidates.
        report_: a :class:`GraphReport`.

    >>> source = InteractionLog.from_columns(["a", "b", "x"], [1, 1, 9], [0, 0, 0],
    ...                                      [1, 1, 1], "s")
    >>> target = InteractionLog.from_columns(["a"], [1], [0], [1], "t")
    >>> from graphsel.data.log import share_index
    >>> source, target = share_index(source, target)
    >>> GraphExpansion(num_hops=1).fit(source, target).hop_.tolist()
    [0, 1, -1]
    """

    SCORES = (Score("hop", "hop_", np.int32, -1),)
    report_: GraphReport

    def __init__(
        self,
        num_hops: int = 2,
        max_degree: float | str | None = "auto",
        fanout: int | None = None,
        *,
        mode: str = "both",
        edges: str = "all",
        relations: Sequence[str] | None = None,
        as_of: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.num_hops = num_hops
        self.max_degree = max_degree
        self.fanout = fanout
        self.mode = mode
        self.edges = edges
        self.relations = relations
        self.as_of = as_of
        self.random_state = random_state

    def check_params(self) -> None:
        check_integer("num_hops", self.num_hops, 0)
        cap = self.max_degree
        if not (cap is None or cap == "auto" or isinstance(cap, Real) and
                not isinstance(cap, bool) and cap >= 0):
            raise InputError(f"max_degree must be a number >= 0, 'auto' or None, got {cap!r}")
        if self.fanout is not None and (isinstance(self.fanout, bool) or not isinstance(
                self.fanout, Integral) or self.fanout < 1):
            raise InputError(f"fanout must be an integer >= 1 or None, got {self.fanout!r}")
        check_choice("mode", self.mode, SELECT_MODES)
        check_choice("edges", self.edges, EDGE_CHOICES)
        if self.as_of is not None and (isinstance(self.as_of, bool)
                                       or not isinstance(self.as_of, Integral)):
            raise InputError(f"as_of must be integer Unix seconds or None, got {self.as_of!r}")
        check_integer("random_state", self.random_state, 0)

    def fit(self, candidates: InteractionLog, target: InteractionLog, *,
            context: SelectionContext | None = None) -> GraphExpansion:
        """Expands from the nodes ``candidates`` and ``target`` share; keeps the reached rows.

        Args:
            candidates: ``N_cand`` source rows.
            target: ``N_tgt`` target rows, on the same id index.
            context: the selection's shared inputs (the graph is built there). Defaults to
                a fresh one.

        Returns:
            self
        """
        self.check_params()
        context = context or SelectionContext(target)
        graph = context.graph(candidates, self.edges)
        max_degree = resolve_max_degree(graph, self.max_degree, self.relations, self.as_of)
        seed_users, seed_items = shared_seeds(candidates, target)
        expansion = expand(graph, seed_users, seed_items, num_hops=self.num_hops,
                           relations=self.relations, max_degree=max_degree,
                           fanout=self.fanout, as_of=self.as_of, seed=self.random_state)
        self.support_, self.hop_ = graph_select(candidates, expansion, mode=self.mode)
        self.graph_, self.expansion_, self.max_degree_ = graph, expansion, max_degree
        self.report_ = GraphReport(
            len(seed_users), len(seed_items),
            None if max_degree is None else float(max_degree),
            tuple(HopCount(h, u, i) for h, (u, i) in enumerate(expansion.hop_counts)),
            len(expansion.capped_users), len(expansion.capped_items))
        return self
