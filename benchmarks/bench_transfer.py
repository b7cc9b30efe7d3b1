"""Inference time of the transfer models: DIIT against CTNet (``make bench-transfer``).

DIIT (arXiv 2410.10835) claims 16.75% less inference time than CTNet: CTNet runs its frozen
source tower and the adapters at every prediction, DIIT's target model predicts alone. Here
the three models are built over the setup of ``bench_train.py`` (26 fields, 1M total
vocabulary, D=16, MLP 256-128-64) and :func:`~graphsel.transfer.predict` scores the same
rows with each, in the same run:

* ``base``: the base model (the target model alone; what DIIT's forward runs);
* ``ctnet``: :class:`~graphsel.transfer.CTNet`, source tower + GLU adapters + target tower;
* ``diit``: :class:`~graphsel.transfer.DIIT` with 3 source models.

Reported: the best of ``REPEATS`` passes after a warm-up (other processes on a shared
machine only slow a pass down), and DIIT's time relative to CTNet's. The weights are
untrained: inference time does not depend on their values.

``--small`` runs a tiny configuration in seconds (the tests use it); its numbers mean
nothing.

Usage: ``python benchmarks/bench_transfer.py [--small] [--threads 2]``
"""

from __future__ import annotations

import graphsel  # noqa: F401, I001  (first: the thread policy is set before torch/numpy load)

import os
import sys
import time

import numpy as np
import torch
from bench_train import BenchSetup, build, parse_options, synthetic

from graphsel.transfer import DIIT, CTNet, CTRDataset, predict

REPEATS = 3
NUM_SOURCES = 3


def best_rate(model: torch.nn.Module, data: CTRDataset) -> tuple[float, np.ndarray]:
    """Best samples/s of :func:`predict` over ``REPEATS`` passes after a warm-up, and the
    predictions."""
    predictions = predict(model, data)  # warm-up
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        predictions = predict(model, data)
        rates.append(len(data) / (time.perf_counter() - start))
    return max(rates), predictions


def models(setup: BenchSetup, seed: int) -> dict[str, torch.nn.Module]:
    """The base, CTNet and DIIT models, their target parts one and the same base model."""
    target = build(setup, sparse=True, seed=seed)
    sources = [build(setup, sparse=True, seed=seed + 1 + k) for k in range(NUM_SOURCES)]
    return {"base": target, "ctnet": CTNet(sources[0], target),
            "diit": DIIT(sources, target)}


def main(argv: list[str] | None = None) -> int:
    args, setup = parse_options(argv, __doc__)
    data = synthetic(setup, setup.infer_rows, args.seed)
    rates, predictions = {}, {}
    for name, model in models(setup, args.seed).items():
        rates[name], predictions[name] = best_rate(model, data)
    if not np.array_equal(predictions["diit"], predictions["base"]):
        raise AssertionError("DIIT's predictions differ from its target model's")

    print(f"bench_transfer: {setup.fields} fields, vocab {setup.total_vocab:,}, "
          f"D={setup.embed_dim}, MLP {'-'.join(map(str, setup.hidden))}, "
          f"{len(data):,} rows, {args.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
          + (" [--small: numbers are not meaningful]" if args.small else ""))
    print(f"| {'model':<34} | {'samples/s':>11} | {'s per 1M rows':>13} | "
          f"{'time vs ctnet':>13} |")
    print(f"|{'-' * 36}|{'-' * 13}|{'-' * 15}|{'-' * 15}|")
    labels = {"base": "base (target model alone)", "ctnet": "ctnet (source tower + adapters)",
              "diit": f"diit ({NUM_SOURCES} sources, target predicts)"}
    for name, rate in rates.items():
        print(f"| {labels[name]:<34} | {rate:>11,.0f} | {1e6 / rate:>13.3f} | "
              f"{rates['ctnet'] / rate:>13.1%} |")
    saving = 1.0 - rates["ctnet"] / rates["diit"]
    print(f"diit inference time is {saving:.1%} less than ctnet's (the paper: 16.75% less)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
