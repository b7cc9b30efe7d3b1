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
builds and trains its own models from the plan's rows, and that learner's *options* (a
dataclass of :mod:`graphsel.transfer.models.options`, set per strategy in a config's
``strategy_options:``). Without a learner, the runner trains the base model on the plan
(:class:`~graphsel.transfer.protocol.learners.PlanLearner`).

The transfer models of the seed papers (``ctnet``, ``ctnet_linear``, ``ecat``, ``diit``,
``ecdctr``, and the ablations ``ctnet_cold``, ``ecat_cold``, ``diit_cold`` whose target model
starts cold) need torch, so they are *declared* here, by name, module and default options
(:func:`declare_strategy`), and registered by their method modules
(:mod:`graphsel.transfer.models.ctnet`, ...) when a run first asks for them: listing and
checking strategy names and options imports no torch. :data:`STRATEGIES` keeps the order of
the table above, then the seed papers'.

>>> context = StrategyContext(source_rows=np.arange(10, 16), selection=None, seed=0)
>>> get_strategy("merge_all").build(context).rows.tolist()
[10, 11, 12, 13, 14, 15]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from graphsel.errors import InputError, choice_error
from graphsel.registry import Registry
from graphsel.transfer.models.multidomain_options import MULTI_DOMAIN_MODELS
from graphsel.transfer.models.options import (
    AdapterOptions,
    DIITOptions,
    ECATOptions,
    EnsembleOptions,
    FinetuneOptions,
    SeedEnsembleOptions,
    SubdomainOptions,
    WeightedOptions,
)

if TYPE_CHECKING:  # pragma: no cover
    from graphsel.data.log import InteractionLog
    from graphsel.select.pipeline import Selection
    from graphsel.transfer.protocol.learners import Learner, LearnerContext

__all__ = [
    "random_same_size_mask",
    "AUTO",
    "ENSEMBLE",
    "BUDGET_ENSEMBLE",
    "BUDGET_MEMBERS",
    "ENSEMBLES",
    "COMBINERS",
    "ensemble_members",
    "selection_of",
    "selected_focus",
    "SCHEDULES",
    "SourcePlan",
    "StrategyContext",
    "Strategy",
    "STRATEGIES",
    "register_strategy",
    "declare_strategy",
    "get_strategy",
    "strategy_names",
    "default_options",
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
        source: the whole source log (``source_rows`` are row numbers of it), for strategies
            that score the source themselves (``weighted_all``). Default None.
        target: the target's training rows (those the selection is fitted on: no
            validation or test row). Default None.
    """

    source_rows: np.ndarray
    selection: Selection | None
    seed: int
    source: InteractionLog | None = None
    target: InteractionLog | None = None


@dataclass(frozen=True, eq=False)
class SourcePlan:
    """The source part of one strategy's training data.

    Attributes:
        rows: ``(K,)`` int64 sorted row numbers of the source log.
        weight: ``(K,)`` float32 per-sample loss weights of those rows.
        schedule: ``"joint"`` (train on target + source rows together) or ``"pretrain"``
            (train on the source rows first, then fine-tune on the target rows).
        focus: ``(K,)`` bool, the rows a learner singles out (e.g. the selected rows that
            ``merge_finetune_selected`` fine-tunes on after training on every row), or None.
            Default None.
    """

    rows: np.ndarray
    weight: np.ndarray
    schedule: str = "joint"
    focus: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise choice_error("schedule", self.schedule, SCHEDULES)
        if np.shape(self.rows) != np.shape(self.weight):
            raise InputError(f"rows {np.shape(self.rows)} and weight {np.shape(self.weight)} "
                             f"must have one shape")
        if self.focus is not None and np.shape(self.focus) != np.shape(self.rows):
            raise InputError(f"focus {np.shape(self.focus)} and rows {np.shape(self.rows)} "
                             f"must have one shape")

    def __len__(self) -> int:
        return len(self.rows)

    def within(self, keep: np.ndarray) -> SourcePlan:
        """The plan restricted to the rows where the ``(K,)`` bool ``keep`` holds."""
        return SourcePlan(self.rows[keep], self.weight[keep], self.schedule,
                          None if self.focus is None else self.focus[keep])


StrategyBuilder = Callable[[StrategyContext], SourcePlan]
LearnerFactory = Callable[..., "Learner"]
"""``learner(context)`` or, for a strategy with options, ``learner(context, options)``."""


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Attributes:
        name: the registry name, e.g. ``"selected_weighted"``.
        build: ``build(context) -> SourcePlan``.
        needs_selection: True if ``build`` reads ``context.selection``.
        learner: the :class:`~graphsel.transfer.protocol.learners.Learner` class (or factory)
            that trains the strategy's models, or None for the base model trained on the plan.
        options: the learner's default options (a frozen dataclass), or None when it takes
            none. A run may replace them (``strategy_options:`` in a config).
        control: the strategy that does the same without what this one adds: a random
            subset of the source in place of the selection (``random_same_size`` for
            ``selected``), as many ``merge_all`` models in place of the recipes
            (``merge_all_ensemble`` for ``ensemble``); or None. A run with both compares
            them (``Results.vs_control``).
    """

    name: str
    build: StrategyBuilder
    needs_selection: bool = False
    learner: LearnerFactory | None = None
    options: Any = None
    control: str | None = None

    def plan(self, context: StrategyContext) -> SourcePlan:
        """``build(context)``, checking that a needed selection is there."""
        if self.needs_selection and context.selection is None:
            raise InputError(f"strategy {self.name!r} needs a selection (fit a SampleSelector)")
        return self.build(context)

    def make_learner(self, context: LearnerContext, options: Any = None) -> Learner | None:
        """The strategy's learner for one run, with ``options`` (default :attr:`options`);
        None when the strategy has no learner of its own."""
        if self.learner is None:
            return None
        options = self.options if options is None else options
        return self.learner(context) if options is None else self.learner(context, options)


STRATEGIES: Registry[Strategy] = Registry("strategy")
"""Every strategy by name, built-in ones first (see the module doc)."""

_DEFAULT_OPTIONS: dict[str, Any] = {}
"""Each strategy's default learner options, known from its declaration (without torch)."""


def register_strategy(name: str, *, needs_selection: bool = False,
                      learner: LearnerFactory | None = None, options: Any = None,
                      control: str | None = None
                      ) -> Callable[[StrategyBuilder], StrategyBuilder]:
    """Registers ``build(context) -> SourcePlan`` under ``name``.

    Args:
        name: the registry name.
        needs_selection: the strategy reads ``context.selection``. Default False.
        learner: ``learner(LearnerContext[, options]) -> Learner`` that trains the strategy's
            own models (:mod:`graphsel.transfer.protocol.learners`). Default None: the base
            model on the plan.
        options: the learner's default options. Default None: those given to
            :func:`declare_strategy`, if any.
        control: its control strategy (:attr:`Strategy.control`). Default None.

    Raises:
        ValueError: if ``name`` is already registered (a programming error, not bad input).
    """

    def decorate(build: StrategyBuilder) -> StrategyBuilder:
        default = _DEFAULT_OPTIONS.get(name) if options is None else options
        STRATEGIES.add(name, Strategy(name, build, needs_selection, learner, default, control))
        if default is not None:
            _DEFAULT_OPTIONS[name] = default
        return build

    return decorate


def declare_strategy(name: str, module: str, options: Any = None) -> None:
    """Makes ``name`` known now; importing ``module`` (on first use) registers it.

    Args:
        name: the registry name.
        module: the module whose import calls :func:`register_strategy` for ``name``.
        options: the default options of its learner. Default None: it takes none.
    """
    STRATEGIES.declare(name, module)
    if options is not None:
        _DEFAULT_OPTIONS[name] = options


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name`` (importing its module if it is only declared).

    Raises:
        InputError: ``Could not resolve strategy 'x' among ['merge_all', ...]``.
    """
    return STRATEGIES.get(name)


def strategy_names() -> list[str]:
    """Every strategy name, registered or declared, in registration order."""
    return STRATEGIES.names()


def default_options(name: str) -> Any:
    """The default learner options of strategy ``name`` (None if it takes none), without
    importing its module.

    >>> default_options("diit").num_sources, default_options("merge_all")
    (3, None)

    Raises:
        InputError: an unknown strategy name.
    """
    if name not in STRATEGIES:
        raise choice_error("strategy", name, STRATEGIES.names())
    return _DEFAULT_OPTIONS.get(name)


# --------------------------------------------------------------------------------------------
# The built-in strategies
# --------------------------------------------------------------------------------------------


def selection_of(context: StrategyContext) -> Selection:
    """``context.selection``, there for every strategy registered with ``needs_selection``
    (:meth:`Strategy.plan` checks it)."""
    if context.selection is None:
        raise InputError("this strategy needs a selection (fit a SampleSelector)")
    return context.selection


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
    return _unit(context.source_rows[random_same_size_mask(context)])


def random_same_size_mask(context: StrategyContext) -> np.ndarray:
    """``(N_cand,)`` bool over ``context.source_rows``: a seeded random subset as large as
    the selection (the control of every strategy that uses the selected rows)."""
    size = selection_of(context).num_selected
    rng = np.random.default_rng(np.random.SeedSequence([context.seed, 0x5E1EC7]))
    mask = np.zeros(len(context.source_rows), dtype=bool)
    mask[rng.choice(len(context.source_rows), size, replace=False)] = True
    return mask


@register_strategy("selected", needs_selection=True, control="random_same_size")
def selected(context: StrategyContext) -> SourcePlan:
    """The selected source rows, weight 1."""
    return _unit(context.source_rows[selection_of(context).mask])


def selected_focus(context: StrategyContext) -> SourcePlan:
    """Every source row, weight 1, the selected ones as the plan's ``focus``: the plan of
    learners that train one model on every row and another on the selected ones (``ecat``)."""
    plan = _unit(context.source_rows)
    return SourcePlan(plan.rows, plan.weight, plan.schedule,
                      focus=selection_of(context).mask.copy())


@register_strategy("selected_weighted", needs_selection=True, control="random_same_size")
def selected_weighted(context: StrategyContext) -> SourcePlan:
    """The selected source rows with the selection's weights (the DA density ratios)."""
    selection = selection_of(context)
    rows = np.asarray(context.source_rows[selection.mask], dtype=np.int64)
    return SourcePlan(rows, selection.weight[selection.mask].astype(np.float32), "joint")


@register_strategy("pretrain_finetune")
def pretrain_finetune(context: StrategyContext) -> SourcePlan:
    """Pre-train on every source row before the test starts, then fine-tune on the target."""
    return _unit(context.source_rows, "pretrain")


# --------------------------------------------------------------------------------------------
# The seed papers' strategies: registered, with their learners, by their method modules
# --------------------------------------------------------------------------------------------

declare_strategy("ctnet", "graphsel.transfer.models.ctnet", AdapterOptions())
declare_strategy("ctnet_linear", "graphsel.transfer.models.ctnet", AdapterOptions("linear"))
declare_strategy("ctnet_cold", "graphsel.transfer.models.ctnet", AdapterOptions())
declare_strategy("ecat", "graphsel.transfer.models.ecat", ECATOptions())
declare_strategy("ecat_cold", "graphsel.transfer.models.ecat", ECATOptions())
declare_strategy("diit", "graphsel.transfer.models.diit", DIITOptions())
declare_strategy("diit_cold", "graphsel.transfer.models.diit", DIITOptions())
declare_strategy("ecdctr", "graphsel.transfer.models.ecdctr")
declare_strategy("merge_finetune", "graphsel.transfer.models.finetune", FinetuneOptions())
declare_strategy("merge_finetune_selected", "graphsel.transfer.models.finetune",
                 FinetuneOptions())
declare_strategy("merge_finetune_random", "graphsel.transfer.models.finetune",
                 FinetuneOptions())
declare_strategy("budget_finetune", "graphsel.transfer.models.finetune", FinetuneOptions())
declare_strategy("budget_ctnet", "graphsel.transfer.models.ctnet", AdapterOptions())
declare_strategy("weighted_all", "graphsel.transfer.models.weighted", WeightedOptions())
declare_strategy("subdomain_gap", "graphsel.transfer.models.subdomain", SubdomainOptions())
for _name, _options in MULTI_DOMAIN_MODELS.items():
    declare_strategy(_name, "graphsel.transfer.models.multidomain", _options)
declare_strategy("star_finetune", "graphsel.transfer.models.multidomain", FinetuneOptions())
declare_strategy("budget_star_finetune", "graphsel.transfer.models.multidomain",
                 FinetuneOptions())
declare_strategy("merge_all_ensemble", "graphsel.transfer.protocol.learners",
                 SeedEnsembleOptions())


# --------------------------------------------------------------------------------------------
# ensemble, budget_ensemble and auto: strategies that combine the run's other models
# --------------------------------------------------------------------------------------------

ENSEMBLE = "ensemble"
"""The name of the strategy that trains nothing of its own: the runner gives it, per seed, the
mean logit of its members' models (:class:`~graphsel.transfer.models.options.EnsembleOptions`;
:func:`graphsel.transfer.protocol.runner.average_members`)."""

BUDGET_ENSEMBLE = "budget_ensemble"
"""``ensemble`` of the recipes that train on the 20 % source budget (``budget_finetune``'s
rows): the cheap recipe's answer to ``ensemble``. Its default members share that one plan,
so it trains on those source rows alone."""

BUDGET_MEMBERS: tuple[str, ...] = ("budget_finetune", "budget_star_finetune", "budget_ctnet")
"""The default members of ``budget_ensemble``: ``ensemble``'s recipes (the base model and
STAR fine-tuned, CTNet warm-started) on the budget's rows."""


def _combines(name: str, does: str) -> StrategyBuilder:
    """The plan builder of a strategy the runner scores from other strategies' models: it
    has no rows of its own, so building its plan is an error."""

    def build(context: StrategyContext) -> SourcePlan:
        raise InputError(f"strategy {name!r} {does} other strategies of a run (the runner "
                         f"scores it); it has no source rows of its own")

    build.__doc__ = f"{name}: {does} other strategies of a run; it has no rows of its own."
    return build


register_strategy(ENSEMBLE, options=EnsembleOptions(), control="merge_all_ensemble")(
    _combines(ENSEMBLE, "averages the models of"))
register_strategy(BUDGET_ENSEMBLE, options=EnsembleOptions(BUDGET_MEMBERS))(
    _combines(BUDGET_ENSEMBLE, "averages the models of"))

ENSEMBLES: tuple[str, ...] = (ENSEMBLE, BUDGET_ENSEMBLE)
"""The strategies that average their members' models (each with
:class:`~graphsel.transfer.models.options.EnsembleOptions`)."""


AUTO = "auto"
"""The name of the strategy that trains nothing of its own: the runner gives it, per seed, the
model of the other strategy of the run with the best validation AUC
(:func:`graphsel.transfer.protocol.runner.pick_auto`)."""


register_strategy(AUTO)(_combines(AUTO, "picks among the"))


COMBINERS: tuple[str, ...] = (*ENSEMBLES, AUTO)
"""The strategies the runner scores from the other strategies' models, in the order it does
(``auto`` may pick an ensemble)."""


def ensemble_members(options: EnsembleOptions | None = None, name: str = ENSEMBLE
                     ) -> tuple[str, ...]:
    """The members of the ensemble ``name`` (one of :data:`ENSEMBLES`) with ``options``
    (default: its default options), checked without importing any strategy's module.

    >>> ensemble_members(EnsembleOptions(("merge_all", "ctnet")))
    ('merge_all', 'ctnet')
    >>> ensemble_members(name="budget_ensemble")
    ('budget_finetune', 'budget_star_finetune', 'budget_ctnet')

    Raises:
        InputError: a member that is not a strategy, or that combines other strategies'
            models itself (``ensemble``, ``auto``).
    """
    members = (options or default_options(name)).members
    for member in members:
        default_options(member)  # an unknown name is an InputError naming the choices
        if member in COMBINERS:
            raise InputError(f"strategy_options.{name}.members: {member!r} combines other "
                             f"strategies' models; name strategies that train their own")
    return tuple(members)
