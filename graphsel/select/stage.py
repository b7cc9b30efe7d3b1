"""What every selection stage shares: the stage contract, the registry, the keep rule and the
inputs the stages of one fit share.

A *stage* is a scikit-learn estimator over source rows (:class:`SelectionStage`):
``__init__`` only stores its hyper-parameters, :meth:`~SelectionStage.check_params` checks
them (each parameter is checked by the stage that owns it, and only there),
``fit(candidates, target, context=...)`` scores the candidates and returns ``self``, and the
fitted state ends in ``_``: ``support_`` (the kept candidates), one array per declared
:class:`Score` and ``report_``, the stage's own typed report (a :class:`StageDetails`).
:data:`STAGES` maps the names that ``--stages`` and YAML use to the classes; a new stage is
one module with one :func:`register_stage` line, imported before it is named.

The keep rule of the scoring stages (:class:`RuleMixin`) is implemented once here, so the
stages agree on what ``threshold``, ``keep_quantile`` and ``budget`` mean:

- ``threshold=t``: keep candidates whose score is ``>= t``;
- ``keep_quantile=q``: keep the top ``ceil(q * N_cand)`` candidates by score (``q`` in
  ``(0, 1]``; ``0.2`` keeps the top 20 %);
- ``budget=K``: keep the top ``K >= 1`` candidates (all of them if ``K >= N_cand``).

At most one may be given; with none, the stage's ``DEFAULT_RULE`` applies. A threshold must
lie in the range of the stage's score (``RuleMixin.SCORE_RANGE``: ``[0, 1]`` for
``p_target``, ``[-1, 1]`` for ``knn_score``): one outside it keeps nothing or everything.
Ties in the "top" rules are broken by row order (the earlier row wins), so masks are
deterministic.

Parameters are checked twice before any work: on their own (:meth:`SelectionStage.check_params`)
and against the sizes of the logs (:meth:`SelectionStage.check_inputs`, e.g. ``k`` against
the target's rows), the second raising a :class:`ParamError` that names the parameter so a
command can name its own spelling of it (``--knn-k``).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_integer, check_real
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.embed import svd_factors
from graphsel.registry import Registry

__all__ = [
    "DEFAULT_KEEP_QUANTILE",
    "STAGES",
    "ParamError",
    "RuleMixin",
    "Score",
    "SelectionContext",
    "SelectionRule",
    "SelectionStage",
    "StageDetails",
    "register_stage",
]

DEFAULT_KEEP_QUANTILE = 0.5
"""The keep rule of :meth:`SelectionRule.from_params` when no rule is given (the top half)."""


@dataclass(frozen=True)
class SelectionRule:
    """One validated keep rule: ``kind`` is ``"threshold"``, ``"keep_quantile"`` or ``"budget"``.

    >>> rule = SelectionRule.from_params(budget=2)
    >>> rule.mask(np.array([0.1, 0.9, 0.5, 0.9])).tolist()
    [False, True, False, True]
    """

    kind: str
    value: float

    @classmethod
    def from_params(
        cls,
        threshold: float | None = None,
        keep_quantile: float | None = None,
        budget: int | None = None,
        default: SelectionRule | None = None,
        score_range: tuple[float, float] = (-math.inf, math.inf),
    ) -> SelectionRule:
        """Validates the three mutually exclusive estimator parameters.

        Args:
            threshold, keep_quantile, budget: the rule's parameters, at most one not None.
            default: the rule when none is given. Defaults to the top
                :data:`DEFAULT_KEEP_QUANTILE`.
            score_range: ``(low, high)``, the values the score can take: a threshold must
                lie in it. Defaults to any finite number.

        Raises:
            InputError: if more than one is given, or one is out of range.
        """
        given = {name: value for name, value in
                 (("threshold", threshold), ("keep_quantile", keep_quantile), ("budget", budget))
                 if value is not None}
        if len(given) > 1:
            raise InputError(f"give at most one of threshold, keep_quantile, budget; got "
                             f"{', '.join(f'{k}={v!r}' for k, v in given.items())}")
        if not given:
            return default or cls("keep_quantile", DEFAULT_KEEP_QUANTILE)
        (kind, value), = given.items()
        if kind == "threshold":
            value = check_real("threshold", value, *score_range)
        elif kind == "keep_quantile":
            value = check_real("keep_quantile", value, 0.0, 1.0, low_open=True)
        else:
            value = check_integer("budget", value, 1)  # 0 would keep nothing
        return cls(kind, value)

    def describe(self, score: str) -> str:
        """The rule in words, for messages.

        >>> SelectionRule("threshold", 0.9).describe("knn_score")
        'knn_score >= 0.9'
        >>> SelectionRule("keep_quantile", 0.2).describe("p_target")
        'the top 20% by p_target'
        """
        if self.kind == "threshold":
            return f"{score} >= {self.value:g}"
        if self.kind == "keep_quantile":
            return f"the top {self.value:.0%} by {score}"
        return f"the top {int(self.value)} by {score}"

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """Boolean mask ``(N_cand,)`` of the candidates this rule keeps given ``scores``."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.kind == "threshold":
            return scores >= self.value
        n = len(scores)
        if self.kind == "keep_quantile":
            # The small epsilon keeps 0.3 * 10 == 3.0000000000000004 from rounding up to 4.
            keep = min(n, math.ceil(self.value * n - 1e-9))
        else:
            keep = min(n, int(self.value))
        if keep == n:  # every row (the domain stage's default): no need to rank them
            return np.ones(n, dtype=bool)
        mask = np.zeros(n, dtype=bool)
        mask[np.argsort(-scores, kind="stable")[:keep]] = True
        return mask


@dataclass(frozen=True)
class Score:
    """A per-row score a stage declares: written as ``column`` of the selected rows.

    Attributes:
        column: the output column, e.g. ``"p_target"``.
        attribute: the fitted ``(N_cand,)`` array holding it, e.g. ``"p_target_"``.
        dtype: its type in the output. Defaults to float32.
        fill: the value of rows the stage did not score. Defaults to NaN.
    """

    column: str
    attribute: str
    dtype: type = np.float32
    fill: float = math.nan

    def empty(self, n: int) -> np.ndarray:
        """``(n,)`` array of :attr:`fill`."""
        return np.full(n, self.fill, dtype=self.dtype)


class StageDetails(ABC):
    """A stage's own report (a small frozen dataclass): what the funnel notes and JSON add."""

    def to_json(self) -> dict[str, Any]:
        """The stage's keys of its entry in the selection report's ``"stages"`` list: by
        default the dataclass's fields."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @abstractmethod
    def note(self) -> str:
        """One short phrase for the funnel table's ``note`` column."""

    def warnings(self) -> tuple[str, ...]:
        """Lines saying why the stage's result is suspect (e.g. an expansion that reached
        nothing beyond its seeds); none by default."""
        return ()


@dataclass
class SelectionContext:
    """Inputs the stages of one selection share, each computed once, when first asked for.

    :class:`~graphsel.select.pipeline.SampleSelector` makes one per ``fit`` and passes it to
    every stage; a stage fitted on its own makes its own. This is the one place that decides
    whether graph factors exist and computes them.

    Attributes:
        target: the ``N_tgt`` target rows.
        user_factors: ``(U, d)`` graph factors given by the caller, or None (computed).
        item_factors: ``(I, d)``, given together with ``user_factors``.

    >>> source = InteractionLog.from_columns([1, 2], [10, 10], [0, 0], [1, 1], "s")
    >>> context = SelectionContext(source)
    >>> context.factors(source, dim=0, normalize="degree", random_state=0) is None
    True
    >>> first = context.factors(source, dim=2, normalize="degree", random_state=0)
    >>> context.factors(source[:1], dim=2, normalize="degree", random_state=0) is first
    True
    """

    target: InteractionLog
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    _graphs: dict[str, BipartiteGraph] = field(default_factory=dict, repr=False)
    _factors: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if (self.user_factors is None) != (self.item_factors is None):
            raise InputError("give both user_factors and item_factors, or neither")

    @classmethod
    def for_fit(cls, target: InteractionLog, context: SelectionContext | None = None,
                user_factors: np.ndarray | None = None,
                item_factors: np.ndarray | None = None) -> SelectionContext:
        """``context``, or a new one for a stage fitted on its own (with the caller's factors).

        Raises:
            InputError: for factors given together with a context.
        """
        if context is None:
            return cls(target, user_factors, item_factors)
        if user_factors is not None or item_factors is not None:
            raise InputError("give graph factors or a context, not both")
        return context

    def graph(self, candidates: InteractionLog, edges: str) -> BipartiteGraph:
        """The user-item graph of the candidates (every relation), built once per ``edges``:
        a later stage that asks gets the graph of the first stage's candidates."""
        if edges not in self._graphs:
            self._graphs[edges] = BipartiteGraph.from_log(candidates, edges=edges)
        return self._graphs[edges]

    def forget_graph(self, edges: str) -> None:
        """Drops the graph :meth:`graph` built for ``edges``, so that it can be freed (a later
        call builds it anew)."""
        self._graphs.pop(edges, None)

    def factors(self, candidates: InteractionLog, dim: int, normalize: str,
                random_state: int) -> tuple[np.ndarray, np.ndarray] | None:
        """User and item graph factors for the scoring stages.

        The caller's factors when the context holds some; else none when ``dim == 0``; else
        :func:`~graphsel.graph.embed.svd_factors` of ``candidates`` and the target, computed
        once per ``(dim, normalize, random_state)``: a later stage that asks with the same
        settings gets the factors of the candidates of the first stage that asked.

        Returns:
            ``(user_factors (U, d), item_factors (I, d))`` or None.
        """
        if self.user_factors is not None and self.item_factors is not None:
            return self.user_factors, self.item_factors
        if dim == 0:
            return None
        key = (dim, normalize, random_state)
        if key not in self._factors:
            self._factors[key] = svd_factors([candidates, self.target], dim, normalize,
                                             random_state)
        return self._factors[key]


class ParamError(InputError):
    """A stage parameter that does not fit the logs (checked by
    :meth:`SelectionStage.check_inputs`).

    The message reads ``"<stage>.<param> <value> <problem>"``; :meth:`renamed` gives the same
    message under another name for the parameter (a command-line flag).

    >>> error = ParamError("knn", "k", 100, "is more than the 9 target rows")
    >>> print(error); print(error.renamed("--knn-k"))
    knn.k 100 is more than the 9 target rows
    --knn-k 100 is more than the 9 target rows
    """

    def __init__(self, stage: str, param: str, value: object, problem: str) -> None:
        self.stage, self.param, self.value, self.problem = stage, param, value, problem
        super().__init__(f"{stage}.{param} {value!r} {problem}")

    def renamed(self, name: str) -> InputError:
        """The same error naming the parameter ``name``."""
        return InputError(f"{name} {self.value!r} {self.problem}")


class SelectionStage(BaseEstimator, ABC):
    """Base class of the selection stages: the contract :class:`SampleSelector` relies on.

    A subclass sets ``name`` (its registered name, by :func:`register_stage`) and
    ``SCORES`` (the :class:`Score` columns
    it fills), implements :meth:`check_params` and :meth:`fit`, and in ``fit`` sets
    ``support_`` (``(N_cand,)`` bool), every declared score attribute and ``report_``.
    """

    name: ClassVar[str]
    SCORES: ClassVar[tuple[Score, ...]] = ()
    support_: np.ndarray
    report_: StageDetails

    @abstractmethod
    def check_params(self) -> None:
        """Checks every hyper-parameter, before any work. Raises InputError."""

    @abstractmethod
    def fit(self, candidates: InteractionLog, target: InteractionLog, *,
            context: SelectionContext | None = None) -> SelectionStage:
        """Scores the ``N_cand`` candidates against the target; returns self."""

    def sample_weight(self) -> np.ndarray | None:
        """``(N_cand,)`` training weights of the kept candidates' rows, or None (no opinion)."""
        return None

    def min_target_rows(self) -> int:
        """The fewest target rows this stage can fit on (default 1)."""
        return 1

    def check_inputs(self, n_candidates: int, n_target: int) -> None:
        """Checks the parameters against the sizes of the logs, before any work.

        The pipeline calls it once with all source rows, and again before the stage fits,
        with the candidates the stages before it kept. By default: at least
        :meth:`min_target_rows` target rows.

        Args:
            n_candidates: ``N_cand`` rows the stage will see.
            n_target: ``N_tgt`` target rows.

        Raises:
            InputError: a :class:`ParamError` for a parameter that does not fit.
        """
        if n_target < self.min_target_rows():
            raise InputError(f"the {self.name} stage needs at least {self.min_target_rows()} "
                             f"target rows, got {n_target}")

    def empty_reason(self) -> str:
        """Why the stage kept no candidate, for the error that says so."""
        return "it kept none"

    def get_support(self, indices: bool = False) -> np.ndarray:
        """The kept candidates: a boolean mask ``(N_cand,)``, or their row indices.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
        """
        check_is_fitted(self, "support_")
        return np.flatnonzero(self.support_) if indices else self.support_.copy()

    def transform(self, candidates: InteractionLog) -> InteractionLog:
        """The kept rows of ``candidates`` (the log given to ``fit``)."""
        mask = self.get_support()
        if len(candidates) != len(mask):
            raise InputError(f"{candidates.name}: has {len(candidates)} rows but the estimator "
                             f"was fitted on {len(mask)} candidates")
        return candidates[mask]


class RuleMixin:
    """The keep rule of a scoring stage: parameters ``threshold``, ``keep_quantile``, ``budget``.

    The stage calls :meth:`_selection_rule` in :meth:`SelectionStage.check_params` (so bad
    values fail before any work) and sets ``support_`` to the rule's mask of its score. With
    none of the three given, the class's ``DEFAULT_RULE`` applies.
    """

    DEFAULT_RULE: ClassVar[SelectionRule] = SelectionRule("keep_quantile", DEFAULT_KEEP_QUANTILE)
    SCORE_RANGE: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    """The values the stage's score takes: a ``threshold`` outside them is refused."""
    SCORES: ClassVar[tuple[Score, ...]]
    threshold: float | None
    keep_quantile: float | None
    budget: int | None

    def _selection_rule(self) -> SelectionRule:
        return SelectionRule.from_params(self.threshold, self.keep_quantile, self.budget,
                                         default=self.DEFAULT_RULE,
                                         score_range=self.SCORE_RANGE)

    def empty_reason(self) -> str:
        """The keep rule that kept nothing, e.g. ``"its rule knn_score >= 0.99 kept none"``."""
        rule = self._selection_rule()
        return f"its rule {rule.describe(self.SCORES[0].column)} kept none"


STAGES: Registry[type[SelectionStage]] = Registry("stage")
"""Stage names (``--stages``, YAML) to :class:`SelectionStage` classes.

A stage's module registers its class (:func:`register_stage`); the line below makes its name
known before the module is imported (and imports it when the name is first used)."""

for _name, _module in (("graph", "graphsel.select.expansion"), ("da", "graphsel.select.domain"),
                       ("knn", "graphsel.select.neighbors")):
    STAGES.declare(_name, _module)

_Stage = TypeVar("_Stage", bound=type[SelectionStage])


def register_stage(name: str) -> Callable[[_Stage], _Stage]:
    """Class decorator: registers a :class:`SelectionStage` under ``name`` and sets its ``name``.

    Usage, in the stage's module::

        @register_stage("toy")
        class ToyStage(SelectionStage):
            ...

    Raises:
        ValueError: ``name`` is registered already.
    """

    def decorate(cls: _Stage) -> _Stage:
        cls.name = name
        STAGES.add(name, cls)
        return cls

    return decorate
