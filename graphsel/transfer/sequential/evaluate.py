"""Leave-one-out ranking: sampled negatives, full ranking, HR / NDCG / MRR per domain.

A user's held-out item (validation or test) is ranked among candidates of ITS domain: 100
sampled items the user never interacted with (seeded, the same for every model), or every
item of the domain minus the user's other items (full ranking). The rank is the number of
candidates scoring at least as high as the target (ties count against the model, so a
constant scorer gets rank ``C``, not 0). From 0-based rank ``r``: ``HR@k = [r < k]``,
``NDCG@k = [r < k] / log2(r + 2)``, ``MRR = 1 / (r + 1)``; per domain (users whose target is
in it) and overall (every user) means.

>>> {name: round(float(v[0]), 4) for name, v in rank_metrics(np.array([2])).items()}
{'hr@1': 0.0, 'hr@5': 1.0, 'hr@10': 1.0, 'ndcg@5': 0.5, 'ndcg@10': 0.5, 'mrr': 0.3333}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graphsel.data.sequences import PAD, SequenceSplit, last_window
from graphsel.transfer.sequential.model import SyNCRec
from graphsel.transfer.train.metrics import paired_bootstrap_ci

__all__ = ["RANK_METRICS", "rank_metrics", "sample_negatives", "StageRanks", "rank_stage",
           "summarize", "mean_value", "compare_per_user", "mean_interval"]

RANK_METRICS = ("hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr")
OVERALL = "overall"


def rank_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user values ``(U,)`` of every metric in :data:`RANK_METRICS` from 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    gain = 1.0 / np.log2(ranks + 2.0)
    return {"hr@1": (ranks < 1).astype(float), "hr@5": (ranks < 5).astype(float),
            "hr@10": (ranks < 10).astype(float), "ndcg@5": np.where(ranks < 5, gain, 0.0),
            "ndcg@10": np.where(ranks < 10, gain, 0.0), "mrr": 1.0 / (ranks + 1.0)}


def _seen(split: SequenceSplit) -> sp.csr_matrix:
    """``(U, I + 1)`` bool: the items each user ever interacted with (held-out ones too)."""
    data = split.data
    rows = np.repeat(np.arange(data.num_users), data.lengths)
    return sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, data.items)),
                         shape=(data.num_users, data.num_items + 1))


def sample_negatives(split: SequenceSplit, targets: np.ndarray, num: int,
                     seed: int = 0) -> np.ndarray:
    """``(U, num)`` negatives per user: items of the target's domain the user never
    interacted with, uniformly without replacement; :data:`PAD` where the domain has fewer.

    >>> from graphsel.data.sequences import build_sequences, leave_one_out
    >>> split = leave_one_out(build_sequences([1, 1, 1], ["a", "b", "c"], [1, 2, 3],
    ...                                       ["x", "x", "x"]))
    >>> sample_negatives(split, split.test_target, 2).tolist()  # no unseen item of x is left
    [[0, 0]]
    """
    data = split.data
    seen = _seen(split)
    rng = np.random.default_rng(seed)
    out = np.full((data.num_users, num), PAD, dtype=np.int64)
    target_domain = data.item_domain[targets]
    for domain in range(data.num_domains):
        users = np.flatnonzero(target_domain == domain)
        pool = data.domain_items(domain)
        if len(users) == 0:
            continue
        keys = rng.random((len(users), len(pool)))
        taken = seen[users][:, pool].toarray()
        keys[taken] = np.inf
        order = np.argsort(keys, axis=1)[:, :num]
        chosen = np.where(np.isfinite(np.take_along_axis(keys, order, 1)), pool[order], PAD)
        out[users, :chosen.shape[1]] = chosen
    return out


@dataclass(frozen=True)
class StageRanks:
    """Ranks of one model on one stage.

    Attributes:
        target_domain: ``(U,)`` domain code of each user's held-out item.
        sampled: ``(U,)`` rank among the sampled negatives.
        full: ``(U,)`` rank among the domain's items, or None.
    """

    target_domain: np.ndarray
    sampled: np.ndarray
    full: np.ndarray | None


@torch.no_grad()
def rank_stage(model: SyNCRec, split: SequenceSplit, stage: str, negatives: np.ndarray, *,
               full: bool = False, batch_size: int = 1024, reference: bool = False
               ) -> StageRanks:
    """Ranks every user's ``stage`` (``"valid"`` or ``"test"``) item.

    Args:
        model: a trained model (put in eval mode here).
        split: the leave-one-out split.
        stage: ``"valid"``: the history ends before the validation item; ``"test"``: it
            includes the validation item.
        negatives: ``(U, C)`` from :func:`sample_negatives` (:data:`PAD` = none).
        full: also rank among all items of the target's domain (default False).
        batch_size: users per forward pass (default 1024); every user is scored.
        reference: the model's reference computation (default False; the benchmark's
            baseline, see :meth:`~graphsel.transfer.sequential.model.SyNCRec.encode`).
    """
    model.eval()
    data = split.data
    ends, targets = split.history(stage)
    inputs = last_window(data.items, data.offsets[:-1], ends, model.config.max_length)
    target_domain = data.item_domain[targets]
    vectors = torch.cat([
        model.user_vectors(torch.from_numpy(inputs[start:start + batch_size]),
                           torch.from_numpy(target_domain[start:start + batch_size]),
                           reference=reference)
        for start in range(0, data.num_users, batch_size)])
    candidates = torch.from_numpy(np.concatenate([targets[:, None], negatives], 1))
    scores = model.item_scores(vectors, candidates).numpy()
    sampled = ((scores[:, 1:] >= scores[:, :1]) & (negatives != PAD)).sum(1)
    full_ranks = None
    if full:
        seen = _seen(split)
        full_ranks = np.zeros(data.num_users, dtype=np.int64)
        embedding = model.item_embedding.weight
        for domain in range(data.num_domains):
            users = np.flatnonzero(target_domain == domain)
            if len(users) == 0:
                continue
            pool = data.domain_items(domain)
            pool_scores = (vectors[users] @ embedding[pool].T).numpy()
            target_scores = scores[users, 0][:, None]
            others = ~seen[users][:, pool].toarray()  # the target is seen: never counted
            full_ranks[users] = ((pool_scores >= target_scores) & others).sum(1)
    return StageRanks(target_domain, sampled, full_ranks)


def summarize(ranks: np.ndarray, target_domain: np.ndarray,
              domain_names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{"overall" | domain: {metric: mean}}`` (a domain with no target user is left out).

    >>> summarize(np.array([0, 3]), np.array([0, 1]), ("x", "y"))["y"]["mrr"]
    0.25
    """
    values = rank_metrics(ranks)
    groups = {OVERALL: np.ones(len(ranks), dtype=bool)}
    groups.update({name: target_domain == d for d, name in enumerate(domain_names)})
    return {group: {name: round(float(v[rows].mean()), 6) for name, v in values.items()}
            for group, rows in groups.items() if rows.any()}


def mean_value(y: np.ndarray, p: np.ndarray) -> float:
    """The mean of ``p`` (``y`` unused): the bootstrap metric of per-user values."""
    return float(np.mean(p))


def compare_per_user(values_a: np.ndarray, values_b: np.ndarray, *, n_boot: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` of paired per-user values ``(U,)``, with a paired bootstrap 95 %
    CI over users (:func:`~graphsel.transfer.train.metrics.paired_bootstrap_ci`)."""
    return paired_bootstrap_ci(np.zeros(len(values_a)), values_a, values_b, mean_value,
                               n_boot=n_boot, seed=seed)


def mean_interval(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0
                  ) -> tuple[float, float, float]:
    """``mean(values)`` of per-user values ``(U,)`` with a bootstrap 95 % CI over users (the
    resampling of :func:`compare_per_user`, against zeros).

    >>> mean_interval(np.array([0.5, 0.5, 0.5]), n_boot=10)
    (0.5, 0.5, 0.5)
    """
    return compare_per_user(values, np.zeros(len(values)), n_boot=n_boot, seed=seed)
