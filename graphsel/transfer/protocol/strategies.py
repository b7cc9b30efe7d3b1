"""Transfer strategies: which source rows join the target's training data, and how.

A strategy is a registered function ``build(context) -> SourcePlan``. It never trains
anything: it names the source rows (original row numbers of the source log), their
per-sample weights, and whether they are mixed into the target's training data
(``"joint"``) or used to pre-train the model before it is fine-tuned on the target rows
(``"pretrain"``). The protocol (:mod:`graphsel.transfer.protocol.runner`) then trains the same model
with the same hyper-parameters for every strategy, so the plans are the only difference.

The built-in strategies (``context.source_rows`` are the source rows before the test starts):

====================  ======================================================================
``target_only``       no source row
``merge_all``         every source row, weight 1
``random_same_size``  a seeded random subset of the source rows, as large as the selection
``selected``          the selection's rows, weight 1
``selected_weighted`` the selection's rows with the selection's weights
``pretrain_finetune`` pre-train on every source row, then fine-tune on the target rows
====================  ======================================================================

A strategy may also bring its own *learner* (:mod:`graphsel.transfer.protocol.learners`), which
builds and trains its own models from the plan's rows: the transfer models of the seed
papers (``ctnet``, ``ctnet_linear``, ``ecat``, ``diit``, ``ecdctr``) are registered there.
Without one, the protocol trains the base model on the plan
(:class:`~graphsel.transfer.protocol.learners.PlanLearner`).

>>> context = StrategyContext(source_rows=np.arange(10, 16), selection=None, seed=0)
>>> get_strategy("merge_all").build(context).rows.tolist()
[10, 11, 12, 13, 14, 15]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphsel.errors import InputError, choice_error
from graphsel.select.pipeline import Selection

__all__ = [
    "SCHEDULES",
    "SourcePlan",
    "StrategyContext",
    "Strategy",
    "register_strategy",
    "get_strategy",
    "strategy_names",
]

SCHEDULES: tuple[str, ...] = ("joint", "pretrain")
"""How source rows are used: mixed into the target's data, or to pre-train before it."""


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may look at.

    Attributes:
        source_rows: ``(N_cand,)`` int64 sorted row numbers of the source log that training
            may use (those before the test starts).
        selection: the :class:`~graphsel.select.pipeline.Selection` fitted on
            ``source[source_rows]`` (its arrays are aligned with ``source_rows``), or None
            when no strategy of the run needs one.
        seed: the run's seed (random strategies draw from it).
    """

    source_rows: np.ndarray
    selection: Selection | None
    seed: int


@dataclass(frozen=True, eq=False)
class SourcePlan:
    """The source part of one strategy's training data.

    Attributes:
        rows: ``(K,)`` int64 sorted row numbers of the source log.
        weight: ``(K,)`` float32 per-sample loss weights of those rows.
        schedule: ``"joint"`` (train on target + source rows together) or ``"pretrain"``
            (train on the source rows first, then fine-tune on the target rows).
    """

    rows: np.ndarray
    weight: np.ndarray
    schedule: str = "joint"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise choice_error("schedule", self.schedule, SCHEDULES)
        if np.shape(self.rows) != np.shape(self.weight):
            raise InputError(f"rows {np.shape(self.rows)} and weight {np.shape(self.weight)} "
                             f"must have one shape")

    def __len__(self) -> int:
        return len(self.rows)

    def within(self, keep: np.ndarray) -> SourcePlan:
        """The plan restricted to the rows where the ``(K,)`` bool ``keep`` holds."""
        return SourcePlan(self.rows[keep], self.weight[keep], self.schedule)


StrategyBuilder = Callable[[StrategyContext], SourcePlan]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Attributes:
        name: the registry name, e.g. ``"selected_weighted"``.
        build: ``build(context) -> SourcePlan``.
        needs_selection: True if ``build`` reads ``context.selection``.
        learner: ``learner(context) -> Learner`` that trains the strategy's models
            (:mod:`graphsel.transfer.protocol.learners`), or None for the base model trained on the
            plan.
    """

    name: str
    build: StrategyBuilder
    needs_selection: bool = False
    learner: Callable[[Any], Any] | None = None

    def plan(self, context: StrategyContext) -> SourcePlan:
        """``build(context)``, checking that a needed selection is there."""
        if self.needs_selection and context.selection is None:
            raise InputError(f"strategy {self.name!r} needs a selection (fit a SampleSelector)")
        return self.build(context)


_STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str, *, needs_selection: bool = False,
                      learner: Callable[[Any], Any] | None = None
                      ) -> Callable[[StrategyBuilder], StrategyBuilder]:
    """Registers ``build(context) -> SourcePlan`` under ``name``.

    Args:
        name: the registry name.
        needs_selection: the strategy reads ``context.selection``. Default False.
        learner: ``learner(LearnerContext) -> Learner`` that trains the strategy's own models
            (:mod:`graphsel.transfer.protocol.learners`). Default None: the base model on the plan.

    Raises:
        ValueError: if ``name`` is already registered (a programming error, not bad input).
    """

    def decorate(build: StrategyBuilder) -> StrategyBuilder:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        _STRATEGIES[name] = Strategy(name, build, needs_selection, learner)
        return build

    return decorate


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``.

    Raises:
        InputError: ``Could not resolve strategy 'x' among ['merge_all', ...]``.
    """
    if name not in _STRATEGIES:
        raise choice_error("strategy", name, list(_STRATEGIES))
    return _STRATEGIES[name]


def strategy_names() -> list[str]:
    """The registered strategy names, in registration order."""
    return list(_STRATEGIES)


# --------------------------------------------------------------------------------------------
# The built-in strategies
# --------------------------------------------------------------------------------------------


def _unit(rows: np.ndarray, schedule: str = "joint") -> SourcePlan:
    rows = np.asarray(rows, dtype=np.int64)
    return SourcePlan(rows, np.ones(len(rows), dtype=np.float32), schedule)


@register_strategy("target_only")
def target_only(context: StrategyContext) -> SourcePlan:
    """No source row: the target model trained on the target alone."""
    return _unit(np.zeros(0, dtype=np.int64))


@register_strategy("merge_all")
def merge_all(context: StrategyContext) -> SourcePlan:
    """Every source row before the test starts, weight 1."""
    return _unit(context.source_rows)


@register_strategy("random_same_size", needs_selection=True)
def random_same_size(context: StrategyContext) -> SourcePlan:
    """A random subset of the source rows as large as the selection (seeded by the run).

    The control for ``selected``: same amount of source data, chosen without the graph.
    """
    size = context.selection.num_selected
    rng = np.random.default_rng(np.random.SeedSequence([context.seed, 0x5E1EC7]))
    return _unit(np.sort(rng.choice(context.source_rows, size, replace=False)))


@register_strategy("selected", needs_selection=True)
def selected(context: StrategyContext) -> SourcePlan:
    """The selected source rows, weight 1."""
    return _unit(context.source_rows[context.selection.mask])


@register_strategy("selected_weighted", needs_selection=True)
def selected_weighted(context: StrategyContext) -> SourcePlan:
    """The selected source rows with the selection's weights (the DA density ratios)."""
    mask = context.selection.mask
    rows = np.asarray(context.source_rows[mask], dtype=np.int64)
    return SourcePlan(rows, context.selection.weight[mask].astype(np.float32), "joint")


@register_strategy("pretrain_finetune")
def pretrain_finetune(context: StrategyContext) -> SourcePlan:
    """Pre-train on every source row before the test starts, then fine-tune on the target."""
    return _unit(context.source_rows, "pretrain")
