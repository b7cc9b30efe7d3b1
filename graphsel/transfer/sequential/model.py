"""SyNCRec (Park et al., 2024, arXiv 2407.11245): ACMoE experts, LC-NTG and SC-MIM.

The model reads a window of a user's cross-domain sequence ``(B, L)`` of item codes (0 =
padding, left-padded) and has two paths:

* CDSR: causal attention over the mixed sequence; position ``t`` predicts item ``t + 1``.
* SDSR: the same window with attention restricted to items of the SAME domain (and positions
  counted within the domain), so position ``t`` sees only its domain's subsequence and
  predicts that domain's next item. This equals running each domain's subsequence through
  the experts on its own, in one pass of length ``L`` instead of ``D`` passes.

ACMoE: ``K`` separate experts (each ``num_layers`` SASRec blocks and its own parameters), a
share rho serving CDSR and the rest SDSR; each task mixes ALL experts through its own noisy
gate, and an expert of the other task runs without gradient (``SG``): the SDSR loss never
reaches a CDSR expert and vice versa. Each (task, domain) has its own tower; a candidate item
``i`` of domain ``d`` scores ``tower_d(h) . e_i``.

Losses (:meth:`SyNCRec.losses`): ``L_S(d)`` and ``L_C(d)``, BCE of the next item against one
negative sampled from the same domain, averaged over the positions whose target is in ``d``;
LC-NTG weights the CDSR losses by ``softmax(lambda / tau)`` (:func:`ntg_update`,
:func:`ntg_weights`); SC-MIM (:func:`sc_mim_loss`) pulls a position's SDSR and CDSR
representations together against another user's. Inference uses the CDSR path.

Where we deliberately differ from the public research code (cpark88/SyNCRec, read for facts
only): K experts, towers and gates are separate modules (there they are one shared object,
so the mixture is degenerate); alpha and beta are explicit fixed hyper-parameters with
beta > 0 (there: random scalars that never train, a negative beta inverting the weighting);
the epoch is chosen on validation (there: on test); evaluation scores every user (there: the
last partial batch is dropped); the code is CPU-first (no hard-coded CUDA). Also ours: the
SDSR path by a domain attention mask rather than D separate sequences, and dense gating (no
top-k, K is small).

Two computations of the same function. :meth:`SyNCRec.encode` is the reference: one task at a
time, one call per expert module, torch's ``scaled_dot_product_attention``, every position.
Training and inference use the fast path (:meth:`SyNCRec.encode_tasks`): the attention
mask built once per step as an additive float mask, attention written out per head
(``baddbmm``, softmax, dropout: on CPU ``scaled_dot_product_attention`` falls back to a
slower math path whenever attention dropout is on), each head's q, k, v projected by its own
rows (no head-splitting copies), the pre-LayerNorms' affine folded into the next linear
layer, dropout masks from ``torch.rand`` (:func:`dropout`: the distribution of ``F.dropout``
at about half its cost on CPU), and at inference only the scored position through the last
layer. Batching the K experts into one ``baddbmm`` over stacked weights was measured slower
on CPU than one call per expert (larger tensors, more memory traffic), so experts stay
separate calls. Both agree to float rounding with dropout off
(``tests/transfer/sequential/test_model.py``); with dropout on they draw different masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphsel.transfer.sequential.options import SyNCRecConfig

__all__ = ["SASRecBlock", "Expert", "NoisyGate", "SyNCRec", "LossParts", "ntg_update",
           "ntg_weights", "sc_mim_loss", "bce_pair", "domain_means", "dropout"]


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: each element zeroed with probability ``p``, the rest scaled by
    ``1 / (1 - p)``, as ``F.dropout``; the mask comes from ``torch.rand``, about twice as
    fast on CPU as the ``bernoulli_`` behind ``F.dropout``.

    >>> x = torch.ones(4)
    >>> bool((dropout(x, 0.5, training=False) == x).all())
    True
    >>> sorted(set(dropout(torch.ones(1000), 0.5).tolist()))
    [0.0, 2.0]
    """
    if not training or p == 0.0:
        return x
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


def _fold_norm(norm: nn.LayerNorm, linear: nn.Linear, rows: slice = slice(None)
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight (O, H), bias (O,))`` of ``linear(norm(z))`` as one linear map of the
    normalised ``z`` (LayerNorm's affine folded in); ``rows`` picks output rows (default
    all)."""
    weight = linear.weight[rows]
    return weight * norm.weight, linear.bias[rows] + weight @ norm.bias


class SASRecBlock(nn.Module):
    """One pre-LayerNorm causal self-attention block with a point-wise feed-forward layer.

    Args:
        hidden: ``H``.
        num_heads: heads, dividing ``H``.
        dropout: dropout rate.
    """

    def __init__(self, hidden: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_attention = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden))
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, L, H)``; ``mask`` ``(B, 1, L, L)`` bool, True where a query may attend."""
        batch, length, hidden = x.shape
        q, k, v = self.qkv(self.norm_attention(x)).view(
            batch, length, 3, self.num_heads, hidden // self.num_heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attention_dropout if self.training else 0.0)
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, hidden)))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class Expert(nn.Module):
    """A causal Transformer expert: ``num_layers`` :class:`SASRecBlock` s and a LayerNorm."""

    def __init__(self, hidden: int, num_layers: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SASRecBlock(hidden, num_heads, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


class NoisyGate(nn.Module):
    """Per-position softmax weights over ``K`` experts, with learned Gaussian noise in
    training (Shazeer et al., 2017, without top-k).

    Args:
        hidden: ``H``.
        num_experts: ``K``.
        noise: add noise in training (default True).
    """

    def __init__(self, hidden: int, num_experts: int, noise: bool = True) -> None:
        super().__init__()
        self.logits = nn.Linear(hidden, num_experts)
        self.noise_scale = nn.Linear(hidden, num_experts) if noise else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, K)`` weights summing to 1 over ``K``."""
        logits = self.logits(x)
        if self.training and self.noise_scale is not None:
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise_scale(x))
        return torch.softmax(logits, dim=-1)


@dataclass
class LossParts:
    """One step's losses.

    Attributes:
        total: the loss to minimise (scalar).
        sdsr: ``(D,)`` ``L_S(d)`` (0 where no position targets ``d``).
        cdsr: ``(D,)`` ``L_C(d)``.
        sdsr_count: ``(D,)`` positions behind each ``L_S(d)``.
        cdsr_count: ``(D,)`` positions behind each ``L_C(d)``.
        weights: ``(D,)`` the CDSR weights used.
        mim: the SC-MIM loss (0 when off).
    """

    total: torch.Tensor
    sdsr: torch.Tensor
    cdsr: torch.Tensor
    sdsr_count: torch.Tensor
    cdsr_count: torch.Tensor
    weights: torch.Tensor
    mim: torch.Tensor


def bce_pair(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """``-log s(pos) - log(1 - s(neg))`` element-wise.

    >>> round(float(bce_pair(torch.tensor(0.0), torch.tensor(0.0))), 4)
    1.3863
    """
    return F.softplus(-positive) + F.softplus(negative)


def domain_means(values: torch.Tensor, domain: torch.Tensor, num_domains: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(means (D,), counts (D,))`` of ``values`` ``(N,)`` grouped by ``domain`` ``(N,)``;
    0 where a domain has no value.

    >>> domain_means(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
    (tensor([2., 0., 5.]), tensor([2., 0., 1.]))
    """
    sums = torch.zeros(num_domains, dtype=values.dtype).index_add(0, domain, values)
    counts = torch.bincount(domain, minlength=num_domains).to(values.dtype)
    return sums / counts.clamp(min=1), counts


def ntg_update(lam: torch.Tensor, gap: torch.Tensor, present: torch.Tensor, alpha: float,
               beta: float) -> torch.Tensor:
    """LC-NTG's ``lambda <- alpha * lambda + beta * phi`` for the domains ``present`` in the
    batch (the others keep their lambda).

    Args:
        lam: ``(D,)`` current lambda.
        gap: ``(D,)`` ``phi_d = L_S(d) - L_C(d)``, detached.
        present: ``(D,)`` bool, domains with both losses in the batch.
        alpha: memory (NTGConfig.alpha).
        beta: step (NTGConfig.beta).

    >>> ntg_update(torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 4.0]),
    ...            torch.tensor([True, False]), 0.5, 0.25).tolist()
    [0.0, 3.0]
    """
    return torch.where(present, alpha * lam + beta * gap.detach(), lam)


def ntg_weights(lam: torch.Tensor, tau: float) -> torch.Tensor:
    """``softmax(lambda / tau)``, the weights of the CDSR losses (sum 1)."""
    return torch.softmax(lam / tau, dim=0)


def sc_mim_loss(single: torch.Tensor, cross: torch.Tensor, valid: torch.Tensor,
                domain: torch.Tensor, num_domains: int) -> torch.Tensor:
    """SC-MIM: a binary (Jensen-Shannon style) mutual-information bound between the SDSR
    and CDSR representations of one position.

    The positive pair is ``(single[b, t], cross[b, t])``, the negative
    ``(single[b, t], cross[b - 1, t])`` (the previous user of the batch); the critic is
    ``f(s, c) = s . c / sqrt(H)`` and each position costs ``softplus(-f(pos)) +
    softplus(f(neg))``. Positions count where both users have an item; the loss is the mean
    over domains (of position ``t``'s item) of each domain's mean.

    Args:
        single: ``(B, L, H)`` SDSR representations.
        cross: ``(B, L, H)`` CDSR representations.
        valid: ``(B, L)`` bool, non-padding positions.
        domain: ``(B, L)`` domain code of each position's item.
        num_domains: ``D``.

    Returns:
        A scalar; 0 when the batch has one user or no usable position.
    """
    if single.shape[0] < 2:
        return single.sum() * 0.0
    scale = 1.0 / math.sqrt(single.shape[-1])
    other = cross.roll(1, dims=0)
    usable = valid & valid.roll(1, dims=0)
    positive = (single * cross).sum(-1) * scale
    negative = (single * other).sum(-1) * scale
    cost = bce_pair(positive, negative)[usable]
    if cost.numel() == 0:
        return single.sum() * 0.0
    means, counts = domain_means(cost, domain[usable], num_domains)
    return means[counts > 0].mean()


class SyNCRec(nn.Module):
    """SyNCRec and its variants (see the module docstring).

    Args:
        item_domain: ``(I + 1,)`` int64 domain code of each item code (-1 at padding 0).
        num_domains: ``D``.
        config: :class:`~graphsel.transfer.sequential.options.SyNCRecConfig`.
    """

    item_domain: torch.Tensor
    ntg_lambda: torch.Tensor

    def __init__(self, item_domain: torch.Tensor, num_domains: int,
                 config: SyNCRecConfig) -> None:
        super().__init__()
        self.config = config
        self.num_domains = num_domains
        hidden = config.hidden
        # padding's domain is the extra code D, so embeddings and masks need no special case
        domain_of = torch.as_tensor(item_domain, dtype=torch.long).clone()
        domain_of[domain_of < 0] = num_domains
        self.register_buffer("item_domain", domain_of)
        self.item_embedding = nn.Embedding(len(domain_of), hidden, padding_idx=0)
        self.domain_embedding = nn.Embedding(num_domains + 1, hidden)
        self.position_embedding = nn.Embedding(config.max_length, hidden)
        self.embedding_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.experts = nn.ModuleList(
            Expert(hidden, config.num_layers, config.num_heads, config.dropout)
            for _ in range(config.num_experts))
        self.cdsr_experts, self.sdsr_experts = config.expert_split()
        tasks = self.tasks
        gate_names = tasks if config.acmoe else ("shared",)
        self.gates = nn.ModuleDict({name: NoisyGate(hidden, config.num_experts,
                                                    config.gate_noise) for name in gate_names})
        self.towers = nn.ModuleDict({task: nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
            for _ in range(num_domains)) for task in tasks})
        self.register_buffer("ntg_lambda", torch.zeros(num_domains))
        nn.init.normal_(self.item_embedding.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    @property
    def tasks(self) -> tuple[str, ...]:
        """The paths this variant trains: ``("sdsr", "cdsr")``, ``("sdsr",)`` or ``("cdsr",)``."""
        return ("sdsr", "cdsr") if self.config.tasks == "both" else (self.config.tasks,)

    def stopped_experts(self, task: str) -> tuple[int, ...]:
        """Experts that run without gradient for ``task``: those of the other task (none
        without ACMoE)."""
        if not self.config.acmoe or self.config.tasks != "both":
            return ()
        return self.cdsr_experts if task == "sdsr" else self.sdsr_experts

    def gate(self, task: str) -> NoisyGate:
        """The gate of ``task`` (the one shared gate without ACMoE)."""
        gate = self.gates[task if self.config.acmoe else "shared"]
        assert isinstance(gate, NoisyGate)
        return gate

    # -- encoding ----------------------------------------------------------------------------

    def _inputs(self, items: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x (B, L, H), mask (B, L, L))`` of ``task``'s path, ``x`` before its dropout
        (padding rows zero) and ``mask`` True where a query may attend."""
        valid = items != 0
        domain = self.item_domain[items]
        if task == "sdsr":
            same = F.one_hot(domain, self.num_domains + 1).cumsum(1)
            position = same.gather(2, domain.unsqueeze(-1)).squeeze(-1) - 1
        else:
            position = valid.long().cumsum(1) - 1
        position = position.clamp(min=0, max=self.config.max_length - 1)
        x = self.item_embedding(items) + self.domain_embedding(domain) + \
            self.position_embedding(position)
        x = self.embedding_norm(x) * valid.unsqueeze(-1)
        length = items.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        mask = causal & valid.unsqueeze(1)
        if task == "sdsr":
            mask = mask & (domain.unsqueeze(1) == domain.unsqueeze(2))
        # a position always sees itself, so a padded query has a finite (unused) output
        return x, mask | torch.eye(length, dtype=torch.bool, device=items.device)

    def encode(self, items: torch.Tensor, task: str) -> torch.Tensor:
        """``(B, L, H)`` representations of ``items`` ``(B, L)`` (left-padded) by ``task``'s
        path: ``"cdsr"`` (mixed history) or ``"sdsr"`` (each position's own domain only).

        The reference computation (one call per expert module, every position); training
        and inference use :meth:`encode_tasks`, which computes the same function faster.
        """
        x, mask = self._inputs(items, task)
        x = self.dropout(x) * (items != 0).unsqueeze(-1)
        mask = mask.unsqueeze(1)
        stopped = self.stopped_experts(task)
        outputs = []
        for index, expert in enumerate(self.experts):
            if index in stopped:
                with torch.no_grad():  # SG: forward as usual, no gradient to this expert
                    outputs.append(expert(x, mask))
            else:
                outputs.append(expert(x, mask))
        weights = self.gate(task)(x)
        return torch.einsum("blk,kblh->blh", weights, torch.stack(outputs))

    def encode_tasks(self, items: torch.Tensor, tasks: tuple[str, ...] | None = None,
                     query: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every task's :meth:`encode`, computed faster (see the module docstring).

        Args:
            items: ``(B, L)`` left-padded item codes.
            tasks: the paths to compute (default :attr:`tasks`).
            query: ``(B,)`` one position per row, or None (default) for every position;
                with a position the last layer runs only its query.

        Returns:
            ``{task: (B, L, H)}``, or ``{task: (B, H)}`` at ``query``.
        """
        tasks = self.tasks if tasks is None else tasks
        valid = (items != 0).unsqueeze(-1)
        p = self.config.dropout if self.training else 0.0
        inputs, biases, query_biases = {}, {}, {}
        rows = torch.arange(len(items), device=items.device)
        for task in tasks:
            x, mask = self._inputs(items, task)
            inputs[task] = dropout(x, p, self.training) * valid
            biases[task] = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(
                ~mask, -math.inf)
            if query is not None:
                query_biases[task] = biases[task][rows, query].unsqueeze(1)
        outputs: dict[tuple[int, str], torch.Tensor] = {}
        for task in tasks:
            stopped = self.stopped_experts(task)
            for k, expert in enumerate(self.experts):
                assert isinstance(expert, Expert)
                # SG: the other task's experts run without gradient
                with torch.set_grad_enabled(torch.is_grad_enabled() and k not in stopped):
                    outputs[(k, task)] = self._run_expert(
                        expert, inputs[task], biases[task], query_biases.get(task), query)
        hidden = {}
        for task in tasks:
            x = inputs[task] if query is None else inputs[task][rows, query]
            weights = self.gate(task)(x)
            mixed = torch.zeros_like(outputs[(0, task)])
            for k in range(len(self.experts)):
                mixed = torch.addcmul(mixed, weights[..., k:k + 1], outputs[(k, task)])
            hidden[task] = mixed
        return hidden

    def _run_expert(self, expert: Expert, x: torch.Tensor, bias: torch.Tensor,
                    query_bias: torch.Tensor | None, query: torch.Tensor | None
                    ) -> torch.Tensor:
        """``expert`` on ``x`` ``(B, L, H)`` with the additive attention mask ``bias``
        ``(B, L, L)`` (0 or -inf), as :class:`Expert` computes it; with ``query`` ``(B,)``
        the last layer runs only those positions (their mask rows ``query_bias``
        ``(B, 1, L)``). Returns ``(B, L, H)`` or ``(B, H)``.

        Each head's q, k and v come from their own rows of the projection, so they are
        contiguous ``(B, P, H / heads)`` and the attention needs no head-splitting copy.
        """
        batch, _, hidden = x.shape
        heads = self.config.num_heads
        width = hidden // heads
        p = self.config.dropout if self.training else 0.0
        rows = torch.arange(batch, device=x.device)
        for index, block in enumerate(expert.blocks):
            assert isinstance(block, SASRecBlock)
            normed = F.layer_norm(x, (hidden,))
            queries, attention_bias = normed, bias
            if query is not None and index == len(expert.blocks) - 1:
                x = x[rows, query].unsqueeze(1)  # (B, 1, H): only the queries go on
                queries = normed[rows, query].unsqueeze(1)
                assert query_bias is not None
                attention_bias = query_bias
            attended = []
            for head in range(heads):
                q, k, v = (F.linear(z, *_fold_norm(block.norm_attention, block.qkv, slice(
                    part * hidden + head * width, part * hidden + (head + 1) * width)))
                    for part, z in enumerate((queries, normed, normed)))
                scores = torch.baddbmm(attention_bias, q, k.transpose(1, 2),
                                       alpha=width ** -0.5)
                attended.append(torch.bmm(dropout(scores.softmax(-1), p, self.training), v))
            x = x + dropout(block.out(torch.cat(attended, -1)), p, self.training)
            first, second = block.ffn[0], block.ffn[3]
            assert isinstance(first, nn.Linear)
            inner = F.gelu(F.linear(F.layer_norm(x, (hidden,)),
                                    *_fold_norm(block.norm_ffn, first)))
            x = x + dropout(second(dropout(inner, p, self.training)), p, self.training)
        x = expert.norm(x)
        return x if query is None else x.squeeze(1)

    def tower(self, hidden: torch.Tensor, task: str, domain: torch.Tensor) -> torch.Tensor:
        """``(N, H)`` outputs of ``task``'s tower of each row's ``domain`` ``(N,)``."""
        out = torch.zeros_like(hidden)
        towers = self.towers[task]
        assert isinstance(towers, nn.ModuleList)
        for d in torch.unique(domain).tolist():
            rows = domain == d
            out[rows] = towers[d](hidden[rows])
        return out

    def item_scores(self, vectors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, C)`` of candidate items ``(B, C)`` for user vectors ``(B, H)``."""
        return torch.einsum("bh,bch->bc", vectors, self.item_embedding(candidates))

    # -- training ----------------------------------------------------------------------------

    def losses(self, items: torch.Tensor, next_items: torch.Tensor, next_negatives: torch.Tensor,
               same_next: torch.Tensor, same_negatives: torch.Tensor, *,
               reference: bool = False) -> LossParts:
        """One step's losses on a batch of windows (all ``(B, L)``, 0 = no target).

        Args:
            items: the input items.
            next_items: CDSR targets, the item after each position.
            next_negatives: a sampled item of ``next_items``' domain per position.
            same_next: SDSR targets, the next item of each position's own domain.
            same_negatives: a sampled item of that domain per position.
            reference: encode by the reference :meth:`encode` (default False: the fast
                :meth:`encode_tasks`; the benchmark and tests compare the two).
        """
        num_domains = self.num_domains
        zeros = torch.zeros(num_domains)
        parts = {"sdsr": (zeros, zeros, zeros), "cdsr": (zeros, zeros, zeros)}
        hidden = {task: self.encode(items, task) for task in self.tasks} if reference else \
            self.encode_tasks(items)
        for task in self.tasks:
            targets, negatives = (same_next, same_negatives) if task == "sdsr" else (
                next_items, next_negatives)
            rows = targets != 0
            target_domain = self.item_domain[targets[rows]]
            vectors = self.tower(hidden[task][rows], task, target_domain)
            embedded = self.item_embedding(torch.stack([targets[rows], negatives[rows]], 1))
            scores = torch.einsum("nh,nch->nc", vectors, embedded)
            cost = bce_pair(scores[:, 0], scores[:, 1])
            means, counts = domain_means(cost, target_domain, num_domains)
            # plain SASRec averages over positions: domain d's term is its share of the sum
            terms = means if self.config.domain_balanced else \
                means * counts / counts.sum().clamp(min=1)
            parts[task] = (means, counts, terms)
        (sdsr, sdsr_count, sdsr_terms), (cdsr, cdsr_count, cdsr_terms) = (
            parts["sdsr"], parts["cdsr"])
        weights = torch.full((num_domains,), 1.0 / num_domains)
        if self.config.lc_ntg and self.config.tasks == "both" and self.training:
            present = (sdsr_count > 0) & (cdsr_count > 0)
            self.ntg_lambda = ntg_update(self.ntg_lambda, (sdsr - cdsr).detach(), present,
                                         self.config.ntg.alpha, self.config.ntg.beta)
        if self.config.lc_ntg and self.config.tasks == "both":
            weights = ntg_weights(self.ntg_lambda, self.config.ntg.tau)
        mim = torch.zeros(())
        if self.config.mi_weight > 0 and len(hidden) == 2:
            mim = sc_mim_loss(hidden["sdsr"], hidden["cdsr"], items != 0,
                              self.item_domain[items], num_domains)
        total = (sdsr_terms.sum() + num_domains * (weights * cdsr_terms).sum()
                 + self.config.mi_weight * mim)
        return LossParts(total, sdsr.detach(), cdsr.detach(), sdsr_count, cdsr_count,
                         weights.detach(), mim.detach())

    # -- inference ---------------------------------------------------------------------------

    def user_vectors(self, items: torch.Tensor, target_domain: torch.Tensor, *,
                     reference: bool = False) -> torch.Tensor:
        """``(B, H)`` vectors that score items of ``target_domain`` ``(B,)`` after the
        histories ``items`` ``(B, L)``: the CDSR path at the last position; the SDSR
        baseline uses its last position of the target's domain (zeros before the tower when
        the window holds none). Only that position is computed through the last layer
        (``reference=True``: every position, by :meth:`encode`; default False)."""
        task = "cdsr" if "cdsr" in self.tasks else "sdsr"
        if task == "cdsr":
            index = torch.full((len(items),), items.shape[1] - 1)
        else:
            in_domain = self.item_domain[items] == target_domain.unsqueeze(1)
            index = torch.where(in_domain, torch.arange(items.shape[1]), -1).max(1).values
        query = index.clamp(min=0)
        if reference:
            last = self.encode(items, task)[torch.arange(len(items)), query]
        else:
            last = self.encode_tasks(items, (task,), query)[task]
        last = last * (index >= 0).unsqueeze(-1)
        return self.tower(last, task, target_domain)
