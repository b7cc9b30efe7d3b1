"""DIIT: domain-invariant information transfer from several frozen source models.

DIIT (arXiv 2410.10835) keeps one trained model per source sub-domain (e.g. a genre group or
a category) and transfers what they share into the target model:

* domain level: a gating network reads the target's input representation and weighs the
  ``K`` source models per sample (softmax, weights sum to 1); their hidden states and logits
  are aggregated with these weights into one *teacher*;
* representation level: a discriminator tells the teacher's representation from the
  target's; a gradient reversal layer (:class:`GradReverse`) between the representations and
  the discriminator trains the discriminator to separate them and, in the same backward pass,
  the target model (and the gate) to make them indistinguishable;
* migrator: multi-spot distillation, the target's hidden states pulled towards the teacher's
  at several layers plus the logit (:func:`~graphsel.transfer.train.losses.distillation_terms`).

Warm start is the caller's: pass the previous period's target model as ``target_model`` and
the sources retrained on their latest data (or :meth:`DIIT.refresh_sources`). The paper's
warm-start module initialises the models of incremental training from their trained
versions; a small target domain has no trained target model, so the ``diit`` learner
(:class:`DIITLearner`) starts the target model from a model of the entire space (the base
model trained on the first period's target and source rows, as ``merge_all`` trains it:
:class:`~graphsel.transfer.protocol.learners.EntireSpaceStart`); ``diit_cold``
(:class:`ColdDIITLearner`) is the ablation that starts it from a fresh base model.

Inference uses the target model alone: :meth:`DIIT.forward` is ``self.target(cat, num)`` in
both modes and never calls a source model, the gate or the discriminator; only
:meth:`DIIT.forward_train` (called by :func:`diit_loss`) does. This is where the inference
time saving over CTNet (which runs the source tower at every prediction) comes from.

This module also holds the method's learners (:class:`DIITLearner`, :class:`ColdDIITLearner`,
with the source sub-domains they train one source model on each, :func:`source_sub_domains`)
and registers the strategies ``diit`` and ``diit_cold`` (declared in
:mod:`graphsel.transfer.protocol.strategies` with their
:class:`~graphsel.transfer.models.options.DIITOptions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.graph.embed import svd_factors
from graphsel.transfer.data import CTRBatch
from graphsel.transfer.models.base import (
    CTRModel,
    Head,
    MLPBlock,
    ModelConfig,
    ModelOutput,
    build_base_model,
    register_model,
)
from graphsel.transfer.models.options import DIITConfig, DIITLossConfig, DIITOptions
from graphsel.transfer.models.towers import FrozenTower
from graphsel.transfer.protocol.learners import (
    EntireSpaceStart,
    Learner,
    LearnerContext,
    PeriodData,
    fit_if_any,
)
from graphsel.transfer.protocol.strategies import merge_all, register_strategy
from graphsel.transfer.train.losses import (
    LossFn,
    TeacherStudentOutput,
    distillation_terms,
    weighted_bce,
    weighted_mean,
)

__all__ = [
    "GradReverse",
    "grad_reverse",
    "DIITConfig",  # the options live in graphsel.transfer.models.options (no torch)
    "DIITLossConfig",
    "DIITOptions",
    "DIITOutput",
    "DIIT",
    "diit_loss",
    "build_diit",
    "source_sub_domains",
    "DIITLearner",
    "ColdDIITLearner",
]


class GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-coefficient``.

    The layer of domain-adversarial training (Ganin & Lempitsky 2015): put between an
    encoder and a domain discriminator, one backward pass trains the discriminator to tell
    the domains apart and the encoder to confuse it.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:  # noqa: D102
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.coefficient * grad, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """``GradReverse.apply(x, coefficient)``: ``x`` forward, ``-coefficient * grad`` backward.

    >>> x = torch.ones(2, requires_grad=True)
    >>> (3 * grad_reverse(x, 0.5)).sum().backward()
    >>> x.grad.tolist()
    [-1.5, -1.5]
    """
    return GradReverse.apply(x, coefficient)


@dataclass(frozen=True)
class DIITOutput(TeacherStudentOutput):
    """One training forward pass of :class:`DIIT`.

    Attributes:
        student: the target model's logits ``(B,)`` and hidden states.
        teacher: the gated aggregate of the source models' logits and hidden states.
        gate: ``(B, K)`` per-sample source weights, each row summing to 1.
        domain_logits: ``(2B,)`` discriminator logits, the first ``B`` on the teacher's
            representations (domain label 0), the last ``B`` on the target's (label 1).
    """

    gate: torch.Tensor
    domain_logits: torch.Tensor

    @property
    def domain_labels(self) -> torch.Tensor:
        """``(2B,)``: 0 for the teacher half of :attr:`domain_logits`, 1 for the target's."""
        batch = self.gate.shape[0]
        labels = torch.zeros(2 * batch, dtype=self.domain_logits.dtype,
                             device=self.domain_logits.device)
        labels[batch:] = 1.0
        return labels


class DIIT(nn.Module):
    """Target model + frozen source models, a gate and a domain discriminator.

    Args:
        source_models: ``K >= 1`` trained source models, one per source sub-domain; copied
            and frozen. Their hidden states must have the target's widths.
        target_model: trained in place (``self.target``); the only model used at inference.
        config: default ``DIITConfig()``.

    Raises:
        InputError: no source model, hidden widths that differ from the target's, or an
            ``align_layer`` out of range.
    """

    def __init__(self, source_models: Sequence[CTRModel], target_model: CTRModel,
                 config: DIITConfig | None = None) -> None:
        super().__init__()
        self.config = config or DIITConfig()
        if len(source_models) == 0:
            raise InputError("DIIT needs at least one source model")
        widths = _hidden_widths(target_model)
        for k, source in enumerate(source_models):
            if _hidden_widths(source) != widths:
                raise InputError(f"source model {k} has hidden widths {_hidden_widths(source)}, "
                                 f"the target {widths}: gating needs equal widths")
        self.sources = nn.ModuleList(FrozenTower(source) for source in source_models)
        self.target = target_model
        self.gate = nn.Linear(widths[0], len(source_models))
        if not -len(widths) <= self.config.align_layer < len(widths):
            raise InputError(f"align_layer {self.config.align_layer} is out of range for "
                             f"{len(widths)} hidden states")
        align_width = widths[self.config.align_layer]
        discriminator_mlp = MLPBlock(align_width, self.config.discriminator_hidden)
        self.discriminator = nn.Sequential(discriminator_mlp, Head(discriminator_mlp.out_dim))

    @property
    def towers(self) -> list[FrozenTower]:
        """The frozen source models, in order (:attr:`sources`, typed for the checker)."""
        return [cast(FrozenTower, tower) for tower in self.sources]

    @property
    def num_sources(self) -> int:
        """``K``."""
        return len(self.sources)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` logits of the target model alone
        (in train and eval mode; no source model, gate or discriminator is run)."""
        return self.target(cat, num)

    def forward_train(self, cat: torch.Tensor, num: torch.Tensor) -> DIITOutput:
        """Everything :func:`diit_loss` needs (see :class:`DIITOutput`)."""
        student = self.target.forward_hidden(cat, num)
        # The gate is an extractor of the teacher: it reads the target's input
        # representation but must not move the target's embeddings through its own losses.
        gate = torch.softmax(self.gate(student.hidden[0].detach()), dim=1)
        outputs = [source.forward_hidden(cat, num) for source in self.towers]
        teacher_hidden = tuple(
            torch.einsum("bk,kbh->bh", gate, torch.stack([out.hidden[layer] for out in outputs]))
            for layer in range(len(student.hidden)))
        teacher_logits = (gate * torch.stack([out.logits for out in outputs], dim=1)).sum(dim=1)
        align = self.config.align_layer
        representations = torch.cat([teacher_hidden[align], student.hidden[align]])
        domain_logits = self.discriminator(grad_reverse(representations, self.config.reversal))
        return DIITOutput(student, ModelOutput(teacher_logits, teacher_hidden), gate,
                          domain_logits)

    def refresh_sources(self, new_source_models: Sequence[CTRModel]) -> None:
        """Copies the retrained source models' weights into the frozen copies, in order.

        Raises:
            InputError: if the number of models differs from :attr:`num_sources`.
        """
        if len(new_source_models) != self.num_sources:
            raise InputError(f"got {len(new_source_models)} source models, DIIT holds "
                             f"{self.num_sources}")
        for tower, model in zip(self.towers, new_source_models):
            tower.load_from(model)


def _hidden_widths(model: CTRModel) -> list[int]:
    """Widths of :attr:`ModelOutput.hidden`: the MLP input, then every layer's output."""
    return [model.mlp.in_dim, *(width_out for _, width_out in model.mlp.widths)]


def diit_loss(config: DIITLossConfig | None = None) -> LossFn:
    """``loss_fn(model, batch)`` for :class:`~graphsel.transfer.train.trainer.Trainer`::

        weighted_bce(target) + distill_weight * weighted_mean(distill)
            + gate_weight * weighted_bce(teacher) + adversarial_weight * domain_bce

    ``distill`` is :func:`~graphsel.transfer.train.losses.distillation_terms` towards the gated
    teacher (detached, so distillation never moves the gate); the sample weights weigh
    every term but the domain BCE.

    Args:
        config: default ``DIITLossConfig()``.
    """
    config = config or DIITLossConfig()

    def loss_fn(model: nn.Module, batch: CTRBatch) -> torch.Tensor:
        if not isinstance(model, DIIT):
            raise TypeError(f"diit_loss trains a DIIT, got {type(model).__name__}")
        output = model.forward_train(batch.cat, batch.num)
        loss = weighted_bce(output.student.logits, batch.label, batch.weight)
        distill = distillation_terms(output.student, output.teacher, config.layers,
                                     logit_weight=config.logit_weight)
        loss = loss + config.distill_weight * weighted_mean(distill, batch.weight)
        loss = loss + config.gate_weight * weighted_bce(output.teacher.logits, batch.label,
                                                        batch.weight)
        domain = F.binary_cross_entropy_with_logits(output.domain_logits, output.domain_labels)
        return loss + config.adversarial_weight * domain

    return loss_fn


@register_model("diit")
def build_diit(vocab_sizes: Sequence[int], num_numeric: int = 0,
               config: ModelConfig | None = None, options: DIITOptions | None = None) -> DIIT:
    """A DIIT whose ``options.num_sources`` sources and target are fresh base models of
    ``config``.

    Load trained weights with :meth:`DIIT.refresh_sources` and
    ``diit.target.load_state_dict(...)`` (warm start); train with
    ``Trainer(loss_fn=diit_loss(options.loss))``.

    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included.
        num_numeric: ``M``. Default 0.
        config: default ``ModelConfig()``.
        options: ``num_sources`` (``K``) and the extractors (``model``). Default
            ``DIITOptions()``.
    """
    options = options or DIITOptions()
    return DIIT([build_base_model(vocab_sizes, num_numeric, config)
                 for _ in range(options.num_sources)],
                build_base_model(vocab_sizes, num_numeric, config), options.model)


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


class ColdDIITLearner(Learner):
    """DIIT with a cold target model (the ablation ``diit_cold``): several source models,
    gated, aligned and distilled into the target model.

    The plan's source rows are split into ``options.num_sources`` sub-domains
    (:func:`source_sub_domains`); at each transfer period every source model (warm-started)
    trains on its sub-domain's rows of the window and is copied into DIIT's frozen sources.
    DIIT then trains on the period's target rows with :func:`diit_loss` (its target model
    warm-started from the previous period; from a fresh base model at the first); prediction
    runs the target model alone.

    Args:
        context: the run's context.
        options: sub-domains, extractors and loss weights. Default ``DIITOptions()``.
    """

    def __init__(self, context: LearnerContext, options: DIITOptions | None = None) -> None:
        super().__init__(context)
        options = options or DIITOptions()
        self.groups = source_sub_domains(context.source, options.num_sources, seed=context.seed)
        count = int(self.groups.max()) + 1
        self.source_models = [context.base_model() for _ in range(count)]
        self.diit = DIIT(self.source_models, context.base_model(), options.model)
        self.model = self.diit.target
        self.source_trainer = context.trainer()
        self.trainer = context.trainer(diit_loss(options.loss))

    def fit_period(self, data: PeriodData) -> None:
        self.refresh_sources(data)
        self.trainer.fit(self.diit, data.target, data.valid)

    def refresh_sources(self, data: PeriodData) -> None:
        """At a transfer period: trains every source model on its sub-domain's rows of the
        window and copies them into DIIT's frozen sources."""
        if data.transfer:
            groups = self.groups[data.source_positions]
            for k, source_model in enumerate(self.source_models):
                rows = np.flatnonzero(groups == k)
                fit_if_any(self.source_trainer, source_model, data.source.subset(rows),
                           data.valid)
            self.diit.refresh_sources(self.source_models)


class DIITLearner(ColdDIITLearner):
    """DIIT with a warm-started target model (``diit``).

    As :class:`ColdDIITLearner`, but before the first period's DIIT fit the target model is
    loaded with a model of the entire space
    (:class:`~graphsel.transfer.protocol.learners.EntireSpaceStart`), and every DIIT fit keeps
    its starting weights when no epoch beats them on validation (``keep_start``). That model
    mixes domains, so the domain feature is tuned like ``merge_all``'s.

    Args:
        context: the run's context.
        options: sub-domains, extractors and loss weights. Default ``DIITOptions()``.
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext, options: DIITOptions | None = None) -> None:
        super().__init__(context, options)
        self.entire_space = EntireSpaceStart(context)

    def fit_period(self, data: PeriodData) -> None:
        self.refresh_sources(data)
        self.entire_space.start(self.diit.target, data)
        self.trainer.fit(self.diit, data.target, data.valid, keep_start=True)


register_strategy("diit", learner=DIITLearner)(merge_all)
register_strategy("diit_cold", learner=ColdDIITLearner)(merge_all)
