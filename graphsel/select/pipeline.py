"""The sample selector: a pipeline of stage estimators over the source rows.

:class:`SampleSelector` runs its stages in order, like a scikit-learn Pipeline of
selectors. Each stage sees only the rows the previous one kept (its *candidates*) and keeps
some of them. The registered stages (:data:`graphsel.select.stage.STAGES`):

- ``"graph"`` (GST, :class:`~graphsel.select.expansion.GraphExpansion`): expand the users and
  items shared with the target ``num_hops`` hops through the candidates' graph, hubs capped;
  keep the rows whose user and item were reached. Score: ``hop``.
- ``"da"`` (:class:`~graphsel.select.domain.DomainClassifier`): a domain classifier scores
  ``p(target | row)`` out of fold and gives density-ratio weights. It keeps every row unless
  one of ``threshold``, ``keep_quantile`` or ``budget`` is given: its weights, not a cut,
  are its main output. Score: ``p_target``.
- ``"knn"`` (:class:`~graphsel.select.neighbors.NeighborScorer`): FAISS neighbours of target
  samples in the graph embedding give ``knn_score``, the mean cosine similarity of a row's
  (user, item) vector to its ``k`` nearest target rows; rows with ``knn_score >= 0.9`` are
  kept.

The inputs stages share (the candidates' graph, the graph factors) live in one
:class:`~graphsel.select.stage.SelectionContext` per fit, computed when a stage first asks.

On the synthetic default, the graph stage alone keeps the target communities' rows with
high recall but lets rows of neighbouring communities in through 2-hop paths; the
neighbour scores separate the two (see ``make bench-select`` for the measured precision and
recall).

The result is a :class:`Selection`: a mask and a weight over all source rows, every stage's
score, and a :class:`SelectionReport`. ``selection.to_table(source)`` is what
``graphsel select`` writes: the selected rows with the score columns and ``weight``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from graphsel._memory import release_memory
from graphsel._table import format_table
from graphsel.data.card import disjoint_line
from graphsel.data.log import InteractionLog, decode_strings, distinct_codes, write_log
from graphsel.errors import InputError
from graphsel.select.domain import DomainClassifier
from graphsel.select.expansion import GraphExpansion, GraphReport
from graphsel.select.neighbors import NeighborScorer
from graphsel.select.stage import (
    STAGES,
    Score,
    SelectionContext,
    SelectionStage,
    StageDetails,
)

__all__ = ["DEFAULT_STAGES", "OUTPUT_COLUMNS", "SampleSelector", "Selection", "SelectionQuality",
           "SelectionReport", "StageReport", "check_candidates", "selection_quality"]

DEFAULT_STAGES: tuple[str, ...] = ("graph", "da", "knn")
"""ECAT's chain: graph expansion, then the domain classifier, then the neighbour scores."""

_DEFAULT_SCORES: tuple[Score, ...] = (
    *GraphExpansion.SCORES, *DomainClassifier.SCORES, *NeighborScorer.SCORES)

OUTPUT_COLUMNS: tuple[str, ...] = (*(score.column for score in _DEFAULT_SCORES), "weight")
"""Columns :meth:`Selection.to_table` always adds to the selected rows: the default stages'
scores (filled where a stage did not run, so files of any stage list share them) and
``weight``. Another stage's scores come after the default stages' ones, before ``weight``."""


@dataclass(frozen=True)
class SelectionQuality:
    """Precision and recall of a selection against known-good rows (6 decimals)."""

    precision: float
    recall: float

    def to_json(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall}


def selection_quality(mask: np.ndarray, truth: np.ndarray) -> SelectionQuality:
    """Precision and recall of a selection against known-good rows.

    >>> selection_quality(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    SelectionQuality(precision=0.5, recall=0.5)
    """
    mask, truth = np.asarray(mask, bool), np.asarray(truth, bool)
    hits = int(np.count_nonzero(mask & truth))
    precision = hits / max(int(mask.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    return SelectionQuality(round(precision, 6), round(recall, 6))


@dataclass(frozen=True)
class StageReport:
    """One row of the funnel: what a stage kept and how long it took, and its own details.

    Attributes:
        name: the stage's registered name.
        kept: candidate rows the stage kept.
        users, items: distinct users and items of those rows.
        seconds: wall time of the stage (3 decimals).
        details: the stage's own report (e.g. a
            :class:`~graphsel.select.expansion.GraphReport`).
    """

    name: str
    kept: int
    users: int
    items: int
    seconds: float
    details: StageDetails

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.details.to_json(), "kept": self.kept,
                "users": self.users, "items": self.items, "seconds": self.seconds}


@dataclass(frozen=True)
class SelectionReport:
    """The funnel report of a :class:`SampleSelector` fit.

    Attributes:
        source_rows, target_rows: rows of the logs ``fit`` saw.
        stages: one :class:`StageReport` per stage, in order.
        selected: rows selected.
        target_user_coverage, target_item_coverage: share of the target's users (items) that
            selected rows touch.
        target_label_rate, source_label_rate: mean label of each log.
        selected_label_rate: mean label of the selected rows; None when none is selected.
        truth: precision and recall against the planted truth, when ``fit`` had one.
        warnings: lines saying why the selection is suspect (a stage's
            :meth:`~graphsel.select.stage.StageDetails.warnings`, e.g. an expansion that
            reached nothing beyond its seeds); empty when nothing is.
    """

    source_rows: int
    target_rows: int
    stages: tuple[StageReport, ...]
    selected: int
    target_user_coverage: float
    target_item_coverage: float
    target_label_rate: float
    selected_label_rate: float | None
    source_label_rate: float
    truth: SelectionQuality | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``graphsel select --report``: ``rows``, ``stages``, ``selected``,
        ``coverage``, ``label_rate``, with a truth ``truth`` and, when there are any,
        ``warnings``."""
        report: dict[str, Any] = {
            "rows": {"source": self.source_rows, "target": self.target_rows},
            "stages": [stage.to_json() for stage in self.stages],
            "selected": self.selected,
            "coverage": {"target_users": self.target_user_coverage,
                         "target_items": self.target_item_coverage},
            "label_rate": {"target": self.target_label_rate,
                           "selected": self.selected_label_rate,
                           "source": self.source_label_rate},
        }
        if self.truth is not None:
            report["truth"] = self.truth.to_json()
        if self.warnings:
            report["warnings"] = list(self.warnings)
        return report

    def format(self) -> str:
        """The selection funnel as a table, then coverage, label rates and (if known) truth.

        The :attr:`warnings` are not part of it: commands print them on stderr."""
        rows: list[list[Any]] = [["source", self.source_rows, "", "", "", ""]]
        rows += [[stage.name, stage.kept, stage.users, stage.items, f"{stage.seconds:.2f}",
                  stage.details.note()] for stage in self.stages]
        selected_rate = ("n/a" if self.selected_label_rate is None
                         else f"{self.selected_label_rate:.3f}")
        lines = [
            format_table(["stage", "rows", "users", "items", "seconds", "note"], rows,
                         title="selection funnel"),
            (f"selected {self.selected:,} of {self.source_rows:,} source rows "
            f"(target: {self.target_rows:,} rows)"),
            *self._coverage_lines(),
            (f"label rate: target {self.target_label_rate:.3f}, selected {selected_rate}, "
            f"source {self.source_label_rate:.3f}"),
        ]
        if self.truth is not None:
            lines.append(f"planted truth: precision {self.truth.precision:.3f}, "
                         f"recall {self.truth.recall:.3f}")
        return "\n".join(lines)

    def _coverage_lines(self) -> list[str]:
        """The coverage line, and why a coverage is 0 when the graph stage found the logs
        share no user (item): no selected row can then touch one of the target's."""
        lines = [(f"coverage of target users {self.target_user_coverage:.1%}, "
                  f"items {self.target_item_coverage:.1%}")]
        graph = next(((position, stage.details) for position, stage in enumerate(self.stages)
                      if isinstance(stage.details, GraphReport)), None)
        if graph is None:
            return lines
        position, details = graph
        # the graph stage's seeds are what its candidates share with the target: all the
        # source's rows when it runs first
        source = ("the source's" if position == 0 else
                  f"those of the rows the {self.stages[position - 1].name} stage kept")
        for what, seeds in (("user", details.seed_users), ("item", details.seed_items)):
            if seeds == 0:
                lines.append(
                    f"{disjoint_line(what, source)}, so the selection covers none of them")
        return lines


@dataclass(frozen=True, eq=False)
class Selection:
    """What a :class:`SampleSelector` chose, over all ``N_src`` source rows.

    Attributes:
        mask: ``(N_src,)`` bool, the selected rows.
        weight: ``(N_src,)`` float32 training weight of each row; 0 where not selected, else
            the product of the stages' sample weights (the ``"da"`` stage's clipped density
            ratio), 1 when no stage weights.
        scores: ``(N_src,)`` score arrays by column name, in output order (see
            :data:`OUTPUT_COLUMNS`); a row a stage did not score holds the score's fill.
        report: the :class:`SelectionReport`; None for a selection made by hand.
    """

    mask: np.ndarray
    weight: np.ndarray
    scores: dict[str, np.ndarray]
    report: SelectionReport | None = None

    @property
    def hop(self) -> np.ndarray:
        """``(N_src,)`` int32 hop of each row from the seeds (-1: not reached or no graph)."""
        return self.scores["hop"]

    @property
    def p_target(self) -> np.ndarray:
        """``(N_src,)`` float32 out-of-fold ``p(target | row)``; NaN where not scored."""
        return self.scores["p_target"]

    @property
    def knn_score(self) -> np.ndarray:
        """``(N_src,)`` float32 mean similarity to the nearest targets; NaN where not scored."""
        return self.scores["knn_score"]

    @property
    def num_selected(self) -> int:
        return int(np.count_nonzero(self.mask))

    def indices(self) -> np.ndarray:
        """Sorted row numbers of the selected source rows."""
        return np.flatnonzero(self.mask)

    def to_table(self, source: InteractionLog) -> pa.Table:
        """The selected rows of ``source`` with every score column, then ``weight``; string
        columns as plain strings, as :meth:`write` writes them."""
        if len(source) != len(self.mask):
            raise InputError(f"{source.name} has {len(source)} rows, the selection "
                             f"{len(self.mask)}")
        rows = self.indices()
        table = decode_strings(source.table.take(pa.array(rows)))
        for name, values in [*self.scores.items(), ("weight", self.weight)]:
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, pa.array(values[rows]))
        return table

    def write(self, source: InteractionLog, path: Any) -> None:
        """Writes :meth:`to_table` to Parquet, atomically."""
        write_log(self.to_table(source), path)


class SampleSelector(BaseEstimator):
    """Selects and weights the source rows that look like the target domain.

    ``__init__`` only stores the hyper-parameters; :meth:`fit` does the work and keeps the
    result in ``selection_``. Each stage owns and checks its own parameters: to change one,
    pass a configured instance (``SampleSelector(["graph", NeighborScorer(k=5)])``) or use
    :class:`graphsel.select.config.SelectionConfig`.

    Args:
        stages: the stages in order, each a registered name (:data:`STAGES`) or an unfitted
            :class:`~graphsel.select.stage.SelectionStage` (cloned by :meth:`fit`). Defaults
            to :data:`DEFAULT_STAGES`.
        progress: show a progress bar over the stages. Defaults to False.

    Attributes:
        selection_: the :class:`Selection` of the last :meth:`fit`.
        stages_: the fitted stages, in order.
        named_stages_: the same by name, e.g. ``named_stages_["graph"].expansion_``.

    >>> source = InteractionLog.from_columns(["a", "b", "x"], [1, 1, 9], [0, 0, 0],
    ...                                      [1, 0, 1], "s")
    >>> target = InteractionLog.from_columns(["a"], [1], [0], [1], "t")
    >>> from graphsel.data.log import share_index
    >>> source, target = share_index(source, target)
    >>> selection = SampleSelector(["graph"]).fit(source, target).selection_
    >>> selection.mask.tolist(), selection.hop.tolist()
    ([True, True, False], [0, 1, -1])
    """

    def __init__(self, stages: Sequence[str | SelectionStage] = DEFAULT_STAGES, *,
                 progress: bool = False) -> None:
        self.stages = stages
        self.progress = progress

    def check_params(self) -> list[SelectionStage]:
        """Checks the stage list and every stage's parameters, before any work.

        Returns:
            Unfitted stages, in order: a new one per name, a clone per instance.

        Raises:
            InputError: an empty list, an unknown name, a stage named twice or a bad
                parameter of a stage.
        """
        if isinstance(self.stages, str) or not list(self.stages):
            raise InputError(f"stages is empty; choose from {STAGES.names()}")
        built: list[SelectionStage] = []
        for stage in self.stages:
            if isinstance(stage, SelectionStage):
                built.append(clone(stage))
            elif isinstance(stage, str):
                built.append(STAGES.get(stage)())
            else:
                raise InputError(f"a stage is a name among {STAGES.names()} or a "
                                 f"SelectionStage, got {stage!r}")
        names = [stage.name for stage in built]
        if len(set(names)) != len(names):
            raise InputError(f"stages {names} name a stage twice")
        for stage in built:
            stage.check_params()
        return built

    def min_target_rows(self) -> int:
        """The fewest target rows every stage can fit on (the domain classifier's ``cv``).

        >>> SampleSelector(["graph", "da"]).min_target_rows()
        5
        """
        return max(stage.min_target_rows() for stage in self.check_params())

    def check_inputs(self, source: InteractionLog, target: InteractionLog) -> None:
        """Checks every stage's parameters against the logs' sizes, before any work.

        :meth:`fit` calls it first; a command calls it right after reading the logs, so that
        ``k`` above the target's rows fails before any progress bar.

        Raises:
            InputError: the first parameter that does not fit, a
                :class:`~graphsel.select.stage.ParamError` naming the stage and the
                parameter (``knn.k 100000 is more than the 900 target rows; ...``).
        """
        for stage in self.check_params():
            stage.check_inputs(len(source), len(target))

    def fit(self, source: InteractionLog, target: InteractionLog,
            truth: np.ndarray | None = None) -> SampleSelector:
        """Runs the stages over ``source`` and stores the :class:`Selection` in ``selection_``.

        Args:
            source: ``N_src`` source rows.
            target: ``N_tgt`` target rows on the same :class:`IdIndex` (see
                :func:`graphsel.data.log.read_pair`).
            truth: ``(N_src,)`` bool, rows known to belong with the target (the synthetic
                default's planted truth); adds precision and recall to the report. Defaults
                to None.

        Returns:
            self

        Raises:
            InputError: bad parameters or logs (before any work), or a stage that kept no
                candidate: the message names the stage and its rule (an empty selection
                is never returned).
        """
        stages = self.check_params()
        for stage in stages:
            stage.check_inputs(len(source), len(target))
        if source.index is not target.index:
            raise InputError(f"{source.name} and {target.name} do not share one id index; "
                             f"read them with graphsel.data.log.read_pair")
        if truth is not None and np.shape(truth) != (len(source),):
            raise InputError(f"truth has shape {np.shape(truth)}, expected ({len(source)},)")
        n = len(source)
        context = SelectionContext(target)
        candidates = np.arange(n)
        declared = {score.column: score for score in
                    (*_DEFAULT_SCORES, *(score for stage in stages for score in stage.SCORES))}
        scores = {column: score.empty(n) for column, score in declared.items()}
        weight = np.ones(n, dtype=np.float32)
        reports: list[StageReport] = []
        part = source
        # the bar is drawn when asked for (the CLI asks on a terminal or with --progress), and
        # closed (its line cleared) before an error leaves the loop: the error starts a clean line
        with tqdm(stages, desc="select", unit="stage", disable=not self.progress,
                  leave=False) as bar:
            for position, stage in enumerate(bar):
                bar.set_postfix_str(stage.name)
                start = time.perf_counter()
                if position:
                    check_candidates(stage, stages[position - 1], len(candidates), len(target))
                # candidates only shrink, so an equal length means the same rows (the "da"
                # stage keeps every row unless told otherwise); a slice copies the key arrays
                if len(part) != len(candidates):
                    part = source[candidates]
                stage.fit(part, target, context=context)
                for score in stage.SCORES:
                    scores[score.column][candidates] = getattr(stage, score.attribute)
                stage_weight = stage.sample_weight()
                if stage_weight is not None:
                    weight[candidates] *= stage_weight
                kept = candidates[stage.get_support()]
                if len(kept) == 0:
                    raise InputError(f"the selection is empty: the {stage.name} stage kept none "
                                     f"of {len(candidates):,} candidate rows: "
                                     f"{stage.empty_reason()}")
                candidates = kept
                release_memory()  # what the stage freed, before the next one allocates
                # counted on the code arrays, without slicing the log
                reports.append(StageReport(
                    stage.name, len(candidates),
                    len(distinct_codes(source.user[candidates], source.index.num_users)),
                    len(distinct_codes(source.item[candidates], source.index.num_items)),
                    round(time.perf_counter() - start, 3), stage.report_))
        mask = np.zeros(n, dtype=bool)
        mask[candidates] = True
        weight[~mask] = 0.0
        self.stages_ = stages
        self.named_stages_ = {stage.name: stage for stage in stages}
        self.selection_ = Selection(mask, weight, scores,
                                    _report(source, target, mask, reports, truth))
        return self

    def get_support(self, indices: bool = False) -> np.ndarray:
        """``(N_src,)`` bool mask of the selected source rows (or their indices).

        Raises:
            sklearn.exceptions.NotFittedError: before :meth:`fit`.
        """
        check_is_fitted(self, "selection_")
        return self.selection_.indices() if indices else self.selection_.mask

    def transform(self, source: InteractionLog) -> InteractionLog:
        """The selected rows of ``source`` (the log :meth:`fit` saw)."""
        return source[self.get_support()]

    def fit_transform(self, source: InteractionLog, target: InteractionLog,
                      truth: np.ndarray | None = None) -> InteractionLog:
        return self.fit(source, target, truth).transform(source)


def check_candidates(stage: SelectionStage, previous: SelectionStage, n_candidates: int,
                     n_target: int) -> None:
    """``stage.check_inputs`` on the candidates ``previous`` left, naming ``previous`` (both
    engines raise this one message).

    Raises:
        InputError: ``the graph stage left 3 candidate rows, too few for the da stage: ...``.
    """
    try:
        stage.check_inputs(n_candidates, n_target)
    except InputError as exc:
        raise InputError(f"the {previous.name} stage left {n_candidates:,} candidate rows, too "
                         f"few for the {stage.name} stage: {exc}") from None


def _report(source: InteractionLog, target: InteractionLog, mask: np.ndarray,
            stages: list[StageReport], truth: np.ndarray | None) -> SelectionReport:
    selected_labels = source.label[mask]
    return SelectionReport(
        source_rows=len(source), target_rows=len(target), stages=tuple(stages),
        selected=int(mask.sum()),
        target_user_coverage=_share(np.isin(
            target.unique_users(), distinct_codes(source.user[mask], source.index.num_users),
            assume_unique=True)),
        target_item_coverage=_share(np.isin(
            target.unique_items(), distinct_codes(source.item[mask], source.index.num_items),
            assume_unique=True)),
        target_label_rate=round(float(target.label.mean()), 6),
        selected_label_rate=(round(float(selected_labels.mean()), 6) if len(selected_labels)
                             else None),
        source_label_rate=round(float(source.label.mean()), 6),
        truth=None if truth is None else selection_quality(mask, truth),
        warnings=tuple(warning for stage in stages for warning in stage.details.warnings()))


def _share(flags: np.ndarray) -> float:
    return round(float(flags.mean()), 6) if len(flags) else 0.0
