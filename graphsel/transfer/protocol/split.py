"""The time split of the protocol: train / validation / test by time, and training periods.

The target is cut by time: test = the last ``test_fraction`` (10 %) of target rows by time,
validation = the ``valid_fraction`` (10 %) before it, training = the rest, itself cut into
``periods`` windows of (about) equal target rows. The cuts are timestamps, so every training
row is strictly older than every validation row, and every validation row than every test
row (rows sharing a timestamp stay together; the fractions are then approximate). Source rows
are kept only when older than the test start (no leakage), optionally subsampled to
``max_source_rows`` (seeded, the same rows for every seed and strategy).

Nothing here imports torch: :class:`ProtocolConfig` is part of a config file's tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, choice_error

__all__ = ["MODES", "DOMAIN_FEATURE_MODES", "ProtocolConfig", "SplitSummary", "TimeSplit", "split_by_time"]

MODES: tuple[str, ...] = ("continual", "once")
"""``continual``: source rows join every period; ``once``: only the first."""

DOMAIN_FEATURE_MODES: tuple[str, ...] = ("auto", "on", "off")
"""``auto``: tried on and off on validation where source and target rows are mixed; ``on``
/ ``off``: always / never (see :data:`graphsel.transfer.features.DOMAIN_FIELD`)."""

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
        lr_grid: the learning rates every strategy tries; each strategy keeps the one whose
            model scores the best validation AUC (the same grid for all: equal effort).
            Default ``()``: the training options' ``lr`` only.
        weight_decay_grid: likewise for the dense parameters' weight decay, crossed with
            ``lr_grid``. Default ``()``: the training options' ``weight_decay`` only.
        domain_feature: the domain of each row as a categorical feature
            (:data:`~graphsel.transfer.features.DOMAIN_FIELD`): ``"auto"`` tries it on and
            off, on validation, for the strategies that mix source and target rows in one
            model (off elsewhere); ``"on"`` / ``"off"`` (or True / False, as YAML reads a
            bare ``on``): for every strategy. Default ``"auto"``.
        domain_column: a source column naming each source row's sub-domain (e.g.
            ``first_genre``, ``category_id``); its rows then read ``"source:<value>"``.
            Default None: every source row reads ``"source"``.
        tune_every_seed: choose the grid point anew for every seed. Default False: on the
            first seed; the other seeds train with its choice (the seeds then measure the
            training noise of one tuned configuration, at a fraction of the cost).
        auto_margin: the ``auto`` strategy keeps ``merge_all`` unless a candidate's
            validation AUC beats it by more than this many standard errors of a paired
            user bootstrap on the validation rows
            (:func:`~graphsel.transfer.protocol.runner.pick_auto`); 0 picks the best
            validation AUC outright. Default 1.0 (the one-standard-error rule).
    """

    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    periods: int = 1
    mode: str = "continual"
    max_source_rows: int | None = None
    n_boot: int = 1000
    lr_grid: tuple[float, ...] = ()
    weight_decay_grid: tuple[float, ...] = ()
    domain_feature: str | bool = "auto"
    domain_column: str | None = None
    tune_every_seed: bool = False
    auto_margin: float = 1.0

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
        if not 0.0 <= self.auto_margin <= 5.0:
            raise InputError(f"auto_margin must be in [0, 5] (standard errors), "
                             f"got {self.auto_margin}")
        for name in ("lr_grid", "weight_decay_grid"):
            grid = tuple(getattr(self, name))
            object.__setattr__(self, name, grid)
            if len(set(grid)) != len(grid) or any(not v >= 0 for v in grid) or (
                    name == "lr_grid" and any(v == 0 for v in grid)):
                raise InputError(f"{name} must hold distinct "
                                 f"{'positive' if name == 'lr_grid' else 'non-negative'} "
                                 f"numbers, got {list(grid)}")
        if isinstance(self.domain_feature, bool):  # YAML reads a bare on / off as a bool
            object.__setattr__(self, "domain_feature", "on" if self.domain_feature else "off")
        if self.domain_feature not in DOMAIN_FEATURE_MODES:
            raise choice_error("domain_feature", self.domain_feature, DOMAIN_FEATURE_MODES)


@dataclass(frozen=True)
class SplitSummary:
    """Row counts and cut times of a :class:`TimeSplit` (the ``"split"`` of
    ``graphsel run --json``).

    Attributes:
        target_train: target training rows.
        target_valid: target validation rows.
        target_test: target test rows.
        source: source rows training may use.
        valid_start: the first validation timestamp.
        test_start: the first test timestamp.
        period_rows: target training rows of each period.
    """

    target_train: int
    target_valid: int
    target_test: int
    source: int
    valid_start: int
    test_start: int
    period_rows: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        """The fields by name, ``period_rows`` as a list."""
        return {"target_train": self.target_train, "target_valid": self.target_valid,
                "target_test": self.target_test, "source": self.source,
                "valid_start": self.valid_start, "test_start": self.test_start,
                "period_rows": list(self.period_rows)}


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

    def summary(self) -> SplitSummary:
        """Row counts and cut times."""
        return SplitSummary(len(self.target_train), len(self.target_valid),
                            len(self.target_test), len(self.source_rows), self.valid_start,
                            self.test_start, tuple(len(rows) for rows in self.periods_rows))


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
