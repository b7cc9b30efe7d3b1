"""Neighbour scoring: every FAISS index type against brute force, and the estimator."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from graphsel.data.log import InteractionLog, share_index
from graphsel.errors import InputError
from graphsel.graph.embed import sample_halves, sample_vectors, svd_factors
from graphsel.select import neighbors
from graphsel.select.neighbors import (
    GroupedSearch,
    NeighborReport,
    NeighborScorer,
    exact_knn,
    grouping_side,
    knn_search,
    resolve_index,
    unit_rows,
)

K = 10

# Recall@10 against exact search that each index type must reach on the clustered set below
# (measured when written: 1.0, 1.0, 0.97, 0.95). Flat is exact; HNSW32 (ef_search=64) and
# IVF32,Flat (nprobe=16 of 32 lists) are high-recall settings; LSH's 128-bit Hamming
# shortlist of 10 k is re-ranked exactly, so its misses are shortlist misses.
RECALL_AT_10 = {
    "Flat": 1.0,
    "HNSW32": 0.95,
    "IVF32,Flat": 0.9,
    "LSH": 0.85,
}
NPROBE = 16


def _clustered(n: int, centers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    picked = centers[rng.integers(0, len(centers), n)]
    return (picked + 1.5 * rng.standard_normal(picked.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors():
    """2,000 database and 200 query vectors, d = 32, from 50 overlapping clusters (seeded).

    The clusters overlap (spread 1.5 around unit-variance centres) so that the approximate
    indexes do miss neighbours: recall is measured, not guaranteed by easy data.
    """
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((50, 32))
    return _clustered(2_000, centers, rng), _clustered(200, centers, rng)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def exact(vectors):
    xb, xq = vectors
    return exact_knn(_unit(xb), _unit(xq), K)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) for f, t in zip(found, truth)]) / truth.shape[1])


def test_exact_knn_by_hand():
    xb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    D, I = exact_knn(xb, np.array([[1.0, 0.0]]), 3)
    assert I.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(D, [[1.0, 0.6, 0.0]])


@pytest.mark.parametrize("key", sorted(RECALL_AT_10))
def test_recall_against_brute_force(key, vectors, exact):
    xb, xq = vectors
    D, I = knn_search(xb, xq, K, key, nprobe=NPROBE, lsh_nbits=128)
    exact_d, exact_i = exact
    assert D.shape == I.shape == (200, K)
    assert _recall(I, exact_i) >= RECALL_AT_10[key]
    # Every index reports exact cosine similarities of the rows it returns, best first.
    returned = np.einsum("qd,qkd->qk", _unit(xq), _unit(xb)[I])
    np.testing.assert_allclose(D, returned, atol=1e-5)
    assert (np.diff(D, axis=1) <= 1e-6).all()
    if key == "Flat":
        np.testing.assert_array_equal(I, exact_i)
        np.testing.assert_allclose(D, exact_d, atol=1e-5)


def test_ivf_recall_grows_with_nprobe(vectors, exact):
    xb, xq = vectors
    recalls = [_recall(knn_search(xb, xq, K, "IVF32,Flat", nprobe=p)[1], exact[1])
               for p in (1, 4, 32)]
    assert recalls[0] <= recalls[1] <= recalls[2] == 1.0


def test_batches_and_threads_do_not_change_results(vectors):
    xb, xq = vectors
    threads = faiss.omp_get_max_threads()
    whole = knn_search(xb, xq, K, "Flat")
    batched = knn_search(xb, xq, K, "Flat", batch_size=37, n_threads=1)
    np.testing.assert_array_equal(whole[1], batched[1])
    assert faiss.omp_get_max_threads() == threads


def test_k_is_capped_at_database_size(vectors):
    xb, xq = vectors
    D, I = knn_search(xb[:4], xq[:3], K, "Flat")
    assert I.shape == (3, 4) and sorted(I[0]) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad", ["hnsw32", "flat", "IVF0,Flat", "IVF64", "PQ16", "HNSW", "", 3])
def test_unknown_index_lists_valid_ones(bad):
    with pytest.raises(InputError, match=r"Could not resolve index .* among \['Flat', 'HNSW32', "
                                         r"'IVF<n>,Flat', 'LSH', 'auto'\]"):
        resolve_index(bad, 100)


def test_auto_is_exact_for_small_targets_and_ivf_for_large():
    assert resolve_index("auto", 5_000) == "Flat"
    assert resolve_index("auto", 50_000) == "IVF256,Flat"
    assert resolve_index("auto", 1_000_000) == "IVF1024,Flat"


def test_ivf_rows_not_found_are_marked_and_left_out_of_the_score(vectors):
    xb, xq = vectors
    D, I = knn_search(xb[:80], xq, K, "IVF16,Flat", nprobe=1)
    missing = I < 0
    assert missing.any() and np.isnan(D[missing]).all() and not np.isnan(D[~missing]).any()
    scorer = NeighborScorer("IVF16,Flat", K, nprobe=1).fit_arrays(xq, xb[:80])
    expected = [D[row][~missing[row]].mean() if (~missing[row]).any() else -1.0
                for row in range(len(xq))]
    np.testing.assert_allclose(scorer.knn_score_, expected, rtol=1e-5)


def test_ivf_with_fewer_vectors_than_lists_is_an_input_error(vectors):
    xb, xq = vectors
    with pytest.raises(InputError, match="needs at least 4096 database vectors"):
        knn_search(xb, xq, K, "IVF4096,Flat")


def test_scorer_score_is_mean_exact_similarity_and_rule_applies(vectors, exact):
    xb, xq = vectors
    scorer = NeighborScorer(index="Flat", budget=20).fit_arrays(xq, xb)
    np.testing.assert_allclose(scorer.knn_score_, exact[0].mean(axis=1), atol=1e-5)
    np.testing.assert_array_equal(scorer.neighbors_, exact[1])
    top = np.argsort(-scorer.knn_score_, kind="stable")[:20]
    assert scorer.get_support(indices=True).tolist() == sorted(top.tolist())
    assert scorer.index_key_ == "Flat"
    threshold = float(np.median(scorer.knn_score_))
    kept = NeighborScorer(index="HNSW32", threshold=threshold).fit_arrays(xq, xb).get_support()
    np.testing.assert_array_equal(kept, scorer.knn_score_ >= threshold)


def test_scorer_checks_parameters_and_fit_state(vectors):
    xb, xq = vectors
    with pytest.raises(NotFittedError):
        NeighborScorer().get_support()
    with pytest.raises(InputError, match="Could not resolve index 'hnsw'"):
        NeighborScorer(index="hnsw").fit_arrays(xq, xb)
    with pytest.raises(InputError, match="at most one of"):
        NeighborScorer(budget=3, keep_quantile=0.5).fit_arrays(xq, xb)
    with pytest.raises(InputError, match="k must be an integer >= 1"):
        NeighborScorer(k=0).fit_arrays(xq, xb)
    assert clone(NeighborScorer(index="LSH", k=5)).get_params()["index"] == "LSH"


def test_scorer_on_logs_ranks_target_like_candidates_first():
    """Candidates on the target's users and items outscore those on an unrelated community."""
    rng = np.random.default_rng(0)

    def log(users, items, n, name):
        return InteractionLog.from_columns(
            rng.choice(users, n), rng.choice(items, n), np.zeros(n, dtype=np.int64),
            rng.integers(0, 2, n), name, name=name)

    near = log(np.arange(0, 50), np.arange(0, 40), 600, "near")
    far = log(np.arange(50, 100), np.arange(40, 80), 600, "far")
    target = log(np.arange(0, 50), np.arange(0, 40), 300, "target")
    near, far, target = share_index(near, far, target)
    scorer = NeighborScorer(index="Flat", keep_quantile=0.5, embedding_dim=8)
    near_scores = scorer.fit(near, target).knn_score_
    far_scores = clone(scorer).fit(far, target).knn_score_
    assert near_scores.mean() > far_scores.mean() + 0.3
    assert len(scorer.transform(near)) == 300

    user_factors, item_factors = svd_factors([near, far, target], dim=8)
    given = clone(scorer).fit(near, target, user_factors=user_factors, item_factors=item_factors)
    expected = NeighborScorer(index="Flat", keep_quantile=0.5).fit_arrays(
        sample_vectors(near, user_factors, item_factors),
        sample_vectors(target, user_factors, item_factors))
    # fit groups the exact search by the target's 40 items (its halves summed apart):
    # brute force's scores up to float32 rounding
    assert given.report_ == NeighborReport("Flat", grouped_by="item")
    np.testing.assert_allclose(given.knn_score_, expected.knn_score_, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_faiss_searches_on_its_threads_while_blas_is_limited(vectors, monkeypatch, n_threads):
    # Limiting BLAS to one thread also sets OpenMP's count to 1 when FAISS's BLAS runs on
    # OpenMP: the search must still get FAISS's threads (or n_threads).
    xb, xq = vectors
    expected = n_threads or faiss.omp_get_max_threads()
    seen = []
    build = neighbors._build_index

    class Spy:
        def __init__(self, index):
            self.index = index

        def search(self, x, k):
            seen.append(faiss.omp_get_max_threads())
            return self.index.search(x, k)

    monkeypatch.setattr(neighbors, "_build_index", lambda *a, **kw: Spy(build(*a, **kw)))
    knn_search(xb, xq, K, "Flat", n_threads=n_threads)
    assert seen and set(seen) == {expected}


def _halves(rng: np.random.Generator, users: int, items: int,
            dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Sample halves as sample_halves makes them: rows of norm 1/sqrt(2), one zero row."""
    user_factors = rng.normal(size=(users, dim)).astype(np.float32)
    item_factors = rng.normal(size=(items, dim)).astype(np.float32)
    user_factors[3] = 0.0  # a node without interactions: a zero half
    return sample_halves(user_factors, item_factors)


@pytest.mark.parametrize(("groups", "k"), [(7, 3), (3, 5), (1, 4)])
def test_grouped_search_finds_brute_forces_neighbours(groups, k):
    # queries (user, item) against target rows on `groups` items; 3 groups and k = 5: fewer
    # groups than neighbours, and one group smaller than k
    rng = np.random.default_rng(groups)
    users, items = _halves(rng, 40, 30)
    target_user = rng.choice(np.r_[0:3, 4:40], 60)  # every target row has both halves
    target_item = rng.choice(groups, 60, p=None if groups < 3 else
                             np.r_[0.05, np.full(groups - 1, 0.95 / (groups - 1))])
    query_user, query_item = rng.integers(0, 40, 500), rng.integers(0, 30, 500)
    search = GroupedSearch.build(users, items, target_user, target_item, k)
    found_d, found_i = search.search(query_user, query_item, batch_size=64, n_threads=2)
    xb = np.hstack([users[target_user], items[target_item]])
    xq = unit_rows(np.hstack([users[query_user], items[query_item]]))  # user 3's queries too
    assert (query_user == 3).any()
    expected_d, expected_i = exact_knn(xb, xq, k)
    np.testing.assert_allclose(found_d, expected_d, rtol=0, atol=1e-6)
    # the same rows wherever the k-th similarity is not tied with the next one
    distinct = np.sort(xq @ xb.T, axis=1)[:, ::-1]
    untied = distinct[:, k - 1] - distinct[:, k] > 1e-5 if k < len(xb) else np.ones(500, bool)
    assert untied.mean() > 0.25  # one group: the target's repeated users tie often
    for row in np.flatnonzero(untied):
        assert set(found_i[row]) == set(expected_i[row])
    assert found_i.dtype == np.int64 and (found_i >= 0).all()


def test_a_target_row_with_a_zero_half_is_not_grouped():
    rng = np.random.default_rng(0)
    user_factors = rng.normal(size=(6, 4)).astype(np.float32)
    item_factors = rng.normal(size=(5, 4)).astype(np.float32)
    assert GroupedSearch.for_samples(user_factors, item_factors, np.array([0, 1, 2]),
                                     np.array([0, 0, 1]), k=2) is not None
    user_factors[1] = 0.0
    assert GroupedSearch.for_samples(user_factors, item_factors, np.array([0, 1, 2]),
                                     np.array([0, 0, 1]), k=2) is None


def test_grouping_side_takes_the_side_with_fewer_target_values_within_the_bounds(monkeypatch):
    users, items = np.array([0, 1, 2, 3]), np.array([7, 7, 8, 8])
    assert grouping_side(users, items, 10, 10, k=2) == "item"
    assert grouping_side(items, users, 10, 10, k=2) == "user"
    monkeypatch.setattr(neighbors, "GROUPED_MAX_GROUPS", 1)
    assert grouping_side(users, items, 10, 10, k=2) is None
    monkeypatch.setattr(neighbors, "GROUPED_MAX_GROUPS", 2)
    monkeypatch.setattr(neighbors, "GROUPED_MAX_ENTRIES", 10 * 2 * 2 - 1)  # 10 users x 2 x k
    assert grouping_side(users, items, 10, 10, k=2) is None


def test_scorer_groups_an_exact_search_only_when_asked_for_an_exact_or_automatic_index():
    rng = np.random.default_rng(1)
    source = InteractionLog.from_columns(rng.integers(0, 60, 400), rng.integers(0, 50, 400),
                                         np.zeros(400, np.int64), rng.integers(0, 2, 400), "s")
    target = InteractionLog.from_columns(rng.integers(0, 60, 80), rng.integers(0, 5, 80),
                                         np.zeros(80, np.int64), rng.integers(0, 2, 80), "t")
    source, target = share_index(source, target)
    grouped = NeighborScorer(k=4, embedding_dim=4).fit(source, target)
    assert grouped.report_.note() == "index Flat, grouped by target item"
    faiss_flat = NeighborScorer(index="IVF2,Flat", nprobe=2, k=4, embedding_dim=4).fit(
        source, target)  # 2 lists, both probed: exact, through FAISS
    assert faiss_flat.report_ == NeighborReport("IVF2,Flat")
    np.testing.assert_allclose(grouped.knn_score_, faiss_flat.knn_score_, rtol=0, atol=1e-6)
    # fit on logs searches FAISS a batch of candidate vectors at a time: what fit_arrays
    # finds with every vector made up front
    batched = NeighborScorer(index="IVF2,Flat", nprobe=2, k=4, embedding_dim=4,
                             batch_size=7).fit(source, target)
    factors = svd_factors([source, target], dim=4)
    whole = NeighborScorer(index="IVF2,Flat", nprobe=2, k=4).fit_arrays(
        sample_vectors(source, *factors), sample_vectors(target, *factors))
    np.testing.assert_array_equal(batched.knn_score_, whole.knn_score_)
    np.testing.assert_array_equal(batched.neighbors_, whole.neighbors_)
    assert batched.neighbors_.dtype == np.int32


def _tie_recall(found_d: np.ndarray, exact_d: np.ndarray) -> float:
    """Share of the found similarities at least the exact k-th one (the tuning's measure)."""
    return float(np.mean(found_d >= exact_d[:, -1:] - 1e-6))


@pytest.mark.parametrize("target", [0.8, 0.9, 0.99])
def test_tuned_nprobe_is_the_fewest_lists_that_reach_the_recall(vectors, exact, target):
    xb, xq = vectors
    xb = unit_rows(xb)
    index = neighbors.build_index(xb, "IVF32,Flat")
    nprobe, reached = neighbors.tune_nprobe(index, "IVF32,Flat", xb, xq, K, recall=target)
    assert faiss.extract_index_ivf(index).nprobe == nprobe
    ladder = neighbors.nprobe_ladder(32)
    # the oracle: brute force's k-th similarity, and the search at each ladder step
    recall_at = {p: _tie_recall(knn_search(xb, xq, K, "IVF32,Flat", nprobe=p)[0], exact[0])
                 for p in ladder}
    assert reached == pytest.approx(recall_at[nprobe], abs=1e-12)
    assert reached >= target
    assert all(recall_at[p] < target for p in ladder if p < nprobe)


def test_tuning_counts_a_tied_neighbour_as_found():
    # every database vector twice: which copy a search returns is a tie, not a miss
    rng = np.random.default_rng(2)
    base = unit_rows(rng.standard_normal((300, 8)).astype(np.float32))
    xb = np.vstack([base, base])
    xq = rng.standard_normal((50, 8)).astype(np.float32)
    index = neighbors.build_index(xb, "IVF4,Flat")
    nprobe, reached = neighbors.tune_nprobe(index, "IVF4,Flat", xb, xq, 5, recall=1.0)
    assert reached == 1.0 and nprobe <= 4


def test_knn_search_and_the_scorer_tune_nprobe_unless_it_is_given(vectors):
    xb, xq = vectors
    tuned = NeighborScorer("IVF32,Flat", K).fit_arrays(xq, xb)
    report = tuned.report_
    assert report.nprobe in neighbors.nprobe_ladder(32) and report.tuned_on == len(xq)
    assert report.recall >= neighbors.TUNED_RECALL
    assert report.note() == (f"index IVF32,Flat, nprobe {report.nprobe} (recall "
                             f"{report.recall:.3f} on 200 candidates)")
    # knn_search tunes on the same rows: the same neighbours
    np.testing.assert_array_equal(knn_search(xb, xq, K, "IVF32,Flat")[1], tuned.neighbors_)
    fixed = NeighborScorer("IVF32,Flat", K, nprobe=3).fit_arrays(xq, xb)
    assert fixed.report_ == NeighborReport("IVF32,Flat")
    np.testing.assert_array_equal(fixed.neighbors_,
                                  knn_search(xb, xq, K, "IVF32,Flat", nprobe=3)[1])


def test_tuning_rows_are_a_seeded_sample_or_every_row():
    assert neighbors.tuning_rows(5).tolist() == [0, 1, 2, 3, 4]
    rows = neighbors.tuning_rows(100_000, random_state=4)
    assert len(rows) == neighbors.TUNING_QUERIES == len(np.unique(rows))
    assert (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, neighbors.tuning_rows(100_000, random_state=4))


def test_tuning_scans_every_list_when_no_step_reaches_the_recall(vectors, exact):
    xb, xq = vectors
    xb = unit_rows(xb)
    index = neighbors.build_index(xb, "IVF32,Flat")
    nprobe, reached = neighbors.tune_nprobe(index, "IVF32,Flat", xb, xq, K, recall=1.01)
    assert nprobe == 32 == faiss.extract_index_ivf(index).nprobe
    assert reached == pytest.approx(_tie_recall(knn_search(xb, xq, K, "IVF32,Flat",
                                                           nprobe=32)[0], exact[0]))
    assert reached == 1.0  # every list scanned: exact
