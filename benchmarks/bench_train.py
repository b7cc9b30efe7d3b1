"""Training and inference throughput of the base CTR model (``make bench-train``).

Two variants train the same base model (26 fields, 1M total vocabulary, D=16, MLP
256-128-64, batch 4096) on the same synthetic random data, in the same run:

* ``fast``: graphsel's :class:`~graphsel.transfer.Trainer` (sparse embedding gradients +
  SparseAdam computed on the batch's rows (:class:`~graphsel.transfer.train.trainer.RowwiseSparseAdam`),
  fused Adam for the dense part, index-sliced batches);
* ``dense``: the plain baseline: a dense ``nn.Embedding`` and one ``torch.optim.Adam`` over
  every parameter.

Each variant trains ``EPOCHS`` epochs over the same rows; the first is a warm-up (allocating
the optimiser state, first-touch page faults). Reported: the best of the other epochs
(other processes on a shared machine only ever slow an epoch down), and the rate of the
median optimisation step of those epochs, which a few stalls do not move. Inference is
:func:`predict` of the fast model. Targets: fast >= 50k samples/s and >= 2.5x dense;
inference >= 250k samples/s.

The header line gives the load average, so a run on a busy machine reads as one. On an
oversubscribed machine OpenMP's spinning threads stall each other badly (seen here: 100x
on the small setup with 2 threads under load 6); ``OMP_WAIT_POLICY=PASSIVE`` in the
environment limits the damage, at some cost on an idle machine.

``--small`` runs a tiny configuration in seconds (the tests use it so this script cannot
rot); its numbers mean nothing.

Usage: ``python benchmarks/bench_train.py [--small] [--threads 2]``
"""

from __future__ import annotations

import graphsel  # noqa: F401, I001  (first: the thread policy is set before torch/numpy load)

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from graphsel.transfer import (
    CTRBatch,
    CTRDataset,
    ModelConfig,
    TrainConfig,
    Trainer,
    build_base_model,
    iter_batches,
    predict,
    seed_everything,
    weighted_bce_loss,
)

TARGET_TRAIN = 50_000
TARGET_RATIO = 2.5
TARGET_INFER = 250_000
EPOCHS = 3


@dataclass(frozen=True)
class BenchSetup:
    fields: int
    total_vocab: int
    embed_dim: int
    hidden: tuple[int, ...]
    batch_size: int
    train_batches: int
    infer_rows: int


FULL = BenchSetup(fields=26, total_vocab=1_000_000, embed_dim=16, hidden=(256, 128, 64),
                  batch_size=4096, train_batches=30, infer_rows=1_000_000)
SMALL = BenchSetup(fields=4, total_vocab=2_000, embed_dim=4, hidden=(16, 8),
                   batch_size=64, train_batches=4, infer_rows=2_000)


def vocab_sizes(fields: int, total: int) -> list[int]:
    """``fields`` sizes summing to ``total``, spread over orders of magnitude like Criteo's
    (a few huge id fields, many small ones)."""
    shares = np.geomspace(1.0, 1e-3, fields)
    sizes = np.maximum(2, np.floor(shares / shares.sum() * total)).astype(np.int64)
    sizes[0] += total - sizes.sum()
    return sizes.tolist()


def synthetic(setup: BenchSetup, rows: int, seed: int) -> CTRDataset:
    """Uniformly random indices per field and labels with a 25% click rate."""
    rng = np.random.default_rng(seed)
    sizes = vocab_sizes(setup.fields, setup.total_vocab)
    cat = np.stack([rng.integers(0, size, rows) for size in sizes], axis=1)
    return CTRDataset(cat, None, (rng.random(rows) < 0.25).astype(np.float32))


def build(setup: BenchSetup, sparse: bool, seed: int) -> torch.nn.Module:
    seed_everything(seed)
    config = ModelConfig(embed_dim=setup.embed_dim, hidden=setup.hidden,
                         sparse_embedding=sparse)
    return build_base_model(vocab_sizes(setup.fields, setup.total_vocab), 0, config)


@dataclass(frozen=True)
class Rate:
    """Samples/s of one variant, measured two ways on the epochs after the first."""

    best_epoch: float
    median_step: float


class StepClock:
    """Wraps a loss function and stamps each call: one call per optimisation step, so the
    gaps between stamps are whole steps (batch slicing and optimiser updates included)."""

    def __init__(self, loss_fn: Callable[..., torch.Tensor]) -> None:
        self.loss_fn = loss_fn
        self.stamps: list[float] = []

    def __call__(self, model: torch.nn.Module, batch: CTRBatch) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        return self.loss_fn(model, batch)


def _median_step_rate(stamps: list[float], steps_per_epoch: int, batch_size: int) -> float:
    gaps = np.diff(np.asarray(stamps).reshape(EPOCHS, steps_per_epoch)[1:], axis=1)
    return batch_size / float(np.median(gaps))


def train_fast(setup: BenchSetup, data: CTRDataset, threads: int, seed: int) -> Rate:
    """graphsel's Trainer: sparse table + SparseAdam, fused Adam for the rest."""
    model = build(setup, sparse=True, seed=seed)
    config = TrainConfig(epochs=EPOCHS, batch_size=setup.batch_size, seed=seed,
                         num_threads=threads, progress=False)
    clock = StepClock(weighted_bce_loss)
    history = Trainer(config, loss_fn=clock).fit(model, data).history
    return Rate(max(record.samples_per_s for record in history[1:]),
                _median_step_rate(clock.stamps, setup.train_batches, setup.batch_size))


def train_dense(setup: BenchSetup, data: CTRDataset, seed: int) -> Rate:
    """The plain baseline: a dense table and one Adam over every parameter."""
    model = build(setup, sparse=False, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clock = StepClock(weighted_bce_loss)
    model.train()
    rates = []
    for epoch in range(EPOCHS):
        start = time.perf_counter()
        for batch in iter_batches(data, setup.batch_size, shuffle=True, seed=seed, epoch=epoch):
            optimizer.zero_grad()
            clock(model, batch).backward()
            optimizer.step()
        rates.append(len(data) / (time.perf_counter() - start))
    return Rate(max(rates[1:]),
                _median_step_rate(clock.stamps, setup.train_batches, setup.batch_size))


def infer(setup: BenchSetup, data: CTRDataset, seed: int) -> float:
    """Best samples/s of :func:`predict` over ``EPOCHS - 1`` passes after a warm-up."""
    model = build(setup, sparse=True, seed=seed)
    rates = []
    for _ in range(EPOCHS):
        start = time.perf_counter()
        predict(model, data)
        rates.append(len(data) / (time.perf_counter() - start))
    return max(rates[1:])


def parse_options(argv: list[str] | None, doc: str) -> tuple[argparse.Namespace, BenchSetup]:
    """``--small``, ``--threads`` and ``--seed`` (shared with ``bench_transfer.py``); sets
    torch's thread count and returns the options and the setup they choose."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny configuration, seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args, SMALL if args.small else FULL


def main(argv: list[str] | None = None) -> int:
    args, setup = parse_options(argv, __doc__)

    train_data = synthetic(setup, setup.batch_size * setup.train_batches, args.seed)
    fast = train_fast(setup, train_data, args.threads, args.seed)
    dense = train_dense(setup, train_data, args.seed)
    inference = infer(setup, synthetic(setup, setup.infer_rows, args.seed + 1), args.seed)

    print(f"bench_train: {setup.fields} fields, vocab {setup.total_vocab:,}, "
          f"D={setup.embed_dim}, MLP {'-'.join(map(str, setup.hidden))}, "
          f"batch {setup.batch_size}, {setup.batch_size * setup.train_batches:,} train rows, "
          f"{args.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
          + (" [--small: numbers are not meaningful]" if args.small else ""))
    ratio = fast.best_epoch / dense.best_epoch
    rows = [
        ("train fast (sparse+SparseAdam, fused Adam)", f"{fast.best_epoch:,.0f}",
         f"{fast.median_step:,.0f}", f"{ratio:.2f}x dense",
         f">= {TARGET_TRAIN:,}/s, >= {TARGET_RATIO}x"),
        ("train dense (dense table, Adam)", f"{dense.best_epoch:,.0f}",
         f"{dense.median_step:,.0f}", "1.00x", "baseline"),
        ("inference (predict, fast model)", f"{inference:,.0f}", "", "",
         f">= {TARGET_INFER:,}/s"),
    ]
    print(f"| {'variant':<44} | {'samples/s':>11} | {'median step':>11} | {'ratio':>11} "
          f"| {'target':<22} |")
    print(f"|{'-' * 46}|{'-' * 13}|{'-' * 13}|{'-' * 13}|{'-' * 24}|")
    for name, rate, step_rate, ratio_text, target in rows:
        print(f"| {name:<44} | {rate:>11} | {step_rate:>11} | {ratio_text:>11} "
              f"| {target:<22} |")
    met = (fast.best_epoch >= TARGET_TRAIN and ratio >= TARGET_RATIO
           and inference >= TARGET_INFER)
    print(f"targets {'met' if met else 'NOT met'} (samples/s: best epoch after a warm-up; "
          f"median step: samples/s of the median optimisation step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
