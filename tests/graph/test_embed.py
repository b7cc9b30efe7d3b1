"""Graph embeddings: adjacency, truncated SVD factors, sample vectors."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.data.log import InteractionLog, share_index
from graphsel.errors import InputError
from graphsel.graph.embed import adjacency, sample_vectors, svd_factors


def _log(users, items, name="log"):
    n = len(users)
    return InteractionLog.from_columns(users, items, np.zeros(n, dtype=np.int64),
                                       np.zeros(n, dtype=np.int8), name, name=name)


@pytest.fixture
def tiny():
    # users 1, 2; items 10, 11, 12; (1, 10) appears twice.
    return _log([1, 1, 1, 2, 2], [10, 10, 11, 11, 12])


def test_adjacency_counts_sum_duplicates(tiny):
    assert adjacency(tiny, "none").toarray().tolist() == [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]


def test_adjacency_log_scales_counts(tiny):
    expected = np.log1p([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(adjacency(tiny, "log").toarray(), expected)


def test_adjacency_degree_normalises_symmetrically(tiny):
    weighted = np.log1p([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    d_user, d_item = weighted.sum(axis=1), weighted.sum(axis=0)
    expected = weighted / np.sqrt(d_user)[:, None] / np.sqrt(d_item)[None, :]
    np.testing.assert_allclose(adjacency(tiny).toarray(), expected)


def test_adjacency_of_several_logs_covers_the_whole_index(tiny):
    other = _log([3], [13], name="other")
    first, second = share_index(tiny, other)
    matrix = adjacency([first], "none")
    assert matrix.shape == (3, 4)
    assert matrix[2].nnz == 0 and matrix[:, 3].nnz == 0
    assert adjacency([first, second], "none")[2, 3] == 1.0


def test_adjacency_rejects_unknown_normalisation_and_foreign_index(tiny):
    with pytest.raises(InputError, match=r"Could not resolve normalize 'l2' among \['degree'"):
        adjacency(tiny, "l2")
    with pytest.raises(InputError, match="do not share one id index"):
        adjacency([tiny, _log([1], [10])])


def test_full_rank_factors_reconstruct_the_adjacency(tiny):
    user_factors, item_factors = svd_factors(tiny, dim=2)
    assert user_factors.dtype == np.float32 and user_factors.shape == (2, 2)
    assert item_factors.shape == (3, 2)
    np.testing.assert_allclose(user_factors @ item_factors.T, adjacency(tiny).toarray(),
                               atol=1e-5)


def test_factors_pad_missing_rank_with_zeros_and_are_seeded(tiny):
    user_factors, item_factors = svd_factors(tiny, dim=5, random_state=3)
    assert user_factors.shape == (2, 5) and item_factors.shape == (3, 5)
    assert not user_factors[:, 2:].any()
    again = svd_factors(tiny, dim=5, random_state=3)
    np.testing.assert_array_equal(again[0], user_factors)
    np.testing.assert_array_equal(again[1], item_factors)


def test_nodes_without_interactions_get_zero_factors_and_zero_halves(tiny):
    first, second = share_index(tiny, _log([3], [13], name="other"))
    user_factors, item_factors = svd_factors([first], dim=2)
    assert not user_factors[2].any() and not item_factors[3].any()
    vectors = sample_vectors(second, user_factors, item_factors)
    assert not vectors.any()


def test_sample_vectors_are_unit_and_average_the_two_cosines():
    rng = np.random.default_rng(0)
    log = _log(rng.integers(0, 30, 400), rng.integers(0, 20, 400))
    user_factors, item_factors = svd_factors(log, dim=4)
    vectors = sample_vectors(log, user_factors, item_factors)
    assert vectors.shape == (400, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def cosine(factors, a, b):
        return factors[a] @ factors[b] / np.linalg.norm(factors[a]) / np.linalg.norm(factors[b])

    expected = (cosine(user_factors, log.user[0], log.user[1])
                + cosine(item_factors, log.item[0], log.item[1])) / 2
    assert vectors[0] @ vectors[1] == pytest.approx(expected, abs=1e-5)


def test_sample_vectors_check_factor_shapes(tiny):
    user_factors, item_factors = svd_factors(tiny, dim=2)
    with pytest.raises(InputError, match=r"item_factors has shape \(2, 2\), expected \(3, d\)"):
        sample_vectors(tiny, user_factors, item_factors[:2])


def test_adjacency_matches_scipy_products_bit_for_bit():
    """The in-place normalisation makes the entries, in the order, of the two sparse products
    D_u^-1/2 @ W @ D_i^-1/2 it replaces."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    log = _log(rng.integers(0, 40, 600), rng.integers(0, 25, 600))
    counts = adjacency(log, "none")
    weighted = counts.copy()
    weighted.data = np.log1p(weighted.data)
    np.testing.assert_array_equal(adjacency(log, "log").toarray(), weighted.toarray())

    def inv_sqrt(degree):
        degree = np.asarray(degree).ravel()
        return sp.diags(np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-300)), 0.0))

    oracle = inv_sqrt(weighted.sum(axis=1)) @ weighted @ inv_sqrt(weighted.sum(axis=0))
    got = adjacency(log)
    assert got.dtype == np.float64 and got.has_sorted_indices
    np.testing.assert_array_equal(got.indptr, oracle.indptr)
    np.testing.assert_array_equal(got.indices, oracle.indices)
    np.testing.assert_array_equal(got.data, oracle.data)


@pytest.mark.parametrize("side", [0, 1])
def test_nodes_without_an_edge_leave_the_other_factors_unchanged(side):
    """The SVD leaves out the nodes without an edge on the side it does not draw its random
    matrix over: the users (side 0, more users than items), or the items (side 1: fewer
    users than items, so it transposes and draws over the users). An index with five more
    such nodes (of another log) gives them zero rows and everyone else the same factors,
    bit for bit."""
    rng = np.random.default_rng(1 + side)
    sizes = (30, 20) if side == 0 else (20, 30)
    log = _log(rng.integers(0, sizes[0], 400), rng.integers(0, sizes[1], 400))
    alone = svd_factors(log, dim=4)
    extra = [np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64)]
    extra[side] = np.arange(100, 105)  # new users (side 0) or new items (side 1)
    wide, _ = share_index(log, _log(*extra, name="other"))
    factors = svd_factors(wide, dim=4)
    grown, same = factors[side], factors[1 - side]
    assert grown.shape == (len(alone[side]) + 5, 4)
    np.testing.assert_array_equal(grown[:len(alone[side])], alone[side])
    assert not grown[len(alone[side]):].any()
    np.testing.assert_array_equal(same, alone[1 - side])
