"""Learners: how a strategy turns its data into a trained model, period after period.

A :class:`~graphsel.transfer.protocol.strategies.Strategy` names the source rows a run may use (its
:class:`~graphsel.transfer.protocol.strategies.SourcePlan`); its *learner* decides what is trained on
them. The protocol (:mod:`graphsel.transfer.protocol.runner`) builds one learner per (strategy,
seed), calls :meth:`Learner.fit_period` once per period with that period's
:class:`PeriodData`, and scores :meth:`Learner.predict` on the next period's target rows.
A learner keeps its models between periods: that is the warm start.

=====================  ===================================================================
:class:`PlanLearner`   the base model on the plan's rows, mixed with the target's rows
                       (``"joint"``) or pre-trained on them first (``"pretrain"``); the
                       learner of every baseline strategy
:class:`CTNetLearner`  ``ctnet`` / ``ctnet_linear``: a source model retrained on each
                       period's source rows, frozen as CTNet's source tower; the target
                       tower trained on the target's rows through GLU (or linear) adapters
:class:`ECATLearner`   ``ecat``: a source model on the selected source rows and the
                       target's rows (the entire space); the target model trained on the
                       target's and the selected rows with adaptive distillation
:class:`DIITLearner`   ``diit``: one source model per source sub-domain, gated,
                       adversarially aligned and distilled into the target model, which
                       alone predicts
:class:`ECDCTRLearner` ``ecdctr``: tiny pre-training embeddings of the source as extra
                       features, a complete pre-training model initialising the target
                       model, BatchNorm statistics reset before fine-tuning
=====================  ===================================================================

In ``mode="once"`` :attr:`PeriodData.transfer` is False after the first period: the
learners then keep the source models of the first period (no refresh) and train on the
target's rows only. Every source model is trained with the run's
:class:`~graphsel.transfer.train.trainer.TrainConfig` and early-stops on the target's validation
rows, like the target model, and warm-starts from its previous period.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import faiss
import numpy as np
from torch import nn

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.graph.embed import svd_factors
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureSpec
from graphsel.transfer.models.base import CTRModel, ModelConfig, build_base_model
from graphsel.transfer.models.ctnet import CTNet
from graphsel.transfer.models.diit import DIIT, diit_loss
from graphsel.transfer.models.ecat import ECAT, ecat_loss
from graphsel.transfer.models.ecdctr import (
    EntityEmbeddings,
    TinyPretrainModel,
    add_embedding_features,
    aggregate_periods,
    init_from,
    reset_batchnorm,
)
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    StrategyContext,
    merge_all,
    register_strategy,
    selected,
)
from graphsel.transfer.train.trainer import LossFn, TrainConfig, Trainer, predict

__all__ = [
    "LearnerContext",
    "PeriodData",
    "Learner",
    "PlanLearner",
    "CTNetLearner",
    "ECATLearner",
    "DIITLearner",
    "ECDCTRLearner",
    "source_sub_domains",
]


@dataclass(frozen=True, eq=False)
class LearnerContext:
    """What a learner is built from; the same for every period of one (strategy, seed).

    Attributes:
        plan: the strategy's source rows and weights.
        spec: the feature spec of the run's encoder (target training rows + plan rows).
        model: the base model's options (every model of the run is built from them).
        train: the training options, ``seed`` set to the run's seed.
        source_log: the whole source log (:attr:`source` is the plan's part of it).
        seed: the run's seed.
    """

    plan: SourcePlan
    spec: FeatureSpec
    model: ModelConfig
    train: TrainConfig
    source_log: InteractionLog
    seed: int

    @cached_property
    def source(self) -> InteractionLog:
        """The plan's source rows as a log (``source_log[plan.rows]``), aligned with
        ``plan.rows``, for learners that look at more than the encoded features. Taken on
        first use: most learners never need it (ML-1M: 0.3 s per copy)."""
        return self.source_log[self.plan.rows]

    def base_model(self, extra_numeric: int = 0) -> CTRModel:
        """A fresh base model over the run's features (plus ``extra_numeric`` columns)."""
        return build_base_model(self.spec.vocab_sizes, len(self.spec.numeric) + extra_numeric,
                                self.model)

    def trainer(self, loss_fn: LossFn | None = None) -> Trainer:
        """A :class:`Trainer` with the run's options (and ``loss_fn``)."""
        return Trainer(self.train, loss_fn)


@dataclass(frozen=True, eq=False)
class PeriodData:
    """One period's training data.

    Attributes:
        period: 0-based.
        transfer: False when ``mode="once"`` and ``period > 0``: no source row this period.
        target: the period's target training rows.
        source: the plan's source rows of the period's window with their plan weights
            (empty when not ``transfer``).
        source_positions: ``(len(source),)`` int64 positions of those rows in
            ``plan.rows`` (to look up per-row facts a learner computed from the plan).
        valid: the target's validation rows (early stopping).
    """

    period: int
    transfer: bool
    target: CTRDataset
    source: CTRDataset
    source_positions: np.ndarray
    valid: CTRDataset


class Learner(ABC):
    """Trains one strategy's models period after period and predicts with the result."""

    model: nn.Module
    """The model :meth:`predict` runs (its forward is ``(cat, num) -> logits``)."""

    def __init__(self, context: LearnerContext) -> None:
        self.context = context

    @abstractmethod
    def fit_period(self, data: PeriodData) -> None:
        """Trains on one period's data, warm-starting from the previous period's models."""

    def predict(self, data: CTRDataset) -> np.ndarray:
        """``(N,)`` float64 click probabilities of :attr:`model` on ``data``."""
        train = self.context.train
        return predict(self.model, self._inputs(data), batch_size=train.eval_batch_size,
                       device=train.device, num_threads=train.num_threads)

    def _inputs(self, data: CTRDataset) -> CTRDataset:
        """``data`` as :attr:`model` reads it (learners that add features override this)."""
        return data


def _fit_if_any(trainer: Trainer, model: nn.Module, train: CTRDataset,
                valid: CTRDataset) -> None:
    """``trainer.fit(model, train, valid)`` unless ``train`` is empty (a period's window may
    hold no source row)."""
    if len(train):
        trainer.fit(model, train, valid)


class PlanLearner(Learner):
    """The base model trained on the plan: the learner of every baseline strategy.

    ``"joint"`` plans train on the period's target rows and source rows together;
    ``"pretrain"`` plans train on the source rows, then on the target rows.
    """

    def __init__(self, context: LearnerContext) -> None:
        super().__init__(context)
        self.model = context.base_model()
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        if self.context.plan.schedule == "pretrain":
            _fit_if_any(self.trainer, self.model, data.source, data.valid)
            self.trainer.fit(self.model, data.target, data.valid)
        else:
            self.trainer.fit(self.model, CTRDataset.concat([data.target, data.source]),
                             data.valid)


class CTNetLearner(Learner):
    """CTNet: a frozen, per-period refreshed source tower feeding the target tower.

    At each transfer period the source model (warm-started) trains on the window's source
    rows and is copied into CTNet's frozen source tower; CTNet (target tower + adapters,
    warm-started) then trains on the period's target rows only.

    Args:
        context: the run's context.
        adapter: ``"glu"`` (the paper) or ``"linear"`` (the ablation). Default ``"glu"``.
    """

    def __init__(self, context: LearnerContext, adapter: str = "glu") -> None:
        super().__init__(context)
        self.source_model = context.base_model()
        self.model = CTNet(self.source_model, context.base_model(), adapter)
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        if data.transfer and len(data.source):
            self.trainer.fit(self.source_model, data.source, data.valid)
            self.model.refresh_source(self.source_model)
        self.trainer.fit(self.model, data.target, data.valid)


class ECATLearner(Learner):
    """ECAT: graph + DA selected samples, and adaptive knowledge distillation.

    At each transfer period the source model (warm-started) trains on the entire space:
    the window's selected source rows and the period's target rows; its frozen copy then
    feeds the target model through gated adapters while the target model trains on the
    target's and the selected rows with :func:`~graphsel.transfer.models.ecat.ecat_loss`.
    """

    def __init__(self, context: LearnerContext) -> None:
        super().__init__(context)
        self.source_model = context.base_model()
        self.model = ECAT(self.source_model, context.base_model())
        self.source_trainer = context.trainer()
        self.trainer = context.trainer(ecat_loss())

    def fit_period(self, data: PeriodData) -> None:
        joint = CTRDataset.concat([data.target, data.source])
        if data.transfer:
            self.source_trainer.fit(self.source_model, joint, data.valid)
            self.model.refresh_source(self.source_model)
        self.trainer.fit(self.model, joint, data.valid)


def source_sub_domains(source: InteractionLog, num_groups: int, seed: int = 0,
                       dim: int = 16) -> np.ndarray:
    """``(N,)`` int64 sub-domain of every source row: a k-means cluster of its item.

    Items are clustered (faiss k-means, seeded) on their factors from a truncated SVD of the
    source's user x item graph (:func:`graphsel.graph.embed.svd_factors`), so a sub-domain is a
    community of items the same users interact with (a genre, a category) found without a
    category column. Clusters are numbered ``0, 1, ...`` by decreasing number of rows; fewer
    than ``num_groups`` come back when there are fewer distinct items, or items with equal
    factors leave a cluster empty.

    Raises:
        InputError: ``num_groups < 1`` or an empty log.
    """
    if num_groups < 1:
        raise InputError(f"num_groups must be >= 1, got {num_groups}")
    if len(source) == 0:
        raise InputError(f"{source.name}: no source row to split into sub-domains")
    items, row_item = np.unique(source.item, return_inverse=True)
    k = min(num_groups, len(items))
    if k == 1:
        return np.zeros(len(source), dtype=np.int64)
    _, item_factors = svd_factors(source, dim=dim, random_state=seed)
    vectors = np.ascontiguousarray(item_factors[items], dtype=np.float32)
    kmeans = faiss.Kmeans(vectors.shape[1], k, niter=20, seed=seed + 1, verbose=False,
                          min_points_per_centroid=1)
    kmeans.train(vectors)
    _, cluster = kmeans.index.search(vectors, 1)
    row_cluster = cluster[:, 0][row_item]
    order = np.argsort(-np.bincount(row_cluster, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[row_cluster]


class DIITLearner(Learner):
    """DIIT: several source models, gated, aligned and distilled into the target model.

    The plan's source rows are split into ``num_sources`` sub-domains
    (:func:`source_sub_domains`); at each transfer period every source model (warm-started)
    trains on its sub-domain's rows of the window and is copied into DIIT's frozen sources.
    DIIT then trains on the period's target rows with
    :func:`~graphsel.transfer.models.diit.diit_loss`; prediction runs the target model alone.

    Args:
        context: the run's context.
        num_sources: ``K``, source sub-domains. Default 3.
    """

    def __init__(self, context: LearnerContext, num_sources: int = 3) -> None:
        super().__init__(context)
        self.groups = source_sub_domains(context.source, num_sources, seed=context.seed)
        count = int(self.groups.max()) + 1
        self.source_models = [context.base_model() for _ in range(count)]
        self.diit = DIIT(self.source_models, context.base_model())
        self.model = self.diit.target
        self.source_trainer = context.trainer()
        self.trainer = context.trainer(diit_loss())

    def fit_period(self, data: PeriodData) -> None:
        if data.transfer:
            groups = self.groups[data.source_positions]
            for k, source_model in enumerate(self.source_models):
                rows = np.flatnonzero(groups == k)
                _fit_if_any(self.source_trainer, source_model, data.source.subset(rows),
                            data.valid)
            self.diit.refresh_sources(self.source_models)
        self.trainer.fit(self.diit, data.target, data.valid)


class ECDCTRLearner(Learner):
    """E-CDCTR: long-term embedding features, short-term pre-training, BN re-initialised.

    * At each transfer period a :class:`~graphsel.transfer.models.ecdctr.TinyPretrainModel`
      (warm-started, so its periods share one embedding space) trains on the window's source
      rows; its user and item embeddings of every period so far, averaged
      (:func:`~graphsel.transfer.models.ecdctr.aggregate_periods`), are ``2 D`` extra numeric
      features of every sample the target model sees.
    * At the first period a complete pre-training model (the target's architecture and
      features) trains on the window's source rows and initialises the target model
      (:func:`~graphsel.transfer.models.ecdctr.init_from`); the BatchNorm running statistics are
      then reset (:func:`~graphsel.transfer.models.ecdctr.reset_batchnorm`) and the target model
      is fine-tuned on the target rows. Later periods warm-start from the previous target
      model, as every learner does.
    """

    def __init__(self, context: LearnerContext) -> None:
        super().__init__(context)
        user_vocab, item_vocab = context.spec.vocab_sizes[:2]
        self.tiny = TinyPretrainModel(user_vocab, item_vocab, context.model.embed_dim,
                                      sparse=context.model.sparse_embedding)
        self.history: list[tuple[EntityEmbeddings, EntityEmbeddings]] = []
        self.users = self.items = EntityEmbeddings(np.zeros(0, dtype=np.int64),
                                                   np.zeros((0, context.model.embed_dim)))
        self.model = context.base_model(extra_numeric=2 * context.model.embed_dim)
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        if data.transfer and len(data.source):
            self.trainer.fit(self.tiny, data.source, data.valid)
            self._record_period()
        valid = self._inputs(data.valid)
        if data.period == 0 and len(data.source):
            complete = copy.deepcopy(self.model)
            self.trainer.fit(complete, self._inputs(data.source), valid)
            init_from(complete, self.model)
            reset_batchnorm(self.model)
        self.trainer.fit(self.model, self._inputs(data.target), valid)

    def _inputs(self, data: CTRDataset) -> CTRDataset:
        """``data`` with each row's aggregated user and item embeddings appended."""
        cat = data.cat.numpy()
        return add_embedding_features(data, cat[:, 0], cat[:, 1], self.users, self.items)

    def _record_period(self) -> None:
        """Appends the tiny model's embeddings to the history and re-aggregates them.

        Every period here uses one encoder, so the embeddings are keyed by local index (the
        OOV index 0 is no key: unknown users and items get zeros).
        """
        spec = self.context.spec
        period = [EntityEmbeddings(_local_index(spec, field, embeddings.ids),
                                   embeddings.vectors)
                  for field, embeddings in enumerate(self.tiny.user_item_embeddings(spec))]
        self.history.append((period[0], period[1]))
        self.users = aggregate_periods([users for users, _ in self.history])
        self.items = aggregate_periods([items for _, items in self.history])


def _local_index(spec: FeatureSpec, field: int, ids: np.ndarray) -> np.ndarray:
    """The local indices (``1 + position``) of known ``ids`` of categorical ``field``."""
    return np.searchsorted(spec.categorical[field].categories, ids) + 1


# --------------------------------------------------------------------------------------------
# The strategies of the seed papers
# --------------------------------------------------------------------------------------------

LearnerFactory = Callable[[LearnerContext], Learner]


def _register(name: str, build: Callable[[StrategyContext], SourcePlan],
              learner: LearnerFactory, needs_selection: bool = False) -> None:
    register_strategy(name, needs_selection=needs_selection, learner=learner)(build)


_register("ctnet", merge_all, CTNetLearner)
_register("ctnet_linear", merge_all, lambda context: CTNetLearner(context, adapter="linear"))
_register("ecat", selected, ECATLearner, needs_selection=True)
_register("diit", merge_all, DIITLearner)
_register("ecdctr", merge_all, ECDCTRLearner)
