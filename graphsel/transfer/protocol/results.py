"""The outcome of a comparison: scores, records, comparisons with the baseline, and tables.

Every part is a small frozen dataclass with ``to_json()``; :meth:`Results.to_json` is what
``graphsel run --json`` prints (keys ``strategies``, ``vs_target_only``, ``vs_merge_all``,
``effort``, ``periods``, ``split``, ``selection``, ``seeds``), :meth:`Results.table` what it prints without
``--json``.

==========================  ==================================================================
:class:`Scores`             AUC, GAUC, LogLoss, ECE, predicted and actual CTR of one set of
                            predictions
:class:`PeriodRecord`       one (strategy, seed, period): its scores and row counts
:class:`MetricSummary`      mean and std over seeds of one metric on the test set
:class:`StrategySummary`    the three :class:`MetricSummary` of one strategy
:class:`Comparison`         a strategy's AUC minus a baseline's, with its 95 % interval
:class:`GridPoint`          one point of the shared tuning grid (lr, weight decay, domain)
:class:`Effort`             what one run's training cost: fits, epochs, steps, seconds
:class:`EffortRecord`       one (strategy, seed): the grid point chosen on validation, its
                            effort, and every point tried
:class:`SelectionSummary`   the selection's size, stages and (synthetic data) precision/recall
:class:`Results`            all of the above, the test labels and predictions
==========================  ==================================================================

>>> score_predictions(np.array([1, 0]), np.array([0.8, 0.4]), np.array([0, 0])).to_json()
{'auc': 1.0, 'gauc': 1.0, 'logloss': 0.366985, 'ece': 0.3, 'pred_ctr': 0.6, 'ctr': 0.5}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphsel._table import format_table
from graphsel.errors import InputError
from graphsel.select.pipeline import SelectionReport
from graphsel.transfer.protocol.split import SplitSummary
from graphsel.transfer.train.metrics import (
    ECE_BINS,
    auc,
    expected_calibration_error,
    gauc,
    logloss,
    mean_auc,
    paired_bootstrap_ci,
)

__all__ = [
    "BASELINE",
    "MERGE_BASELINE",
    "VERDICTS",
    "GridPoint",
    "Trial",
    "Effort",
    "EffortRecord",
    "details_table",
    "METRIC_NAMES",
    "Scores",
    "score_predictions",
    "PeriodRecord",
    "MetricSummary",
    "StrategySummary",
    "Comparison",
    "compare_with_baseline",
    "StageSummary",
    "SelectionSummary",
    "selection_summary",
    "Results",
]

BASELINE = "target_only"
"""The strategy every other one is compared with."""
MERGE_BASELINE = "merge_all"
"""The second baseline: training on everything (domain-aware where validation says so)."""
VERDICTS: tuple[str, ...] = ("win", "tie", "loss")
"""A :class:`Comparison`'s verdict: its 95 % interval above 0, around 0, or below 0."""

METRIC_NAMES: tuple[str, ...] = ("auc", "gauc", "logloss", "ece", "pred_ctr", "ctr")
"""The fields of :class:`Scores` and :class:`StrategySummary`, in order."""


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """The scores of one set of predictions, rounded to 6 digits; None where a metric is
    undefined on the rows (e.g. AUC with one class only) or was not recorded (records
    written before ECE and CTR were).

    Attributes:
        auc: AUC.
        gauc: per-user AUC weighted by impressions.
        logloss: mean binary cross-entropy.
        ece: expected calibration error over :data:`~graphsel.transfer.train.metrics.ECE_BINS`
            (10) equal-width bins.
        pred_ctr: the mean prediction (the CTR the model predicts).
        ctr: the share of positive labels (the actual CTR).
    """

    auc: float | None
    gauc: float | None
    logloss: float | None
    ece: float | None = None
    pred_ctr: float | None = None
    ctr: float | None = None

    def to_json(self) -> dict[str, float | None]:
        """``{"auc", "gauc", "logloss", "ece", "pred_ctr", "ctr"}``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scores:
        """The scores named in ``data`` (a missing one is None)."""
        return cls(*(data.get(name) for name in METRIC_NAMES))


def score_predictions(y: np.ndarray, p: np.ndarray, users: np.ndarray) -> Scores:
    """The :class:`Scores` of click probabilities ``p`` ``(N,)`` against labels ``y`` ``(N,)``,
    GAUC grouped by ``users`` ``(N,)``, ECE over :data:`ECE_BINS` bins."""
    values: list[float | None] = []
    for compute in (lambda: auc(y, p), lambda: gauc(y, p, users), lambda: logloss(y, p),
                    lambda: expected_calibration_error(y, p, ECE_BINS),
                    lambda: float(np.mean(p)), lambda: float(np.mean(y))):
        try:
            values.append(round(float(compute()), 6))
        except InputError:
            values.append(None)
    return Scores(*values)


@dataclass(frozen=True)
class PeriodRecord:
    """One strategy, one seed, one period.

    Attributes:
        strategy: the strategy's name.
        seed: the run's seed.
        period: 0-based; the last period is scored on the test set, the others on the next
            period's target rows.
        scores: on those evaluation rows.
        n_train: rows trained on in the period (target + source).
        n_source: source rows among them.
        n_eval: evaluation rows.
        seconds: wall time of the period (training and scoring).
    """

    strategy: str
    seed: int
    period: int
    scores: Scores
    n_train: int
    n_source: int
    n_eval: int
    seconds: float

    def metric(self, name: str) -> float | None:
        """The score called ``name`` (one of :data:`METRIC_NAMES`)."""
        return self.to_json()[name]

    def to_json(self) -> dict[str, Any]:
        """``{"strategy", "seed", "period", "auc", "gauc", "logloss", "ece", "pred_ctr", "ctr",
        "n_train", "n_source", "n_eval", "seconds"}``."""
        return {"strategy": self.strategy, "seed": self.seed, "period": self.period,
                **self.scores.to_json(), "n_train": self.n_train, "n_source": self.n_source,
                "n_eval": self.n_eval, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeriodRecord:
        """The record whose :meth:`to_json` is ``data``."""
        return cls(data["strategy"], data["seed"], data["period"],
                   Scores.from_json(data), data["n_train"],
                   data["n_source"], data["n_eval"], data["seconds"])


# --------------------------------------------------------------------------------------------
# Summaries over seeds, and the comparison with the baseline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSummary:
    """One metric over the seeds: mean and sample std (0.0 for one seed), rounded to 6
    digits; both None when the metric is undefined for some seed."""

    mean: float | None
    std: float | None

    @classmethod
    def of(cls, values: list[float | None]) -> MetricSummary:
        """The summary of one value per seed.

        >>> MetricSummary.of([0.5, 0.7])
        MetricSummary(mean=0.6, std=0.141421)
        """
        defined = [v for v in values if v is not None]
        if not defined or len(defined) < len(values):
            return cls(None, None)
        std = float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0
        return cls(round(float(np.mean(defined)), 6), round(std, 6))

    def format(self, spread: bool = True) -> str:
        """``"0.6000 ± 0.1414"``, ``"0.6000"`` without ``spread`` (one seed has none), or
        ``"n/a"``.

        >>> MetricSummary(0.6, 0.141421).format(), MetricSummary(0.6, 0.0).format(spread=False)
        ('0.6000 ± 0.1414', '0.6000')
        """
        if self.mean is None or self.std is None:
            return "n/a"
        return f"{self.mean:.4f} ± {self.std:.4f}" if spread else f"{self.mean:.4f}"

    def to_json(self) -> dict[str, float | None]:
        """``{"mean", "std"}``."""
        return asdict(self)


@dataclass(frozen=True)
class StrategySummary:
    """A strategy's test-set metrics over the seeds (the fields of :class:`Scores`)."""

    auc: MetricSummary
    gauc: MetricSummary
    logloss: MetricSummary
    ece: MetricSummary
    pred_ctr: MetricSummary
    ctr: MetricSummary

    def to_json(self) -> dict[str, dict[str, float | None]]:
        """``{"auc": {"mean", "std"}, "gauc": ..., "logloss": ..., "ece": ..., "pred_ctr":
        ..., "ctr": ...}``."""
        return {name: getattr(self, name).to_json() for name in METRIC_NAMES}


@dataclass(frozen=True)
class Comparison:
    """A strategy's mean test AUC minus :data:`BASELINE`'s, with its paired user-bootstrap
    95 % interval ``(lo, hi)`` (rounded to 6 digits)."""

    auc_diff: float
    ci95: tuple[float, float]

    @property
    def verdict(self) -> str:
        """``"win"`` if the interval lies above 0, ``"loss"`` if below, else ``"tie"``.

        >>> Comparison(0.01, (-0.002, 0.02)).verdict, Comparison(0.01, (0.001, 0.02)).verdict
        ('tie', 'win')
        """
        lo, hi = self.ci95
        return "win" if lo > 0 else "loss" if hi < 0 else "tie"

    def format(self) -> str:
        """``"+0.0784 [+0.0258, +0.1276]"``."""
        return "{:+.4f} [{:+.4f}, {:+.4f}]".format(self.auc_diff, *self.ci95)

    def to_json(self) -> dict[str, Any]:
        """``{"auc_diff", "ci95": [lo, hi]}``."""
        return {"auc_diff": self.auc_diff, "ci95": list(self.ci95)}


def compare_with_baseline(y: np.ndarray, users: np.ndarray, predictions: dict[str, np.ndarray],
                          n_boot: int, baseline: str = BASELINE) -> dict[str, Comparison]:
    """Each strategy's :class:`Comparison` with ``baseline`` on the test rows.

    Args:
        y: ``(N_test,)`` labels.
        users: ``(N_test,)`` user of each row (one bootstrap replicate resamples users).
        predictions: per strategy, ``(N_test, S)`` predictions of its ``S`` seeds.
        n_boot: bootstrap replicates.
        baseline: the strategy compared with. Default :data:`BASELINE`.

    Returns:
        Per strategy other than the baseline, in order; empty without the baseline.
    """
    if baseline not in predictions:
        return {}
    comparisons = {}
    for name, p in predictions.items():
        if name == baseline:
            continue
        diff, lo, hi = paired_bootstrap_ci(y, p, predictions[baseline], mean_auc,
                                           n_boot=n_boot, seed=0, groups=users)
        comparisons[name] = Comparison(round(diff, 6), (round(lo, 6), round(hi, 6)))
    return comparisons


# --------------------------------------------------------------------------------------------
# Tuning and training effort
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPoint:
    """One point of the tuning grid every strategy shares.

    Attributes:
        lr: learning rate (dense parameters, and embeddings unless ``embedding_lr`` is set).
        weight_decay: of the dense parameters.
        domain_feature: the rows carry :data:`~graphsel.transfer.features.DOMAIN_FIELD`.
    """

    lr: float
    weight_decay: float
    domain_feature: bool

    def format(self) -> str:
        """``"lr 0.003, wd 0, domain on"``."""
        return (f"lr {self.lr:g}, wd {self.weight_decay:g}, "
                f"domain {'on' if self.domain_feature else 'off'}")

    def to_json(self) -> dict[str, Any]:
        """``{"lr", "weight_decay", "domain_feature"}``."""
        return asdict(self)


@dataclass(frozen=True)
class Trial:
    """One grid point tried and the validation AUC of the model it gave (None: undefined)."""

    point: GridPoint
    valid_auc: float | None

    def to_json(self) -> dict[str, Any]:
        """``{"lr", "weight_decay", "domain_feature", "valid_auc"}``."""
        return {**self.point.to_json(), "valid_auc": self.valid_auc}


@dataclass(frozen=True)
class Effort:
    """What one run of one strategy (every period, every model it trains) cost.

    Attributes:
        fits: ``Trainer.fit`` calls (source models, target model, each period).
        epochs: epochs over all fits.
        max_epochs: the most epochs of one fit (compare with the cap, ``train.epochs``).
        steps: optimiser steps over all fits.
        rows_x_epochs: training rows seen over all fits (rows x epochs).
        seconds: wall time of the training passes (validation excluded).
        capped_fits: fits that the epoch cap ended, not early stopping.
    """

    fits: int = 0
    epochs: int = 0
    max_epochs: int = 0
    steps: int = 0
    rows_x_epochs: int = 0
    seconds: float = 0.0
    capped_fits: int = 0

    def to_json(self) -> dict[str, Any]:
        """The fields by name."""
        return asdict(self)


@dataclass(frozen=True)
class EffortRecord:
    """One strategy and seed: the grid point it trained with, and at what cost.

    Attributes:
        strategy: the strategy's name.
        seed: the run's seed.
        choice: the grid point of the scored model (the best validation AUC among
            ``trials``, or the first seed's choice when this seed did not tune; for
            ``ensemble``, its first member's, its members being in ``details``).
        valid_auc: the validation AUC of the scored model.
        effort: the scored model's training cost.
        trials: every grid point tried at this seed with its validation AUC (empty when
            the seed reused the first seed's choice).
        tuning_seconds: training seconds of all trials (the price of tuning).
        picked: for ``auto``, the strategy whose model it took at this seed; else None.
        details: what the scored model's learner chose or measured
            (:meth:`~graphsel.transfer.protocol.learners.Learner.details`, e.g.
            ``subdomain_gap``'s per-sub-domain gaps); empty for most. Default empty.
    """

    strategy: str
    seed: int
    choice: GridPoint
    valid_auc: float | None
    effort: Effort
    trials: tuple[Trial, ...] = ()
    tuning_seconds: float = 0.0
    picked: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"strategy", "seed", "choice", "valid_auc", "effort", "trials",
        "tuning_seconds"}``, ``"picked"`` for ``auto`` and ``"details"`` when there are."""
        data = {"strategy": self.strategy, "seed": self.seed, "choice": self.choice.to_json(),
                "valid_auc": self.valid_auc, "effort": self.effort.to_json(),
                "trials": [trial.to_json() for trial in self.trials],
                "tuning_seconds": self.tuning_seconds}
        if self.picked is not None:
            data["picked"] = self.picked
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EffortRecord:
        """The record whose :meth:`to_json` is ``data``."""
        trials = tuple(Trial(GridPoint(t["lr"], t["weight_decay"], t["domain_feature"]),
                             t["valid_auc"]) for t in data["trials"])
        return cls(data["strategy"], data["seed"], GridPoint(**data["choice"]),
                   data["valid_auc"], Effort(**data["effort"]), trials, data["tuning_seconds"],
                   data.get("picked"), data.get("details", {}))


def details_table(name: str, records: Sequence[EffortRecord]) -> str:
    """A strategy's learner details over seeds: per sub-domain its gap at each seed (and at
    how many seeds it was kept) for ``subdomain_gap``; else each seed's scalar details.

    >>> gaps = {"subdomains": [{"name": "Drama", "rows": 9, "gap": 0.0012, "kept": False}]}
    >>> point = GridPoint(0.001, 0.0, False)
    >>> print(details_table("subdomain_gap", [EffortRecord("subdomain_gap", 0, point, 0.6,
    ...                                                    Effort(), details=gaps)]))
    subdomain_gap: validation log-loss gap of each source sub-domain (with it minus without it; + hurts)
    sub-domain  rows  seed 0   kept
    ----------  ----  -------  ----
    Drama          9  +0.0012  0/1
    """
    if not any("subdomains" in r.details for r in records):
        return "\n".join(f"{name} seed {r.seed}: " + ", ".join(
            f"{key} {_detail(value)}" for key, value in r.details.items()
            if not isinstance(value, list) or all(isinstance(v, str) for v in value))
            for r in records if r.details)
    order: list[str] = []
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_seed[r.seed] = {g["name"]: g for g in r.details.get("subdomains", [])}
        order += [g for g in by_seed[r.seed] if g not in order]
    rows = [[sub, max(by_seed[s][sub]["rows"] for s in by_seed if sub in by_seed[s])]
            + [f"{by_seed[s][sub]['gap']:+.4f}" if sub in by_seed[s] else "" for s in by_seed]
            + [f"{sum(by_seed[s].get(sub, {}).get('kept', False) for s in by_seed)}"
               f"/{len(by_seed)}"] for sub in order]
    return format_table(["sub-domain", "rows"] + [f"seed {s}" for s in by_seed] + ["kept"],
                        rows, title=f"{name}: validation log-loss gap of each source "
                                    f"sub-domain (with it minus without it; + hurts)")


def _detail(value: Any) -> str:
    """A scalar detail as it is; a list of names joined by ``+`` (``ensemble``'s members)."""
    return "+".join(value) if isinstance(value, list) else str(value)


# --------------------------------------------------------------------------------------------
# The selection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSummary:
    """One selection stage: rows kept after it and its seconds."""

    name: str
    kept: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """``{"name", "kept", "seconds"}``."""
        return asdict(self)


@dataclass(frozen=True)
class SelectionSummary:
    """What the strategies' selection kept.

    Attributes:
        selected: source rows selected.
        candidates: source rows the selector saw (those before the test start).
        stages: the stages in order.
        precision: against the planted truth (synthetic data), else None.
        recall: likewise.
    """

    selected: int
    candidates: int
    stages: tuple[StageSummary, ...]
    precision: float | None = None
    recall: float | None = None

    def format(self) -> str:
        """``"selection: 23,817 of 177,998 source rows (precision 1.000, recall 0.976)"``."""
        line = f"selection: {self.selected:,} of {self.candidates:,} source rows"
        if self.precision is not None and self.recall is not None:
            line += f" (precision {self.precision:.3f}, recall {self.recall:.3f})"
        return line

    def to_json(self) -> dict[str, Any]:
        """``{"selected", "candidates", "stages": [...]}``, plus ``"truth": {"precision",
        "recall"}`` when known."""
        out: dict[str, Any] = {"selected": self.selected, "candidates": self.candidates,
                               "stages": [stage.to_json() for stage in self.stages]}
        if self.precision is not None:
            out["truth"] = {"precision": self.precision, "recall": self.recall}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SelectionSummary:
        """The summary whose :meth:`to_json` is ``data``."""
        truth = data.get("truth") or {}
        return cls(data["selected"], data["candidates"],
                   tuple(StageSummary(**stage) for stage in data["stages"]),
                   truth.get("precision"), truth.get("recall"))


def selection_summary(report: SelectionReport) -> SelectionSummary:
    """The :class:`SelectionSummary` of a selection's report: the one place that reads the
    selector's report."""
    truth = report.truth
    return SelectionSummary(
        report.selected, report.source_rows,
        tuple(StageSummary(stage.name, stage.kept, stage.seconds) for stage in report.stages),
        None if truth is None else truth.precision, None if truth is None else truth.recall)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """The outcome of :func:`~graphsel.transfer.protocol.runner.compare_strategies`.

    Attributes:
        strategies: the strategy names, in run order.
        seeds: the run seeds.
        periods: ``P``.
        records: one per (seed, strategy, period), in run order.
        vs_target_only: per strategy other than ``target_only``, its :class:`Comparison`;
            empty without ``target_only``.
        split: row counts of the time split.
        selection: the selection's summary, or None when no strategy needed one.
        vs_merge_all: per strategy other than ``merge_all``, its :class:`Comparison` with
            it; empty without ``merge_all``.
        vs_control: per strategy whose random control
            (:attr:`~graphsel.transfer.protocol.strategies.Strategy.control`) ran too, the
            control's name and the strategy's :class:`Comparison` with it (e.g. ``selected``
            against ``random_same_size``: the same amount of source data, chosen without
            the selection); empty when no such pair ran.
        effort: one :class:`EffortRecord` per (seed, strategy), in run order.
        test_labels: ``(N_test,)`` the labels of the test rows (the last period's evaluation
            rows), in row order; None when not kept. Not part of :meth:`to_json`.
        test_predictions: per strategy, ``(N_test,)`` float64: its test predictions averaged
            over the seeds, aligned with ``test_labels`` (e.g. for a calibration plot). Not
            part of :meth:`to_json`.
    """

    strategies: list[str]
    seeds: list[int]
    periods: int
    records: list[PeriodRecord]
    vs_target_only: dict[str, Comparison]
    split: SplitSummary
    selection: SelectionSummary | None = None
    vs_merge_all: dict[str, Comparison] = field(default_factory=dict)
    effort: list[EffortRecord] = field(default_factory=list)
    vs_control: dict[str, tuple[str, Comparison]] = field(default_factory=dict)
    test_labels: np.ndarray | None = field(default=None, compare=False, repr=False)
    test_predictions: dict[str, np.ndarray] = field(default_factory=dict, compare=False,
                                                    repr=False)

    def test_records(self) -> list[PeriodRecord]:
        """The records of the last period: the test-set scores, one per (seed, strategy)."""
        return [r for r in self.records if r.period == self.periods - 1]

    def summary(self) -> dict[str, StrategySummary]:
        """Per strategy, its test-set metrics over the seeds."""
        test = self.test_records()
        out = {}
        for name in self.strategies:
            scores = [r.scores for r in test if r.strategy == name]
            out[name] = StrategySummary(*(MetricSummary.of([getattr(s, metric) for s in scores])
                                          for metric in METRIC_NAMES))
        return out

    def effort_of(self, name: str) -> list[EffortRecord]:
        """The :class:`EffortRecord` of strategy ``name``, one per seed."""
        return [record for record in self.effort if record.strategy == name]

    def to_json(self) -> dict[str, Any]:
        """``{"strategies", "vs_target_only", "vs_merge_all", "vs_control", "effort",
        "periods", "split", "selection", "seeds"}`` (``vs_control``: per strategy,
        ``{"control", "auc_diff", "ci95"}``)."""
        return {"strategies": {name: s.to_json() for name, s in self.summary().items()},
                "vs_target_only": {name: c.to_json() for name, c in self.vs_target_only.items()},
                "vs_merge_all": {name: c.to_json() for name, c in self.vs_merge_all.items()},
                "vs_control": {name: {"control": control, **c.to_json()}
                               for name, (control, c) in self.vs_control.items()},
                "effort": [record.to_json() for record in self.effort],
                "periods": [record.to_json() for record in self.records],
                "split": self.split.to_json(),
                "selection": None if self.selection is None else self.selection.to_json(),
                "seeds": self.seeds}

    def table(self) -> str:
        """The strategy x (AUC, GAUC, LogLoss, ECE, predicted CTR) table, mean +- std over
        seeds (the mean alone for one seed), and the AUC difference from ``target_only`` with
        its 95 % interval; the title gives the test set's actual CTR, which the predicted CTR
        of a calibrated model matches."""
        summary = self.summary()
        n_train = {r.strategy: r.n_train for r in self.test_records()}
        rows = []
        spread = len(self.seeds) > 1  # one seed has no spread: no "± 0.0000"
        for name in self.strategies:
            comparison = self.vs_target_only.get(name)
            metrics = summary[name]
            rows.append([name, metrics.auc.format(spread), metrics.gauc.format(spread),
                         metrics.logloss.format(spread), metrics.ece.format(spread),
                         metrics.pred_ctr.format(spread), n_train.get(name, ""),
                         "" if comparison is None else comparison.format()]
                        + self._effort_cells(name))
        actual = [r.scores.ctr for r in self.test_records() if r.scores.ctr is not None]
        title = (f"test set: {self.split.target_test:,} target rows"
                 + (f", actual CTR {actual[0]:.4f}" if actual else "")
                 + f"; {len(self.seeds)} seed(s), {self.periods} period(s); "
                   f"ECE over {ECE_BINS} equal-width bins")
        lines = [format_table(["strategy", "AUC", "GAUC", "LogLoss", "ECE", "pred CTR",
                               "train rows",
                               "AUC - target_only [95% CI]", "lr", "domain", "epochs",
                               "steps", "train s"], rows, title=title)]
        if self.vs_merge_all:
            lines.append(format_table(
                ["strategy", "AUC - merge_all [95% CI]", "verdict"],
                [[name, c.format(), c.verdict] for name, c in self.vs_merge_all.items()]))
        if self.vs_control:
            lines.append(format_table(
                ["strategy", "control", "AUC - control [95% CI]", "verdict"],
                [[name, control, c.format(), c.verdict]
                 for name, (control, c) in self.vs_control.items()]))
        picks = [(r.seed, r.picked) for r in self.effort if r.picked is not None]
        if picks:
            lines.append("auto picked (merge_all unless beaten beyond noise on validation): "
                         + ", ".join(
                f"seed {seed}: {name}" for seed, name in picks))
        lines += [details_table(name, self.effort_of(name)) for name in self.strategies
                  if any(r.details for r in self.effort_of(name))]
        if self.selection is not None:
            lines.append(self.selection.format())
        if self.periods > 1:
            lines.append("\n" + self.period_table())
        return "\n".join(lines)

    def _effort_cells(self, name: str) -> list[Any]:
        """The chosen lr and domain feature (of the first seed; ``*`` when seeds differ), and
        the mean epochs, optimiser steps and training seconds over seeds."""
        records = self.effort_of(name)
        if not records:
            return ["", "", "", "", ""]
        lrs = {r.choice.lr for r in records}
        domains = {r.choice.domain_feature for r in records}
        first = records[0].choice
        return [f"{first.lr:g}" + ("*" if len(lrs) > 1 else ""),
                ("on" if first.domain_feature else "off") + ("*" if len(domains) > 1 else ""),
                f"{np.mean([r.effort.epochs for r in records]):.1f}",
                f"{np.mean([r.effort.steps for r in records]):,.0f}",
                f"{np.mean([r.effort.seconds for r in records]):.2f}"]

    def period_table(self) -> str:
        """Mean AUC over seeds of each strategy at each period (on the next period's rows;
        the last column is the test set)."""
        headers = ["strategy"] + [f"period {p}" for p in range(self.periods)]
        rows = []
        for name in self.strategies:
            cells: list[Any] = [name]
            for period in range(self.periods):
                values = [r.scores.auc for r in self.records
                          if r.strategy == name and r.period == period]
                defined = [v for v in values if v is not None]
                cells.append("" if not values  # not scored there (ensemble: the test only)
                             else "n/a" if len(defined) < len(values)
                             else float(np.mean(defined)))
            rows.append(cells)
        return format_table(headers, rows, title="AUC per period (evaluated on the next one)")
