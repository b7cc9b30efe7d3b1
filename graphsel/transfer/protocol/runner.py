"""The evaluation protocol: a time split, one selection, every strategy trained alike.

Given a source and a target log (one shared id index), :func:`compare_strategies` runs one
step per module of :mod:`graphsel.transfer.protocol`:

1. **Splits the target by time** (:func:`~graphsel.transfer.protocol.split.split_by_time`):
   test = the last ``test_fraction`` (10 %) of target rows by time, validation = the
   ``valid_fraction`` (10 %) before it, training = the rest; source rows only when older
   than the test start (no leakage), optionally subsampled to ``max_source_rows``.
2. **Fits the selection once** on training-time data only: the target's training rows and
   the kept source rows (:func:`fit_selection`), if a strategy needs it. The selection does
   not change with the run's seed; the seeds measure the training noise.
3. **Trains every strategy with the same model and hyper-parameters**: a strategy
   (:mod:`graphsel.transfer.protocol.strategies`) decides the source rows and their weights,
   and its learner (:mod:`graphsel.transfer.protocol.learners`) what is trained on them: the
   base model for the baselines, the transfer models of the seed papers (CTNet, ECAT, DIIT,
   E-CDCTR) built from the base model's parts, with the same ``ModelConfig`` and
   ``TrainConfig``, and each with its own options (``strategy_options``).
   Each strategy gets its own :class:`~graphsel.transfer.features.FeatureEncoder`, fitted on
   its own training data (target training rows + its source rows): ``merge_all``'s
   vocabulary then holds the source-only users and items it trains embeddings for, while
   ``target_only`` sends them to the out-of-vocabulary bucket, as a real deployment of each
   would. Validation and test rows never enter a vocabulary.

   **Equal effort.** Every model trains until its validation AUC stops improving
   (``train.patience``, capped at ``train.epochs``), and every strategy tries the same grid
   (:func:`tuning_grid`: ``protocol.lr_grid`` x ``protocol.weight_decay_grid``, and the
   domain feature on and off where ``domain_feature="auto"`` and the strategy mixes
   domains), keeping the point whose final model scores the best AUC on the *validation*
   rows; the test rows are scored only afterwards and never compared across grid points.
   By default the first seed chooses and later seeds reuse its choice
   (``tune_every_seed``). The choice, epochs, optimiser steps and training seconds of each
   (strategy, seed) are :attr:`Results.effort <graphsel.transfer.protocol.results.Results>`.
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
5. **Scores and tabulates** (:mod:`~graphsel.transfer.protocol.results`) AUC, GAUC
   (groups = users) and LogLoss on the test set, and the paired bootstrap 95 % interval of
   each strategy's AUC minus ``target_only``'s on the same test rows: one replicate
   resamples test *users* (all their rows) and scores both strategies' seed-averaged AUC on
   it, so the test-set noise cancels in the difference; the spread over seeds is reported
   separately as ``std``.
6. **Combines** (after every other strategy, at each seed): ``ensemble`` and
   ``budget_ensemble`` average their members' models (:func:`average_members`), then
   ``auto`` picks one model among the others (:func:`pick_auto`, the ensembles included).
   They read the validation rows only.

**Resuming.** With a :class:`~graphsel.transfer.protocol.checkpoints.RunStore`, the fitted
selection and each finished (strategy, seed) unit are saved as soon as they are done, and
those already saved are loaded instead of recomputed; an unfinished unit saves its progress
(its learner, records and finished grid points) after every period and continues at its
first unfinished (grid point, period). A run killed at any point and started again gives
the same :class:`~graphsel.transfer.protocol.results.Results` as an uninterrupted one
(timing fields included, but those of the periods trained after the restart; training
is deterministic at a fixed ``num_threads``).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from graphsel.data.log import REQUIRED_COLUMNS, InteractionLog
from graphsel.errors import InputError
from graphsel.select.pipeline import SampleSelector, Selection
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import (
    DOMAIN_FIELD,
    ITEM_FIELD,
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    USER_FIELD,
    FeatureEncoder,
    FeatureSpec,
    domain_values,
    with_domain_field,
)
from graphsel.transfer.models.options import ModelConfig
from graphsel.transfer.protocol.checkpoints import RunStore, UnitResult
from graphsel.transfer.protocol.learners import (
    Learner,
    LearnerContext,
    PeriodData,
    PlanLearner,
)
from graphsel.transfer.protocol.results import (
    BASELINE,
    MERGE_BASELINE,
    Effort,
    EffortRecord,
    GridPoint,
    PeriodRecord,
    Results,
    SelectionSummary,
    Trial,
    compare_with_baseline,
    score_predictions,
    selection_summary,
)
from graphsel.transfer.protocol.split import ProtocolConfig, TimeSplit, split_by_time
from graphsel.transfer.protocol.strategies import (
    AUTO,
    COMBINERS,
    ENSEMBLE,
    ENSEMBLES,
    SourcePlan,
    Strategy,
    StrategyContext,
    ensemble_members,
    get_strategy,
    strategy_names,
)
from graphsel.transfer.train.metrics import paired_bootstrap_ci
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import seed_everything

__all__ = [
    "ValidationRows",
    "Combined",
    "logit_mean",
    "average_members",
    "pick_auto",
    "fit_selection",
    "feature_columns",
    "training_log",
    "tuning_grid",
    "compare_strategies",
]


# --------------------------------------------------------------------------------------------
# Selecting
# --------------------------------------------------------------------------------------------


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
# Encoding
# --------------------------------------------------------------------------------------------


def feature_columns(source: InteractionLog, target: InteractionLog) -> tuple[list[str], list[str]]:
    """``(categorical, numeric)`` feature columns: ids, then side features both logs have.

    A float column is numeric, any other side feature categorical (as
    :class:`FeatureEncoder` infers them). Columns only one log has are left out: a model
    input must exist for every row.
    """
    shared = [c for c in target.feature_columns if c in set(source.feature_columns)]
    numeric = [c for c in shared if pa.types.is_floating(target.schema.field(c).type)]
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
    """Encodes each distinct (set of source rows, domain feature) once per run.

    ``merge_all`` and ``pretrain_finetune`` train on the same rows, ``selected`` and
    ``selected_weighted`` too, and only ``random_same_size`` changes with the seed, so a
    run of the 6 strategies x 3 seeds fits 6 encoders (per domain-feature setting), not 18.
    With the domain feature, the logs carry :data:`DOMAIN_FIELD` (``"target"`` on every
    target row, ``"source"`` or ``"source:<domain_column>"`` on source rows).
    """

    def __init__(self, source: InteractionLog, target: InteractionLog, split: TimeSplit,
                 domain_column: str | None = None) -> None:
        self.source, self.target, self.split = source, target, split
        self.domain_column = domain_column
        self.columns = feature_columns(source, target)
        self._cache: dict[tuple[bytes, bool], _Encoded] = {}
        self._with_domain: tuple[InteractionLog, InteractionLog] | None = None

    def logs(self, domain_feature: bool) -> tuple[InteractionLog, InteractionLog]:
        """``(source, target)``, with the domain field when ``domain_feature``."""
        if not domain_feature:
            return self.source, self.target
        if self._with_domain is None:
            self._with_domain = (
                with_domain_field(self.source, domain_values(self.source, SOURCE_DOMAIN,
                                                             self.domain_column)),
                with_domain_field(self.target, TARGET_DOMAIN))
        return self._with_domain

    def get(self, rows: np.ndarray, domain_feature: bool = False) -> _Encoded:
        key = (hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.int64).tobytes(),
                               digest_size=16).digest(), domain_feature)
        if key not in self._cache:
            categorical, numeric = self.columns
            if domain_feature:
                categorical = categorical + [DOMAIN_FIELD]
            source, target = self.logs(domain_feature)
            encoder = FeatureEncoder(categorical, numeric).fit(training_log(
                source, target, rows, self.split.target_train, categorical + numeric))
            self._cache[key] = _Encoded(CTRDataset.from_log(target, encoder),
                                        CTRDataset.from_log(source[rows], encoder),
                                        encoder.spec_)
        return self._cache[key]


# --------------------------------------------------------------------------------------------
# The shared tuning grid
# --------------------------------------------------------------------------------------------


def _learner_class(strategy: Strategy) -> type:
    learner = strategy.learner
    return learner if isinstance(learner, type) else PlanLearner


def tuning_grid(strategy: Strategy, plan: SourcePlan, train: TrainConfig,
                protocol: ProtocolConfig) -> list[GridPoint]:
    """The grid points ``strategy`` tries: ``lr_grid x weight_decay_grid x domain feature``.

    Every strategy gets the same learning rates and weight decays (the training options'
    own value when a grid is empty). The domain feature is tried on and off only with
    ``domain_feature="auto"``, for a learner that mixes source and target rows in one model
    (:attr:`~graphsel.transfer.protocol.learners.Learner.mixes_domains`) on a non-empty
    plan; a learner that reads the field (``needs_domain_field``) always has it.

    >>> from graphsel.transfer.protocol.strategies import get_strategy
    >>> plan = SourcePlan(np.arange(3), np.ones(3, dtype=np.float32))
    >>> grid = tuning_grid(get_strategy("merge_all"), plan, TrainConfig(),
    ...                    ProtocolConfig(lr_grid=(1e-3, 1e-2)))
    >>> [(p.lr, p.domain_feature) for p in grid]
    [(0.001, False), (0.001, True), (0.01, False), (0.01, True)]
    """
    learner = _learner_class(strategy)
    if getattr(learner, "needs_domain_field", False) or protocol.domain_feature == "on":
        domains = [True]
    elif (protocol.domain_feature == "auto" and len(plan) > 0
          and getattr(learner, "mixes_domains", False)):
        domains = [False, True]
    else:
        domains = [False]
    return [GridPoint(lr, weight_decay, domain)
            for lr in protocol.lr_grid or (train.lr,)
            for weight_decay in protocol.weight_decay_grid or (train.weight_decay,)
            for domain in domains]


# --------------------------------------------------------------------------------------------
# Training one strategy, and the comparison
# --------------------------------------------------------------------------------------------


@dataclass
class _StrategyRun:
    records: list[PeriodRecord]
    test_predictions: np.ndarray
    valid_predictions: np.ndarray
    valid_auc: float | None
    effort: Effort
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _UnitProgress:
    """A unit's work so far, saved after every finished period
    (:meth:`~graphsel.transfer.protocol.checkpoints.RunStore.save_progress`).

    Attributes:
        trials: per finished grid point, its trial and training seconds.
        best: the best finished grid point's run so far, and ``best_point`` that point.
        learner: the learner of the grid point under way (``grid[len(trials)]``) after its
            finished periods (``records``); None before its first period.
        records: the finished periods' records of the grid point under way.
        predictions: the last finished period's predictions on its evaluation rows.
        generators: Python's, numpy's and torch's random states after that period.
    """

    trials: list[tuple[Trial, float]] = field(default_factory=list)
    best: _StrategyRun | None = None
    best_point: GridPoint | None = None
    learner: Learner | None = None
    records: list[PeriodRecord] = field(default_factory=list)
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    generators: tuple[Any, Any, Any] | None = None


def _train_period(name: str, learner: Learner, period: int, plan: SourcePlan, encoded: _Encoded,
                  source: InteractionLog, split: TimeSplit, target: InteractionLog,
                  protocol: ProtocolConfig) -> tuple[PeriodRecord, np.ndarray]:
    """Trains ``learner`` of strategy ``name`` on ``period`` (see the module docstring); the
    period's record and its predictions on the period's evaluation rows."""
    start = time.perf_counter()
    transfer = protocol.mode == "continual" or period == 0
    positions = (np.flatnonzero(split.source_window(period, source.ts[plan.rows])) if transfer
                 else np.zeros(0, dtype=np.int64))
    data = PeriodData(period, transfer, encoded.target.subset(split.periods_rows[period]),
                      encoded.source.with_weight(plan.weight).subset(positions), positions,
                      encoded.target.subset(split.target_valid))
    learner.fit_period(data)
    eval_rows = split.eval_rows(period)
    predictions = learner.predict(encoded.target.subset(eval_rows))
    scores = score_predictions(target.label[eval_rows], predictions, target.user[eval_rows])
    record = PeriodRecord(name, learner.context.seed, period, scores,
                          len(data.source) + len(data.target), len(data.source),
                          len(eval_rows), round(time.perf_counter() - start, 3))
    return record, predictions


def _generators() -> tuple[Any, Any, Any]:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _externals(learner: Learner | None, source: InteractionLog,
               plan: SourcePlan) -> dict[str, Any]:
    """What a unit's progress holds by reference: the source log, the plan and the loss
    functions of the learner's trainers (closures, which pickle cannot save)."""
    trainers = [] if learner is None else learner.context.trainers
    return {"source_log": source, "plan": plan,
            **{f"loss_fn.{i}": trainer.loss_fn for i, trainer in enumerate(trainers)}}


def _train_unit(strategy: Strategy, options: Any, plan: SourcePlan, cache: _EncodingCache,
                source: InteractionLog, split: TimeSplit, target: InteractionLog,
                model_config: ModelConfig, train_config: TrainConfig, protocol: ProtocolConfig,
                seed: int, reused_choice: GridPoint | None, bar: tqdm,
                store: RunStore | None = None) -> UnitResult:
    """Tries ``strategy``'s grid (or only ``reused_choice``) at ``seed`` and keeps the run
    with the best validation AUC (that of the last period's model on the validation rows).

    With ``store``, the unit's progress is saved after every period but its last, and saved
    progress is continued at its first unfinished (grid point, period).
    """
    grid = (tuning_grid(strategy, plan, train_config, protocol) if reused_choice is None
            else [reused_choice])
    bar.total = (bar.total or 0) + len(grid) * split.periods

    def new_learner(point: GridPoint) -> Learner:
        seed_everything(seed)
        context = LearnerContext(
            plan, cache.get(plan.rows, point.domain_feature).spec, model_config,
            replace(train_config, lr=point.lr, weight_decay=point.weight_decay, seed=seed),
            source, seed)
        return strategy.make_learner(context, options) or PlanLearner(context)

    header = {"grid": grid, "reused_choice": reused_choice}
    progress = None if store is None else store.load_progress(
        strategy.name, seed, header,
        lambda saved: _externals(new_learner(grid[saved["point"]]), source, plan))
    if progress is None:
        progress = _UnitProgress()
    elif progress.learner is not None and progress.generators is not None:
        random.setstate(progress.generators[0])
        np.random.set_state(progress.generators[1])
        torch.set_rng_state(progress.generators[2])
    bar.update(len(progress.trials) * split.periods + len(progress.records))
    saving = store is not None
    for index in range(len(progress.trials), len(grid)):
        point = grid[index]
        encoded = cache.get(plan.rows, point.domain_feature)
        if progress.learner is None:
            progress.learner = new_learner(point)
        learner = progress.learner
        for period in range(len(progress.records), split.periods):
            bar.set_postfix_str(f"{strategy.name} seed {seed} period {period}")
            record, progress.predictions = _train_period(strategy.name, learner, period, plan,
                                                         encoded, source, split, target,
                                                         protocol)
            progress.records.append(record)
            bar.update(1)
            if period + 1 == split.periods:  # the grid point is done
                valid = split.target_valid
                valid_predictions = learner.predict(encoded.target.subset(valid))
                valid_auc = score_predictions(target.label[valid], valid_predictions,
                                              target.user[valid]).auc
                run = _StrategyRun(progress.records, progress.predictions, valid_predictions,
                                   valid_auc, learner.context.effort(), learner.details())
                progress.trials.append((Trial(point, run.valid_auc), run.effort.seconds))
                if _better(run, progress.best):
                    progress.best, progress.best_point = run, point
                progress.learner, progress.records = None, []
            if saving and len(progress.trials) < len(grid):
                progress.generators = _generators()
                saving = store is not None and store.save_progress(
                    strategy.name, seed, {**header, "point": len(progress.trials)}, progress,
                    _externals(progress.learner, source, plan))
    best, best_point, trials = progress.best, progress.best_point, progress.trials
    assert best is not None and best_point is not None  # the grid holds at least one point
    effort = EffortRecord(strategy.name, seed, best_point, best.valid_auc, best.effort,
                          tuple(trial for trial, _ in trials) if reused_choice is None else (),
                          round(sum(seconds for _, seconds in trials), 3),
                          details=best.details)
    return UnitResult(tuple(best.records), best.test_predictions, effort, reused_choice,
                      best.valid_predictions)


def _fit_or_load_selection(selector: SampleSelector, source: InteractionLog,
                           target: InteractionLog, split: TimeSplit, truth: np.ndarray | None,
                           store: RunStore | None) -> tuple[Selection, SelectionSummary | None]:
    """The selection and its summary: ``store``'s when it holds one, else fitted (and
    saved there)."""
    loaded = None if store is None else store.load_selection(len(split.source_rows))
    if loaded is not None:
        return loaded
    selection = fit_selection(selector, source, target, split, truth)
    summary = None if selection.report is None else selection_summary(selection.report)
    if store is not None:
        store.save_selection(selection, summary)
    return selection, summary


def _better(run: _StrategyRun, best: _StrategyRun | None) -> bool:
    """``run`` beats ``best`` on validation AUC (the first of equals wins; undefined loses)."""
    if best is None:
        return True
    return run.valid_auc is not None and (best.valid_auc is None
                                          or run.valid_auc > best.valid_auc)


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
    strategy_options: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    truth: np.ndarray | None = None,
    progress: bool = False,
    store: RunStore | None = None,
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
        strategy_options: per strategy name, its learner's options (e.g.
            ``{"diit": DIITOptions(num_sources=2)}``). Default None: each strategy's own
            defaults (:func:`~graphsel.transfer.protocol.strategies.default_options`).
        seeds: one run per seed (model initialisation, shuffling, random subsets). Default
            ``(0,)``.
        truth: ``(N_src,)`` bool planted truth (synthetic data), adds the selection's
            precision and recall to
            :attr:`~graphsel.transfer.protocol.results.Results.selection`. Default None.
        progress: a progress bar over the runs on stderr. Default False.
        store: where the selection and each finished (strategy, seed) unit are saved, and
            loaded from when already there (see the module docstring). Default None: nothing
            is kept.

    Raises:
        InputError: an unknown strategy, a split that leaves a part empty, a bad option.
    """
    names = list(strategy_names() if strategies is None else strategies)
    if not names:
        raise InputError(f"no strategy given; choose from {strategy_names()}")
    if len(set(names)) != len(names):
        raise InputError(f"strategies {names} name a strategy twice")
    options = dict(strategy_options or {})
    names, members = _with_members(names, options)
    chosen = [get_strategy(name) for name in names if name not in COMBINERS]
    if AUTO in names and not chosen:
        raise InputError("strategy 'auto' needs other strategies in the run to pick from")
    if source.index is not target.index:
        raise InputError(f"{source.name} and {target.name} do not share one id index; "
                         f"read them with graphsel.data.log.read_pair")
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct and at least one, got {list(seeds)}")
    model, train = model or ModelConfig(), train or TrainConfig()
    protocol = protocol or ProtocolConfig()
    split = split_by_time(source, target, protocol)
    selection, summary = None, None
    if any(strategy.needs_selection for strategy in chosen):
        selection, summary = _fit_or_load_selection(selector or SampleSelector(), source,
                                                    target, split, truth, store)
    cache = _EncodingCache(source, target, split, protocol.domain_column)
    for name in options:
        if name not in names:
            raise InputError(f"strategy_options names {name!r}, which is not run "
                             f"(strategies: {', '.join(names)})")
    records: list[PeriodRecord] = []
    test_predictions: dict[str, list[np.ndarray]] = {s.name: [] for s in chosen}
    valid_predictions: dict[str, list[np.ndarray]] = {name: [] for name in test_predictions}
    efforts: list[EffortRecord] = []
    choices: dict[str, GridPoint] = {}
    # the epochs' bars follow the run's (the caller decided: graphsel run draws them on a
    # terminal or with --progress), unless the train config turns them off
    run_train = replace(train, progress=progress and train.progress is not False)
    with tqdm(desc="run", unit="period", disable=not progress) as bar:
        for seed in map(int, seeds):
            for strategy in chosen:
                reused = (None if protocol.tune_every_seed or strategy.name not in choices
                          else choices[strategy.name])
                unit = (None if store is None else
                        store.load_unit(strategy.name, seed, reused, len(split.target_test),
                                        len(split.target_valid)))
                if unit is None:
                    plan = strategy.plan(StrategyContext(split.source_rows, selection, seed,
                                                         source, target[split.target_train]))
                    unit = _train_unit(strategy, options.get(strategy.name), plan, cache,
                                       source, split, target, model, run_train, protocol,
                                       seed, reused, bar, store)
                    if store is not None:
                        store.save_unit(unit)
                if store is not None:
                    store.drop_progress(strategy.name, seed)
                choices.setdefault(strategy.name, unit.effort.choice)
                records.extend(unit.records)
                test_predictions[strategy.name].append(unit.test_predictions)
                valid_predictions[strategy.name].append(unit.valid_predictions)
                efforts.append(unit.effort)
    valid, test = split.target_valid, split.target_test
    validation = ValidationRows(target.label[valid], target.user[valid], valid_predictions)
    y, users = target.label[test], target.user[test]
    for name, averaged in members.items():
        combined = average_members(averaged, [int(s) for s in seeds], records,
                                   test_predictions, efforts, validation, y, users, name)
        records += combined.records
        test_predictions[name] = combined.test_predictions
        valid_predictions[name] = combined.valid_predictions  # auto's candidate too
        efforts += combined.efforts
    if AUTO in names:
        auto_records, auto_predictions, auto_efforts = pick_auto(
            [name for name in names if name != AUTO], [int(s) for s in seeds], records,
            test_predictions, efforts, validation, protocol.auto_margin, protocol.n_boot)
        records += auto_records
        test_predictions[AUTO] = auto_predictions
        efforts += auto_efforts
    stacked = {name: np.stack(test_predictions[name], axis=1) for name in names}
    comparisons = {baseline: compare_with_baseline(y, users, stacked, protocol.n_boot, baseline)
                   for baseline in (BASELINE, MERGE_BASELINE)}
    vs_control = {s.name: (s.control, compare_with_baseline(
        y, users, {s.control: stacked[s.control], s.name: stacked[s.name]}, protocol.n_boot,
        s.control)[s.name]) for s in map(get_strategy, names)
        if s.control is not None and s.control in stacked}
    return Results(names, [int(s) for s in seeds], split.periods, records,
                   comparisons[BASELINE], split.summary(), summary,
                   vs_merge_all=comparisons[MERGE_BASELINE], effort=efforts,
                   vs_control=vs_control,
                   test_labels=np.asarray(target.label[test]).copy(),
                   test_predictions={name: p.astype(np.float64).mean(axis=1)
                                     for name, p in stacked.items()})


def _with_members(names: list[str], options: Mapping[str, Any]
                  ) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """``names`` with each ensemble's members that the run does not name inserted before
    that ensemble, and the members of each ensemble of the run (:data:`ENSEMBLES`).

    Raises:
        InputError: a member that is unknown or is itself a combining strategy.
    """
    members = {name: ensemble_members(options.get(name), name)
               for name in names if name in ENSEMBLES}
    for name, averaged in members.items():
        at = names.index(name)
        names = names[:at] + [m for m in averaged if m not in names] + names[at:]
    return names, members


@dataclass(frozen=True)
class Combined:
    """A combining strategy's results, one entry per seed: its test-period records, test and
    validation predictions, and effort records."""

    records: list[PeriodRecord]
    test_predictions: list[np.ndarray]
    valid_predictions: list[np.ndarray]
    efforts: list[EffortRecord]


def logit_mean(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """The sigmoid of the mean logit of several models' ``(N,)`` click probabilities (each
    clipped to ``[1e-7, 1 - 1e-7]``): what averaging the models' logits predicts.

    >>> logit_mean([np.array([0.5, 0.9]), np.array([0.5, 0.1])]).round(6).tolist()
    [0.5, 0.5]
    """
    p = np.clip(np.stack([np.asarray(q, dtype=np.float64) for q in probabilities]),
                1e-7, 1 - 1e-7)
    return 1.0 / (1.0 + np.exp(-np.mean(np.log(p) - np.log1p(-p), axis=0)))


def average_members(members: Sequence[str], seeds: Sequence[int],
                    records: Sequence[PeriodRecord],
                    test_predictions: Mapping[str, Sequence[np.ndarray]],
                    efforts: Sequence[EffortRecord], valid: ValidationRows,
                    test_label: np.ndarray, test_user: np.ndarray, name: str = ENSEMBLE
                    ) -> Combined:
    """An ensemble strategy (``ensemble``, ``budget_ensemble``): per seed, the mean logit of
    ``members``' scored models (:func:`logit_mean`), on the validation and the test rows.

    Models of different recipes err differently, so their mean ranks better than each
    (Dietterich 2000; a deep ensemble of one recipe is ``merge_all_ensemble``, its control).
    Nothing is chosen: the members are fixed before the run
    (:class:`~graphsel.transfer.models.options.EnsembleOptions`), so the test rows only
    score it. Its record is the test period's (the members' predictions on earlier periods'
    rows are not kept), its training rows, source rows and seconds the members' sums; its
    effort record sums theirs, holds its validation AUC, its first member's grid point as its
    choice, and ``details = {"members": [...]}``.

    Args:
        members: the strategies averaged (each trained in the run).
        seeds: the run's seeds, in order (``test_predictions[name][i]`` is seed ``i``'s).
        records: every member's period records.
        test_predictions: per member, its ``(N_test,)`` predictions per seed.
        efforts: every member's :class:`EffortRecord` per seed.
        valid: the validation rows and the members' predictions on them.
        test_label: ``(N_test,)`` labels of the test rows.
        test_user: ``(N_test,)`` their users (GAUC).
        name: the ensemble's strategy name, in its records. Default ``"ensemble"``.

    >>> point = GridPoint(0.001, 0.0, False)
    >>> efforts = [EffortRecord(name, 0, point, 0.6, Effort(epochs=2)) for name in "ab"]
    >>> valid = ValidationRows(np.array([0, 1]), np.array([0, 0]),
    ...                        {"a": [np.array([0.2, 0.6])], "b": [np.array([0.4, 0.2])]})
    >>> out = average_members(["a", "b"], [0], [], {"a": [np.array([0.3, 0.9])],
    ...                       "b": [np.array([0.3, 0.1])]}, efforts, valid,
    ...                       np.array([0, 1]), np.array([0, 0]))
    >>> out.test_predictions[0].round(4).tolist(), out.efforts[0].valid_auc
    ([0.3, 0.5], 1.0)
    >>> out.efforts[0].effort.epochs, out.efforts[0].details
    (4, {'members': ['a', 'b']})
    """
    by_key = {(e.strategy, e.seed): e for e in efforts}
    last = {(r.strategy, r.seed): r for r in records}  # records come in period order
    out = Combined([], [], [], [])
    for i, seed in enumerate(seeds):
        test = logit_mean([test_predictions[member][i] for member in members])
        valid_p = logit_mean([valid.predictions[member][i] for member in members])
        scored = [by_key[member, seed] for member in members]
        ends = [last[member, seed] for member in members if (member, seed) in last]
        if ends:
            out.records.append(PeriodRecord(
                name, seed, ends[0].period, score_predictions(test_label, test, test_user),
                sum(r.n_train for r in ends), sum(r.n_source for r in ends), len(test_label),
                round(sum(r.seconds for r in ends), 3)))
        out.test_predictions.append(test)
        out.valid_predictions.append(valid_p)
        out.efforts.append(EffortRecord(
            name, seed, scored[0].choice,
            score_predictions(valid.label, valid_p, valid.user).auc,
            _sum_efforts([e.effort for e in scored]),
            tuning_seconds=round(sum(e.tuning_seconds for e in scored), 3),
            details={"members": list(members)}))
    return out


def _sum_efforts(costs: Sequence[Effort]) -> Effort:
    """Several models' costs as one (``max_epochs``: the most of any)."""
    return Effort(fits=sum(c.fits for c in costs), epochs=sum(c.epochs for c in costs),
                  max_epochs=max(c.max_epochs for c in costs),
                  steps=sum(c.steps for c in costs),
                  rows_x_epochs=sum(c.rows_x_epochs for c in costs),
                  seconds=round(sum(c.seconds for c in costs), 3),
                  capped_fits=sum(c.capped_fits for c in costs))


@dataclass(frozen=True)
class ValidationRows:
    """The target's validation rows as ``ensemble`` and ``auto`` see them: labels, users (a
    bootstrap replicate resamples users) and, per strategy, its scored model's ``(N_valid,)``
    predictions per seed."""

    label: np.ndarray
    user: np.ndarray
    predictions: Mapping[str, Sequence[np.ndarray]]


def pick_auto(candidates: Sequence[str], seeds: Sequence[int], records: Sequence[PeriodRecord],
              test_predictions: Mapping[str, Sequence[np.ndarray]],
              efforts: Sequence[EffortRecord], valid: ValidationRows | None = None,
              margin: float = ProtocolConfig.auto_margin,
              n_boot: int = ProtocolConfig.n_boot,
              ) -> tuple[list[PeriodRecord], list[np.ndarray], list[EffortRecord]]:
    """The ``auto`` strategy: per seed, ``merge_all`` unless another candidate beats it on
    validation beyond noise; its records, test predictions and choice under the name
    ``auto``.

    The rule, per seed: the candidates whose validation AUC is above ``merge_all``'s are
    compared with it on the validation rows by a paired user bootstrap; the one with the best
    validation AUC among those whose lead exceeds ``margin`` bootstrap standard errors (the
    lower end of the interval of coverage ``erf(margin / sqrt(2))`` lies above 0) is picked,
    and ``merge_all`` is kept when none does. A validation set of a few thousand rows ranks
    candidates within tenths of an AUC point by chance, so the conventional model stays
    unless the evidence is more than noise: the one-standard-error rule of model selection
    (Breiman et al. 1984; Hastie et al., *Elements of Statistical Learning* 7.10), with
    ``merge_all`` as the model to prefer. With ``margin == 0``, no ``valid`` rows, or no
    ``merge_all`` among the candidates, the candidate with the best validation AUC is
    picked (the first in ``candidates`` order on a tie; a candidate without one is never
    preferred).

    Only validation rows are compared; the test rows are scored by the candidates and merely
    carried over, so the choice is nested: the test set never picks. The cost of ``auto`` is
    every candidate's (its effort sums theirs; ``ensemble``'s is its members', counted once).
    When the rule compared, the effort record's
    ``details`` hold the contender (the picked one, or the best one that fell short when
    ``merge_all`` was kept) and its validation lead over ``merge_all``:
    ``{"contender", "valid_auc_diff", "valid_lo"}``.

    Args:
        candidates: the strategies ``auto`` picks from, in run order.
        seeds: the run's seeds, in order (``test_predictions[name][i]`` is seed ``i``'s).
        records: every candidate's period records.
        test_predictions: per candidate, its ``(N_test,)`` predictions per seed.
        efforts: every candidate's :class:`EffortRecord` per seed.
        valid: the validation rows and the candidates' predictions on them. Default None.
        margin: how many bootstrap standard errors a candidate's validation lead over
            ``merge_all`` must exceed. Default ``ProtocolConfig.auto_margin``.
        n_boot: bootstrap replicates. Default ``ProtocolConfig.n_boot``.

    Returns:
        ``auto``'s records, its test predictions per seed and its effort records.

    >>> point = GridPoint(0.001, 0.0, False)
    >>> efforts = [EffortRecord("a", 0, point, 0.61, Effort(epochs=3)),
    ...            EffortRecord("b", 0, point, 0.64, Effort(epochs=5))]
    >>> _, predictions, picked = pick_auto(["a", "b"], [0], [],
    ...                                    {"a": [np.zeros(2)], "b": [np.ones(2)]}, efforts)
    >>> picked[0].picked, picked[0].valid_auc, picked[0].effort.epochs, predictions[0].tolist()
    ('b', 0.64, 8, [1.0, 1.0])
    """
    by_key = {(e.strategy, e.seed): e for e in efforts}
    level = math.erf(margin / math.sqrt(2.0))
    auto_records: list[PeriodRecord] = []
    auto_predictions: list[np.ndarray] = []
    auto_efforts: list[EffortRecord] = []
    for i, seed in enumerate(seeds):
        scored = [by_key[name, seed] for name in candidates]
        ranked = sorted(scored, key=lambda e: np.inf if e.valid_auc is None else -e.valid_auc)
        best = ranked[0]
        details: dict[str, Any] = {}
        anchor = by_key.get((MERGE_BASELINE, seed)) if MERGE_BASELINE in candidates else None
        if (valid is not None and level > 0 and anchor is not None
                and anchor.valid_auc is not None and best is not anchor):
            best = anchor
            for contender in ranked:
                if contender is anchor or contender.valid_auc is None:
                    break  # the rest are below merge_all on validation
                diff, lo, _ = paired_bootstrap_ci(
                    valid.label, valid.predictions[contender.strategy][i],
                    valid.predictions[MERGE_BASELINE][i], "auc", n_boot=n_boot, seed=0,
                    groups=valid.user, level=level)
                if lo > 0 or not details:  # the picked lead, or the best one that fell short
                    details = {"contender": contender.strategy, "valid_auc_diff": round(diff, 6),
                               "valid_lo": round(lo, 6)}
                if lo > 0:
                    best = contender
                    break
        auto_records += [replace(r, strategy=AUTO) for r in records
                         if r.strategy == best.strategy and r.seed == seed]
        auto_predictions.append(test_predictions[best.strategy][i])
        trained = [e for e in scored if e.strategy not in ENSEMBLES]  # cost: their members'
        total = _sum_efforts([e.effort for e in trained])
        auto_efforts.append(EffortRecord(AUTO, seed, best.choice, best.valid_auc, total,
                                         tuning_seconds=round(sum(
                                             e.tuning_seconds for e in trained), 3),
                                         picked=best.strategy, details=details))
    return auto_records, auto_predictions, auto_efforts
