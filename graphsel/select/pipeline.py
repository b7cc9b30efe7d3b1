"""The sample selector: graph expansion, then the domain classifier, then the neighbour scorer.

:class:`SampleSelector` chains the stages over the source rows. Each stage sees only the rows
the previous one kept (its *candidates*) and keeps some of them:

- ``"graph"`` (GST): expand the users and items shared with the target ``num_hops`` hops
  through the source click/purchase graph, hubs capped; keep the rows whose user and item
  were reached (:func:`graphsel.graph.expansion.graph_select`).
- ``"da"``: a domain classifier scores ``p(target | row)`` out of fold and gives density-ratio
  weights. It keeps every row unless one of ``threshold``, ``keep_quantile`` or ``budget``
  is given: its weights, not a cut, are its main output.
- ``"knn"``: FAISS neighbours of target samples in the graph embedding give ``knn_score``,
  the mean cosine similarity of a row's (user, item) vector to its ``knn_k`` nearest target
  rows; rows with ``knn_score >= knn_threshold`` are kept.

On the synthetic default, the graph stage alone keeps the target communities' rows with
high recall but lets rows of neighbouring communities in through 2-hop paths; the
neighbour scores separate the two (see ``make bench-select`` for the measured precision and
recall).

The result is a :class:`Selection`: a mask and a weight over all source rows, every stage's
score, and a funnel report. ``selection.to_table(source)`` is what ``graphsel select`` writes:
the selected rows with ``hop``, ``p_target``, ``knn_score`` and ``weight`` columns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from graphsel._table import format_table
from graphsel.data.log import InteractionLog, write_log
from graphsel.errors import InputError, check_choice, check_integer
from graphsel.graph.bipartite import EDGE_CHOICES, BipartiteGraph
from graphsel.graph.embed import svd_factors
from graphsel.graph.expansion import SELECT_MODES, expand, graph_select, shared_seeds
from graphsel.select.domain import DomainClassifier
from graphsel.select.neighbors import NeighborScorer

__all__ = ["STAGES", "OUTPUT_COLUMNS", "Selection", "SampleSelector", "selection_quality",
           "format_report"]

STAGES: tuple[str, ...] = ("graph", "da", "knn")
"""The stage names, in their usual order."""

OUTPUT_COLUMNS: tuple[str, ...] = ("hop", "p_target", "knn_score", "weight")
"""Columns :meth:`Selection.to_table` adds to the selected source rows."""


@dataclass(frozen=True, eq=False)
class Selection:
    """What a :class:`SampleSelector` chose, over all ``N_src`` source rows.

    Attributes:
        mask: ``(N_src,)`` bool, the selected rows.
        weight: ``(N_src,)`` float32 training weight of each row; 0 where not selected, 1
            without the ``"da"`` stage, else the clipped density ratio.
        hop: ``(N_src,)`` int32 hop of each row from the seeds (-1: not reached or no
            ``"graph"`` stage).
        p_target: ``(N_src,)`` float32 out-of-fold ``p(target | row)``; NaN where not scored.
        knn_score: ``(N_src,)`` float32 mean similarity to the nearest target samples; NaN
            where not scored.
        report: the funnel report (see :meth:`SampleSelector.fit`).
    """

    mask: np.ndarray
    weight: np.ndarray
    hop: np.ndarray
    p_target: np.ndarray
    knn_score: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def num_selected(self) -> int:
        return int(np.count_nonzero(self.mask))

    def indices(self) -> np.ndarray:
        """Sorted row numbers of the selected source rows."""
        return np.flatnonzero(self.mask)

    def to_table(self, source: InteractionLog) -> pa.Table:
        """The selected rows of ``source`` with ``hop``, ``p_target``, ``knn_score``, ``weight``."""
        if len(source) != len(self.mask):
            raise InputError(f"{source.name} has {len(source)} rows, the selection "
                             f"{len(self.mask)}")
        rows = self.indices()
        table = source.table.take(pa.array(rows))
        for name in OUTPUT_COLUMNS:
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, pa.array(getattr(self, name)[rows]))
        return table

    def write(self, source: InteractionLog, path: Any) -> None:
        """Writes :meth:`to_table` to Parquet, atomically."""
        write_log(self.to_table(source), path)


def selection_quality(mask: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision and recall of a selection against known-good rows.

    >>> selection_quality(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    {'precision': 0.5, 'recall': 0.5}
    """
    mask, truth = np.asarray(mask, bool), np.asarray(truth, bool)
    hits = int(np.count_nonzero(mask & truth))
    precision = hits / max(int(mask.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    return {"precision": round(precision, 6), "recall": round(recall, 6)}


class SampleSelector:
    """Selects and weights the source rows that look like the target domain.

    ``__init__`` only stores the hyper-parameters; :meth:`fit` does the work and keeps the
    result in ``selection_``. Defaults give ECAT's chain: graph, then domain classifier,
    then neighbour scores.

    Args:
        stages: stage names in order, a subset of :data:`STAGES`. Defaults to all three.
        num_hops: hops of the graph expansion. Defaults to 2.
        max_degree: hub cap of the expansion: nodes of higher degree are reached but not
            expanded through. ``"auto"`` (default) caps at the 99th percentile of the
            degrees of the graph's users and items (at least 50); None is uncapped.
        fanout: expand hubs through this many random edges instead of none. Defaults to None.
        mode: which rows the graph stage keeps, one of
            :data:`graphsel.graph.expansion.SELECT_MODES`. Defaults to ``"both"``.
        edges: which source rows make graph edges: ``"all"`` (default) or ``"positive"``
            (clicks and purchases only). Selection picks impressions, positives and
            negatives alike, so by default every logged row links its user and item: a user
            who never clicked is still reachable through what they were shown.
        relations: relation names to walk. Defaults to all.
        as_of: ignore graph edges at or after this Unix time. Defaults to None.
        threshold: the ``"da"`` stage keeps rows with ``p_target >= threshold``. At most one
            of ``threshold``, ``keep_quantile``, ``budget``; with none, it keeps every row.
            Defaults to None.
        keep_quantile: the ``"da"`` stage keeps this top fraction by ``p_target``. Defaults
            to None.
        budget: the ``"da"`` stage keeps the top ``budget`` rows. Defaults to None.
        cv: folds of the domain classifier. Defaults to 5.
        da_model: ``"hgb"`` or ``"logistic"``. Defaults to ``"hgb"``.
        embedding_dim: graph factors per user and item, shared by ``"da"`` and ``"knn"``.
            Defaults to 16.
        knn_index: FAISS factory string of the neighbour scorer. Defaults to ``"auto"``.
        knn_k: neighbours per candidate. Defaults to 10.
        knn_threshold: the ``"knn"`` stage keeps rows with ``knn_score >= knn_threshold``.
            Defaults to 0.9.
        knn_keep_quantile: instead, keep this top fraction by ``knn_score``. Defaults to
            None.
        seed: seed of every random choice. Defaults to 0.
        progress: show a progress bar over the stages. Defaults to False.

    Attributes:
        selection_: the :class:`Selection` of the last :meth:`fit`.
        graph_: the graph the expansion ran on (when the ``"graph"`` stage ran).
        expansion_: the graph expansion (when the ``"graph"`` stage ran).
        domain_classifier_: the fitted :class:`DomainClassifier` (``"da"``).
        neighbor_scorer_: the fitted :class:`NeighborScorer` (``"knn"``).
    """

    def __init__(
        self,
        stages: Sequence[str] = STAGES,
        *,
        num_hops: int = 2,
        max_degree: int | float | str | None = "auto",
        fanout: int | None = None,
        mode: str = "both",
        edges: str = "all",
        relations: Sequence[str] | None = None,
        as_of: int | None = None,
        threshold: float | None = None,
        keep_quantile: float | None = None,
        budget: int | None = None,
        cv: int = 5,
        da_model: str = "hgb",
        embedding_dim: int = 16,
        knn_index: str = "auto",
        knn_k: int = 10,
        knn_threshold: float = 0.9,
        knn_keep_quantile: float | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.stages = stages
        self.num_hops = num_hops
        self.max_degree = max_degree
        self.fanout = fanout
        self.mode = mode
        self.edges = edges
        self.relations = relations
        self.as_of = as_of
        self.threshold = threshold
        self.keep_quantile = keep_quantile
        self.budget = budget
        self.cv = cv
        self.da_model = da_model
        self.embedding_dim = embedding_dim
        self.knn_index = knn_index
        self.knn_k = knn_k
        self.knn_threshold = knn_threshold
        self.knn_keep_quantile = knn_keep_quantile
        self.seed = seed
        self.progress = progress

    # -- parameters ----------------------------------------------------------------------------

    def check_params(self) -> list[str]:
        """Checks every hyper-parameter; returns the stage list. Raises InputError."""
        stages = list(self.stages)
        if not stages:
            raise InputError(f"stages is empty; choose from {list(STAGES)}")
        for stage in stages:
            check_choice("stage", stage, STAGES)
        if len(set(stages)) != len(stages):
            raise InputError(f"stages {stages} name a stage twice")
        check_choice("mode", self.mode, SELECT_MODES)
        check_choice("edges", self.edges, EDGE_CHOICES)
        check_integer("num_hops", self.num_hops, 0)
        if isinstance(self.max_degree, str) and self.max_degree != "auto":
            raise InputError(f"max_degree must be a number, 'auto' or None, "
                             f"got {self.max_degree!r}")
        # The scoring stages check their own parameters when built.
        self._domain_classifier()._check_params()
        if "da" not in stages and any(v is not None for v in self._rule().values()):
            raise InputError("threshold, keep_quantile and budget apply to the 'da' stage, "
                             f"which is not among the stages {stages}")
        self._neighbor_scorer()._check_params()
        return stages

    def _rule(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "keep_quantile": self.keep_quantile,
                "budget": self.budget}

    def _domain_classifier(self) -> DomainClassifier:
        rule = self._rule()
        if all(value is None for value in rule.values()):
            rule = {"keep_quantile": 1.0}
        return DomainClassifier(self.da_model, self.cv, embedding_dim=self.embedding_dim,
                                random_state=self.seed, **rule)

    def _neighbor_scorer(self) -> NeighborScorer:
        if self.knn_keep_quantile is not None:
            rule = {"keep_quantile": self.knn_keep_quantile}
        else:
            rule = {"threshold": self.knn_threshold}
        return NeighborScorer(self.knn_index, self.knn_k, embedding_dim=self.embedding_dim,
                              random_state=self.seed, **rule)

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, source: InteractionLog, target: InteractionLog,
            truth: np.ndarray | None = None) -> SampleSelector:
        """Runs the stages over ``source`` and stores the :class:`Selection` in ``selection_``.

        Args:
            source: ``N_src`` source rows.
            target: ``N_tgt`` target rows on the same :class:`IdIndex` (see
                :func:`graphsel.data.log.read_pair`).
            truth: ``(N_src,)`` bool, rows known to belong with the target (the synthetic
                default's planted truth); adds precision and recall to the report.

        Returns:
            self

        The report (``selection_.report``) is a JSON-able dict: ``rows`` (source, target),
        ``stages`` (name, kept rows/users/items, seconds, plus the graph's per-hop counts
        and capped hubs, the domain classifier's AUC), ``selected``, ``coverage`` (share of
        the target's users and items that selected rows touch), ``label_rate`` (target,
        selected, source) and, with ``truth``, ``truth`` (precision, recall).
        """
        stages = self.check_params()
        if source.index is not target.index:
            raise InputError(f"{source.name} and {target.name} do not share one id index; "
                             f"read them with graphsel.data.log.read_pair")
        if truth is not None and np.shape(truth) != (len(source),):
            raise InputError(f"truth has shape {np.shape(truth)}, expected ({len(source)},)")
        n = len(source)
        candidates = np.arange(n)
        hop = np.full(n, -1, dtype=np.int32)
        p_target = np.full(n, np.nan, dtype=np.float32)
        knn_score = np.full(n, np.nan, dtype=np.float32)
        weight = np.ones(n, dtype=np.float32)
        stage_reports: list[dict[str, Any]] = []
        factors: tuple[np.ndarray, np.ndarray] | None = None
        part = source
        bar = tqdm(stages, desc="select", unit="stage", disable=not self.progress, leave=False)
        for stage in bar:
            bar.set_postfix_str(stage)
            start = time.perf_counter()
            info: dict[str, Any] = {"name": stage}
            # candidates only shrink, so an equal length means the same rows: slicing copies
            # every column, and the "da" stage keeps every row unless told otherwise
            if len(part) != len(candidates):
                part = source[candidates]
            if stage == "graph":
                keep, info_extra = self._graph_stage(part, target, hop, candidates)
                info.update(info_extra)
            else:
                if factors is None and self.embedding_dim > 0:
                    factors = svd_factors([part, target], self.embedding_dim,
                                          random_state=self.seed)
                kw = {} if factors is None else {"user_factors": factors[0],
                                                 "item_factors": factors[1]}
                if stage == "da":
                    model = self._domain_classifier().fit(part, target, **kw)
                    self.domain_classifier_ = model
                    p_target[candidates] = model.p_target_
                    weight[candidates] = model.weight_
                    info["auc"] = round(float(model.auc_), 6)
                else:
                    model = self._neighbor_scorer()
                    model.fit(part, target, **kw)
                    self.neighbor_scorer_ = model
                    knn_score[candidates] = model.knn_score_
                    info["index"] = model.index_key_
                keep = model.get_support()
            candidates = candidates[keep]
            # counted on the code arrays: slicing the log would copy every column
            info.update(kept=int(len(candidates)),
                        users=int(len(np.unique(source.user[candidates]))),
                        items=int(len(np.unique(source.item[candidates]))),
                        seconds=round(time.perf_counter() - start, 3))
            stage_reports.append(info)
        mask = np.zeros(n, dtype=bool)
        mask[candidates] = True
        if "da" not in stages:
            weight[:] = 1.0
        weight[~mask] = 0.0
        report = _report(source, target, mask, stage_reports, truth)
        self.selection_ = Selection(mask, weight, hop, p_target, knn_score, report)
        return self

    def _graph_stage(self, part: InteractionLog, target: InteractionLog, hop: np.ndarray,
                     rows: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        graph = BipartiteGraph.from_log(part, edges=self.edges, relations=self.relations)
        max_degree = self._resolve_max_degree(graph)
        seed_users, seed_items = shared_seeds(part, target)
        expansion = expand(graph, seed_users, seed_items, num_hops=self.num_hops,
                           max_degree=max_degree, fanout=self.fanout, as_of=self.as_of,
                           seed=self.seed)
        self.graph_ = graph
        self.expansion_ = expansion
        keep, row_hop = graph_select(part, expansion, mode=self.mode)
        hop[rows] = row_hop
        info = {
            "seeds": {"users": int(len(seed_users)), "items": int(len(seed_items))},
            "max_degree": None if max_degree is None else float(max_degree),
            "hops": [{"hop": h, "users": u, "items": i}
                     for h, (u, i) in enumerate(expansion.hop_counts)],
            "capped": {"users": int(len(expansion.capped_users)),
                       "items": int(len(expansion.capped_items))},
        }
        return keep, info

    def _resolve_max_degree(self, graph: BipartiteGraph) -> float | None:
        if self.max_degree != "auto":
            return self.max_degree
        degrees = np.concatenate([graph.degree("user", self.relations, self.as_of),
                                  graph.degree("item", self.relations, self.as_of)])
        degrees = degrees[degrees > 0]
        if len(degrees) == 0:
            return None
        return float(max(50.0, np.percentile(degrees, 99)))

    # -- results ---------------------------------------------------------------------------------

    def _check_fitted(self) -> Selection:
        if not hasattr(self, "selection_"):
            raise InputError("This SampleSelector is not fitted yet; call fit(source, target) "
                             "first")
        return self.selection_

    def get_support(self, indices: bool = False) -> np.ndarray:
        """``(N_src,)`` bool mask of the selected source rows (or their indices)."""
        selection = self._check_fitted()
        return selection.indices() if indices else selection.mask

    def transform(self, source: InteractionLog) -> InteractionLog:
        """The selected rows of ``source`` (the log :meth:`fit` saw)."""
        return source[self.get_support()]

    def fit_transform(self, source: InteractionLog, target: InteractionLog,
                      truth: np.ndarray | None = None) -> InteractionLog:
        return self.fit(source, target, truth).transform(source)


def _report(source: InteractionLog, target: InteractionLog, mask: np.ndarray,
            stages: list[dict[str, Any]], truth: np.ndarray | None) -> dict[str, Any]:
    selected_labels = source.label[mask]
    report: dict[str, Any] = {
        "rows": {"source": len(source), "target": len(target)},
        "stages": stages,
        "selected": int(mask.sum()),
        "coverage": {
            "target_users": _share(np.isin(target.unique_users(), source.user[mask])),
            "target_items": _share(np.isin(target.unique_items(), source.item[mask])),
        },
        "label_rate": {
            "target": round(float(target.label.mean()), 6),
            "selected": (round(float(selected_labels.mean()), 6) if len(selected_labels)
                         else None),
            "source": round(float(source.label.mean()), 6),
        },
    }
    if truth is not None:
        report["truth"] = selection_quality(mask, truth)
    return report


def _share(flags: np.ndarray) -> float:
    return round(float(flags.mean()), 6) if len(flags) else 0.0


def format_report(report: dict[str, Any]) -> str:
    """The selection funnel as a table, then coverage, label rates and (if known) truth."""
    rows: list[list[Any]] = [["source", report["rows"]["source"], "", "", "", ""]]
    for stage in report["stages"]:
        note = ""
        if stage["name"] == "graph":
            note = (f"{len(stage['hops']) - 1} hops, capped {stage['capped']['users']} users "
                    f"/ {stage['capped']['items']} items")
        elif stage["name"] == "da":
            note = f"AUC {stage['auc']:.3f}"
        elif stage["name"] == "knn":
            note = f"index {stage['index']}"
        rows.append([stage["name"], stage["kept"], stage["users"], stage["items"],
                     f"{stage['seconds']:.2f}", note])
    lines = [format_table(["stage", "rows", "users", "items", "seconds", "note"], rows,
                          title="selection funnel")]
    cov, rates = report["coverage"], report["label_rate"]
    lines.append(f"selected {report['selected']:,} of {report['rows']['source']:,} source rows "
                 f"(target: {report['rows']['target']:,} rows)")
    lines.append(f"coverage of target users {cov['target_users']:.1%}, "
                 f"items {cov['target_items']:.1%}")
    selected_rate = "n/a" if rates["selected"] is None else f"{rates['selected']:.3f}"
    lines.append(f"label rate: target {rates['target']:.3f}, selected {selected_rate}, "
                 f"source {rates['source']:.3f}")
    if "truth" in report:
        lines.append(f"planted truth: precision {report['truth']['precision']:.3f}, "
                     f"recall {report['truth']['recall']:.3f}")
    return "\n".join(lines)
