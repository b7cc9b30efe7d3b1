"""Does transferring at every period beat transferring once? (``make bench-continual``)

CTNet's claim (its Table 3) is that refreshing the frozen source tower with the source model
retrained on each period's source rows (``mode: continual``) beats keeping the first
period's source tower while the target tower goes on learning (``mode: once``). This
benchmark runs each split in both modes, with :data:`PERIODS` periods and otherwise
``bench_quality``'s one setting (:func:`bench_quality.base_config`: the same model, epochs
rule, lr grid, source cap and seeds), and tabulates per split, strategy and period the test
AUC of continual minus once: its mean over seeds, the 95 % t interval of that mean over
seeds, and at how many seeds continual is ahead. Period ``p``'s model is scored on period
``p + 1``'s target rows, the last period's on the test set (the runner's protocol).

Period 0 trains the same way in both modes (both transfer there), so a difference there
comes only from the grid point each mode chose: tuning keeps the point with the best
validation AUC of the *last* period's model, and each mode tunes for itself, with equal
effort. The chosen points are printed beside the figures.

Splits: the MovieLens-1M splits of ``bench_quality`` by default (all 11 genres; the
continual target of issue #13 speaks of ``ml1m-animation`` and ``ml1m-documentary``), or
``--splits`` (any of its built-in names). Strategies: ``ctnet`` by default, ``--strategies``
for others with source models (``ctnet_cold``, ``diit``, ``ecat``, ...).

Output in ``--out`` (default ``bench-continual/``): ``splits/<split>.<mode>.json`` per run
(written atomically and reused when its settings did not change, as ``bench_quality``'s),
``summary.json`` and ``summary.txt``.

``--quick`` runs 2 synthetic splits, 2 seeds, in under a minute (the test suite runs it);
its numbers mean nothing.

Usage: ``python benchmarks/bench_continual.py [--quick] [--seeds 5] [--splits a,b]
[--strategies a,b] [--jobs N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import (
    SEEDS,
    builtin_splits,
    interval_verdict,
    pick_splits,
    quick_splits,
    run_all_or_only,
    time_line,
)
from scipy import stats

from graphsel._runtime import usable_cpus
from graphsel._table import format_table
from graphsel.data.io import atomic_path
from graphsel.errors import InputError
from graphsel.transfer.config import ExperimentConfig
from graphsel.transfer.protocol.results import VERDICTS
from graphsel.transfer.protocol.split import MODES

PERIODS = 3
STRATEGIES = ("ctnet",)
CONTINUAL, ONCE = MODES


def mode_splits(splits: dict[str, ExperimentConfig], strategies: Sequence[str],
                seeds: int | None = None) -> dict[str, ExperimentConfig]:
    """``<split>.<mode>`` for each split and mode: the split's config with :data:`PERIODS`
    periods, that mode and ``strategies`` (and ``seeds`` when given)."""
    runs = {}
    for name, config in splits.items():
        for mode in (CONTINUAL, ONCE):
            protocol = dataclasses.replace(config.protocol, periods=PERIODS, mode=mode)
            runs[f"{name}.{mode}"] = dataclasses.replace(
                config, protocol=protocol, strategies=tuple(strategies),
                seeds=seeds or config.seeds)
    return runs


def period_aucs(done: dict[str, Any], strategy: str) -> dict[tuple[int, int], float]:
    """A run's test AUC of ``strategy`` per ``(seed, period)``."""
    return {(r["seed"], r["period"]): r["auc"] for r in done["results"]["periods"]
            if r["strategy"] == strategy}


def _choice(done: dict[str, Any], strategy: str) -> str:
    """The grid point the run chose (the first seed's; later seeds reuse it)."""
    choice = next(e["choice"] for e in done["results"]["effort"] if e["strategy"] == strategy)
    return f"lr {choice['lr']:g}" + (", domain" if choice["domain_feature"] else "")


def period_differences(continual: dict[str, Any], once: dict[str, Any],
                       strategy: str) -> list[dict[str, Any]]:
    """Per period of one split's two runs: the mean test AUC of each mode, continual minus
    once (``diff``, the mean over seeds of the per-seed differences), its 95 % t interval
    over seeds (``ci95``; ``[diff, diff]`` with one seed or equal differences), the seeds
    where continual is ahead, and the verdict of the interval."""
    a, b = period_aucs(continual, strategy), period_aucs(once, strategy)
    if a.keys() != b.keys():
        raise InputError(f"{strategy}: the continual and once runs have other seeds or periods")
    rows = []
    for period in sorted({p for _, p in a}):
        seeds = sorted(s for s, p in a if p == period)
        diffs = np.array([a[s, period] - b[s, period] for s in seeds])
        mean = float(diffs.mean())
        spread = float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0
        half = (float(stats.t.ppf(0.975, len(diffs) - 1)) * spread / math.sqrt(len(diffs))
                if spread > 0 else 0.0)
        ci95 = [round(mean - half, 6), round(mean + half, 6)]
        rows.append({"period": period, "seeds": len(seeds),
                     CONTINUAL: round(float(np.mean([a[s, period] for s in seeds])), 6),
                     ONCE: round(float(np.mean([b[s, period] for s in seeds])), 6),
                     "diff": round(mean, 6), "ci95": ci95, "ahead": int((diffs > 0).sum()),
                     "verdict": interval_verdict(ci95)})
    return rows


def summarize(splits: Sequence[str], runs: dict[str, dict[str, Any]],
              strategies: Sequence[str]) -> dict[str, Any]:
    """``{"splits": {split: {strategy: {"periods": [...], "choice": {mode: point}}}},
    "periods": {strategy: [...]}}``: each split's :func:`period_differences` and each mode's
    chosen grid point, and per strategy and period over the splits: win / tie / loss of
    continual against once and the mean difference."""
    per_split: dict[str, Any] = {}
    for split in splits:
        continual, once = runs[f"{split}.{CONTINUAL}"], runs[f"{split}.{ONCE}"]
        per_split[split] = {strategy: {
            "periods": period_differences(continual, once, strategy),
            "choice": {CONTINUAL: _choice(continual, strategy), ONCE: _choice(once, strategy)}}
            for strategy in strategies}
    overall: dict[str, Any] = {}
    for strategy in strategies:
        rows = [row for split in splits for row in per_split[split][strategy]["periods"]]
        overall[strategy] = [{
            "period": period,
            **{v: sum(r["verdict"] == v for r in rows if r["period"] == period) for v in VERDICTS},
            "mean_diff": round(float(np.mean([r["diff"] for r in rows if r["period"] == period])),
                               6)}
            for period in sorted({r["period"] for r in rows})]
    return {"splits": per_split, "periods": overall}


def summary_tables(summary: dict[str, Any]) -> str:
    overall = format_table(
        ["strategy", "period", "continual vs once W/T/L", "mean diff"],
        [[strategy, row["period"], "/".join(str(row[v]) for v in VERDICTS),
          f"{row['mean_diff']:+.4f}"]
         for strategy, rows in summary["periods"].items() for row in rows],
        title="continual minus once, test AUC, over splits (W/T/L: 95% t interval over seeds)")
    rows = []
    for split, entries in summary["splits"].items():
        for strategy, entry in entries.items():
            for row in entry["periods"]:
                lo, hi = row["ci95"]
                rows.append([split, strategy, row["period"], row[ONCE], row[CONTINUAL],
                             f"{row['diff']:+.4f}", f"[{lo:+.4f}, {hi:+.4f}]",
                             f"{row['ahead']}/{row['seeds']}", row["verdict"],
                             entry["choice"][ONCE], entry["choice"][CONTINUAL]])
    per_split = format_table(
        ["split", "strategy", "period", "once AUC", "continual AUC", "diff", "95% CI",
         "ahead", "verdict", "once chose", "continual chose"], rows,
        title="per split and period (mean over seeds)")
    return f"{overall}\n\n{per_split}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 synthetic splits, 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, help=f"default {SEEDS}")
    parser.add_argument("--splits", default=None,
                        help="comma-separated built-in split names (default: the ml1m ones)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated (default {','.join(STRATEGIES)})")
    parser.add_argument("--jobs", type=int, default=usable_cpus(),
                        help="runs at once, one process each (default: usable CPUs)")
    parser.add_argument("--out", default="bench-continual", help="output folder")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)  # one run's process
    args = parser.parse_args(argv)
    strategies = [s for s in args.strategies.split(",") if s]
    try:
        if args.quick:
            splits = quick_splits()
        else:
            data = os.environ.get("GRAPHSEL_DATA")
            if not data:
                raise InputError("GRAPHSEL_DATA is not set (the shared data folder), or use "
                                 "--quick")
            splits = builtin_splits(data, SEEDS, strategies)
            splits = (pick_splits(splits, args.splits) if args.splits is not None else
                      {name: config for name, config in splits.items()
                       if name.startswith("ml1m-")})
        out = Path(args.out)
        start = time.perf_counter()
        done = run_all_or_only(mode_splits(splits, strategies, args.seeds), out, args.only,
                               sys.argv[1:] if argv is None else argv, args.jobs, __file__)
        if done is None:
            return 0
        summary = summarize(list(splits), done, strategies)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = time_line(done, "runs", args.jobs, time.perf_counter() - start)
    text = f"{summary_tables(summary)}\n\n{total}"
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps({"summary": summary, "runs": done}, indent=1))
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
