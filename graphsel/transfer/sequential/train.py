"""Training of one sequential variant: windows, batches, epochs, selection on validation.

Training reads only ``items[offsets[u]:train_end[u]]`` of each user
(:class:`~graphsel.data.sequences.SequenceSplit`): the validation and test items never enter
a batch. After every epoch the model ranks the validation items against the sampled
negatives; the best epoch's weights are kept and training stops after ``patience`` epochs
without improvement. The test set is not touched here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from graphsel._runtime import training_threads
from graphsel.data.sequences import PAD, SequenceData, SequenceSplit, last_window
from graphsel.transfer.sequential.evaluate import rank_metrics, rank_stage
from graphsel.transfer.sequential.model import SyNCRec, ntg_weights
from graphsel.transfer.sequential.options import SequentialTrainConfig, SyNCRecConfig
from graphsel.transfer.train.trainer import seed_everything

__all__ = ["training_windows", "DomainSampler", "Batch", "make_batch", "next_in_domain",
           "EpochLog", "FitOutcome", "fit_variant"]


def training_windows(split: SequenceSplit, max_length: int, mode: str = "last"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the training windows (absolute indices into ``data.items``),
    each at most ``max_length + 1`` items and at least 2.

    ``"last"``: each user's last window; ``"all"``: windows ending at ``train_end``,
    ``train_end - max_length``, ... overlapping by one item, so every training transition is
    in exactly one window.

    >>> from graphsel.data.sequences import build_sequences, leave_one_out
    >>> split = leave_one_out(build_sequences([1] * 7, list("abcdefg"), range(7), ["x"] * 7))
    >>> training_windows(split, 2, "all")
    (array([2, 0]), array([5, 3]))
    """
    data = split.data
    first, ends = data.offsets[:-1], split.train_end
    if mode == "last":
        starts = np.maximum(first, ends - max_length - 1)
        keep = ends - starts >= 2
        return starts[keep], ends[keep]
    count = np.maximum(np.ceil((ends - first - 1) / max_length).astype(np.int64), 0)
    user = np.repeat(np.arange(len(ends)), count)
    step = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    window_ends = ends[user] - step * max_length
    window_starts = np.maximum(first[user], window_ends - max_length - 1)
    return window_starts, window_ends


def next_in_domain(window: np.ndarray, domain: np.ndarray, num_domains: int) -> np.ndarray:
    """``(B, T)``: for each position, the next item of the same domain later in its row
    (:data:`PAD` when none or at padding).

    >>> next_in_domain(np.array([[0, 5, 6, 7]]), np.array([[2, 0, 1, 0]]), 2).tolist()
    [[0, 7, 0, 0]]
    """
    batch, length = window.shape
    state = np.zeros((batch, num_domains + 1), dtype=np.int64)
    out = np.zeros_like(window)
    rows = np.arange(batch)
    for t in range(length - 1, -1, -1):
        out[:, t] = state[rows, domain[:, t]]
        state[rows, domain[:, t]] = window[:, t]
    out[window == PAD] = PAD
    return out


class DomainSampler:
    """Uniform items of a given domain."""

    def __init__(self, data: SequenceData) -> None:
        domains = data.item_domain[1:]
        self.items = np.argsort(domains, kind="stable") + 1
        self.size = np.bincount(domains, minlength=data.num_domains)
        self.start = np.cumsum(self.size) - self.size

    def __call__(self, domain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        offset = np.floor(rng.random(domain.shape) * self.size[domain]).astype(np.int64)
        return self.items[self.start[domain] + offset]


@dataclass
class Batch:
    """Model inputs of one batch of windows, all ``(B, L)`` (0 = no target)."""

    items: torch.Tensor
    next_items: torch.Tensor
    next_negatives: torch.Tensor
    same_next: torch.Tensor
    same_negatives: torch.Tensor


def make_batch(data: SequenceData, starts: np.ndarray, ends: np.ndarray, max_length: int,
               sampler: DomainSampler, rng: np.random.Generator) -> Batch:
    """The :class:`Batch` of windows ``items[starts[b]:ends[b]]``."""
    window = last_window(data.items, starts, ends, max_length + 1)
    domain = np.where(window == PAD, data.num_domains, data.item_domain[window])
    inputs = window[:, :-1]
    next_items = np.where(inputs == PAD, PAD, window[:, 1:])
    same_next = next_in_domain(window, domain, data.num_domains)[:, :-1]
    negatives = []
    for targets in (next_items, same_next):
        sampled = sampler(np.maximum(data.item_domain[targets], 0), rng)
        negatives.append(np.where(targets == PAD, PAD, sampled))
    return Batch(*(torch.from_numpy(a) for a in (inputs, next_items, negatives[0], same_next,
                                                 negatives[1])))


@dataclass
class EpochLog:
    """One epoch: mean loss, validation score, training seconds (wall-clock and this
    process's CPU time, every thread), mean gap and final CDSR weights."""

    epoch: int
    loss: float
    valid_score: float
    seconds: float
    gap: list[float]
    weights: list[float]
    cpu_seconds: float = 0.0


@dataclass
class FitOutcome:
    """A trained variant (best validation epoch) and its history."""

    model: SyNCRec
    best_epoch: int
    epochs: list[EpochLog] = field(default_factory=list)
    train_seconds: float = 0.0


def fit_variant(split: SequenceSplit, config: SyNCRecConfig, train: SequentialTrainConfig,
                valid_negatives: np.ndarray, *, metric: str = "ndcg@10", seed: int = 0,
                max_epochs: int | None = None) -> FitOutcome:
    """Trains one variant with early stopping on validation ``metric``.

    Args:
        split: the leave-one-out split.
        config: the variant's model config.
        train: the training options.
        valid_negatives: ``(U, C)`` sampled negatives of the validation items.
        metric: the selection metric (default ``"ndcg@10"``, overall mean).
        seed: seeds the model, the shuffling and the training negatives (default 0).
        max_epochs: cap below ``train.epochs`` (default None; the benchmark uses 1).
    """
    seed_everything(seed)
    threads = torch.get_num_threads()
    policy_threads = training_threads(train.threads, torch_threads=threads)
    if policy_threads is not None:
        torch.set_num_threads(policy_threads)
    try:
        data = split.data
        rng = np.random.default_rng(seed)
        model = SyNCRec(torch.from_numpy(data.item_domain), data.num_domains, config)
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr,
                                     weight_decay=train.weight_decay)
        sampler = DomainSampler(data)
        starts, ends = training_windows(split, config.max_length, train.windows)
        outcome = FitOutcome(model, 0)
        best_score, best_state, stale = -np.inf, copy.deepcopy(model.state_dict()), 0
        for epoch in range(min(train.epochs, max_epochs or train.epochs)):
            begin, cpu_begin = time.perf_counter(), time.process_time()
            model.train()
            order = rng.permutation(len(starts))
            losses, gap_sum, gap_count = [], np.zeros(data.num_domains), np.zeros(
                data.num_domains)
            for first in range(0, len(order), train.batch_size):
                rows = order[first:first + train.batch_size]
                batch = make_batch(data, starts[rows], ends[rows], config.max_length, sampler,
                                   rng)
                parts = model.losses(batch.items, batch.next_items, batch.next_negatives,
                                     batch.same_next, batch.same_negatives)
                optimizer.zero_grad(set_to_none=True)
                parts.total.backward()
                optimizer.step()
                losses.append(float(parts.total.detach()))
                present = ((parts.sdsr_count > 0) & (parts.cdsr_count > 0)).numpy()
                gap_sum += np.where(present, (parts.sdsr - parts.cdsr).numpy(), 0.0)
                gap_count += present
            train_seconds = time.perf_counter() - begin
            cpu_seconds = time.process_time() - cpu_begin
            ranks = rank_stage(model, split, "valid", valid_negatives)
            score = float(rank_metrics(ranks.sampled)[metric].mean())
            weights = ntg_weights(model.ntg_lambda, config.ntg.tau).tolist() \
                if config.lc_ntg and config.tasks == "both" else \
                [1.0 / data.num_domains] * data.num_domains
            gap = np.where(gap_count > 0, gap_sum / np.maximum(gap_count, 1), np.nan)
            outcome.epochs.append(EpochLog(epoch, float(np.mean(losses)), score,
                                           round(train_seconds, 3),
                                           [round(float(g), 6) for g in gap],
                                           [round(float(w), 6) for w in weights],
                                           round(cpu_seconds, 3)))
            outcome.train_seconds += train_seconds
            if score > best_score:
                best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
                outcome.best_epoch = epoch
            else:
                stale += 1
                if stale >= train.patience:
                    break
        model.load_state_dict(best_state)
        return outcome
    finally:
        torch.set_num_threads(threads)
