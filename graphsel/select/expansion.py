"""The graph stage (GST): keep the source rows near the target in the source's user-item graph.

The users and items that the candidates share with the target are the seeds; the expansion
walks ``num_hops`` hops through the candidates' graph, hubs capped
(:func:`graphsel.graph.expansion.expand`), and the stage keeps the rows whose ends were
reached (:func:`graphsel.graph.expansion.graph_select`), at most ``max_user_rows`` per user
(:func:`graphsel.graph.expansion.cap_user_rows`: hub users keep as many rows as the hub cap
lets a node have edges, seeds included). Its score is each row's ``hop``. ``graphsel expand``
runs this stage too, so both commands read ``--max-degree`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_choice, check_integer
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.build import EDGE_CHOICES
from graphsel.graph.expansion import (
    MAX_HOPS,
    SELECT_MODES,
    cap_user_rows,
    expand,
    graph_select,
    last_hop,
    shared_seeds,
)
from graphsel.select.stage import (
    Score,
    SelectionContext,
    SelectionStage,
    StageDetails,
    register_stage,
)

__all__ = ["AUTO_MIN_DEGREE", "AUTO_PERCENTILE", "GraphExpansion", "GraphReport", "HopCount",
           "resolve_max_degree", "resolve_max_user_rows"]

AUTO_MIN_DEGREE = 50.0
"""The lowest hub cap ``max_degree="auto"`` gives."""

AUTO_PERCENTILE = 99
"""``max_degree="auto"`` caps hubs at this percentile of the degrees."""


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
    return float(max(AUTO_MIN_DEGREE, np.percentile(degrees, AUTO_PERCENTILE)))


def resolve_max_user_rows(max_user_rows: int | str | None,
                          max_degree: float | None) -> int | None:
    """The rows kept per user: ``max_user_rows`` itself, or for ``"auto"`` the hub cap
    ``max_degree`` rounded down (at least 1; None when the expansion is uncapped).

    >>> resolve_max_user_rows("auto", 57.4), resolve_max_user_rows("auto", None)
    (57, None)
    >>> resolve_max_user_rows(10, 57.4), resolve_max_user_rows(None, 57.4)
    (10, None)
    """
    if max_user_rows != "auto":
        return max_user_rows  # type: ignore[return-value]
    return None if max_degree is None else max(1, int(max_degree))


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
        max_user_rows: rows kept per user (``"auto"`` resolved), None when uncapped.
        row_capped_users: users whose rows were cut to ``max_user_rows``.
        dropped_rows: reached rows those users lost.
        warning: why the stage's result is suspect, or None (see :meth:`warnings`).
    """

    seed_users: int
    seed_items: int
    max_degree: float | None
    hops: tuple[HopCount, ...]
    capped_users: int
    capped_items: int
    max_user_rows: int | None = None
    row_capped_users: int = 0
    dropped_rows: int = 0
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seeds": {"users": self.seed_users, "items": self.seed_items},
                "max_degree": None if self.max_degree is None else round(self.max_degree, 6),
                "hops": [{"hop": h.hop, "users": h.users, "items": h.items} for h in self.hops],
                "capped": {"users": self.capped_users, "items": self.capped_items},
                "user_rows": {"max": self.max_user_rows, "users": self.row_capped_users,
                              "dropped": self.dropped_rows}}

    def note(self) -> str:
        """``2 hops, capped 1 users / 35 items, 1,615 rows of 13 users``: the hops asked
        for (and the last that reached something, when the expansion stopped before), the
        capped hubs, and the rows the row cap dropped."""
        asked = len(self.hops) - 1
        last = last_hop([(hop.users, hop.items) for hop in self.hops])
        note = f"{asked} hop{'' if asked == 1 else 's'}"
        if last < asked:
            note += f" (none new after hop {last})"
        note += f", capped {self.capped_users:,} users / {self.capped_items:,} items"
        if self.dropped_rows:
            note += f", {self.dropped_rows:,} rows of {self.row_capped_users:,} users"
        return note

    def warnings(self) -> tuple[str, ...]:
        return () if self.warning is None else (self.warning,)


@register_stage("graph")
class GraphExpansion(SelectionStage):
    """Keeps the candidates whose user and item lie within ``num_hops`` hops of the target.

    Args:
        num_hops: hops of the expansion. Defaults to 2.
        max_degree: hub cap: nodes of higher degree are reached but not expanded through.
            ``"auto"`` (default) caps at the 99th percentile of the degrees of the graph's
            users and items, at least 50 (:func:`resolve_max_degree`); None is uncapped.
        fanout: expand hubs through this many random edges instead of none. Defaults to None.
        max_user_rows: rows kept per user, drawn at random from a heavier user's reached
            rows (:func:`~graphsel.graph.expansion.cap_user_rows`), seeds included: the
            hub cap stops an expansion at a heavy user, this stops the user's own rows from
            filling the selection. ``"auto"`` (default) is the hub cap ``max_degree_``
            (rounded down; none when the expansion is uncapped); None keeps every row.
        mode: which rows are kept, one of :data:`graphsel.graph.expansion.SELECT_MODES`.
            Defaults to ``"both"``.
        edges: which candidate rows make graph edges: ``"all"`` (default) or ``"positive"``
            (label 1). Selection picks impressions, positives and negatives alike, so every
            logged row links its user and item: a user who never clicked is still reachable
            through what they were shown.
        relations: relation names to walk. Defaults to None (all).
        as_of: ignore edges at or after this Unix time. Defaults to None.
        random_state: seed of the ``fanout`` draw. Defaults to 0.
        keep_graph: keep the graph as ``graph_`` after :meth:`fit` (drawing the expansion
            needs it). False frees it once the rows are chosen, so that the later stages do
            not run beside it: ``graphsel select`` does so unless it draws figures (the
            synthetic default at 6M rows: 1,474 -> 1,379 MiB peak). Defaults to True.

    Attributes:
        graph_: the candidates' :class:`~graphsel.graph.bipartite.BipartiteGraph` (every
            relation; the expansion walks ``relations``); None with ``keep_graph=False``.
        expansion_: the :class:`~graphsel.graph.expansion.Expansion`.
        max_degree_: the hub cap used (``"auto"`` resolved; None: uncapped).
        max_user_rows_: the rows kept per user (``"auto"`` resolved; None: uncapped).
        hop_: ``(N_cand,)`` int32 hop of each candidate row, -1 where not reached (a
            reached row that the per-user cap dropped keeps its hop).
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
    graph_: BipartiteGraph | None

    def __init__(
        self,
        num_hops: int = 2,
        max_degree: float | str | None = "auto",
        fanout: int | None = None,
        *,
        max_user_rows: int | str | None = "auto",
        mode: str = "both",
        edges: str = "all",
        relations: Sequence[str] | None = None,
        as_of: int | None = None,
        random_state: int = 0,
        keep_graph: bool = True,
    ) -> None:
        self.num_hops = num_hops
        self.max_degree = max_degree
        self.fanout = fanout
        self.max_user_rows = max_user_rows
        self.mode = mode
        self.edges = edges
        self.relations = relations
        self.as_of = as_of
        self.random_state = random_state
        self.keep_graph = keep_graph

    def check_params(self) -> None:
        check_integer("num_hops", self.num_hops, 0, MAX_HOPS)
        cap = self.max_degree
        if not (cap is None or cap == "auto" or isinstance(cap, Real) and
                not isinstance(cap, bool) and cap >= 0):
            raise InputError(f"max_degree must be a number >= 0, 'auto' or None, got {cap!r}")
        if self.fanout is not None and (isinstance(self.fanout, bool) or not isinstance(
                self.fanout, Integral) or self.fanout < 1):
            raise InputError(f"fanout must be an integer >= 1 or None, got {self.fanout!r}")
        rows = self.max_user_rows
        if not (rows is None or rows == "auto" or isinstance(rows, Integral) and
                not isinstance(rows, bool) and rows >= 1):
            raise InputError(f"max_user_rows must be an integer >= 1, 'auto' or None, "
                             f"got {rows!r}")
        check_choice("mode", self.mode, SELECT_MODES)
        check_choice("edges", self.edges, EDGE_CHOICES)
        if self.as_of is not None and (isinstance(self.as_of, bool)
                                       or not isinstance(self.as_of, Integral)):
            raise InputError(f"as_of must be integer Unix seconds or None, got {self.as_of!r}")
        check_integer("random_state", self.random_state, 0)
        if not isinstance(self.keep_graph, bool):
            raise InputError(f"keep_graph must be true or false, got {self.keep_graph!r}")

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
        reached, self.hop_ = graph_select(candidates, expansion, mode=self.mode)
        max_user_rows = resolve_max_user_rows(self.max_user_rows, max_degree)
        self.support_ = (reached if max_user_rows is None else
                         cap_user_rows(candidates.user, reached, max_user_rows,
                                       self.random_state))
        dropped = reached & ~self.support_
        self.graph_, self.expansion_, self.max_degree_ = graph, expansion, max_degree
        self.max_user_rows_ = max_user_rows
        self.report_ = GraphReport(
            len(seed_users), len(seed_items),
            None if max_degree is None else float(max_degree),
            tuple(HopCount(h, u, i) for h, (u, i) in enumerate(expansion.hop_counts)),
            len(expansion.capped_users), len(expansion.capped_items),
            max_user_rows, len(np.unique(candidates.user[dropped])), int(dropped.sum()),
            self._seeds_only_warning(candidates, graph))
        if not self.keep_graph:
            self.graph_ = None
            context.forget_graph(self.edges)
        return self

    def _seeds_only_warning(self, candidates: InteractionLog,
                            graph: BipartiteGraph) -> str | None:
        """Says so when an expansion of one hop or more reached nothing beyond its seeds."""
        counts = self.expansion_.hop_counts
        if self.num_hops == 0 or any(users or items for users, items in counts[1:]):
            return None
        seeds = f"{counts[0][0]:,} seed users and {counts[0][1]:,} seed items"
        edges = int(graph.degree("user", self.relations, self.as_of).sum())
        if edges == 0 and self.as_of is not None:
            why = (f"no edge is before as_of={self.as_of} (the candidates' first ts is "
                   f"{int(candidates.ts.min())})")
        else:
            why = f"the {seeds} have no edge to a new node (hub cap {self.max_degree_})"
        return (f"graph stage: the expansion reached nothing beyond the seeds: {why}; only "
                f"rows between the {seeds} were kept")

    def empty_reason(self) -> str:
        seeds = self.expansion_.hop_counts[0]
        return (f"no row has {'both ends' if self.mode == 'both' else 'its ' + self.mode} "
                f"within {self.num_hops} hops of the {seeds[0]:,} seed users and {seeds[1]:,} "
                f"seed items")
