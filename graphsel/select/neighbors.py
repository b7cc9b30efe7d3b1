"""Neighbour scoring: how close is each source candidate to the target samples?

Samples are vectors (by default :func:`graphsel.graph.embed.sample_vectors`, graph factors of their
user and item). The target samples are the database ``xb`` of a FAISS index and the
candidates are the queries ``xq``; a candidate's ``knn_score`` is the mean cosine similarity
to its ``k`` nearest target samples.

Which side is indexed: the target side. It is the small one (thousands to a few hundred
thousand rows against millions of candidates), so the index is cheap to build and to hold,
and every candidate asks for its own ``k`` neighbours, which is the score we need. Indexing
the candidates instead would answer the opposite question (which candidates are near a
target sample) and leave candidates that nobody asks for without a score.

Index types (``index=`` factory strings, as in FAISS):

===============  ===========================================================================
``"Flat"``       exact inner product (brute force); the baseline of every recall figure
``"HNSW<M>"``    graph index, e.g. ``"HNSW32"``; ``ef_search`` trades speed for recall
``"IVF<n>,Flat"``  ``n`` k-means lists, ``nprobe`` of them scanned per query; the lists hold
                 fp16 copies of the rows, scanned for the best ``k + 2``, which are
                 re-scored exactly in float32: a float32 scan's neighbours and scores
                 (on every one of 200,000 benchmark queries) in 0.75x its CPU time
                 (:data:`IVF_STORAGE`)
``"LSH"``        random-hyperplane (SimHash) codes of ``lsh_nbits`` bits searched by Hamming
                 distance; FAISS's LSH is binary, so its Hamming distances are no cosine:
                 the ``lsh_rerank * k`` Hamming neighbours are re-ranked by exact inner
                 product and the score is that exact cosine, comparable with the others
``"auto"``       ``"Flat"`` for fewer than :data:`AUTO_FLAT_MAX` target samples and at most
                 :data:`AUTO_FLAT_WORK` query-target pairs, else
                 ``"IVF<n>,Flat"`` with ``n ~ sqrt(N_tgt)`` (the default; see
                 ``benchmarks/bench_select.py`` for the measurements behind it), which
                 scans the fewest lists per query that reach recall@k
                 :data:`TUNED_RECALL` on a sample of the candidates (:func:`tune_nprobe`)
===============  ===========================================================================

All vectors are L2-normalised first, so inner product is cosine similarity.

:meth:`NeighborScorer.fit` on logs searches exactly without any FAISS index when ``index`` is
``"auto"`` or ``"Flat"`` and the target has at most :data:`GROUPED_MAX_GROUPS` distinct
items (or users): :class:`GroupedSearch` uses that a sample vector is a user half plus an
item half (ML-1M Documentary, 990k candidates against 7,910 target rows on 110 movies:
brute force's scores in 1.0-1.4 s on two threads, where ``IVF64`` took 2.7-3.3 s at recall@10
0.94).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError, check_choice, check_integer, choice_error
from graphsel.graph.embed import NORMALIZATIONS, sample_halves, stack_halves
from graphsel.select.stage import (
    ParamError,
    RuleMixin,
    Score,
    SelectionContext,
    SelectionRule,
    SelectionStage,
    StageDetails,
    register_stage,
)

__all__ = [
    "AUTO_FLAT_MAX",
    "AUTO_FLAT_WORK",
    "GROUPED_MAX_ENTRIES",
    "GROUPED_MAX_GROUPS",
    "INDEX_CHOICES",
    "IVF_MARGIN",
    "IVF_STORAGE",
    "TUNED_RECALL",
    "TUNING_QUERIES",
    "GroupedSearch",
    "NeighborReport",
    "NeighborScorer",
    "build_index",
    "default_nprobe",
    "exact_knn",
    "grouping_side",
    "ivf_lists",
    "knn_search",
    "neighbor_scores",
    "nprobe_ladder",
    "resolve_index",
    "search_index",
    "tune_nprobe",
    "tuning_rows",
    "unit_rows",
]

INDEX_CHOICES: tuple[str, ...] = ("Flat", "HNSW32", "IVF<n>,Flat", "LSH", "auto")
"""The index strings :func:`knn_search` accepts (``HNSW`` takes any ``M``, ``IVF`` any ``n``)."""

AUTO_FLAT_MAX = 20_000
"""Below this many target samples ``index="auto"`` may be exact: brute force is fast enough."""

AUTO_FLAT_WORK = 1_000_000_000
"""Above this many query-database pairs ``index="auto"`` is IVF even for a small database
(ML-1M: 992k candidates x 7.9k target rows take 35 CPU seconds with Flat, 7 with IVF64)."""

IVF_STORAGE = ",SQfp16,RFlat"
"""What an ``IVF<n>,Flat`` index holds in its lists instead of FAISS's ``,Flat``: fp16 codes
(``SQfp16``), which a query scans for its best ``k + IVF_MARGIN`` rows, and the float32 rows
(``RFlat``), which re-score those exactly and keep the best ``k``. The neighbours and scores
are a float32 scan's unless fp16 rounding (a relative 5e-4 per component) pushes one of the
``k`` below rank ``k + IVF_MARGIN``. Measured in ``benchmarks/bench_select.py``'s setting
(200,000 of the 1M candidates x 50k targets, d = 32, IVF256, nprobe 13, one thread, best of
3, load 8): the same neighbour set as ``IVF256,Flat`` for every query, in 0.75x its CPU time
(fp16 rows scan faster); without the margin, 0.47% of the queries differ by a neighbour."""

IVF_MARGIN = 2
"""Rows beyond ``k`` that an ``IVF<n>,Flat`` search re-scores exactly (see :data:`IVF_STORAGE`)."""

_INDEX_PATTERN = re.compile(r"^(?:Flat|HNSW(?P<m>\d+)|IVF(?P<nlist>\d+),Flat|LSH)$")


def resolve_index(index: str, n_database: int, n_queries: int = 0) -> str:
    """The concrete factory string for ``index``, ``n_database`` vectors, ``n_queries`` queries.

    ``"auto"`` is exact (``Flat``) while the brute-force work ``n_database * n_queries`` stays
    under :data:`AUTO_FLAT_WORK` and the database under :data:`AUTO_FLAT_MAX`.

    >>> resolve_index("auto", 1_000), resolve_index("auto", 50_000)
    ('Flat', 'IVF256,Flat')
    >>> resolve_index("auto", 8_000, n_queries=1_000_000)
    'IVF64,Flat'
    >>> resolve_index("hnsw32", 10)
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: Could not resolve index 'hnsw32' among ['Flat', 'HNSW32', \
'IVF<n>,Flat', 'LSH', 'auto']

    Raises:
        InputError: for any other string, listing :data:`INDEX_CHOICES`.
    """
    if index == "auto":
        exact = n_database < AUTO_FLAT_MAX and n_database * n_queries <= AUTO_FLAT_WORK
        return "Flat" if exact else f"IVF{ivf_lists(n_database)},Flat"
    match = _INDEX_PATTERN.match(index) if isinstance(index, str) else None
    if match is None or match["m"] == "0" or match["nlist"] == "0":
        raise choice_error("index", index, INDEX_CHOICES)
    return index


def ivf_lists(n_database: int) -> int:
    """IVF list count for ``n_database`` vectors: the power of two nearest ``sqrt(N)``,
    lowered until every list has the 39 training points FAISS's k-means asks for.

    FAISS's usual ``4-16 sqrt(N)`` suits many queries on a large database; here the
    database is the small side and a million candidates each pay for the coarse search over
    all lists, so fewer, larger lists are as fast and as accurate (bench_select.py, 1M
    candidates x 50k targets, one run at load 2.7-3.3: IVF256 nprobe 13 recall@10 0.966 in
    11.7 CPU seconds, IVF1024 nprobe 32 recall@10 0.957 in 14.1, k-means included).

    >>> ivf_lists(50_000), ivf_lists(2_000)
    (256, 32)
    """
    nlist = 2 ** max(0, round(math.log2(math.sqrt(max(n_database, 1)))))
    while nlist > 1 and n_database < 39 * nlist:
        nlist //= 2
    return nlist


def default_nprobe(nlist: int) -> int:
    """IVF lists scanned per query by an index :func:`build_index` builds without ``nprobe``:
    ``nlist / 24`` rounded up, at least 8 (or all). :func:`knn_search` and
    :class:`NeighborScorer` tune it on their queries instead (:func:`tune_nprobe`).

    Measured in ``benchmarks/bench_select.py`` on clustered data (1M candidates x 50k
    targets, one process, load 1.7-3): IVF256 reaches recall@10 0.957 against Flat at
    nprobe 11 in 9.4-10.6 CPU seconds, 0.966 at nprobe 13 in 11.0-11.7 (the default
    before, ``nlist / 20``), 0.952 at nprobe 10; IVF512 0.965 at nprobe 22; on 32 lists, 8
    probes reach 0.986. The selections of the synthetic default at scale 10 (90,000 target
    rows: IVF256) are the same at nprobe 11 and 13.
    """
    return min(nlist, max(8, math.ceil(nlist / 24)))


TUNED_RECALL = 0.95
"""recall@k an IVF index's ``nprobe`` is tuned to when none is given (:func:`tune_nprobe`)."""

TUNING_QUERIES = 2_000
"""Candidates (seeded, :func:`tuning_rows`) on which :func:`tune_nprobe` measures recall."""

_TIE = 1e-6
"""Similarity slack of a found neighbour against the exact ``k``-th (float32 rounding)."""


def nprobe_ladder(nlist: int) -> list[int]:
    """The ``nprobe`` values :func:`tune_nprobe` tries, about ``sqrt(2)`` apart, up to ``nlist``.

    >>> nprobe_ladder(64)
    [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64]
    """
    steps = math.ceil(2 * math.log2(max(nlist, 1)))
    return sorted({min(nlist, round(2 ** (step / 2))) for step in range(steps + 1)})


def tuning_rows(n_queries: int, random_state: int = 0) -> np.ndarray:
    """Sorted, seeded rows of the :data:`TUNING_QUERIES` queries :func:`tune_nprobe` measures
    (every row when there are fewer). Both engines tune on the same candidates."""
    if n_queries <= TUNING_QUERIES:
        return np.arange(n_queries, dtype=np.int64)
    return np.sort(np.random.default_rng(random_state).choice(n_queries, TUNING_QUERIES,
                                                              replace=False))


def tune_nprobe(faiss_index: faiss.Index, key: str, xb: np.ndarray, xq: np.ndarray, k: int,
                *, recall: float = TUNED_RECALL,
                n_threads: int | None = None) -> tuple[int, float]:
    """Sets the fewest IVF lists per query (:func:`nprobe_ladder`) that reach ``recall``.

    Recall is measured on the queries ``xq`` (a sample of the candidates,
    :func:`tuning_rows`) against an exact search: the share of the ``k`` neighbours found
    that are at least as similar as the exact ``k``-th, so that ties between equal vectors
    (repeated users or items) do not count as misses. A fixed share of the lists is not
    needed: how many lists hold a query's neighbours depends on how the data cluster, not on
    their number (synthetic default, 6M source rows, IVF512: 3 lists reach 0.959, where the
    fixed share ``nlist / 24`` scanned 22; the 1M x 50k benchmark needs 11 of 256).

    Args:
        faiss_index: an ``IVF`` index of ``xb`` (:func:`build_index`); its ``nprobe`` is set.
        key: its factory string.
        xb: ``(N_tgt, d)`` its L2-normalised rows.
        xq: ``(n, d)`` the queries measured; L2-normalised here.
        k: neighbours per query.
        recall: the recall to reach. Defaults to :data:`TUNED_RECALL`.
        n_threads: FAISS threads. Defaults to FAISS's setting.

    Returns:
        ``(nprobe, recall)``: the value set (all lists when none on the ladder reaches
        ``recall``) and the recall measured at it.
    """
    xq = _unit(xq, "xq")
    k = min(k, len(xb))
    with _search_threads(n_threads):
        exact, _ = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
    kth = exact[:, k - 1:k] - _TIE
    ivf = faiss.extract_index_ivf(faiss_index)
    for nprobe in nprobe_ladder(ivf.nlist):
        ivf.nprobe = nprobe
        found, _ = search_index(faiss_index, key, xb, xq, k, n_threads=n_threads)
        reached = float(np.mean(found >= kth))  # a missing neighbour (NaN) is a miss
        if reached >= recall:
            break
    return int(ivf.nprobe), reached


def _tuned(faiss_index: faiss.Index, key: str, xb: np.ndarray, nprobe: int | None,
           queries: Callable[[np.ndarray], np.ndarray], n_queries: int, k: int, *,
           random_state: int, n_threads: int | None) -> NeighborReport:
    """Tunes an IVF index's ``nprobe`` on the queries of :func:`tuning_rows` unless ``nprobe``
    was given (:func:`tune_nprobe`); the report of the index searched."""
    if not key.startswith("IVF") or nprobe is not None:
        return NeighborReport(key)
    rows = tuning_rows(n_queries, random_state)
    tuned, recall = tune_nprobe(faiss_index, key, xb, queries(rows), k, n_threads=n_threads)
    return NeighborReport(key, nprobe=tuned, recall=round(recall, 4), tuned_on=len(rows))


def exact_knn(xb: np.ndarray, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force ``k`` largest inner products in numpy: the oracle of the tests.

    Args:
        xb: ``(N_tgt, d)`` database.
        xq: ``(N_cand, d)`` queries.
        k: neighbours per query (at most ``N_tgt``).

    Returns:
        ``D, I``, ``(N_cand, k)`` similarities (descending) and database rows.
    """
    similarity = np.asarray(xq, dtype=np.float64) @ np.asarray(xb, dtype=np.float64).T
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(similarity, order, axis=1), order


@contextmanager
def _faiss_threads(n_threads: int | None) -> Iterator[None]:
    if n_threads is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _unit(x: np.ndarray, name: str) -> np.ndarray:
    x = np.array(_checked(x, name), copy=True)
    faiss.normalize_L2(x)
    return x


def _checked(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a C-ordered float32 matrix (no copy when it is one), checked."""
    x = np.asarray(x, dtype=np.float32, order="C")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{name} has shape {x.shape}, expected a non-empty (N, d) matrix")
    if not np.isfinite(x).all():
        raise InputError(f"{name} holds NaN or infinite values")
    return x


def unit_rows(x: np.ndarray, name: str = "xb") -> np.ndarray:
    """``x`` as C-ordered float32 rows of norm 1 (a copy), as the index and queries hold them.

    Raises:
        InputError: for an empty or non-2-D matrix, or NaN / infinite values (naming ``name``).
    """
    return _unit(x, name)


def build_index(
    xb: np.ndarray, key: str, *, nprobe: int | None = None, ef_search: int = 64,
    lsh_nbits: int | None = None, random_state: int = 0, n_threads: int | None = None,
) -> faiss.Index:
    """The FAISS index :func:`knn_search` builds over the database ``xb`` (unit rows).

    Args:
        xb: ``(N_tgt, d)`` float32 unit rows (:func:`unit_rows`).
        key: a resolved factory string (:func:`resolve_index`).
        nprobe, ef_search, lsh_nbits, random_state, n_threads: as :func:`knn_search`'s.

    Raises:
        InputError: for too few vectors to train an IVF index.
    """
    with _search_threads(n_threads):
        return _build_index(xb, key, nprobe=nprobe, ef_search=ef_search, lsh_nbits=lsh_nbits,
                            random_state=random_state)


def _build_index(
    xb: np.ndarray, key: str, *, nprobe: int | None, ef_search: int, lsh_nbits: int | None,
    random_state: int,
) -> faiss.Index:
    d = xb.shape[1]
    index: faiss.Index
    if key == "LSH":
        # index_factory's "LSH" has exactly d bits and insists on the L2 metric; SimHash with
        # a (seeded-by-FAISS) random rotation to lsh_nbits bits is what approximates cosine.
        index = faiss.IndexLSH(d, lsh_nbits or 4 * d, True, False)
    elif key.startswith("IVF"):
        index = faiss.index_factory(d, key.replace(",Flat", IVF_STORAGE),
                                    faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.index_factory(d, key, faiss.METRIC_INNER_PRODUCT)
    if key.startswith("IVF"):
        ivf = faiss.extract_index_ivf(index)
        if len(xb) < ivf.nlist:
            raise InputError(f"index {key!r} needs at least {ivf.nlist} database vectors to "
                             f"train its lists, got {len(xb)}; use fewer lists or 'Flat'")
        ivf.cp.seed = random_state
        ivf.nprobe = min(ivf.nlist, nprobe or default_nprobe(ivf.nlist))
    if key.startswith("HNSW"):
        hnsw: Any = index  # the factory returns the HNSW subclass; faiss's stubs say Index
        hnsw.hnsw.efSearch = ef_search
    if not index.is_trained:
        index.train(xb)
    index.add(xb)
    return index


def knn_search(
    xb: np.ndarray,
    xq: np.ndarray,
    k: int = 10,
    index: str = "auto",
    *,
    nprobe: int | None = None,
    ef_search: int = 64,
    lsh_nbits: int | None = None,
    lsh_rerank: int = 10,
    batch_size: int = 65_536,
    n_threads: int | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar database rows of each query by cosine similarity.

    Args:
        xb: ``(N_tgt, d)`` database vectors (the target samples); L2-normalised here.
        xq: ``(N_cand, d)`` query vectors (the candidates); L2-normalised here.
        k: neighbours per query. Defaults to 10. Capped at ``N_tgt``.
        index: a factory string of :data:`INDEX_CHOICES`. Defaults to ``"auto"``.
        nprobe: IVF lists scanned per query. Defaults to the fewest that reach recall@k
            :data:`TUNED_RECALL` on a sample of the queries (:func:`tune_nprobe`).
        ef_search: HNSW search breadth. Defaults to 64.
        lsh_nbits: LSH code length. Defaults to ``4 * d``.
        lsh_rerank: LSH fetches ``lsh_rerank * k`` Hamming neighbours and keeps the ``k``
            best by exact inner product. Defaults to 10.
        batch_size: queries searched at once (bounds FAISS's per-call buffers and the LSH
            shortlists). Defaults to 65536.
        n_threads: FAISS OpenMP threads during the call (restored after). Defaults to
            FAISS's current setting. BLAS runs single-threaded inside them.
        random_state: seed of IVF's k-means. Defaults to 0.

    Returns:
        ``D, I``: ``(N_cand, k)`` float32 cosine similarities, descending, and int64 database
        rows. A query for which an IVF probe finds fewer than ``k`` rows gets ``I = -1`` and
        ``D = nan`` in the missing slots.

    Raises:
        InputError: for an unknown index string, bad shapes, or too few vectors to train.
    """
    xb = _unit(xb, "xb")
    key = resolve_index(index, len(xb), len(xq))
    with _search_threads(n_threads):
        faiss_index = _build_index(xb, key, nprobe=nprobe, ef_search=ef_search,
                                   lsh_nbits=lsh_nbits, random_state=random_state)
    _tuned(faiss_index, key, xb, nprobe, lambda rows: xq[rows], len(xq), k,
           random_state=random_state, n_threads=n_threads)
    return search_index(faiss_index, key, xb, xq, k, lsh_rerank=lsh_rerank,
                        batch_size=batch_size, n_threads=n_threads)


@contextmanager
def _search_threads(n_threads: int | None) -> Iterator[None]:
    # FAISS splits the queries over its OpenMP threads and each one runs the coarse
    # quantizer's matrix product; BLAS threads of their own on top oversubscribe the cores
    # (ML-1M, 992k queries on 64 lists: 5.7 CPU seconds of assignment instead of 0.8).
    # FAISS's OpenBLAS uses OpenMP, so limiting BLAS also sets OpenMP's thread count to 1:
    # FAISS's own threads are set again inside the limit (they keep BLAS at 1 per thread).
    threads = n_threads or faiss.omp_get_max_threads()
    with threadpool_limits(1, user_api="blas"), _faiss_threads(threads):
        yield


def search_index(
    faiss_index: faiss.Index, key: str, xb: np.ndarray, xq: np.ndarray, k: int = 10, *,
    lsh_rerank: int = 10, batch_size: int = 65_536, n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn_search`'s search on an index :func:`build_index` built (e.g. one sent to
    other processes with ``faiss.serialize_index``): ``D, I`` of ``xq`` against it.

    Args:
        faiss_index: the index of ``xb``.
        key: its factory string (resolved, not ``"auto"``).
        xb: ``(N_tgt, d)`` the L2-normalised database (``"LSH"`` re-ranks against it).
        xq: ``(N_cand, d)`` queries; L2-normalised here.
        k, lsh_rerank, batch_size, n_threads: as :func:`knn_search`'s.
    """
    # the queries are normalised a batch at a time: a copy of all of them would be the
    # largest array of the search (1M candidates, d=32: 128 MB)
    xq = _checked(xq, "xq")
    if xb.shape[1] != xq.shape[1]:
        raise InputError(f"xb has dimension {xb.shape[1]} but xq has {xq.shape[1]}")
    k = min(check_integer("k", k, 1), len(xb))
    batch_size = check_integer("batch_size", batch_size, 1)
    fetch = min(len(xb), k * check_integer("lsh_rerank", lsh_rerank, 1)) if key == "LSH" else k
    distances = np.empty((len(xq), k), dtype=np.float32)
    labels = np.empty((len(xq), k), dtype=np.int64)
    if key.startswith("IVF"):
        # FAISS re-scores int(k * k_factor) rows (k_factor is a float32): k + IVF_MARGIN
        refine: Any = faiss_index  # an IndexRefineFlat; faiss's stubs say Index
        refine.k_factor = (k + IVF_MARGIN + 0.5) / k
    with _search_threads(n_threads):
        for start in range(0, len(xq), batch_size):
            rows = slice(start, start + batch_size)
            queries = _unit(xq[rows], "xq")
            found_d, found_i = faiss_index.search(queries, fetch)
            if key == "LSH":
                found_d, found_i = _rerank(xb, queries, found_i, k)
            distances[rows], labels[rows] = found_d, found_i
    distances[labels < 0] = np.nan
    return distances, labels


def _rerank(
    xb: np.ndarray, xq: np.ndarray, shortlist: np.ndarray, k: int, chunk: int = 4_096
) -> tuple[np.ndarray, np.ndarray]:
    """Keeps the ``k`` of each query's ``shortlist`` rows with the largest exact inner product.

    Queries go ``chunk`` at a time: the gathered ``(chunk, S, d)`` rows stay tens of MB.
    """
    similarity = np.empty(shortlist.shape, dtype=np.float32)
    for start in range(0, len(xq), chunk):
        rows = slice(start, start + chunk)
        similarity[rows] = np.einsum("qd,qsd->qs", xq[rows], xb[np.maximum(shortlist[rows], 0)])
    similarity[shortlist < 0] = -np.inf
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return (np.take_along_axis(similarity, order, axis=1),
            np.take_along_axis(shortlist, order, axis=1))


def neighbor_scores(similarity: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
    """``knn_score``: each query's mean similarity over the neighbours found.

    Args:
        similarity: ``(N, k)`` ``D`` of :func:`knn_search`.
        neighbors: ``(N, k)`` ``I`` (``-1``: none found).

    Returns:
        ``(N,)`` float32; -1 for a query with no neighbour found.
    """
    score = np.empty(len(similarity), dtype=np.float32)
    # in blocks of rows: the float64 (N, k) sums of all rows at once would be the largest
    # array of the stage
    for start in range(0, len(similarity), 65_536):
        rows = slice(start, start + 65_536)
        found = neighbors[rows] >= 0
        total = np.where(found, similarity[rows], 0.0).sum(axis=1)
        # A candidate whose IVF probes found nothing is as dissimilar as cosine allows.
        score[rows] = np.divide(total, found.sum(axis=1), out=np.full(len(total), -1.0),
                                where=found.any(axis=1))
    return score


# --------------------------------------------------------------------------------------------
# Exact search grouped by the target's items (or users)
# --------------------------------------------------------------------------------------------

GROUPED_MAX_GROUPS = 256
"""The most distinct target items (or users) for which an exact search of a log's samples is
grouped by them (:class:`GroupedSearch`). Measured on 1M queries against 8,000 target rows
(6,000 users, 4,000 items, d = 32, two threads, load 1.0): 64 / 128 / 256 / 512 groups took
1.33 / 1.64 / 2.38 / 3.46 s, FAISS's ``"auto"`` index (IVF64, approximate) 2.7 s."""

GROUPED_MAX_ENTRIES = 20_000_000
"""The largest ``nodes x groups x k`` table a :class:`GroupedSearch` may hold (float32 and
int32: 160 MB at this bound)."""


_GROUPED_ROWS = 1 << 16
"""Candidates :meth:`NeighborScorer.fit` hands a :class:`GroupedSearch` at once (its threads
split them further); their ``D`` and ``I`` take 12 bytes per row and neighbour."""

_GROUPED_BLOCK = 1 << 18
"""Elements of the largest temporary of a :meth:`GroupedSearch.search` batch. With
``_GROUPED_ROWS`` (ML-1M Documentary, 1M candidates, two threads, load about 1): 1 << 16 and
1 << 18 peaked at 745-765 MiB against 806-816 MiB with 1 << 18 and 1 << 20 (three runs
each), the stage taking 1.11-1.17 s against 1.08-1.15 s."""


def grouping_side(target_user: np.ndarray, target_item: np.ndarray, num_users: int,
                  num_items: int, k: int) -> str | None:
    """Which target side an exact search of sample vectors groups by: ``"item"``, ``"user"``
    or None (neither fits :data:`GROUPED_MAX_GROUPS` and :data:`GROUPED_MAX_ENTRIES`).

    The side with fewer distinct target values is the groups; the table holds, per node of
    the other side (all ``num_users`` or ``num_items`` of the index) and group, the ``k``
    best rows.

    >>> grouping_side(np.array([0, 1, 2]), np.array([5, 5, 6]), 10, 10, k=2)
    'item'
    >>> grouping_side(np.arange(300), np.arange(300), 300, 300, k=2) is None
    True
    """
    sides = sorted(((len(np.unique(target_item)), "item", num_users),
                    (len(np.unique(target_user)), "user", num_items)))
    groups, side, other_nodes = sides[0]
    if groups > GROUPED_MAX_GROUPS or other_nodes * groups * k > GROUPED_MAX_ENTRIES:
        return None
    return side


@dataclass(frozen=True, eq=False)
class GroupedSearch:
    """Exact ``k`` nearest target samples of sample vectors made of two halves, by groups.

    A sample is ``[a[p], b[g]]`` (:func:`graphsel.graph.embed.sample_halves`: a user half and
    an item half), so a query ``(p, g)`` and a target row ``(p', g')`` have inner product
    ``a[p] @ a[p'] + b[g] @ b[g']``. Group the target rows by ``g'`` (a target domain with
    few items: a genre, a category, an ad slot): the best rows of group ``g'`` for a query
    depend on its ``p`` alone, so they are computed once per node ``p`` (:attr:`values`),
    and a query only adds ``b[g] @ b[g']`` per group. Only the ``k`` groups whose best row
    scores highest can hold a query's ``k`` nearest rows (any other group has ``k`` rows
    above all of its own), so a query ranks ``J`` group bests and then ``k x k`` rows,
    instead of scanning the target. The result is brute force's on L2-normalised vectors, up
    to float32 rounding (the halves are summed separately) and the order of equal
    similarities: a query with one zero half (a node without factors) has norm ``1/sqrt(2)``,
    so its similarities are scaled by ``sqrt(2)``, as normalising it would; target rows
    must have both halves (:meth:`for_samples` declines a target with a zero half).

    Attributes:
        values: ``(P, J, k)`` float32 ``a[p] @ a[p']`` of each node's best ``k`` rows in
            each group, descending; ``-inf`` beyond a group's rows.
        rows: ``(P, J, k)`` int32 target rows of those values; -1 beyond a group's rows.
        group_b: ``(J, d)`` the groups' ``b`` halves.
        b: ``(G, d)`` the ``b`` halves of every node of the query side.
        k: neighbours per query.
        a_zero: ``(P,)`` bool, the nodes whose ``a`` half is zero.
        side: ``"item"`` when ``b`` is the item half (the groups are target items),
            ``"user"`` when it is the user half.
    """

    values: np.ndarray
    rows: np.ndarray
    group_b: np.ndarray
    b: np.ndarray
    k: int
    a_zero: np.ndarray
    side: str = "item"

    @classmethod
    def for_samples(cls, user_factors: np.ndarray, item_factors: np.ndarray,
                    target_user: np.ndarray, target_item: np.ndarray, k: int, *,
                    n_threads: int | None = None) -> GroupedSearch | None:
        """The search of the target rows' sample vectors
        (:func:`~graphsel.graph.embed.sample_vectors` of these factors), grouped by the side
        :func:`grouping_side` picks; None when neither side fits its bounds."""
        side = grouping_side(target_user, target_item, len(user_factors), len(item_factors),
                             k)
        if side is None:
            return None
        users, items = sample_halves(user_factors, item_factors)
        if not (users[target_user].any(axis=1).all() and items[target_item].any(axis=1).all()):
            return None  # a target row of norm 1/sqrt(2): normalised, its halves weigh more
        if side == "item":
            search = cls.build(users, items, target_user, target_item, k, n_threads=n_threads)
        else:
            search = cls.build(items, users, target_item, target_user, k, n_threads=n_threads)
        return dataclasses.replace(search, side=side)

    def search_samples(self, user: np.ndarray, item: np.ndarray, *, batch_size: int = 65_536,
                       n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` of queries given as ``(N,)`` user and item codes."""
        query_a, query_b = (user, item) if self.side == "item" else (item, user)
        return self.search(query_a, query_b, batch_size=batch_size, n_threads=n_threads)

    @classmethod
    def build(cls, a: np.ndarray, b: np.ndarray, target_a: np.ndarray, target_b: np.ndarray,
              k: int, *, n_threads: int | None = None) -> GroupedSearch:
        """The tables for target rows ``(target_a, target_b)``.

        Args:
            a: ``(P, d_a)`` halves of the side that is not grouped (every node).
            b: ``(G, d_b)`` halves of the grouped side.
            target_a, target_b: ``(N_tgt,)`` codes of the target rows.
            k: neighbours per query, at most ``N_tgt``.
            n_threads: threads. Defaults to FAISS's setting.
        """
        order = np.argsort(target_b, kind="stable")
        groups, starts, counts = np.unique(target_b[order], return_index=True,
                                           return_counts=True)
        target_vectors = np.ascontiguousarray(a[target_a[order]], dtype=np.float32)
        values = np.full((len(a), len(groups), k), -np.inf, dtype=np.float32)
        rows = np.full((len(a), len(groups), k), -1, dtype=np.int32)
        # nodes a block at a time: (block, N_tgt) similarities stay near 16 MB
        block = max(1, 4_000_000 // len(order))

        def fill(start: int) -> None:
            nodes = slice(start, start + block)
            similarity = a[nodes] @ target_vectors.T
            for group, (first, count) in enumerate(zip(starts, counts)):
                part = similarity[:, first:first + count]
                m = min(k, count)
                best = (np.argpartition(-part, m - 1, axis=1)[:, :m] if count > m
                        else np.broadcast_to(np.arange(count), part.shape))
                found = np.take_along_axis(part, best, axis=1)
                ranked = np.argsort(-found, axis=1, kind="stable")
                values[nodes, group, :m] = np.take_along_axis(found, ranked, axis=1)
                rows[nodes, group, :m] = order[first + np.take_along_axis(best, ranked, axis=1)]

        _threaded(fill, range(0, len(a), block), n_threads)
        return cls(values, rows, np.ascontiguousarray(b[groups]), b, k,
                   np.logical_not(a.any(axis=1)))

    def search(self, query_a: np.ndarray, query_b: np.ndarray, *, batch_size: int = 65_536,
               n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``D, I`` of the queries ``(query_a, query_b)`` (codes), as :func:`knn_search`."""
        k = self.k
        distances = np.empty((len(query_a), k), dtype=np.float32)
        labels = np.empty((len(query_a), k), dtype=np.int64)
        n_groups = len(self.group_b)
        m = min(k, n_groups)
        # a batch's (B, J) and (B, k, k) temporaries stay near 1-2 MB each (ML-1M, 65,536
        # queries at once: 150 MB per thread)
        batch_size = max(1, min(batch_size, _GROUPED_BLOCK // max(n_groups, k * k)))
        b_zero = np.logical_not(self.b.any(axis=1))
        # the tables as (nodes x groups, k) rows: a query's m chosen groups are m rows
        values, rows = self.values.reshape(-1, k), self.rows.reshape(-1, k)

        def run(start: int) -> None:
            batch = slice(start, start + batch_size)
            nodes, query_nodes = query_a[batch], query_b[batch]
            near = self.b[query_nodes] @ self.group_b.T  # (B, J)
            best = near + self.values[nodes, :, 0]
            groups = (np.argpartition(best, n_groups - m, axis=1)[:, n_groups - m:]
                      if n_groups > m else np.broadcast_to(np.arange(n_groups), best.shape))
            cells = (nodes[:, None] * n_groups + groups).ravel()
            found = (np.take_along_axis(near, groups, axis=1)[:, :, None]
                     + values.take(cells, axis=0).reshape(len(nodes), m, k)
                     ).reshape(len(nodes), -1)
            found_rows = rows.take(cells, axis=0).reshape(len(nodes), -1)
            top = np.argpartition(found, found.shape[1] - k, axis=1)[:, found.shape[1] - k:]
            found = np.take_along_axis(found, top, axis=1)
            ranked = np.argsort(-found, axis=1, kind="stable")
            found = np.take_along_axis(found, ranked, axis=1)
            # a query with one zero half, normalised, is sqrt(2) times its halves' sum
            half = self.a_zero[nodes] != b_zero[query_nodes]
            found[half] *= np.float32(np.sqrt(2.0))
            distances[batch] = found
            labels[batch] = np.take_along_axis(np.take_along_axis(found_rows, top, axis=1),
                                               ranked, axis=1)

        _threaded(run, range(0, len(query_a), batch_size), n_threads)
        return distances, labels


def _threaded(work: Callable[[int], None], starts: range, n_threads: int | None) -> None:
    """``work(start)`` for every start, on ``n_threads`` threads (numpy releases the GIL in
    the products and partitions), BLAS single-threaded inside them."""
    threads = n_threads or faiss.omp_get_max_threads()
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, starts))  # list() re-raises a worker's exception here


@dataclass(frozen=True)
class NeighborReport(StageDetails):
    """What the neighbour scorer reports: ``index``, the FAISS factory string it used
    (``"Flat"``: exact); ``grouped_by``, the target side an exact search was grouped by
    (:class:`GroupedSearch`; None: a FAISS index searched); for an IVF index whose
    ``nprobe`` was tuned (:func:`tune_nprobe`), that ``nprobe``, the ``recall`` it reached
    and the candidates it was ``tuned_on``."""

    index: str
    grouped_by: str | None = None
    nprobe: int | None = None
    recall: float | None = None
    tuned_on: int | None = None

    def note(self) -> str:
        grouped = f", grouped by target {self.grouped_by}" if self.grouped_by else ""
        tuned = (f", nprobe {self.nprobe} (recall {self.recall:.3f} on {self.tuned_on:,} "
                 f"candidates)" if self.nprobe is not None else "")
        return f"index {self.index}{grouped}{tuned}"


@register_stage("knn")
class NeighborScorer(RuleMixin, SelectionStage):
    """Scores source candidates by their similarity to the target samples' neighbourhood.

    ``knn_score`` of a candidate = mean cosine similarity to its ``k`` nearest target samples
    (the target side is indexed, candidates query it; see the module docstring). A candidate
    is kept by exactly one rule on ``knn_score_`` (see :class:`graphsel.select.stage.RuleMixin`).
    The ``"knn"`` stage of :class:`~graphsel.select.pipeline.SampleSelector`.

    Args:
        index: FAISS factory string, one of :data:`INDEX_CHOICES`. Defaults to ``"auto"``.
        k: neighbours averaged per candidate, at most ``N_tgt`` (:meth:`check_inputs`).
            Defaults to 10.
        nprobe: IVF lists scanned per query. Defaults to the fewest that reach recall@k
            :data:`TUNED_RECALL` on a sample of the candidates (:func:`tune_nprobe`).
        ef_search: HNSW search breadth. Defaults to 64.
        lsh_nbits: LSH code bits. Defaults to ``4 * d``.
        lsh_rerank: LSH shortlist length as a multiple of ``k``. Defaults to 10.
        embedding_dim: graph factors per user / item when :meth:`fit` computes them
            (sample vectors have ``2 * embedding_dim`` dimensions). Defaults to 16.
        normalize: adjacency weighting for those factors, one of
            :data:`graphsel.graph.embed.NORMALIZATIONS`. Defaults to ``"degree"``.
        threshold: keep candidates with ``knn_score_ >= threshold``. Defaults to None.
        keep_quantile: keep the top fraction by ``knn_score_``. Defaults to None.
        budget: keep the top ``budget`` candidates. Defaults to None (with none of the three
            given, the candidates with ``knn_score_ >= 0.9`` are kept: :attr:`DEFAULT_RULE`).
        batch_size: candidates searched at once. Defaults to 65536.
        n_threads: FAISS threads during ``fit``. Defaults to FAISS's setting.
        random_state: seed of the SVD and of IVF's k-means. Defaults to 0.

    Attributes:
        knn_score_: ``(N_cand,)`` float32 mean similarity to the ``k`` nearest target samples.
        neighbors_: ``(N_cand, k)`` int32 target rows of those neighbours (``-1``: none).
        support_: ``(N_cand,)`` bool, the kept candidates (also :meth:`get_support`).
        index_key_: the factory string actually used (``"auto"`` resolved).
        report_: a :class:`NeighborReport`.

    >>> rng = np.random.default_rng(0)
    >>> scorer = NeighborScorer(index="Flat", k=3, budget=2)
    >>> xb = rng.normal(size=(50, 8))
    >>> xq = np.vstack([xb[:2] + 0.01, -xb[2:5]])
    >>> scorer.fit_arrays(xq, xb).get_support().tolist()
    [True, True, False, False, False]
    """

    DEFAULT_RULE = SelectionRule("threshold", 0.9)
    SCORE_RANGE = (-1.0, 1.0)  # a mean cosine similarity
    report_: NeighborReport
    SCORES = (Score("knn_score", "knn_score_"),)

    def __init__(
        self,
        index: str = "auto",
        k: int = 10,
        *,
        nprobe: int | None = None,
        ef_search: int = 64,
        lsh_nbits: int | None = None,
        lsh_rerank: int = 10,
        embedding_dim: int = 16,
        normalize: str = "degree",
        threshold: float | None = None,
        keep_quantile: float | None = None,
        budget: int | None = None,
        batch_size: int = 65_536,
        n_threads: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.index = index
        self.k = k
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.lsh_nbits = lsh_nbits
        self.lsh_rerank = lsh_rerank
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.threshold = threshold
        self.keep_quantile = keep_quantile
        self.budget = budget
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.random_state = random_state

    def check_params(self) -> None:
        self._selection_rule()
        resolve_index(self.index, n_database=AUTO_FLAT_MAX)
        check_integer("k", self.k, 1)
        check_integer("ef_search", self.ef_search, 1)
        check_integer("lsh_rerank", self.lsh_rerank, 1)
        check_integer("embedding_dim", self.embedding_dim, 1)
        check_integer("batch_size", self.batch_size, 1)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        for name in ("nprobe", "lsh_nbits", "n_threads"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), 1)

    def check_inputs(self, n_candidates: int, n_target: int) -> None:
        """``k`` neighbours need ``k`` target rows: with ``k >= N_tgt`` every score would be
        the mean similarity to the whole target, not to a neighbourhood.

        >>> NeighborScorer(k=100).check_inputs(1000, 90)
        Traceback (most recent call last):
        ...
        graphsel.select.stage.ParamError: knn.k 100 is more than the 90 target rows (valid: 1 to 90)
        """
        if n_target < 1:
            raise InputError("the knn stage needs at least 1 target row, got 0")
        if self.k > n_target:
            raise ParamError(self.name, "k", self.k, f"is more than the {n_target} target "
                             f"rows (valid: 1 to {n_target})")

    def fit(
        self,
        candidates: InteractionLog,
        target: InteractionLog,
        *,
        context: SelectionContext | None = None,
        user_factors: np.ndarray | None = None,
        item_factors: np.ndarray | None = None,
    ) -> NeighborScorer:
        """Scores every row of ``candidates`` against the rows of ``target``.

        Args:
            candidates: ``N_cand`` source rows (e.g. the graph-expansion candidates).
            target: ``N_tgt`` target rows, on the same :class:`IdIndex`.
            context: the selection's shared inputs; its graph factors
                (:meth:`SelectionContext.factors` with ``embedding_dim``, ``normalize``,
                ``random_state``). Defaults to a fresh one.
            user_factors: ``(U, d)`` user factors to use instead (without ``context``).
                Defaults to None.
            item_factors: ``(I, d)`` item factors, given together with ``user_factors``.

        Returns:
            self
        """
        self.check_params()
        self.check_inputs(len(candidates), len(target))
        context = SelectionContext.for_fit(target, context, user_factors, item_factors)
        factors = context.factors(candidates, self.embedding_dim, self.normalize,
                                  self.random_state)
        assert factors is not None  # embedding_dim >= 1 (check_params)
        user_factors, item_factors = factors
        grouped = self.grouped_search(user_factors, item_factors, target.user, target.item)
        if grouped is not None:
            return self._scored(
                len(candidates), _GROUPED_ROWS, NeighborReport("Flat", grouped.side),
                lambda rows: grouped.search_samples(
                    candidates.user[rows], candidates.item[rows], batch_size=self.batch_size,
                    n_threads=self.n_threads))
        # the candidates' vectors are made a batch at a time from the nodes' halves (all of
        # them at once: 128 bytes a row, the largest array of the stage)
        users, items = sample_halves(user_factors, item_factors)
        return self._faiss_scored(
            stack_halves(users, items, target.user, target.item), len(candidates),
            lambda rows: stack_halves(users, items, candidates.user[rows],
                                      candidates.item[rows]))

    def grouped_search(self, user_factors: np.ndarray, item_factors: np.ndarray,
                       target_user: np.ndarray, target_item: np.ndarray) -> GroupedSearch | None:
        """The exact search :meth:`fit` runs instead of a FAISS index when ``index`` is
        ``"auto"`` or ``"Flat"`` and the target has few items (or users): brute force's
        neighbours without its cost (:class:`GroupedSearch`). None when it does not apply."""
        if self.index not in ("auto", "Flat"):
            return None
        return GroupedSearch.for_samples(user_factors, item_factors, target_user, target_item,
                                         self.k, n_threads=self.n_threads)

    def fit_arrays(self, x_candidates: np.ndarray, x_target: np.ndarray) -> NeighborScorer:
        """Like :meth:`fit` on ready vectors: ``x_candidates (N_cand, d)`` are the queries
        ``xq``, ``x_target (N_tgt, d)`` the database ``xb``.

        Returns:
            self
        """
        self.check_params()
        x_candidates = _checked(x_candidates, "xq")
        return self._faiss_scored(x_target, len(x_candidates), lambda rows: x_candidates[rows])

    def faiss_index(
        self, x_target: np.ndarray, n_candidates: int,
        queries: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, faiss.Index, NeighborReport]:
        """The FAISS index of the target's vectors that :meth:`fit` searches (both engines).

        Args:
            x_target: ``(N_tgt, d)`` the target's vectors.
            n_candidates: the candidates that will query it (``"auto"`` resolves for them).
            queries: the vectors of the candidates at the given rows: an IVF index without
                ``nprobe`` is tuned on those of :func:`tuning_rows` (:func:`tune_nprobe`).

        Returns:
            The L2-normalised ``(N_tgt, d)`` rows, the index built on them with this
            scorer's parameters, and the stage's report (the factory string, and the tuned
            ``nprobe`` with the recall it reached).
        """
        xb = unit_rows(x_target)
        key = resolve_index(self.index, len(xb), n_candidates)
        index = build_index(xb, key, nprobe=self.nprobe, ef_search=self.ef_search,
                            lsh_nbits=self.lsh_nbits, random_state=self.random_state,
                            n_threads=self.n_threads)
        return xb, index, _tuned(index, key, xb, self.nprobe, queries, n_candidates, self.k,
                                 random_state=self.random_state, n_threads=self.n_threads)

    def _faiss_scored(self, x_target: np.ndarray, n_candidates: int,
                      queries: Callable[[Any], np.ndarray]) -> NeighborScorer:
        """Scores the candidates whose vectors ``queries(rows)`` gives, a batch at a time,
        against :meth:`faiss_index`."""
        xb, index, report = self.faiss_index(x_target, n_candidates, queries)
        return self._scored(
            n_candidates, self.batch_size, report,
            lambda rows: search_index(index, report.index, xb, queries(rows), self.k,
                                      lsh_rerank=self.lsh_rerank, batch_size=self.batch_size,
                                      n_threads=self.n_threads))

    def _scored(self, n_candidates: int, block: int, report: NeighborReport,
                search: Callable[[slice], tuple[np.ndarray, np.ndarray]]) -> NeighborScorer:
        """Sets the fitted attributes from ``search(rows)`` (``D, I`` of those candidates),
        ``block`` candidates at a time: only the scores and neighbours are kept."""
        scores = np.empty(n_candidates, dtype=np.float32)
        found: np.ndarray | None = None  # (N_cand, k) once the first block says k
        for start in range(0, n_candidates, block):
            rows = slice(start, start + block)
            similarity, neighbors = search(rows)
            if found is None:
                found = np.empty((n_candidates, neighbors.shape[1]), dtype=np.int32)
            scores[rows] = neighbor_scores(similarity, neighbors)
            found[rows] = neighbors
        self.knn_score_, self.neighbors_ = scores, found
        self.index_key_ = report.index
        self.support_ = self._selection_rule().mask(self.knn_score_)
        self.report_ = report
        return self
