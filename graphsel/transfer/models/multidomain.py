"""Multi-domain CTR models: Shared-Bottom, MMoE, PLE, STAR and PEPNet, from the base parts.

What a practitioner trains before sample transfer: one model on every domain's rows that
knows each row's domain. Each model reads the domain from a categorical field of the batch,
``cat[:, domain_field]`` (local indices: ``1..num_domains`` the known domains, ``0`` the
out-of-vocabulary bucket), so the trainer, :func:`~graphsel.transfer.train.trainer.predict`
and any loss see the usual ``forward(cat (B, F), num (B, M)) -> logits (B,)``. Every model
keeps ``num_domains + 1`` domain slots; slot 0 serves rows of an unknown domain and trains
only on such rows (STAR's slot 0 starts as, and without such rows stays, the shared network).

The domain field is embedded with the others and stays in the shared input
(:class:`DomainInput`); what differs is the domain-specific part:

============================  ===============================================================
``shared_bottom``             shared MLP (``config.hidden``), one tower + head per domain
``mmoe``                      shared expert MLPs, a softmax gate and a tower per domain
``ple``                       CGC levels (shared + per-domain experts, per-domain gates; a
                              shared gate over all experts below the last level), towers
``star``                      partitioned normalisation, star-topology layers
                              (``W_shared * W_p``, ``b_shared + b_p``), plus an auxiliary
                              network's logit on the domain embedding
``pepnet``                    gate neural units on the embeddings (EPNet) and on every MLP
                              layer's input (PPNet), conditioned on the domain embedding
============================  ===============================================================

With ``ModelConfig(fm=True)`` every model adds DeepFM's FM term on the shared embeddings
(:class:`~graphsel.transfer.models.base.FMTerm`) to its network's logit.

A domain-specific part runs only on its domain's rows (:func:`route`), so a row's output
depends on no other domain's specific parameters and they get no gradient from it. The
builders are registered in :data:`~graphsel.transfer.models.base.MODELS` under the names
above; their options are in :mod:`~graphsel.transfer.models.multidomain_options`.

>>> model = build_star([3, 4], num_numeric=1, config=ModelConfig(4, (8,)), domain_field=1,
...                    num_domains=3)
>>> cat, num = torch.tensor([[1, 2], [0, 3]]), torch.zeros(2, 1)
>>> model(cat, num).shape, model.domain_of(cat).tolist()
(torch.Size([2]), [2, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.features import DOMAIN_FIELD
from graphsel.transfer.models.base import (
    EmbeddingBlock,
    FMTerm,
    Head,
    MLPBlock,
    MLPLayer,
    fm_term,
    get_model,
    register_model,
)
from graphsel.transfer.models.multidomain_options import (
    MULTI_DOMAIN_MODELS,
    MMoEOptions,
    PEPNetOptions,
    PLEOptions,
    STAROptions,
    TowerOptions,
)
from graphsel.transfer.models.finetune import FinetuneLearner, budget_finetune
from graphsel.transfer.models.options import FinetuneOptions, ModelConfig
from graphsel.transfer.protocol.learners import LearnerContext, PlanLearner
from graphsel.transfer.protocol.strategies import merge_all, register_strategy

__all__ = [
    "MultiDomainLearner",
    "StarFinetuneLearner",
    "multi_domain_model",
    "route",
    "DomainInput",
    "SharedBottom",
    "MMoE",
    "CGCLevel",
    "PLE",
    "StarLinear",
    "PartitionedNorm",
    "STAR",
    "GateNU",
    "PEPNet",
    "build_shared_bottom",
    "build_mmoe",
    "build_ple",
    "build_star",
    "build_pepnet",
]


def route(domain: torch.Tensor, num_slots: int,
          fn: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn(slot, rows)`` for each domain slot present, its outputs put back in row order.

    Args:
        domain: ``(B,)`` slot of each row, in ``[0, num_slots)``.
        num_slots: number of slots.
        fn: maps ``(slot, rows)``, ``rows`` the ``(b,)`` int64 indices of the slot's rows, to
            their ``(b, ...)`` outputs, the same trailing shape for every slot.

    Returns:
        ``(B, ...)``: row ``i`` holds the output of ``fn(domain[i], ...)`` for it. A slot's
        ``fn`` never sees another slot's rows, so its parameters get no gradient from them.

    >>> x = torch.tensor([1., 2., 3.])
    >>> route(torch.tensor([1, 0, 1]), 2, lambda slot, rows: x[rows] * 10 ** slot).tolist()
    [10.0, 2.0, 30.0]
    """
    out: torch.Tensor | None = None
    for slot in range(num_slots):
        rows = torch.nonzero(domain == slot).squeeze(1)
        if rows.numel() == 0:
            continue
        y = fn(slot, rows)
        out = y.new_zeros((domain.shape[0], *y.shape[1:])) if out is None else out
        out = out.index_copy(0, rows, y)
    return fn(0, domain.new_zeros(0)) if out is None else out  # out is None: an empty batch


class DomainInput(nn.Module):
    """The shared input of every multi-domain model and the domain slot of each row.

    Args:
        embedding: the ``F`` fields' embeddings, domain field included.
        num_numeric: ``M``.
        domain_field: index into ``cat``'s columns of the domain field.
        num_domains: ``K``, known domains (local indices ``1..K``; ``0`` is OOV).
        fm: added to every model's logits (:meth:`with_fm`), on ``embedding``'s output.
            Default None: none.

    Raises:
        InputError: ``domain_field`` outside ``[0, F)``, ``num_domains < 1``, or a domain
            field vocabulary larger than ``num_domains + 1``.
    """

    def __init__(self, embedding: EmbeddingBlock, num_numeric: int, domain_field: int,
                 num_domains: int, fm: FMTerm | None = None) -> None:
        super().__init__()
        fields = embedding.num_fields
        if not 0 <= domain_field < fields:
            raise InputError(f"domain_field must be in [0, {fields}), got {domain_field}")
        if num_domains < 1:
            raise InputError(f"num_domains must be >= 1, got {num_domains}")
        vocab = embedding.vocab_sizes[domain_field]
        if vocab > num_domains + 1:
            raise InputError(f"the domain field (column {domain_field}) has {vocab - 1} "
                             f"values, more than num_domains={num_domains}")
        self.embedding = embedding
        self.num_numeric = num_numeric
        self.domain_field = domain_field
        self.num_slots = num_domains + 1
        self.fm = fm

    @property
    def out_dim(self) -> int:
        """``F * D + M``."""
        return self.embedding.num_fields * self.embedding.embed_dim + self.num_numeric

    def domain_of(self, cat: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` -> ``(B,)`` domain slot of each row.

        Raises:
            InputError: a domain index outside ``[0, num_domains]``.
        """
        domain = cat[:, self.domain_field]
        if domain.numel() and not 0 <= int(domain.min()) <= int(domain.max()) < self.num_slots:
            raise InputError(f"domain field (column {self.domain_field}) holds indices outside "
                             f"[0, {self.num_slots - 1}]: num_domains={self.num_slots - 1}")
        return domain

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B, F*D + M)``, as :meth:`CTRModel.mlp_input`."""
        return _join(self.embedding(cat), num)

    def with_fm(self, cat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``(B,)`` ``logits`` plus the FM term of ``cat``, if there is one."""
        return logits if self.fm is None else logits + self.fm(cat, self.embedding(cat))


def _join(embedded: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
    """``(B, F, D)`` embeddings and ``(B, M)`` numerics -> ``(B, F*D + M)``."""
    flat = embedded.flatten(1)
    return torch.cat([flat, num], dim=1) if num.shape[1] else flat


class _MultiDomain(nn.Module):
    """What every model here shares: its :class:`DomainInput` (input, domain slots and FM
    term). A model defines :meth:`network`, its logits without the FM term."""

    def __init__(self, inputs: DomainInput) -> None:
        super().__init__()
        self.inputs = inputs

    @property
    def num_slots(self) -> int:
        return self.inputs.num_slots

    def domain_of(self, cat: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` -> ``(B,)`` domain slot of each row."""
        return self.inputs.domain_of(cat)

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits of the model's own network."""
        raise NotImplementedError

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits: :meth:`network`'s, plus the FM term."""
        return self.inputs.with_fm(cat, self.network(cat, num))


def _towers(num_slots: int, in_dim: int, hidden: Sequence[int], config: ModelConfig
            ) -> nn.ModuleList:
    """One ``MLPBlock(hidden)`` + :class:`Head` per domain slot."""
    towers = []
    for _ in range(num_slots):
        mlp = MLPBlock(in_dim, hidden, batch_norm=config.batch_norm, dropout=config.dropout)
        towers.append(nn.Sequential(mlp, Head(mlp.out_dim)))
    return nn.ModuleList(towers)


class SharedBottom(_MultiDomain):
    """A shared bottom MLP, then each row's domain tower.

    Args:
        inputs: the shared input.
        bottom: ``(B, F*D + M)`` -> ``(B, H)``.
        towers: one module per slot, ``(b, H)`` -> ``(b,)`` logits.
    """

    def __init__(self, inputs: DomainInput, bottom: MLPBlock, towers: nn.ModuleList) -> None:
        super().__init__(inputs)
        self.bottom = bottom
        self.towers = towers

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits (without the FM term)."""
        hidden = self.bottom(self.inputs(cat, num))
        return route(self.domain_of(cat), self.num_slots,
                     lambda slot, rows: self.towers[slot](hidden[rows]))


class MMoE(_MultiDomain):
    """Shared experts mixed by a softmax gate per domain, then the domain's tower.

    Args:
        inputs: the shared input.
        experts: ``E`` MLPs, ``(B, F*D + M)`` -> ``(B, H)`` each.
        towers: one module per slot, ``(b, H)`` -> ``(b,)`` logits.
    """

    def __init__(self, inputs: DomainInput, experts: Sequence[MLPBlock],
                 towers: nn.ModuleList) -> None:
        super().__init__(inputs)
        self.experts = nn.ModuleList(experts)
        self.gates = nn.ModuleList(nn.Linear(inputs.out_dim, len(self.experts))
                                   for _ in range(inputs.num_slots))
        self.towers = towers

    def gate_weights(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, E)``: each row's domain gate over the experts (every row sums to 1)."""
        x = self.inputs(cat, num)
        return route(self.domain_of(cat), self.num_slots,
                     lambda slot, rows: torch.softmax(self.gates[slot](x[rows]), dim=1))

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits (without the FM term)."""
        x = self.inputs(cat, num)
        experts = torch.stack([expert(x) for expert in self.experts], dim=1)  # (B, E, H)

        def tower(slot: int, rows: torch.Tensor) -> torch.Tensor:
            gate = torch.softmax(self.gates[slot](x[rows]), dim=1)  # (b, E)
            return self.towers[slot](torch.einsum("be,beh->bh", gate, experts[rows]))

        return route(self.domain_of(cat), self.num_slots, tower)


class CGCLevel(nn.Module):
    """One customized gate control level of PLE: shared and per-domain experts and gates.

    Each expert is one :class:`MLPLayer` ``in_dim -> out_dim``. Domain ``k``'s output mixes
    the shared experts and its own (softmax gate on its input); below the last level a shared
    gate also mixes every expert, shared and specific, into the next level's shared input.

    Args:
        in_dim: input width.
        out_dim: every expert's width.
        num_slots: domain slots.
        num_shared: shared experts ``S``.
        num_specific: experts per domain ``P``.
        last: the last level (no shared output). Default False.
        config: dropout and batch norm of the experts. Default ``ModelConfig()``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_slots: int, num_shared: int,
                 num_specific: int, last: bool = False, config: ModelConfig | None = None
                 ) -> None:
        super().__init__()
        config = config or ModelConfig()

        def experts(count: int) -> nn.ModuleList:
            return nn.ModuleList(MLPLayer(in_dim, out_dim, config.batch_norm, config.dropout)
                                 for _ in range(count))

        self.shared = experts(num_shared)
        self.specific = nn.ModuleList(experts(num_specific) for _ in range(num_slots))
        self.gates = nn.ModuleList(nn.Linear(in_dim, num_shared + num_specific)
                                   for _ in range(num_slots))
        self.shared_gate = None if last else nn.Linear(in_dim,
                                                       num_shared + num_slots * num_specific)

    def _specific(self, slot: int) -> nn.ModuleList:
        experts = self.specific[slot]
        assert isinstance(experts, nn.ModuleList)
        return experts

    @staticmethod
    def _mix(gate: nn.Module, x: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """``softmax(gate(x))`` ``(b, E)`` over ``experts`` ``(b, E, W)`` -> ``(b, W)``."""
        return torch.einsum("be,bew->bw", torch.softmax(gate(x), dim=1), experts)

    def forward_last(self, shared_in: torch.Tensor, specific_in: torch.Tensor,
                     domain: torch.Tensor) -> torch.Tensor:
        """The last level: ``(B, W)``, each row mixed by its own domain's gate.

        Args:
            shared_in: ``(B, in_dim)`` the shared branch's input (unused at level 0).
            specific_in: ``(B, num_slots, in_dim)`` every domain branch's input.
            domain: ``(B,)`` slot of each row.
        """
        shared = torch.stack([expert(shared_in) for expert in self.shared], dim=1)

        def mix(slot: int, rows: torch.Tensor) -> torch.Tensor:
            x = specific_in[rows, slot]
            own = torch.stack([expert(x) for expert in self._specific(slot)], dim=1)
            return self._mix(self.gates[slot], x, torch.cat([shared[rows], own], dim=1))

        return route(domain, len(self.specific), mix)

    def forward(self, shared_in: torch.Tensor, specific_in: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """A level below the last: every branch on every row (the shared gate needs them).

        Args:
            shared_in: ``(B, in_dim)``.
            specific_in: ``(B, num_slots, in_dim)``.

        Returns:
            ``(shared_out (B, W), specific_out (B, num_slots, W))``.
        """
        assert self.shared_gate is not None, "the last level has no shared output"
        shared = torch.stack([expert(shared_in) for expert in self.shared], dim=1)  # (B, S, W)
        specific = [torch.stack([expert(specific_in[:, slot]) for expert in self._specific(slot)],
                                dim=1) for slot in range(len(self.specific))]  # (B, P, W) each
        outputs = torch.stack([self._mix(gate, specific_in[:, slot],
                                         torch.cat([shared, specific[slot]], dim=1))
                               for slot, gate in enumerate(self.gates)], dim=1)
        shared_out = self._mix(self.shared_gate, shared_in, torch.cat([shared, *specific], 1))
        return shared_out, outputs


class PLE(_MultiDomain):
    """Progressive layered extraction: stacked :class:`CGCLevel`, then each domain's tower.

    A domain's specific experts at the last level serve only its rows; below it they also
    feed the shared gate, so every row's loss reaches them (as in the paper).

    Args:
        inputs: the shared input.
        levels: ``L >= 1`` levels, the last built with ``last=True``.
        towers: one module per slot, ``(b, W_L)`` -> ``(b,)`` logits.
    """

    def __init__(self, inputs: DomainInput, levels: Sequence[CGCLevel],
                 towers: nn.ModuleList) -> None:
        super().__init__(inputs)
        if not levels:
            raise InputError("PLE needs at least one level (config.hidden is empty)")
        *lower, last = levels
        self.lower_levels = nn.ModuleList(lower)
        self.last_level = last
        self.towers = towers

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits (without the FM term)."""
        shared = self.inputs(cat, num)
        specific = shared.unsqueeze(1).expand(-1, self.num_slots, -1)
        for level in self.lower_levels:
            shared, specific = level(shared, specific)
        domain = self.domain_of(cat)
        hidden = self.last_level.forward_last(shared, specific, domain)
        return route(domain, self.num_slots, lambda slot, rows: self.towers[slot](hidden[rows]))


class StarLinear(nn.Module):
    """A star-topology fully connected layer: domain ``p``'s weight is ``W_shared * W_p``
    (element-wise) and its bias ``b_shared + b_p``.

    ``W_shared`` and ``b_shared`` start as ``nn.Linear``'s; every ``W_p`` starts at ones and
    every ``b_p`` at zeros, so each domain starts as the shared layer.

    Args:
        in_dim: input width.
        out_dim: output width.
        num_slots: domain slots.
    """

    def __init__(self, in_dim: int, out_dim: int, num_slots: int) -> None:
        super().__init__()
        shared = nn.Linear(in_dim, out_dim)
        self.shared_weight = nn.Parameter(shared.weight.detach().clone())  # (out, in)
        self.shared_bias = nn.Parameter(shared.bias.detach().clone())  # (out,)
        self.domain_weight = nn.Parameter(torch.ones(num_slots, out_dim, in_dim))
        self.domain_bias = nn.Parameter(torch.zeros(num_slots, out_dim))

    def effective_weight(self, slot: int) -> torch.Tensor:
        """``(out, in)`` ``W_shared * W_slot``."""
        return self.shared_weight * self.domain_weight[slot]

    def effective_bias(self, slot: int) -> torch.Tensor:
        """``(out,)`` ``b_shared + b_slot``."""
        return self.shared_bias + self.domain_bias[slot]

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """``(B, in)``, ``(B,)`` -> ``(B, out)``, each row through its domain's weights."""
        return route(domain, self.domain_weight.shape[0], lambda slot, rows: F.linear(
            x[rows], self.effective_weight(slot), self.effective_bias(slot)))


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalisation: batch normalisation with per-domain statistics.

    Row ``i`` of domain ``p`` becomes ``(gamma * gamma_p) * (x_i - mean_p) / sqrt(var_p +
    eps) + (beta + beta_p)``. In training ``mean_p`` and ``var_p`` are the batch statistics
    of domain ``p``'s rows alone (a domain with a single row in the batch uses its running
    statistics), and each domain keeps its own running averages for evaluation.

    Args:
        dim: feature width.
        num_slots: domain slots.
        momentum: of the running statistics. Default 0.1.
        eps: added to the variance. Default 1e-5.
    """

    running_mean: torch.Tensor  # buffers: (num_slots, dim)
    running_var: torch.Tensor

    def __init__(self, dim: int, num_slots: int, momentum: float = STAROptions.norm_momentum,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.domain_weight = nn.Parameter(torch.ones(num_slots, dim))
        self.domain_bias = nn.Parameter(torch.zeros(num_slots, dim))
        self.register_buffer("running_mean", torch.zeros(num_slots, dim))
        self.register_buffer("running_var", torch.ones(num_slots, dim))

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """``(B, dim)``, ``(B,)`` -> ``(B, dim)``."""
        return route(domain, self.domain_weight.shape[0],
                     lambda slot, rows: self._normalise(slot, x[rows]))

    def _normalise(self, slot: int, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 1:
            var, mean = torch.var_mean(x, dim=0, correction=0)
            with torch.no_grad():  # running variance unbiased, as BatchNorm keeps it
                unbiased = var * (x.shape[0] / (x.shape[0] - 1))
                self.running_mean[slot].lerp_(mean, self.momentum)
                self.running_var[slot].lerp_(unbiased, self.momentum)
        else:
            mean, var = self.running_mean[slot], self.running_var[slot]
        scale = self.weight * self.domain_weight[slot]
        shift = self.bias + self.domain_bias[slot]
        return (x - mean) * torch.rsqrt(var + self.eps) * scale + shift


class STAR(_MultiDomain):
    """STAR as in the paper (Sheng et al., CIKM 2021).

    ``logit = star_fcn(PN(x)) + aux(e_domain)``: partitioned normalisation of the shared
    input, star-topology layers (ReLU between them, none on the final logit), and an
    auxiliary MLP on the domain indicator's embedding whose logit is added.

    Args:
        inputs: the shared input.
        layers: star layers; the last maps to width 1 (the logit).
        aux: ``(B, D)`` domain embeddings -> ``(B,)`` logits.
        norm: partitioned normalisation of the input; None skips it.
        dropout: after each hidden star layer's activation. Default 0.0.
    """

    def __init__(self, inputs: DomainInput, layers: Sequence[StarLinear], aux: nn.Module,
                 norm: PartitionedNorm | None, dropout: float = 0.0) -> None:
        super().__init__(inputs)
        self.norm = norm
        self.layers = nn.ModuleList(layers)
        self.aux = aux
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits (without the FM term)."""
        domain = self.domain_of(cat)
        embedded = self.inputs.embedding(cat)
        x = _join(embedded, num)
        if self.norm is not None:
            x = self.norm(x, domain)
        *hidden, final = self.layers
        for layer in hidden:
            x = self.dropout(torch.relu(layer(x, domain)))
        return final(x, domain).squeeze(1) + self.aux(embedded[:, self.inputs.domain_field])


class GateNU(nn.Module):
    """PEPNet's gate neural unit: ``gamma * sigmoid(W2 relu(W1 x + b1) + b2)``, in
    ``(0, gamma)``.

    Args:
        in_dim: input width.
        hidden: hidden width.
        out_dim: number of gates.
        scale: ``gamma``. Default 2.0.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int,
                 scale: float = PEPNetOptions.gate_scale) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.out = nn.Linear(hidden, out_dim)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim)`` -> ``(B, out_dim)`` gates."""
        return self.scale * torch.sigmoid(self.out(torch.relu(self.hidden(x))))


class PEPNet(_MultiDomain):
    """PEPNet (Chang et al., KDD 2023) for one task: EPNet and PPNet gates.

    EPNet scales each field's embedding by a gate on ``[e_domain, stop_grad(E)]``; PPNet
    scales the input of every MLP layer by a gate on ``[e_domain, stop_grad(O_ep)]`` (``O_ep``
    the gated embeddings, flattened with the numerics). Stopping the gradient keeps the gates
    from moving the embeddings they condition on, as in the paper.

    Args:
        inputs: the shared input.
        mlp: ``(B, F*D + M)`` -> ``(B, H)``.
        head: ``(B, H)`` -> ``(B,)``.
        options: the gates. Default ``PEPNetOptions()``.
    """

    def __init__(self, inputs: DomainInput, mlp: MLPBlock, head: Head,
                 options: PEPNetOptions | None = None) -> None:
        super().__init__(inputs)
        options = options or PEPNetOptions()
        embedding = inputs.embedding
        dim = embedding.embed_dim
        self.mlp = mlp
        self.head = head
        self.embedding_gate = GateNU(dim + embedding.num_fields * dim, options.gate_hidden,
                                     embedding.num_fields, options.gate_scale)
        self.layer_gates = nn.ModuleList(
            GateNU(dim + inputs.out_dim, options.gate_hidden, in_dim, options.gate_scale)
            for in_dim, _ in mlp.widths)

    def gates(self, cat: torch.Tensor, num: torch.Tensor
              ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``(embedding gate (B, F), layer gates [(B, in_l)], gated MLP input (B, F*D + M))``."""
        embedded = self.inputs.embedding(cat)  # (B, F, D)
        domain = embedded[:, self.inputs.domain_field]
        embedding_gate = self.embedding_gate(torch.cat([domain, embedded.detach().flatten(1)], 1))
        x = _join(embedded * embedding_gate.unsqueeze(2), num)
        condition = torch.cat([domain, x.detach()], dim=1)
        return embedding_gate, [gate(condition) for gate in self.layer_gates], x

    def network(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B,)`` logits (without the FM term)."""
        _, layer_gates, x = self.gates(cat, num)
        for layer, gate in zip(self.mlp.layers, layer_gates):
            x = layer(x * gate)
        return self.head(x)


# --------------------------------------------------------------------------------------------
# Builders (registered in MODELS)
# --------------------------------------------------------------------------------------------


def _inputs(vocab_sizes: Sequence[int], num_numeric: int, config: ModelConfig,
            domain_field: int, num_domains: int) -> DomainInput:
    embedding = EmbeddingBlock(vocab_sizes, config.embed_dim, sparse=config.sparse_embedding)
    return DomainInput(embedding, num_numeric, domain_field, num_domains,
                       fm_term(vocab_sizes, config))


def _mlp(in_dim: int, config: ModelConfig) -> MLPBlock:
    return MLPBlock(in_dim, config.hidden, batch_norm=config.batch_norm, dropout=config.dropout)


_BUILDER_ARGS = """
    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included (the domain field too).
        num_numeric: ``M``. Default 0.
        config: embedding size, ``hidden`` (see the options module), dropout, batch norm,
            sparse embeddings, FM term. Default ``ModelConfig()``.
        domain_field: index of the domain field among the ``F`` categorical fields.
        num_domains: ``K`` known domains (the field's local indices ``1..K``).
        options: the model's own options. Default: their dataclass's defaults.

    Raises:
        InputError: see :class:`DomainInput`.
"""


Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


def _document(builder: Builder) -> Builder:
    """Appends the builders' common argument list to ``builder``'s docstring."""
    builder.__doc__ = (builder.__doc__ or "") + _BUILDER_ARGS
    return builder


@register_model("shared_bottom")
@_document
def build_shared_bottom(vocab_sizes: Sequence[int], num_numeric: int = 0,
                        config: ModelConfig | None = None, *, domain_field: int,
                        num_domains: int, options: TowerOptions | None = None) -> SharedBottom:
    """Shared-Bottom: an MLP of ``config.hidden`` shared by all domains, then a tower of
    ``options.tower_hidden`` and a head per domain.
    """
    config, options = config or ModelConfig(), options or TowerOptions()
    inputs = _inputs(vocab_sizes, num_numeric, config, domain_field, num_domains)
    bottom = _mlp(inputs.out_dim, config)
    return SharedBottom(inputs, bottom, _towers(inputs.num_slots, bottom.out_dim,
                                                options.tower_hidden, config))


@register_model("mmoe")
@_document
def build_mmoe(vocab_sizes: Sequence[int], num_numeric: int = 0,
               config: ModelConfig | None = None, *, domain_field: int, num_domains: int,
               options: MMoEOptions | None = None) -> MMoE:
    """MMoE: ``options.num_experts`` expert MLPs of ``config.hidden``, a softmax gate, a tower
    of ``options.tower_hidden`` and a head per domain.
    """
    config, options = config or ModelConfig(), options or MMoEOptions()
    inputs = _inputs(vocab_sizes, num_numeric, config, domain_field, num_domains)
    experts = [_mlp(inputs.out_dim, config) for _ in range(options.num_experts)]
    return MMoE(inputs, experts, _towers(inputs.num_slots, experts[0].out_dim,
                                         options.tower_hidden, config))


@register_model("ple")
@_document
def build_ple(vocab_sizes: Sequence[int], num_numeric: int = 0,
              config: ModelConfig | None = None, *, domain_field: int, num_domains: int,
              options: PLEOptions | None = None) -> PLE:
    """PLE: one :class:`CGCLevel` per width of ``config.hidden`` (experts one layer each),
    then a tower of ``options.tower_hidden`` and a head per domain.
    """
    config, options = config or ModelConfig(), options or PLEOptions()
    inputs = _inputs(vocab_sizes, num_numeric, config, domain_field, num_domains)
    widths = [inputs.out_dim, *config.hidden]
    levels = [CGCLevel(widths[i], widths[i + 1], inputs.num_slots, options.num_shared_experts,
                       options.num_specific_experts, last=i == len(config.hidden) - 1,
                       config=config) for i in range(len(config.hidden))]
    return PLE(inputs, levels, _towers(inputs.num_slots, widths[-1], options.tower_hidden,
                                       config))


@register_model("star")
@_document
def build_star(vocab_sizes: Sequence[int], num_numeric: int = 0,
               config: ModelConfig | None = None, *, domain_field: int, num_domains: int,
               options: STAROptions | None = None) -> STAR:
    """STAR: partitioned normalisation, star layers of ``config.hidden`` and one to the logit,
    and an auxiliary MLP of ``options.aux_hidden`` on the domain embedding.
    """
    config, options = config or ModelConfig(), options or STAROptions()
    inputs = _inputs(vocab_sizes, num_numeric, config, domain_field, num_domains)
    widths = [inputs.out_dim, *config.hidden, 1]
    layers = [StarLinear(widths[i], widths[i + 1], inputs.num_slots)
              for i in range(len(widths) - 1)]
    norm = (PartitionedNorm(inputs.out_dim, inputs.num_slots, options.norm_momentum)
            if options.partitioned_norm else None)
    aux_mlp = MLPBlock(config.embed_dim, options.aux_hidden)
    return STAR(inputs, layers, nn.Sequential(aux_mlp, Head(aux_mlp.out_dim)), norm,
                config.dropout)


@register_model("pepnet")
@_document
def build_pepnet(vocab_sizes: Sequence[int], num_numeric: int = 0,
                 config: ModelConfig | None = None, *, domain_field: int, num_domains: int,
                 options: PEPNetOptions | None = None) -> PEPNet:
    """PEPNet: the base model's MLP of ``config.hidden`` with gate neural units of
    ``options`` on the embeddings and on every layer's input.
    """
    config = config or ModelConfig()
    inputs = _inputs(vocab_sizes, num_numeric, config, domain_field, num_domains)
    mlp = _mlp(inputs.out_dim, config)
    return PEPNet(inputs, mlp, Head(mlp.out_dim), options)


# --------------------------------------------------------------------------------------------
# As transfer strategies: every row, the row's domain routing the model
# --------------------------------------------------------------------------------------------


class MultiDomainLearner(PlanLearner):
    """A multi-domain model trained on every source row and the target's rows (the plan of
    ``merge_all``), its domain index read from the
    :data:`~graphsel.transfer.features.DOMAIN_FIELD` field (``target``, ``source`` or
    ``source:<sub-domain>`` with the protocol's ``domain_column``); it predicts the target
    rows as the ``target`` domain.

    Args:
        context: the run's context.
        options: the model's options (e.g. :class:`STAROptions`). Default None: its defaults.
    """

    needs_domain_field = True
    model_name: str = ""
    """The :data:`~graphsel.transfer.models.base.MODELS` name of the model (set by each
    registered subclass)."""

    def __init__(self, context: LearnerContext, options: object = None) -> None:
        super().__init__(context)
        self.model = multi_domain_model(context, self.model_name, options)


def multi_domain_model(context: LearnerContext, name: str, options: object = None
                       ) -> nn.Module:
    """A fresh multi-domain model ``name`` sized for the run, routed on its
    :data:`~graphsel.transfer.features.DOMAIN_FIELD` field.

    Args:
        context: the run's context (its feature spec and :class:`ModelConfig`).
        name: a :data:`MULTI_DOMAIN_MODELS` name.
        options: the model's options. Default None: its defaults.
    """
    spec = context.spec
    field = spec.field_index(DOMAIN_FIELD)
    return get_model(name)(spec.vocab_sizes, len(spec.numeric), context.model,
                           domain_field=field, num_domains=spec.vocab_sizes[field] - 1,
                           options=options)


for _name, _options in MULTI_DOMAIN_MODELS.items():
    _learner = type(f"{_name.title().replace('_', '')}Learner", (MultiDomainLearner,), {
        "model_name": _name, "__module__": __name__,
        "__doc__": f"The {_name} model as a strategy (see :class:`MultiDomainLearner`)."})
    globals()[_learner.__name__] = _learner  # a module attribute, so pickle finds it (resume)
    register_strategy(_name, learner=_learner, options=_options)(merge_all)


class StarFinetuneLearner(FinetuneLearner):
    """STAR on every row (as the ``star`` strategy), then fine-tuned on the target's rows as
    ``merge_finetune`` fine-tunes the base model (:meth:`FinetuneLearner.specialise`: lower
    learning rate, early stopping, the merged weights kept when no epoch beats them, the best
    weight-space mix). STAR takes its default :class:`STAROptions`.

    Args:
        context: the run's context.
        options: the fine-tuning step. Default ``FinetuneOptions()``.
    """

    needs_domain_field = True

    def __init__(self, context: LearnerContext, options: FinetuneOptions | None = None) -> None:
        super().__init__(context, options)
        self.model = multi_domain_model(context, "star")


register_strategy("star_finetune", learner=StarFinetuneLearner,
                  options=FinetuneOptions())(merge_all)
# star_finetune on budget_finetune's rows (a member of budget_ensemble)
register_strategy("budget_star_finetune", needs_selection=True, learner=StarFinetuneLearner,
                  options=FinetuneOptions())(budget_finetune)
