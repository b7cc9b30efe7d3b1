"""The whole selection on Spark: the graph stage, the domain classifier and the neighbour scorer.

:func:`run_selection` is ``graphsel select --engine spark``: the stages of the in-memory
pipeline (:class:`graphsel.select.pipeline.SampleSelector`), each the in-memory stage object
itself (its parameters, defaults and checks), run on DataFrames, with the in-memory
selection's rows, columns and report. Each stage sees the rows the one before it kept, its
*candidates*, numbered ``_pos`` ``0..N_cand-1`` in source order (:func:`number_candidates`).

- ``graph``: :mod:`graphsel.engines.spark` (Spark SQL joins);
- ``da`` (:func:`score_domain`): the :class:`~graphsel.select.domain.DomainClassifier`'s
  out-of-fold plan (:meth:`~graphsel.select.domain.DomainClassifier.fold_plans`) depends on
  the row counts and the seed only, so the driver computes it, collects exactly the rows
  each fold's model learns from (the drawn candidates and target rows, at most
  ``max_train_candidates`` and ``max_train_target`` per fold) and fits the same models on the
  same rows in the same order. The
  models are broadcast and every candidate is scored by its fold's model on the executors
  (``mapInArrow``); the AUC comes from a histogram of the scores. Weights equal the
  in-memory ones to float rounding (the tests hold them within 1e-6);
- ``knn`` (:func:`score_neighbors`): the FAISS index of the target is built on the driver
  (:func:`graphsel.select.neighbors.build_index`), broadcast as ``faiss.serialize_index``
  bytes and queried on the executors (:func:`graphsel.select.neighbors.search_index`);
  scores equal the in-memory ones within 1e-5.

What the driver holds (:class:`SparkContext`): the id index (every distinct user and item of
both logs, in the in-memory reader's order), the graph factors (the in-memory
:func:`~graphsel.graph.embed.svd_factors`, from the candidates' ``(user, item)`` pair counts
collected once), the target log, the classifier's training rows and, only for a
``keep_quantile`` or ``budget`` rule short of every row, each candidate's score. The
candidates themselves stay on the executors.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from graphsel.data.log import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    IdIndex,
    InteractionLog,
)
from graphsel.engines.spark import (
    ROW_COLUMN,
    SparkLog,
    _Checkpointer,
    _functions,
    _is_float,
    _union,
    expand,
    graph_select,
    read_pair,
    selection_columns,
    spark_params,
    write_rows,
)
from graphsel.errors import InputError
from graphsel.graph.embed import sample_vectors, svd_factors
from graphsel.select.domain import (
    DomainClassifier,
    DomainReport,
    domain_auc,
    fold_probability,
    ranked_categories,
)
from graphsel.select.expansion import GraphExpansion
from graphsel.select.neighbors import (
    GroupedSearch,
    NeighborReport,
    NeighborScorer,
    neighbor_scores,
    search_index,
)
from graphsel.select.pipeline import (
    DEFAULT_STAGES,
    SelectionReport,
    StageReport,
    check_candidates,
)
from graphsel.select.stage import SelectionRule, SelectionStage, StageDetails

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "POSITION_COLUMN",
    "SparkCandidates",
    "SparkContext",
    "number_candidates",
    "run_selection",
    "run_stages",
    "score_domain",
    "score_neighbors",
    "spark_stages",
]

POSITION_COLUMN = "_pos"
"""A candidate's number among the candidates of its stage, ``0..N_cand-1`` in source order."""

_WEIGHT = "_weight"
_P_TARGET = DomainClassifier.SCORES[0].column
_KNN_SCORE = NeighborScorer.SCORES[0].column


# --------------------------------------------------------------------------------------------
# Candidates and what the stages share
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SparkCandidates:
    """The rows a stage scores.

    Attributes:
        frame: the source's columns, ``_row``, ``_pos`` (:data:`POSITION_COLUMN`) and the
            scores of the stages so far (``hop``, ``p_target`` double, ``_weight`` double).
        count: ``N_cand``, the rows of ``frame``.
    """

    frame: DataFrame = field(repr=False)
    count: int


def number_candidates(frame: DataFrame, materialise: _Checkpointer) -> SparkCandidates:
    """``frame`` sorted by ``_row`` and numbered ``_pos`` ``0..N-1``, materialised.

    The sort range-partitions the rows, so a row's number is the rows of the partitions
    before its own plus its place in its partition (two jobs, nothing collected but one
    count per partition; the first stores the sorted rows).
    """
    functions = _functions()
    ordered = materialise(frame.orderBy(ROW_COLUMN), eager=False)
    part = functions.spark_partition_id()
    in_part = functions.monotonically_increasing_id() - functions.shiftleft(part.cast("long"), 33)
    counts = sorted((int(r[0]), int(r[1])) for r in
                    ordered.groupBy(part.alias("_part")).count().collect())
    offsets, total = [], 0
    for index, count in counts:
        offsets += [functions.lit(index), functions.lit(total)]
        total += count
    offset = functions.create_map(*offsets)[part] if offsets else functions.lit(0)
    numbered = ordered.select("*", (offset + in_part).cast("long").alias(POSITION_COLUMN))
    return SparkCandidates(materialise(numbered), total)


def _codes_log(index: IdIndex, users: np.ndarray, items: np.ndarray, name: str) -> InteractionLog:
    """A log of user and item codes only: what :func:`~graphsel.graph.embed.adjacency` and
    :func:`~graphsel.graph.embed.sample_vectors` read."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    return InteractionLog(pa.table({"user": users}), index, users, items,
                          np.zeros(len(users), dtype=np.int64), np.zeros(len(users), np.int8),
                          name)


def _ids(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False)


class SparkContext:
    """What the stages of one Spark selection share, computed on the driver when first asked
    for (as :class:`graphsel.select.stage.SelectionContext` in memory).

    Args:
        source, target: the logs read.
        checkpoint: how frames are materialised: ``"local"`` (default) or ``"reliable"``
            (see :func:`graphsel.engines.spark.expand`).
    """

    def __init__(self, source: SparkLog, target: SparkLog, checkpoint: str = "local") -> None:
        self.source = source
        self.target = target
        self.materialise = _Checkpointer(checkpoint)
        self._factors: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def target_ids(self, *columns: str, row_offset: int | None = None) -> DataFrame:
        """The target's ``columns`` (ids) typed as the source's, and with ``row_offset`` its
        ``_row`` plus the offset as ``_first``."""
        functions = _functions()
        frame = self.target.frame
        ids = [frame[c].cast(self.source.frame.schema[c].dataType).alias(c) for c in columns]
        if row_offset is not None:
            ids.append((functions.col(ROW_COLUMN) + row_offset).alias("_first"))
        return frame.select(*ids)

    @functools.cached_property
    def index(self) -> IdIndex:
        """The in-memory reader's :class:`~graphsel.data.log.IdIndex` of the two logs: ids in
        order of first appearance in the source, then in the target."""
        functions = _functions()
        first = functions.min("_first").alias("_first")
        ids = []
        for column in ("user_id", "item_id"):
            source_ids = self.source.frame.select(column, functions.col(ROW_COLUMN).alias("_first"))
            target_ids = self.target_ids(column, row_offset=self.source.rows)
            ordered = (source_ids.unionByName(target_ids).groupBy(column).agg(first)
                       .orderBy("_first").select(column))
            ids.append(_ids(ordered.toArrow(), column))
        return IdIndex(ids[0], ids[1])

    @functools.cached_property
    def target_table(self) -> pa.Table:
        """The target log's rows, in order (collected once: the target is the small side)."""
        return self.target.frame.orderBy(ROW_COLUMN).drop(ROW_COLUMN).toArrow()

    def target_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N_tgt,)`` user and item codes of the target rows."""
        table = self.target_table
        return (self.index.user_codes(_ids(table, "user_id")),
                self.index.item_codes(_ids(table, "item_id")))

    def factors(self, candidates: SparkCandidates, dim: int, normalize: str,
                random_state: int) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`graphsel.select.stage.SelectionContext.factors` on Spark: None for ``dim``
        0, else :func:`~graphsel.graph.embed.svd_factors` of the candidates and the target,
        once per ``(dim, normalize, random_state)``, from their ``(user, item)`` pair counts.
        """
        if dim == 0:
            return None
        key = (dim, normalize, random_state)
        if key not in self._factors:
            functions = _functions()
            pairs = candidates.frame.select("user_id", "item_id").unionAll(
                self.target_ids("user_id", "item_id"))
            counted = pairs.groupBy("user_id", "item_id").agg(
                functions.count(functions.lit(1)).alias("_n")).toArrow()
            repeats = counted.column("_n").to_numpy()
            users = np.repeat(self.index.user_codes(_ids(counted, "user_id")), repeats)
            items = np.repeat(self.index.item_codes(_ids(counted, "item_id")), repeats)
            # the same (user, item) multiset as the in-memory candidates and target: the same
            # adjacency, so the same seeded SVD
            self._factors[key] = svd_factors([_codes_log(self.index, users, items, "pairs")],
                                             dim, normalize, random_state)
        return self._factors[key]


def _broadcast(spark: SparkSession, value: Any) -> Any:
    return spark.sparkContext.broadcast(value)


def _with_columns(candidates: SparkCandidates, fields: list[tuple[str, str]],
                  score: Callable[[Any, pa.Table], list[np.ndarray]],
                  payload: Any) -> DataFrame:
    """``candidates.frame`` with ``fields`` (name, Spark type) appended, computed per Arrow
    batch on the executors by ``score(payload.value, batch)``; every other column passes
    through untouched (nulls stay null)."""
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    frame = candidates.frame
    schema = StructType([*frame.schema.fields,
                         *(StructField(name, _parse_datatype_string(kind)) for name, kind in fields)])
    names = [name for name, _ in fields]

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            values = score(payload, pa.Table.from_batches([batch]))
            yield pa.RecordBatch.from_arrays([*batch.columns, *map(pa.array, values)],
                                             names=[*batch.schema.names, *names])

    return frame.mapInArrow(score_batches, schema)


# --------------------------------------------------------------------------------------------
# The domain classifier
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class DomainFeaturePlan:
    """How rows become the domain classifier's features, decided on the driver from the
    counts of both logs (:func:`graphsel.select.domain.domain_features`'s rules).

    Attributes:
        parts: per feature block ``(kind, column, data)``: ``("numeric", column, None)``,
            ``("categories", column, categories)`` (code = position in the ``pd.Index``) or
            ``("factors", column, (ids, factors))`` (the factors of each id).
        names: ``(F,)`` feature names.
        categorical: ``(F,)`` bool.
    """

    parts: list[tuple[str, str, Any]]
    names: list[str]
    categorical: np.ndarray
    _lookups: dict[str, pd.Index] = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> list[str]:
        """The columns the features are read from."""
        return list(dict.fromkeys(column for _, column, _ in self.parts))

    def matrix(self, table: pa.Table) -> np.ndarray:
        """``(N, F)`` float32 features of ``table``'s rows (``NaN``: missing)."""
        blocks = []
        for kind, column, data in self.parts:
            values = table.column(column).to_numpy(zero_copy_only=False)
            if kind == "numeric":
                blocks.append(np.asarray(values, dtype=np.float32).reshape(len(values), 1))
            elif kind == "categories":
                codes = data.get_indexer(values).astype(np.float32)
                codes[codes < 0] = np.nan
                blocks.append(codes.reshape(len(values), 1))
            else:
                ids, factors = data
                if column not in self._lookups:  # a hash table per process, not per batch
                    self._lookups[column] = pd.Index(ids)
                blocks.append(factors[self._lookups[column].get_indexer(values)])
        return np.hstack(blocks)


def _value_counts(frame: DataFrame, columns: list[str], order: str) -> dict[str, pd.Series]:
    """Per column, the rows of each non-null value, indexed by value in order of first
    appearance (by ``order``): one job for every column (grouping sets)."""
    functions = _functions()
    if not columns:
        return {}
    flags = [functions.grouping(column).alias(f"_g{i}") for i, column in enumerate(columns)]
    counted = (frame.groupingSets([[column] for column in columns], *columns)
               .agg(functions.count(functions.lit(1)).alias("_n"),
                    functions.min(order).alias("_first"), *flags)
               .orderBy("_first").toArrow())
    counts = {}
    for i, column in enumerate(columns):
        grouped = counted.column(f"_g{i}").to_numpy() == 0
        rows = counted.filter(pa.array(grouped & counted.column(column).is_valid().to_numpy()))
        counts[column] = pd.Series(rows.column("_n").to_numpy(), index=_ids(rows, column))
    return counts


def _table_counts(table: pa.Table, column: str) -> pd.Series:
    """:func:`_value_counts` of a collected table's column (``pd.factorize``'s order)."""
    codes, uniques = pd.factorize(table.column(column).to_numpy(zero_copy_only=False))
    return pd.Series(np.bincount(codes[codes >= 0], minlength=len(uniques)), index=uniques)


def _shared_columns(candidates: SparkCandidates, context: SparkContext,
                    columns: Sequence[str]) -> set[str]:
    """Those of ``columns`` with an id in both the candidates and the target (one job)."""
    functions = _functions()
    found = [candidates.frame.select(column).join(context.target_ids(column), column, "left_semi")
             .limit(1).select(functions.lit(column).alias("_column")) for column in columns]
    return {row[0] for row in _union(found).collect()}


def domain_plan(stage: DomainClassifier, candidates: SparkCandidates, context: SparkContext,
                factors: tuple[np.ndarray, np.ndarray] | None) -> DomainFeaturePlan:
    """The features :func:`graphsel.select.domain.domain_features` gives the in-memory stage,
    as a plan the executors apply.

    Raises:
        InputError: for a column a log lacks, one numeric in one log and categorical in the
            other, or no feature at all (the in-memory messages).
    """
    source, target, target_table, index = (context.source, context.target,
                                           context.target_table, context.index)
    explicit = stage.columns is not None
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    columns = (list(stage.columns) if stage.columns is not None else
               [c for c in source.columns if c not in known and c in target.columns])
    types = {log.name: {f.name: f.dataType for f in log.frame.schema.fields}
             for log in (source, target)}
    parts: list[tuple[str, str, Any]] = []
    names: list[str] = []
    categorical: list[bool] = []

    for column in columns:
        for log in (source, target):
            if column not in log.columns:
                raise InputError(f"{log.name}: no column '{column}' (has: {', '.join(log.columns)})")
        kinds = {name: _is_float(log_types[column]) for name, log_types in types.items()}
        if len(set(kinds.values())) > 1:
            raise InputError(f"column '{column}' is numeric in some logs and categorical in "
                             f"others ({kinds})")
    numeric = {column for column in columns if _is_float(types[source.name][column])}
    ids = ["user_id", "item_id"] if stage.shared_ids else []
    coded = [column for column in columns if column not in numeric] + ids
    candidate_counts = _value_counts(candidates.frame, coded, POSITION_COLUMN)
    for column in [*columns, *ids]:
        if column in numeric:
            parts.append(("numeric", column, None))
            names.append(column)
            categorical.append(False)
            continue
        counts = [candidate_counts[column], _table_counts(target_table, column)]
        shared = counts[0].index.intersection(counts[1].index)
        if len(shared) == 0 and not (explicit or column in ids):
            continue  # a value one domain alone has names the domain
        parts.append(("categories", column, ranked_categories(counts, allowed=shared.to_numpy())))
        names.append(column)
        categorical.append(True)
    if factors is not None:
        shared_ids = _shared_columns(candidates, context, ("user_id", "item_id"))
        for column, keys, side in (("user_id", index.users, factors[0]),
                                   ("item_id", index.items, factors[1])):
            if column in shared_ids:
                name = f"{column[:4]}_svd"
                width = side.shape[1]
                parts.append(("factors", column, (keys, np.asarray(side, dtype=np.float32))))
                names.extend([name] if width == 1 else [f"{name}_{j}" for j in range(width)])
                categorical.extend([False] * width)
    if not names:
        raise InputError("no domain features: the logs share no side-feature column and no "
                         "graph factors were given")
    return DomainFeaturePlan(parts, names, np.asarray(categorical, dtype=bool))


def _thread_limit(n_threads: int | None) -> Any:
    return (contextlib.nullcontext() if n_threads is None
            else threadpool_limits(n_threads, user_api="openmp"))


def _score_domain_batch(payload: Any, table: pa.Table) -> list[np.ndarray]:
    """``[p_target, weight]`` of a batch of candidates (float64), on an executor."""
    plan, models, odds_scales, folds, stage, n_cand, n_tgt = payload.value
    x = plan.matrix(table)
    fold = folds[table.column(POSITION_COLUMN).to_numpy()]
    p_target = np.empty(len(x), dtype=np.float64)
    with _thread_limit(stage.n_threads):
        for index, (model, odds_scale) in enumerate(zip(models, odds_scales)):
            rows = np.flatnonzero(fold == index)
            if len(rows):
                p_target[rows] = fold_probability(model, x[rows], odds_scale)
    return [p_target, stage.density_weights(p_target, n_cand, n_tgt)]


def score_domain(candidates: SparkCandidates, context: SparkContext,
                 stage: DomainClassifier) -> tuple[DataFrame, DomainReport]:
    """The ``da`` stage on Spark: ``stage.fit(candidates, target)``'s scores and weights.

    Args:
        candidates: the rows to score (their ``_pos`` numbers them in source order).
        context: the selection's shared inputs (target, id index, graph factors).
        stage: the unfitted in-memory stage whose parameters to run.

    Returns:
        The candidates with ``p_target`` (out of fold, float64) and ``_weight`` (the clipped
        density ratio, float64), materialised, not yet cut by the stage's rule; and the
        stage's report.
    """
    spark = candidates.frame.sparkSession
    n_cand, n_tgt = candidates.count, context.target.rows
    factors = context.factors(candidates, stage.embedding_dim, stage.normalize,
                              stage.random_state)
    plan = domain_plan(stage, candidates, context, factors)
    x_target = plan.matrix(context.target_table)
    y = np.concatenate([np.zeros(n_cand, dtype=np.int8), np.ones(n_tgt, dtype=np.int8)])
    plans = stage.fold_plans(y)
    # the candidates some fold's model learns from: collected (sorted by _pos), nothing else
    drawn = np.unique(np.concatenate([train[train < n_cand] for _, train, _, _ in plans]))
    positions = spark.createDataFrame(pa.table({POSITION_COLUMN: drawn}))
    sample = (candidates.frame.join(_functions().broadcast(positions), POSITION_COLUMN,
                                    "left_semi")
              .select(*plan.columns, POSITION_COLUMN).toArrow())
    sample = sample.take(pa.array(np.argsort(sample.column(POSITION_COLUMN).to_numpy())))
    x_drawn = plan.matrix(sample)
    models, odds_scales = [], []
    folds = np.empty(n_cand, dtype=np.int8)
    p_in_target = np.empty(n_tgt, dtype=np.float64)
    for fold, train, odds_scale, test in plans:
        train_target = train[train >= n_cand] - n_cand
        x_train = np.vstack([x_drawn[np.searchsorted(drawn, train[train < n_cand])],
                             x_target[train_target]])
        with _thread_limit(stage.n_threads):
            model = stage.make_model(plan.categorical).fit(x_train, y[train])
            test_target = test[test >= n_cand] - n_cand
            p_in_target[test_target] = fold_probability(model, x_target[test_target],
                                                           odds_scale)
        folds[test[test < n_cand]] = fold
        models.append(model)
        odds_scales.append(odds_scale)
    payload = _broadcast(spark, (plan, models, odds_scales, folds, stage, n_cand, n_tgt))
    scored = context.materialise(_with_columns(  # stored by the AUC's job, which reads it all
        candidates, [(_P_TARGET, "double"), (_WEIGHT, "double")], _score_domain_batch, payload),
        eager=False)
    return scored, DomainReport(round(_auc(scored, p_in_target), 6))


def _auc(scored: DataFrame, p_in_target: np.ndarray) -> float:
    """The out-of-fold AUC of target against candidates, from a histogram of the candidates'
    scores: every row's AUC exactly (:func:`~graphsel.select.domain.domain_auc` weighs each
    distinct score by its count)."""
    functions = _functions()
    histogram = scored.groupBy(_P_TARGET).agg(
        functions.count(functions.lit(1)).alias("_n")).toArrow()
    return domain_auc(histogram.column(_P_TARGET).to_numpy(), p_in_target,
                      histogram.column("_n").to_numpy())


# --------------------------------------------------------------------------------------------
# The neighbour scorer
# --------------------------------------------------------------------------------------------


def _score_neighbors_batch(payload: Any, table: pa.Table) -> list[np.ndarray]:
    """``[knn_score]`` (float32) of a batch of candidates, on an executor."""
    searcher = payload.value
    return [searcher.scores(table)]


def _row_codes(live: dict[str, Any], index: IdIndex,
               table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """User and item codes of a batch's rows; the ids are hashed once per process (``live``)."""
    if "users" not in live:
        live["users"], live["items"] = pd.Index(index.users), pd.Index(index.items)
    return (live["users"].get_indexer(_ids(table, "user_id")),
            live["items"].get_indexer(_ids(table, "item_id")))


@dataclass(eq=False)
class _NeighborSearch:
    """The target's FAISS index, serialised, and how to turn rows into query vectors."""

    blob: np.ndarray
    key: str
    xb: np.ndarray
    index: IdIndex
    user_factors: np.ndarray
    item_factors: np.ndarray
    stage: NeighborScorer
    _live: dict[str, Any] = field(default_factory=dict, repr=False)

    def scores(self, table: pa.Table) -> np.ndarray:
        import faiss

        if "index" not in self._live:  # deserialised once per process
            self._live["index"] = faiss.deserialize_index(self.blob)
        users, items = _row_codes(self._live, self.index, table)
        xq = sample_vectors(_codes_log(self.index, users, items, "candidates"),
                            self.user_factors, self.item_factors)
        stage = self.stage
        similarity, neighbors = search_index(
            self._live["index"], self.key, self.xb, xq, stage.k, lsh_rerank=stage.lsh_rerank,
            batch_size=stage.batch_size, n_threads=1)
        return neighbor_scores(similarity, neighbors)


@dataclass(eq=False)
class _GroupedNeighborSearch:
    """The target's :class:`~graphsel.select.neighbors.GroupedSearch`, and the ids' codes."""

    search: GroupedSearch
    index: IdIndex
    batch_size: int
    _live: dict[str, Any] = field(default_factory=dict, repr=False)

    def scores(self, table: pa.Table) -> np.ndarray:
        users, items = _row_codes(self._live, self.index, table)
        return neighbor_scores(*self.search.search_samples(
            users, items, batch_size=self.batch_size, n_threads=1))


def score_neighbors(candidates: SparkCandidates, context: SparkContext,
                    stage: NeighborScorer) -> tuple[DataFrame, NeighborReport]:
    """The ``knn`` stage on Spark: ``stage.fit(candidates, target)``'s ``knn_score``.

    The index of the target's sample vectors is built on the driver, as the in-memory stage
    builds it, and sent to the executors serialised; each queries it with its candidates. A
    target of few items (or users) sends the grouped exact search's tables instead, as the
    in-memory stage searches it (:meth:`NeighborScorer.grouped_search`).

    Returns:
        The candidates with ``knn_score`` (float32), materialised, not yet cut by the stage's
        rule; and the stage's report.
    """
    import faiss

    factors = context.factors(candidates, stage.embedding_dim, stage.normalize,
                              stage.random_state)
    assert factors is not None  # embedding_dim >= 1 (check_params)
    users, items = context.target_codes()
    grouped = stage.grouped_search(*factors, users, items)
    search: _NeighborSearch | _GroupedNeighborSearch
    if grouped is not None:
        search = _GroupedNeighborSearch(grouped, context.index, stage.batch_size)
        report = NeighborReport("Flat", grouped.side)
    else:
        def queries(rows: np.ndarray) -> np.ndarray:
            """The vectors of the candidates numbered ``rows`` (the few an IVF index is tuned
            on), collected in that order."""
            functions = _functions()
            table = (candidates.frame
                     .filter(functions.col(POSITION_COLUMN).isin([int(r) for r in rows]))
                     .select("user_id", "item_id", POSITION_COLUMN).orderBy(POSITION_COLUMN)
                     .toArrow())
            return sample_vectors(_codes_log(context.index,
                                             context.index.user_codes(_ids(table, "user_id")),
                                             context.index.item_codes(_ids(table, "item_id")),
                                             "candidates"), *factors)

        xb, index, report = stage.faiss_index(
            sample_vectors(_codes_log(context.index, users, items, "target"), *factors),
            candidates.count, queries)
        search = _NeighborSearch(faiss.serialize_index(index), report.index, xb, context.index,
                                 *factors, stage)
    payload = _broadcast(candidates.frame.sparkSession, search)
    scored = context.materialise(_with_columns(candidates, [(_KNN_SCORE, "float")],
                                               _score_neighbors_batch, payload))
    return scored, report


# --------------------------------------------------------------------------------------------
# Keep rules and the pipeline
# --------------------------------------------------------------------------------------------


def _keep(scored: DataFrame, column: str, rule: SelectionRule, count: int,
          materialise: Callable[[DataFrame], DataFrame]) -> DataFrame:
    """The rows ``rule`` keeps by ``column`` (:meth:`SelectionRule.mask`, ties by ``_pos``).

    A threshold is a filter, left unmaterialised: ``scored`` is, and filtering it again is
    cheaper than a copy. A top rule short of every row collects ``(_pos, score)`` to the
    driver, applies the in-memory mask and semi-joins the kept positions, materialised (the
    broadcast of the positions would run again at every use).
    """
    functions = _functions()
    if rule.kind == "threshold":
        return scored.filter(functions.col(column).cast("double") >= rule.value)
    if (rule.kind == "keep_quantile" and rule.value >= 1.0) or \
            (rule.kind == "budget" and rule.value >= count):
        return scored  # every row (the da stage's default)
    table = scored.select(POSITION_COLUMN, column).toArrow()
    order = np.argsort(table.column(POSITION_COLUMN).to_numpy())
    positions = table.column(POSITION_COLUMN).to_numpy()[order]
    kept = positions[rule.mask(table.column(column).to_numpy()[order])]
    kept_frame = scored.sparkSession.createDataFrame(pa.table({POSITION_COLUMN: kept}))
    return materialise(scored.join(functions.broadcast(kept_frame), POSITION_COLUMN,
                                   "left_semi"))


SPARK_STAGES: tuple[str, ...] = DEFAULT_STAGES
"""The stages the Spark engine runs, in this order (any of them, at least one)."""


def spark_stages(stages: Sequence[SelectionStage]) -> list[SelectionStage]:
    """Checks the stages a Spark selection runs, before any work.

    Args:
        stages: unfitted stages (e.g. :meth:`graphsel.select.config.SelectionConfig.stage`).

    Returns:
        ``stages`` as a list.

    Raises:
        InputError: a stage the engine does not run, stages out of the order of
            :data:`SPARK_STAGES`, a bad parameter (the stage's own message) or a graph
            parameter Spark cannot reproduce (:func:`graphsel.engines.spark.spark_params`).
    """
    names = [stage.name for stage in stages]
    if not names or any(name not in SPARK_STAGES for name in names) or \
            names != sorted(names, key=SPARK_STAGES.index) or len(set(names)) != len(names):
        raise InputError(f"the Spark engine runs the stages {','.join(SPARK_STAGES)} in that "
                         f"order, or some of them; got {','.join(names) or 'none'}")
    for stage in stages:
        if isinstance(stage, GraphExpansion):
            spark_params(stage)
        else:
            stage.check_params()
    return list(stages)


def run_stages(spark: SparkSession, source: str | os.PathLike[str],
               target: str | os.PathLike[str], stages: Sequence[SelectionStage], *,
               checkpoint: str = "local", progress: Callable[[str], None] | None = None,
               ) -> tuple[DataFrame, SparkContext, list[StageReport]]:
    """Reads the logs and runs ``stages`` as :meth:`SampleSelector.fit` does.

    Returns:
        The selected rows (the source's columns, ``_row``, ``_pos`` and every score the
        stages computed; not ordered), the context (the logs read) and a
        :class:`~graphsel.select.pipeline.StageReport` per stage.

    Raises:
        InputError: bad input or parameters, a stage left too few rows for the next, or a
            stage kept none (the in-memory messages).
    """
    stages = spark_stages(stages)
    report = progress or (lambda phase: None)
    report("read")
    source_log, target_log = read_pair(spark, source, target)
    for stage in stages:
        stage.check_inputs(source_log.rows, target_log.rows)
    context = SparkContext(source_log, target_log, checkpoint)
    materialise = context.materialise
    functions = _functions()
    frame = source_log.frame
    reports: list[StageReport] = []
    count = source_log.rows
    numbered: SparkCandidates | None = None
    for position, stage in enumerate(stages):
        start = time.perf_counter()
        if position:
            check_candidates(stage, stages[position - 1], count, target_log.rows)
        details: StageDetails
        if isinstance(stage, GraphExpansion):
            expansion = expand(source_log, target_log, stage, checkpoint=checkpoint,
                               progress=progress)
            # unsorted: whatever uses the rows sorts them once (number_candidates, the write)
            frame = graph_select(source_log, expansion, stage.mode, keep_row=True,
                                 ordered=False)
            # stored by the job that counts them, below
            details, kept = expansion.report(), materialise(frame, eager=False)
        else:
            report(stage.name)
            # a stage that kept every row leaves them numbered
            candidates = (numbered if numbered is not None and numbered.count == count
                          else number_candidates(frame.drop(POSITION_COLUMN)
                                                 if POSITION_COLUMN in frame.columns
                                                 else frame, materialise))
            rule = stage._selection_rule()
            if isinstance(stage, DomainClassifier):
                scored, details = score_domain(candidates, context, stage)
                column = _P_TARGET
            else:
                assert isinstance(stage, NeighborScorer)
                scored, details = score_neighbors(candidates, context, stage)
                column = _KNN_SCORE
            numbered = SparkCandidates(scored, candidates.count)
            kept = _keep(scored, column, rule, candidates.count, materialise)
        [(rows, users, items)] = kept.agg(functions.count(functions.lit(1)),
                                          functions.countDistinct("user_id"),
                                          functions.countDistinct("item_id")).collect()
        if rows == 0:
            reason = (_graph_empty_reason(stage, details) if isinstance(stage, GraphExpansion)
                      else stage.empty_reason())
            raise InputError(f"the selection is empty: the {stage.name} stage kept none of "
                             f"{count:,} candidate rows: {reason}")
        reports.append(StageReport(stage.name, int(rows), int(users), int(items),
                                   round(time.perf_counter() - start, 3), details))
        frame, count = kept, int(rows)
    return frame, context, reports


def _graph_empty_reason(stage: GraphExpansion, details: Any) -> str:
    """:meth:`GraphExpansion.empty_reason` from the Spark expansion's report."""
    seeds = details.hops[0]
    return (f"no row has {'both ends' if stage.mode == 'both' else 'its ' + stage.mode} "
            f"within {stage.num_hops} hops of the {seeds.users} seed users and {seeds.items} "
            f"seed items")


def run_selection(spark: SparkSession, source: str | os.PathLike[str],
                  target: str | os.PathLike[str], stages: Sequence[SelectionStage],
                  out: str | os.PathLike[str], *, checkpoint: str = "local",
                  progress: Callable[[str], None] | None = None) -> SelectionReport:
    """``graphsel select --engine spark``: the rows and the report of ``graphsel select`` in
    memory, from Spark.

    Writes the selected rows with every score column and ``weight``
    (:func:`graphsel.engines.spark.selection_columns`) to ``out`` (a directory of Parquet
    files, in source order: graphsel's reader gives the in-memory file's rows) and returns
    the :class:`~graphsel.select.pipeline.SelectionReport` the in-memory selection reports
    (its stage ``seconds`` are Spark's; no ``warnings``).

    Args:
        spark: the session (:func:`graphsel.engines.spark.spark_session`).
        source, target: Parquet paths or ``table:db.name``.
        stages: the unfitted stages (:func:`spark_stages`).
        out: the directory to write.
        checkpoint: ``"local"`` or ``"reliable"`` (:func:`graphsel.engines.spark.expand`).
        progress: called with each phase's name (default None).

    Raises:
        InputError: bad input or parameters, or an empty selection (nothing is written then),
            in the in-memory engine's one-line messages.
    """
    rows, context, reports = run_stages(spark, source, target, stages, checkpoint=checkpoint,
                                        progress=progress)
    (progress or (lambda phase: None))("write")
    functions = _functions()
    ordered = rows.orderBy(ROW_COLUMN)
    if _WEIGHT in rows.columns:
        ordered = ordered.withColumnRenamed(_WEIGHT, "weight")
    columns = [c for c in ordered.columns if c not in (ROW_COLUMN, POSITION_COLUMN)]
    summary: list[SelectionReport] = []

    def summarise(written: str) -> None:
        summary.append(_selection_report(spark.read.parquet(written), context, reports))

    write_rows(selection_columns(ordered.select(*map(functions.col, columns))), out,
               inspect=summarise)
    return summary[0]


def _selection_report(selected: DataFrame, context: SparkContext,
                      stages: list[StageReport]) -> SelectionReport:
    """The in-memory :class:`SelectionReport` of ``selected`` (the written rows), in one job.

    Each log gives one row ``(name, rows, sum of labels)`` and each id column one row
    ``(column, the target's distinct ids, those that selected rows touch)``. Labels are 0 or
    1, so their sums are exact and ``sum / rows`` is the mean in any order of addition.
    """
    functions = _functions()
    one = functions.lit(1)
    source, target = context.source, context.target

    def label_sum(name: str, frame: DataFrame) -> DataFrame:
        return frame.agg(functions.lit(name).alias("_part"), functions.count(one).alias("_n"),
                         functions.sum(functions.col("label").cast("double")).alias("_k"))

    def touched(column: str) -> DataFrame:
        hits = selected.select(column).distinct().withColumn("_hit", one)
        return (context.target_ids(column).distinct().join(hits, column, "left")
                .agg(functions.lit(column).alias("_part"), functions.count(one).alias("_n"),
                     functions.count("_hit").cast("double").alias("_k")))

    parts = [label_sum("source", source.frame), label_sum("target", target.frame),
             label_sum("selected", selected), touched("user_id"), touched("item_id")]
    totals = {row["_part"]: (int(row["_n"]), float(row["_k"] or 0.0))
              for row in _union(parts).collect()}

    def share(part: str) -> float:
        total, part_of_it = totals[part]
        return round(part_of_it / total, 6) if total else 0.0

    return SelectionReport(
        source_rows=source.rows, target_rows=target.rows, stages=tuple(stages),
        selected=totals["selected"][0],
        target_user_coverage=share("user_id"), target_item_coverage=share("item_id"),
        target_label_rate=share("target"), selected_label_rate=share("selected"),
        source_label_rate=share("source"))

