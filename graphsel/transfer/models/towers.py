"""The parts the transfer models share: a frozen source tower and the adapters out of it.

CTNet, ECAT and DIIT all keep trained source models frozen (:class:`FrozenTower`); CTNet and
ECAT feed the source's hidden states into the target's MLP layers through one adapter per
layer (:func:`layer_adapters`), a GLU (:class:`GLUAdapter`, CTNet eq. 5) or a linear map
(:class:`LinearAdapter`, the ablation), initialised near zero so that a fresh transfer model
computes what its target model alone computes. :func:`warm_start` starts a model from another
one's weights (the warm-started ``ctnet``, ``diit`` and ``ecat`` start their target model from a
model of the entire space).

>>> adapter = GLUAdapter(3, 2, init_std=0.0)
>>> adapter(torch.ones(4, 3)).abs().sum().item()
0.0
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from graphsel.errors import InputError, check_choice
from graphsel.transfer.models.base import CTRModel, ModelOutput
from graphsel.transfer.models.options import ADAPTER_INIT_STD, ADAPTER_KINDS

__all__ = [
    "ADAPTERS",
    "GLUAdapter",
    "LinearAdapter",
    "make_adapter",
    "FrozenTower",
    "layer_adapters",
    "warm_start",
]


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


ADAPTERS: dict[str, type[nn.Module]] = dict(zip(ADAPTER_KINDS, (GLUAdapter, LinearAdapter)))
"""Adapter classes by kind (the kinds are :data:`~graphsel.transfer.models.options.ADAPTER_KINDS`,
so that a config names them without torch)."""


def make_adapter(kind: str, dim_in: int, dim_out: int,
                 init_std: float = ADAPTER_INIT_STD) -> nn.Module:
    """An adapter of kind ``kind`` (a key of :data:`ADAPTERS`).

    Raises:
        InputError: ``Could not resolve adapter 'x' among ['glu', 'linear']``.
    """
    return ADAPTERS[check_choice("adapter", kind, ADAPTER_KINDS)](dim_in, dim_out, init_std)


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
        warm_start(self.model, model)

    @property
    def layer_widths(self) -> list[tuple[int, int]]:
        """``(in, out)`` width of every MLP layer."""
        return _layer_widths(self.model)


def warm_start(model: nn.Module, start: nn.Module) -> None:
    """Copies ``start``'s parameters and buffers into ``model`` (strictly: same architecture).

    ``model`` then computes what ``start`` computes, keeps its own storage (training either
    one later never moves the other) and its own ``requires_grad`` flags.

    >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    >>> warm_start(a, b)
    >>> torch.equal(a.weight, b.weight), a.weight.data_ptr() != b.weight.data_ptr()
    (True, True)
    """
    with torch.no_grad():
        model.load_state_dict(start.state_dict())


def _layer_widths(model: CTRModel) -> list[tuple[int, int]]:
    return model.mlp.widths


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
