"""The evaluation protocol: a time split, one selection, every strategy trained alike.

Given a source and a target log (one shared id index), :func:`compare_strategies`:

1. **Splits the target by time** (:func:`split_by_time`): test = the last ``test_fraction``
   (10 %) of target rows by time, validation = the ``valid_fraction`` (10 %) before it,
   training = the rest. The cuts are timestamps, so every training row is strictly older
   than every validation row, and every validation row than every test row (rows sharing a
   timestamp stay together; the fractions are then approximate). Source rows are kept only
   when older than the test start (no leakage), optionally subsampled to
   ``max_source_rows`` (seeded, the same rows for every seed and strategy).
2. **Fits the selection once** on training-time data only: the target's training rows and
   the kept source rows (:func:`fit_selection`), if a strategy needs it. The selection does
   not change with the run's seed; the seeds measure the training noise.
3. **Trains every strategy with the same model and hyper-parameters**: a strategy
   (:mod:`graphsel.transfer.protocol.strategies`) decides the source rows and their weights, and its
   learner (:mod:`graphsel.transfer.protocol.learners`) what is trained on them: the base model for
   the baselines, the transfer models of the seed papers (CTNet, ECAT, DIIT, E-CDCTR) built
   from the base model's parts, with the same ``ModelConfig`` and ``TrainConfig``.
   Each strategy gets its own :class:`~graphsel.transfer.features.FeatureEncoder`, fitted on
   its own training data (target training rows + its source rows): ``merge_all``'s
   vocabulary then holds the source-only users and items it trains embeddings for, while
   ``target_only`` sends them to the out-of-vocabulary bucket, as a real deployment of each
   would. Validation and test rows never enter a vocabulary.
4. **Continual runner**: the target's training span is cut into ``periods`` windows of
   (about) equal target rows. At period ``p`` the model (warm-started from period ``p - 1``)
   trains on the window's target rows plus the strategy's source rows of the same time
   window (the first window reaches back to the oldest source row, the last one up to the
   test start), early-stopping on the validation rows, and is evaluated on the next
   window's target rows; the last period is evaluated on the test set. Learners with
   source models retrain them (warm-started) on the window's source rows and refresh their
   frozen copies at every period. ``mode="once"`` transfers only at the first period (later
   periods train on target rows only, with the first period's source models).
   ``periods=1`` is the plain train / validation / test protocol. The vocabulary is fitted
   once per strategy over its whole training span, so the warm-started embedding table
   keeps its shape.
5. **Scores** AUC, GAUC (groups = users) and LogLoss on the test set, and the paired
   bootstrap 95 % interval of each strategy's AUC minus ``target_only``'s on the same test
   rows: one replicate resamples test *users* (all their rows) and scores both strategies'
   seed-averaged AUC on it, so the test-set noise cancels in the difference; the spread
   over seeds is reported separately as ``std``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from graphsel._table import format_table
from graphsel.data.log import REQUIRED_COLUMNS, InteractionLog
from graphsel.errors import InputError, choice_error
from graphsel.select.pipeline import SampleSelector, Selection
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import (
    ITEM_FIELD,
    USER_FIELD,
    FeatureEncoder,
    FeatureSpec,
)
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol.learners import LearnerContext, PeriodData, PlanLearner
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    Strategy,
    StrategyContext,
    get_strategy,
    strategy_names,
)
from graphsel.transfer.train.metrics import (
    auc,
    gauc,
    logloss,
    mean_auc,
    paired_bootstrap_ci,
)
from graphsel.transfer.train.trainer import TrainConfig, seed_everything

__all__ = [
    "MODES",
    "BASELINE",
    "METRIC_NAMES",
    "ProtocolConfig",
    "TimeSplit",
    "split_by_time",
    "fit_selection",
    "score_predictions",
    "compare_strategies",
    "Results",
]

MODES: tuple[str, ...] = ("continual", "once")
"""``continual``: source rows join every period; ``once``: only the first."""

BASELINE = "target_only"
"""The strategy every other one is compared with."""

METRIC_NAMES: tuple[str, ...] = ("auc", "gauc", "logloss")

_SUBSAMPLE_SEED = 0x5EED


@dataclass(frozen=True)
class ProtocolConfig:
    """Options of the protocol.

    Attributes:
        valid_fraction: share of target rows (the latest before the test) for validation.
            Default 0.1.
        test_fraction: share of target rows (the latest) for the test. Default 0.1.
        periods: ``P``, windows the target training span is cut into. Default 1.
        mode: ``"continual"`` (source rows at every period) or ``"once"`` (at the first
            only). Default ``"continual"``.
        max_source_rows: keep at most this many source rows (a seeded random subset of those
            before the test start). Default None: all.
        n_boot: bootstrap replicates of the confidence intervals. Default 1000.
    """

    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    periods: int = 1
    mode: str = "continual"
    max_source_rows: int | None = None
    n_boot: int = 1000

    def __post_init__(self) -> None:
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise InputError(f"{name} must be in (0, 0.5), got {value}")
        if self.periods < 1:
            raise InputError(f"periods must be >= 1, got {self.periods}")
        if self.mode not in MODES:
            raise choice_error("mode", self.mode, MODES)
        if self.max_source_rows is not None and self.max_source_rows < 1:
            raise InputError(f"max_source_rows must be >= 1, got {self.max_source_rows}")
        if self.n_boot < 1:
            raise InputError(f"n_boot must be >= 1, got {self.n_boot}")


# --------------------------------------------------------------------------------------------
# The time split
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TimeSplit:
    """Which rows play which part; every array holds sorted row numbers of the original logs.

    Attributes:
        target_train: target rows with ``ts < valid_start``.
        target_valid: target rows with ``valid_start <= ts < test_start``.
        target_test: target rows with ``ts >= test_start``.
        source_rows: source rows training may use (``ts < test_start``, maybe subsampled).
        period_bounds: ``(P + 1,)`` int64: period ``p`` holds the target training rows with
            ``period_bounds[p] <= ts < period_bounds[p + 1]``; ``period_bounds[P]`` is
            ``valid_start``.
        periods_rows: ``P`` arrays, the target training rows of each period.
        valid_start: the first validation timestamp.
        test_start: the first test timestamp.
    """

    target_train: np.ndarray
    target_valid: np.ndarray
    target_test: np.ndarray
    source_rows: np.ndarray
    period_bounds: np.ndarray
    periods_rows: tuple[np.ndarray, ...]
    valid_start: int
    test_start: int

    @property
    def periods(self) -> int:
        return len(self.periods_rows)

    def source_window(self, period: int, ts: np.ndarray) -> np.ndarray:
        """``(K,)`` bool: which source rows of timestamps ``ts`` fall in ``period``'s window.

        The first window has no lower bound and the last one ends at the test start, so the
        windows cover every source row training may use, each exactly once.
        """
        lower = -np.inf if period == 0 else self.period_bounds[period]
        upper = self.test_start if period == self.periods - 1 else self.period_bounds[period + 1]
        return (ts >= lower) & (ts < upper)

    def eval_rows(self, period: int) -> np.ndarray:
        """The target rows ``period``'s model is evaluated on: the next period's, or the test."""
        return self.target_test if period == self.periods - 1 else self.periods_rows[period + 1]

    def summary(self) -> dict[str, Any]:
        """Row counts and cut times, JSON-able."""
        return {"target_train": len(self.target_train), "target_valid": len(self.target_valid),
                "target_test": len(self.target_test), "source": len(self.source_rows),
                "valid_start": self.valid_start, "test_start": self.test_start,
                "period_rows": [len(rows) for rows in self.periods_rows]}


def split_by_time(source: InteractionLog, target: InteractionLog,
                  config: ProtocolConfig | None = None) -> TimeSplit:
    """Cuts the target by time into train / validation / test and ``P`` training periods.

    Args:
        source: ``N_src`` source rows.
        target: ``N_tgt`` target rows.
        config: default ``ProtocolConfig()``.

    Raises:
        InputError: if a part or a period would be empty (too few rows, or too many rows
            sharing one timestamp), or no source row is older than the test start.

    >>> target = InteractionLog.from_columns(list(range(10)), [0] * 10, list(range(10)),
    ...                                      [0, 1] * 5, "t")
    >>> split = split_by_time(target, target)
    >>> split.target_train.tolist(), split.target_valid.tolist(), split.target_test.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8], [9])
    """
    config = config or ProtocolConfig()
    ts = np.asarray(target.ts)
    ordered = np.sort(ts)
    n = len(ordered)
    n_test = max(1, round(config.test_fraction * n))
    n_valid = max(1, round(config.valid_fraction * n))
    if n_test + n_valid >= n:
        raise InputError(f"{target.name}: {n} target rows are too few to split off validation "
                         f"and test rows")
    test_start = int(ordered[n - n_test])
    valid_start = int(ordered[n - n_test - n_valid])
    train = np.flatnonzero(ts < valid_start)
    valid = np.flatnonzero((ts >= valid_start) & (ts < test_start))
    test = np.flatnonzero(ts >= test_start)
    for name, rows in (("training", train), ("validation", valid)):
        if len(rows) == 0:
            raise InputError(f"{target.name}: no target rows left for {name}: too many rows "
                             f"share the timestamps at the cut")
    train_ts = np.sort(ts[train])
    inner = [int(train_ts[round(p * len(train_ts) / config.periods)])
             for p in range(1, config.periods)]
    bounds = np.array([0, *inner, valid_start], dtype=np.int64)
    if (np.diff(bounds) <= 0).any():
        raise InputError(f"{target.name}: periods={config.periods} leaves a period without "
                         f"target rows; use fewer periods")
    periods_rows = tuple(train[(ts[train] >= bounds[p]) & (ts[train] < bounds[p + 1])]
                         for p in range(config.periods))
    source_rows = np.flatnonzero(np.asarray(source.ts) < test_start)
    if len(source_rows) == 0:
        raise InputError(f"{source.name}: no source row is older than the target's test start "
                         f"({test_start})")
    if config.max_source_rows is not None and len(source_rows) > config.max_source_rows:
        rng = np.random.default_rng(_SUBSAMPLE_SEED)
        source_rows = np.sort(rng.choice(source_rows, config.max_source_rows, replace=False))
    return TimeSplit(train, valid, test, source_rows.astype(np.int64), bounds, periods_rows,
                     valid_start, test_start)


def fit_selection(selector: SampleSelector, source: InteractionLog, target: InteractionLog,
                  split: TimeSplit, truth: np.ndarray | None = None) -> Selection:
    """Fits ``selector`` on training-time data only; the selection is over ``split.source_rows``.

    The selector sees ``source[split.source_rows]`` (older than the test start) and
    ``target[split.target_train]`` (older than the validation start): no validation or test
    row, and no source row of the test period, can shape the selection.

    Args:
        selector: an unfitted :class:`~graphsel.select.pipeline.SampleSelector` (its
            hyper-parameters are used).
        source: the whole source log.
        target: the whole target log.
        split: from :func:`split_by_time`.
        truth: ``(N_src,)`` bool planted truth over the whole source log, or None.

    Returns:
        The :class:`~graphsel.select.pipeline.Selection`, its arrays aligned with
        ``split.source_rows``.
    """
    part_truth = None if truth is None else np.asarray(truth, dtype=bool)[split.source_rows]
    selector.fit(source[split.source_rows], target[split.target_train], truth=part_truth)
    return selector.selection_


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def score_predictions(y: np.ndarray, p: np.ndarray, users: np.ndarray) -> dict[str, float | None]:
    """AUC, GAUC (per user) and LogLoss; None where a metric is undefined on these rows.

    >>> score_predictions(np.array([1, 0]), np.array([0.8, 0.4]), np.array([0, 0]))
    {'auc': 1.0, 'gauc': 1.0, 'logloss': 0.366985}
    """
    scores: dict[str, float | None] = {}
    for name, compute in (("auc", lambda: auc(y, p)), ("gauc", lambda: gauc(y, p, users)),
                          ("logloss", lambda: logloss(y, p))):
        try:
            scores[name] = round(float(compute()), 6)
        except InputError:
            scores[name] = None
    return scores


# --------------------------------------------------------------------------------------------
# Training one strategy
# --------------------------------------------------------------------------------------------


def feature_columns(source: InteractionLog, target: InteractionLog) -> tuple[list[str], list[str]]:
    """``(categorical, numeric)`` feature columns: ids, then side features both logs have.

    A float column is numeric, any other side feature categorical (as
    :class:`FeatureEncoder` infers them). Columns only one log has are left out: a model
    input must exist for every row.
    """
    shared = [c for c in target.feature_columns if c in set(source.feature_columns)]
    numeric = [c for c in shared if pa.types.is_floating(target.table.column(c).type)]
    categorical = [USER_FIELD, ITEM_FIELD] + [c for c in shared if c not in numeric]
    return categorical, numeric


def training_log(source: InteractionLog, target: InteractionLog, source_rows: np.ndarray,
                 target_rows: np.ndarray, columns: Sequence[str]) -> InteractionLog:
    """``source[source_rows]`` then ``target[target_rows]`` as one log (shared id index).

    Raises:
        InputError: if a column has different types in the two logs.
    """
    keep = list(REQUIRED_COLUMNS) + [c for c in columns if c not in REQUIRED_COLUMNS]
    parts = [log.table.select(keep).take(pa.array(rows, type=pa.int64()))
             for log, rows in ((source, source_rows), (target, target_rows))]
    try:
        table = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{source.name} and {target.name} have columns of different types "
                         f"({exc})") from None
    return InteractionLog(
        table, target.index,
        np.concatenate([source.user[source_rows], target.user[target_rows]]),
        np.concatenate([source.item[source_rows], target.item[target_rows]]),
        np.concatenate([source.ts[source_rows], target.ts[target_rows]]),
        np.concatenate([source.label[source_rows], target.label[target_rows]]),
        name=f"training data of {target.name}")


@dataclass(frozen=True, eq=False)
class _Encoded:
    """One encoder's view of the data: every target row, and the plan's source rows."""

    target: CTRDataset
    source: CTRDataset
    spec: FeatureSpec


class _EncodingCache:
    """Encodes each distinct set of source rows once per run.

    ``merge_all`` and ``pretrain_finetune`` train on the same rows, ``selected`` and
    ``selected_weighted`` too, and only ``random_same_size`` changes with the seed, so a
    run of the 6 strategies x 3 seeds fits 6 encoders, not 18.
    """

    def __init__(self, source: InteractionLog, target: InteractionLog, split: TimeSplit) -> None:
        self.source, self.target, self.split = source, target, split
        self.columns = feature_columns(source, target)
        self._cache: dict[bytes, _Encoded] = {}

    def get(self, rows: np.ndarray) -> _Encoded:
        key = hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.int64).tobytes(),
                              digest_size=16).digest()
        if key not in self._cache:
            categorical, numeric = self.columns
            encoder = FeatureEncoder(categorical, numeric).fit(training_log(
                self.source, self.target, rows, self.split.target_train, categorical + numeric))
            self._cache[key] = _Encoded(CTRDataset.from_log(self.target, encoder),
                                        CTRDataset.from_log(self.source[rows], encoder),
                                        encoder.spec_)
        return self._cache[key]


@dataclass
class _StrategyRun:
    records: list[dict[str, Any]]
    test_predictions: np.ndarray


def _run_strategy(strategy: Strategy, plan: SourcePlan, encoded: _Encoded,
                  source: InteractionLog, split: TimeSplit, target: InteractionLog,
                  model_config: ModelConfig, train_config: TrainConfig,
                  protocol: ProtocolConfig, seed: int, bar: tqdm) -> _StrategyRun:
    """Trains one strategy for one seed through every period (see the module docstring)."""
    seed_everything(seed)
    context = LearnerContext(plan, encoded.spec, model_config, replace(train_config, seed=seed),
                             source, seed)
    learner = (strategy.learner or PlanLearner)(context)
    source_data = encoded.source.with_weight(plan.weight)
    plan_ts = source.ts[plan.rows]
    valid = encoded.target.subset(split.target_valid)
    records: list[dict[str, Any]] = []
    predictions = np.zeros(0)
    for period in range(split.periods):
        bar.set_postfix_str(f"{strategy.name} seed {seed} period {period}")
        start = time.perf_counter()
        transfer = protocol.mode == "continual" or period == 0
        positions = (np.flatnonzero(split.source_window(period, plan_ts)) if transfer
                     else np.zeros(0, dtype=np.int64))
        data = PeriodData(period, transfer, encoded.target.subset(split.periods_rows[period]),
                          source_data.subset(positions), positions, valid)
        learner.fit_period(data)
        eval_rows = split.eval_rows(period)
        predictions = learner.predict(encoded.target.subset(eval_rows))
        scores = score_predictions(target.label[eval_rows], predictions, target.user[eval_rows])
        records.append({"strategy": strategy.name, "seed": seed, "period": period, **scores,
                        "n_train": len(data.source) + len(data.target),
                        "n_source": len(data.source), "n_eval": len(eval_rows),
                        "seconds": round(time.perf_counter() - start, 3)})
        bar.update(1)
    return _StrategyRun(records, predictions)


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def compare_strategies(
    source: InteractionLog,
    target: InteractionLog,
    strategies: Sequence[str] | None = None,
    *,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    protocol: ProtocolConfig | None = None,
    selector: SampleSelector | None = None,
    seeds: Sequence[int] = (0,),
    truth: np.ndarray | None = None,
    progress: bool = False,
) -> Results:
    """Trains and scores every strategy on one time split (see the module docstring).

    Args:
        source: ``N_src`` source rows.
        target: ``N_tgt`` target rows, on the source's id index.
        strategies: registered strategy names. Default None: all of them
            (:func:`~graphsel.transfer.protocol.strategies.strategy_names`).
        model: the model of every strategy. Default ``ModelConfig()``.
        train: the training options of every strategy (its ``seed`` is replaced by each run
            seed). Default ``TrainConfig()``.
        protocol: split, periods and bootstrap options. Default ``ProtocolConfig()``.
        selector: the unfitted selector whose selection the ``selected*`` and
            ``random_same_size`` strategies use. Default ``SampleSelector()``.
        seeds: one run per seed (model initialisation, shuffling, random subsets). Default
            ``(0,)``.
        truth: ``(N_src,)`` bool planted truth (synthetic data), adds the selection's
            precision and recall to :attr:`Results.selection`. Default None.
        progress: a progress bar over the runs on stderr. Default False.

    Raises:
        InputError: an unknown strategy, a split that leaves a part empty, a bad option.
    """
    names = list(strategy_names() if strategies is None else strategies)
    if not names:
        raise InputError(f"no strategy given; choose from {strategy_names()}")
    if len(set(names)) != len(names):
        raise InputError(f"strategies {names} name a strategy twice")
    chosen = [get_strategy(name) for name in names]
    if source.index is not target.index:
        raise InputError(f"{source.name} and {target.name} do not share one id index; "
                         f"read them with graphsel.data.log.read_pair")
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct and at least one, got {list(seeds)}")
    model, train = model or ModelConfig(), train or TrainConfig()
    protocol = protocol or ProtocolConfig()
    split = split_by_time(source, target, protocol)
    selection = None
    if any(strategy.needs_selection for strategy in chosen):
        selection = fit_selection(selector or SampleSelector(), source, target, split, truth)
    cache = _EncodingCache(source, target, split)
    records: list[dict[str, Any]] = []
    test_predictions: dict[str, list[np.ndarray]] = {name: [] for name in names}
    total = len(seeds) * len(chosen) * split.periods
    with tqdm(total=total, desc="run", unit="period", disable=not progress) as bar:
        run_train = replace(train, progress=train.progress and progress)
        for seed in seeds:
            for strategy in chosen:
                plan = strategy.plan(StrategyContext(split.source_rows, selection, int(seed)))
                run = _run_strategy(strategy, plan, cache.get(plan.rows), source, split,
                                    target, model, run_train, protocol, int(seed), bar)
                records.extend(run.records)
                test_predictions[strategy.name].append(run.test_predictions)
    test = split.target_test
    stacked = {name: np.stack(p, axis=1) for name, p in test_predictions.items()}
    comparisons = _compare_with_baseline(target.label[test], target.user[test], stacked,
                                         protocol.n_boot)
    return Results(names, [int(s) for s in seeds], split.periods, records, comparisons,
                   split.summary(), None if selection is None else selection.report,
                   test_labels=np.asarray(target.label[test]).copy(),
                   test_predictions={name: p.astype(np.float64).mean(axis=1)
                                     for name, p in stacked.items()})


def _compare_with_baseline(y: np.ndarray, users: np.ndarray,
                           predictions: dict[str, np.ndarray], n_boot: int
                           ) -> dict[str, dict[str, Any]]:
    """AUC difference from :data:`BASELINE` with its 95 % user-bootstrap interval."""
    if BASELINE not in predictions:
        return {}
    comparisons = {}
    for name, p in predictions.items():
        if name == BASELINE:
            continue
        diff, lo, hi = paired_bootstrap_ci(y, p, predictions[BASELINE], mean_auc,
                                           n_boot=n_boot, seed=0, groups=users)
        comparisons[name] = {"auc_diff": round(diff, 6), "ci95": [round(lo, 6), round(hi, 6)]}
    return comparisons


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """The outcome of :func:`compare_strategies`.

    Attributes:
        strategies: the strategy names, in run order.
        seeds: the run seeds.
        periods: ``P``.
        records: one dict per (seed, strategy, period): ``strategy``, ``seed``, ``period``,
            ``auc``, ``gauc``, ``logloss`` (None where undefined) on the period's evaluation
            rows (the test set for the last period), ``n_train`` (rows trained on in the
            period), ``n_source`` (source rows among them), ``n_eval``, ``seconds``.
        vs_target_only: per strategy other than ``target_only``: ``auc_diff`` (mean test AUC
            minus ``target_only``'s) and ``ci95`` ``[lo, hi]``; empty without
            ``target_only``.
        split: row counts of the time split (:meth:`TimeSplit.summary`).
        selection: the selection's report, or None when no strategy needed one.
        test_labels: ``(N_test,)`` the labels of the test rows (the last period's evaluation
            rows), in row order; None when not kept. Not part of :meth:`to_json`.
        test_predictions: per strategy, ``(N_test,)`` float64: its test predictions averaged
            over the seeds, aligned with ``test_labels`` (e.g. for a calibration plot). Not
            part of :meth:`to_json`.
    """

    strategies: list[str]
    seeds: list[int]
    periods: int
    records: list[dict[str, Any]]
    vs_target_only: dict[str, dict[str, Any]] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] | None = None
    test_labels: np.ndarray | None = field(default=None, compare=False, repr=False)
    test_predictions: dict[str, np.ndarray] = field(default_factory=dict, compare=False,
                                                    repr=False)

    def test_records(self) -> list[dict[str, Any]]:
        """The records of the last period: the test-set scores, one per (seed, strategy)."""
        return [r for r in self.records if r["period"] == self.periods - 1]

    def summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{strategy: {metric: {"mean": m, "std": s}}}`` over seeds on the test set.

        ``std`` is the sample standard deviation (0.0 for one seed); a metric undefined for
        some seed gives None.
        """
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for name in self.strategies:
            rows = [r for r in self.test_records() if r["strategy"] == name]
            out[name] = {}
            for metric in METRIC_NAMES:
                values = [r[metric] for r in rows]
                if not values or any(v is None for v in values):
                    out[name][metric] = {"mean": None, "std": None}
                    continue
                std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                out[name][metric] = {"mean": round(float(np.mean(values)), 6),
                                     "std": round(std, 6)}
        return out

    def to_json(self) -> dict[str, Any]:
        """``{"strategies", "vs_target_only", "periods", "split", "selection", "seeds"}``."""
        return {"strategies": self.summary(), "vs_target_only": self.vs_target_only,
                "periods": self.records, "split": self.split,
                "selection": _selection_summary(self.selection), "seeds": self.seeds}

    def table(self) -> str:
        """The strategy x (AUC, GAUC, LogLoss) table, mean +- std over seeds, and the AUC
        difference from ``target_only`` with its 95 % interval."""
        summary = self.summary()
        n_train = {r["strategy"]: r["n_train"] for r in self.test_records()}
        rows = []
        for name in self.strategies:
            cells = [name] + [_mean_std(summary[name][m]) for m in METRIC_NAMES]
            cells.append(n_train.get(name, ""))
            comparison = self.vs_target_only.get(name)
            cells.append("" if comparison is None else "{:+.4f} [{:+.4f}, {:+.4f}]".format(
                comparison["auc_diff"], *comparison["ci95"]))
            rows.append(cells)
        title = (f"test set: {self.split.get('target_test', '?')} target rows; "
                 f"{len(self.seeds)} seed(s), {self.periods} period(s)")
        lines = [format_table(["strategy", "AUC", "GAUC", "LogLoss", "train rows",
                               "AUC - target_only [95% CI]"], rows, title=title)]
        selection = _selection_summary(self.selection)
        if selection is not None:
            line = (f"selection: {selection['selected']:,} of {selection['candidates']:,} "
                    f"source rows")
            if "truth" in selection:
                line += (f" (precision {selection['truth']['precision']:.3f}, "
                         f"recall {selection['truth']['recall']:.3f})")
            lines.append(line)
        if self.periods > 1:
            lines.append("\n" + self.period_table())
        return "\n".join(lines)

    def period_table(self) -> str:
        """Mean AUC over seeds of each strategy at each period (on the next period's rows;
        the last column is the test set)."""
        headers = ["strategy"] + [f"period {p}" for p in range(self.periods)]
        rows = []
        for name in self.strategies:
            cells: list[Any] = [name]
            for period in range(self.periods):
                values = [r["auc"] for r in self.records
                          if r["strategy"] == name and r["period"] == period]
                cells.append("n/a" if any(v is None for v in values) else float(np.mean(values)))
            rows.append(cells)
        return format_table(headers, rows, title="AUC per period (evaluated on the next one)")


def _mean_std(value: dict[str, float | None]) -> str:
    if value["mean"] is None:
        return "n/a"
    return f"{value['mean']:.4f} ± {value['std']:.4f}"


def _selection_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    summary = {"selected": report["selected"], "candidates": report["rows"]["source"],
               "stages": [{"name": s["name"], "kept": s["kept"], "seconds": s["seconds"]}
                          for s in report["stages"]]}
    if "truth" in report:
        summary["truth"] = report["truth"]
    return summary
