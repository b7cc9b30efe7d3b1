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
ablation.

:class:`FrozenTower` (a frozen copy of a trained model) is shared with ECAT and DIIT.

>>> _ = torch.manual_seed(0)
>>> source, target = (build_base_model([3, 4], 1, ModelConfig(4, (8, 4))) for _ in range(2))
>>> ctnet = CTNet(source, target, adapter_init_std=0.0)
>>> cat, num = torch.tensor([[1, 2], [0, 3]]), torch.zeros(2, 1)
>>> torch.equal(ctnet(cat, num), target(cat, num))
True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from graphsel.errors import InputError, choice_error
from graphsel.transfer.models.base import (
    CTRModel,
    ModelConfig,
    ModelOutput,
    build_base_model,
    register_model,
)

__all__ = [
    "ADAPTERS",
    "ADAPTER_INIT_STD",
    "GLUAdapter",
    "LinearAdapter",
    "make_adapter",
    "FrozenTower",
    "layer_adapters",
    "CTNet",
    "build_ctnet",
]

ADAPTER_INIT_STD = 1e-3
"""Std of the normal initialisation of adapter weights: small enough that the adapters' first
outputs are negligible next to the target tower's pre-activations (hidden values of order
0.1 to 1 give adapter outputs of order 1e-3 * sqrt(width) * 0.1)."""


class GLUAdapter(nn.Module):
    """Gated adapter ``g(z) = U1 z * sigmoid(U2 z)`` (CTNet eq. 5), no biases.

    The gate ``sigmoid(U2 z)`` selects, per unit and per sample, how much of the source
    representation passes; with ``U1`` near zero the whole output is near zero.

    Args:
        dim_in: width of the source hidden state ``z``.
        dim_out: width of the target layer the output is added to.
        init_std: std of the normal initialisation of ``U1`` and ``U2``. Default
            :data:`ADAPTER_INIT_STD`; 0 gives an adapter whose output is exactly zero.
    """

    def __init__(self, dim_in: int, dim_out: int, init_std: float = ADAPTER_INIT_STD) -> None:
        super().__init__()
        self.value = nn.Linear(dim_in, dim_out, bias=False)  # U1
        self.gate = nn.Linear(dim_in, dim_out, bias=False)  # U2
        for linear in (self.value, self.gate):
            nn.init.normal_(linear.weight, std=init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, dim_in)`` -> ``(B, dim_out)``."""
        return self.value(z) * torch.sigmoid(self.gate(z))


class LinearAdapter(nn.Module):
    """Ablation of :class:`GLUAdapter`: ``g(z) = U z``, no bias, no gate.

    Args:
        dim_in: width of the source hidden state ``z``.
        dim_out: width of the target layer the output is added to.
        init_std: std of the normal initialisation of ``U``. Default :data:`ADAPTER_INIT_STD`.
    """

    def __init__(self, dim_in: int, dim_out: int, init_std: float = ADAPTER_INIT_STD) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out, bias=False)
        nn.init.normal_(self.linear.weight, std=init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, dim_in)`` -> ``(B, dim_out)``."""
        return self.linear(z)


ADAPTERS: dict[str, type[nn.Module]] = {"glu": GLUAdapter, "linear": LinearAdapter}
"""Adapter kinds by name."""


def make_adapter(kind: str, dim_in: int, dim_out: int,
                 init_std: float = ADAPTER_INIT_STD) -> nn.Module:
    """An adapter of kind ``kind`` (a key of :data:`ADAPTERS`).

    Raises:
        InputError: ``Could not resolve adapter 'x' among ['glu', 'linear']``.
    """
    if kind not in ADAPTERS:
        raise choice_error("adapter", kind, list(ADAPTERS))
    return ADAPTERS[kind](dim_in, dim_out, init_std)


class FrozenTower(nn.Module):
    """A frozen copy of a trained :class:`~graphsel.transfer.models.base.CTRModel`.

    The copy is taken so that freezing it never changes the caller's model (the source model
    keeps training between periods). Its parameters have ``requires_grad=False`` (so
    :class:`~graphsel.transfer.train.trainer.Trainer` never optimises them), it runs under
    ``torch.no_grad`` and it stays in eval mode whatever ``train()`` is called on its parent:
    train-mode BatchNorm would otherwise update its running statistics and dropout would
    make its outputs noisy.

    Args:
        model: the trained model; copied, never modified.
    """

    def __init__(self, model: CTRModel) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.model.eval()

    def train(self, mode: bool = True) -> FrozenTower:
        # Ignores ``mode``: a frozen tower is always evaluated with its running statistics.
        return super().train(False)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits, without gradient."""
        with torch.no_grad():
            return self.model(cat, num)

    def forward_hidden(self, cat: torch.Tensor, num: torch.Tensor) -> ModelOutput:
        """Logits and every hidden state (see :class:`ModelOutput`), without gradient."""
        with torch.no_grad():
            return self.model.forward_hidden(cat, num)

    def load_from(self, model: CTRModel) -> None:
        """Copies ``model``'s parameters and buffers into the tower (strictly: same
        architecture); the tower stays frozen and shares no storage with ``model``."""
        with torch.no_grad():
            self.model.load_state_dict(model.state_dict())

    @property
    def layer_widths(self) -> list[tuple[int, int]]:
        """``(in, out)`` width of every MLP layer."""
        return _layer_widths(self.model)


def _layer_widths(model: CTRModel) -> list[tuple[int, int]]:
    return [(layer.linear.in_features, layer.linear.out_features) for layer in model.mlp.layers]


def layer_adapters(source: CTRModel, target: CTRModel, kind: str,
                   init_std: float = ADAPTER_INIT_STD) -> nn.ModuleList:
    """One adapter per MLP layer: source layer ``l``'s input width -> target layer ``l``'s
    output width (CTNet eq. 4; ECAT uses the same wiring).

    Raises:
        InputError: if the two MLPs have different numbers of layers.
    """
    source_widths, target_widths = _layer_widths(source), _layer_widths(target)
    if len(source_widths) != len(target_widths):
        raise InputError(f"the source tower has {len(source_widths)} MLP layers, the target "
                         f"tower {len(target_widths)}: adapters need one source layer per "
                         f"target layer")
    return nn.ModuleList(make_adapter(kind, s_in, t_out, init_std)
                         for (s_in, _), (_, t_out) in zip(source_widths, target_widths))


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

    def __init__(self, source_tower: CTRModel, target_tower: CTRModel, adapter: str = "glu",
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
        return ModelOutput(self.target.head(hidden[-1] if hidden else x), (x, *hidden))

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` logits."""
        return self.forward_hidden(cat, num).logits

    def refresh_source(self, new_source_model: CTRModel) -> None:
        """Copies the retrained source model's weights into the frozen source tower
        (continual transfer: call once per period, before training on its target data)."""
        self.source.load_from(new_source_model)


@register_model("ctnet")
def build_ctnet(vocab_sizes: Sequence[int], num_numeric: int = 0,
                config: ModelConfig | None = None, adapter: str = "glu") -> CTNet:
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
