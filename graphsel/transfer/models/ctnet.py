"""CTNet: a frozen source tower feeding a target tower through light-weighted adapters.

Continual Transfer Network (Liu et al., arXiv 2208.05728). Two towers with the base model's
architecture: the *source tower* holds the latest source-domain model, frozen (no gradient,
eval mode, so its BatchNorm statistics never move), and is refreshed from the retrained
source model at every period (:meth:`CTNet.refresh_source`); the *target tower* starts from
the previous target model and is trained. At every MLP layer ``l`` an adapter ``g_l`` maps the
source tower's input to that layer into the target tower's pre-activation by addition
(eq. 4 of the paper)::

    z_l = relu(W_l z_{l-1} + g_l(z^s_{l-1})),    z_0 = target input, z^s_0 = source input

The adapter is a GLU, ``g(z) = U1 z * sigmoid(U2 z)`` (eq. 5), initialised near zero, so the
freshly built CTNet computes what the target model alone computes: the well-trained target
model is not knocked out of its optimum on the first step. :class:`LinearAdapter` is the
ablation. The towers and adapters are shared parts (:mod:`graphsel.transfer.models.towers`).

The paper's target tower starts from the production target model, "continually well-trained
for a very long time", and never from scratch: that reuse is what it credits for CTNet's
success online. A small target domain has no such model, so ``ctnet`` (:class:`CTNetLearner`)
starts the target tower from a model of the entire space (the base model trained on the first
period's target and source rows, as ``merge_all`` trains it:
:class:`~graphsel.transfer.protocol.learners.EntireSpaceStart`); ``ctnet_cold``
(:class:`ColdCTNetLearner`) is the ablation that starts it from a fresh base model, as graphsel
did before.

This module also holds the method's learners and registers the strategies ``ctnet``,
``ctnet_linear`` (warm-started, linear adapters), ``ctnet_cold`` and ``budget_ctnet``
(``ctnet`` on ``budget_finetune``'s rows, a member of ``budget_ensemble``; declared in
:mod:`graphsel.transfer.protocol.strategies`, with their
:class:`~graphsel.transfer.models.options.AdapterOptions`).

>>> _ = torch.manual_seed(0)
>>> source, target = (build_base_model([3, 4], 1, ModelConfig(4, (8, 4))) for _ in range(2))
>>> ctnet = CTNet(source, target, adapter_init_std=0.0)
>>> cat, num = torch.tensor([[1, 2], [0, 3]]), torch.zeros(2, 1)
>>> torch.equal(ctnet(cat, num), target(cat, num))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from graphsel.transfer.models.base import (
    CTRModel,
    ModelConfig,
    ModelOutput,
    build_base_model,
    register_model,
)
from graphsel.transfer.models.finetune import budget_finetune
from graphsel.transfer.models.options import ADAPTER_INIT_STD, AdapterOptions
from graphsel.transfer.models.towers import (
    FrozenTower,
    GLUAdapter,
    LinearAdapter,
    layer_adapters,
)
from graphsel.transfer.protocol.learners import (
    EntireSpaceStart,
    Learner,
    LearnerContext,
    PeriodData,
)
from graphsel.transfer.protocol.strategies import merge_all, register_strategy

__all__ = [
    "CTNet",
    "build_ctnet",
    "CTNetLearner",
    "ColdCTNetLearner",
    "GLUAdapter",  # the parts live in graphsel.transfer.models.towers
    "LinearAdapter",
]


class CTNet(nn.Module):
    """Frozen source tower + trainable target tower joined by per-layer adapters.

    Args:
        source_tower: the latest trained source model; copied and frozen (see
            :class:`FrozenTower`).
        target_tower: the target model to continue from; trained in place (it becomes
            ``self.target``). Its MLP must have as many layers as the source's.
        adapter: ``"glu"`` (:class:`GLUAdapter`) or ``"linear"`` (:class:`LinearAdapter`).
            Default ``"glu"``.
        adapter_init_std: std of the adapters' initial weights. Default
            :data:`ADAPTER_INIT_STD`.

    Raises:
        InputError: unknown ``adapter``, or towers with different numbers of MLP layers.
    """

    def __init__(self, source_tower: CTRModel, target_tower: CTRModel,
                 adapter: str = AdapterOptions.adapter,
                 adapter_init_std: float = ADAPTER_INIT_STD) -> None:
        super().__init__()
        self.source = FrozenTower(source_tower)
        self.target = target_tower
        self.adapters = layer_adapters(source_tower, target_tower, adapter, adapter_init_std)
        self.adapter_kind = adapter

    def adapter_terms(self, cat: torch.Tensor, num: torch.Tensor) -> list[torch.Tensor]:
        """``g_l(z^s_{l-1})`` for every layer ``l``: ``L`` tensors ``(B, hidden[l])``."""
        source_hidden = self.source.forward_hidden(cat, num).hidden
        return [adapter(z) for adapter, z in zip(self.adapters, source_hidden[:-1])]

    def forward_hidden(self, cat: torch.Tensor, num: torch.Tensor) -> ModelOutput:
        """The target tower's logits and hidden states, adapter terms added."""
        x = self.target.mlp_input(cat, num)
        hidden = self.target.mlp.forward_hidden(x, self.adapter_terms(cat, num))
        return ModelOutput(self.target.logits(cat, hidden[-1] if hidden else x), (x, *hidden))

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` logits."""
        return self.forward_hidden(cat, num).logits

    def refresh_source(self, new_source_model: CTRModel) -> None:
        """Copies the retrained source model's weights into the frozen source tower
        (continual transfer: call once per period, before training on its target data)."""
        self.source.load_from(new_source_model)


@register_model("ctnet")
def build_ctnet(vocab_sizes: Sequence[int], num_numeric: int = 0,
                config: ModelConfig | None = None, adapter: str = AdapterOptions.adapter) -> CTNet:
    """A CTNet whose two towers are fresh base models of ``config``.

    Load trained weights with :meth:`CTNet.refresh_source` (source) and
    ``ctnet.target.load_state_dict(previous_target.state_dict())`` (target).

    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included.
        num_numeric: ``M``. Default 0.
        config: default ``ModelConfig()``.
        adapter: ``"glu"`` or ``"linear"``. Default ``"glu"``.
    """
    return CTNet(build_base_model(vocab_sizes, num_numeric, config),
                 build_base_model(vocab_sizes, num_numeric, config), adapter)


class ColdCTNetLearner(Learner):
    """CTNet with a cold target tower (the ablation ``ctnet_cold``).

    At each transfer period the source model (warm-started) trains on the window's source
    rows and is copied into CTNet's frozen source tower; CTNet (target tower + adapters,
    warm-started from the previous period; from a fresh base model at the first) then trains
    on the period's target rows only.

    Args:
        context: the run's context.
        options: the adapters. Default ``AdapterOptions()`` (GLU).
    """

    def __init__(self, context: LearnerContext, options: AdapterOptions | None = None) -> None:
        super().__init__(context)
        options = options or AdapterOptions()
        self.source_model = context.base_model()
        self.ctnet = CTNet(self.source_model, context.base_model(), options.adapter,
                           options.adapter_init_std)
        self.model = self.ctnet
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        self.refresh_source(data)
        self.trainer.fit(self.ctnet, data.target, data.valid)

    def refresh_source(self, data: PeriodData) -> None:
        """At a transfer period with source rows: trains the source model on them and copies
        it into the frozen source tower."""
        if data.transfer and len(data.source):
            self.trainer.fit(self.source_model, data.source, data.valid)
            self.ctnet.refresh_source(self.source_model)


class CTNetLearner(ColdCTNetLearner):
    """CTNet as the paper runs it: the target tower starts from a trained model.

    As :class:`ColdCTNetLearner`, but before the first period's CTNet fit the target tower is
    loaded with a model of the entire space (the base model trained on that period's target
    and source rows: :class:`~graphsel.transfer.protocol.learners.EntireSpaceStart`). Every
    CTNet fit keeps its starting weights when no epoch beats them on validation
    (``keep_start``): the paper's point is not to knock the well-trained target model out of
    its optimum. That model mixes domains, so the domain feature is tuned like
    ``merge_all``'s (:attr:`mixes_domains`).

    Args:
        context: the run's context.
        options: the adapters. Default ``AdapterOptions()`` (GLU).
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext, options: AdapterOptions | None = None) -> None:
        super().__init__(context, options)
        self.entire_space = EntireSpaceStart(context)

    def fit_period(self, data: PeriodData) -> None:
        self.refresh_source(data)
        self.entire_space.start(self.ctnet.target, data)
        self.trainer.fit(self.ctnet, data.target, data.valid, keep_start=True)


# The strategies' default options (GLU for ctnet and ctnet_cold, linear for ctnet_linear) are
# declared with their names in graphsel.transfer.protocol.strategies.
register_strategy("ctnet", learner=CTNetLearner)(merge_all)
register_strategy("ctnet_linear", learner=CTNetLearner)(merge_all)
register_strategy("ctnet_cold", learner=ColdCTNetLearner)(merge_all)
# ctnet on budget_finetune's rows (a member of budget_ensemble): the source tower and the
# entire-space start see the target's rows and 20 % of the source rows
register_strategy("budget_ctnet", needs_selection=True, learner=CTNetLearner)(budget_finetune)

