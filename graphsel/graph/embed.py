"""Graph embeddings of users, items and samples from the user x item click graph.

A truncated SVD of the (normalised) bipartite adjacency ``A`` (``U x I``) gives each user and
each item a ``d``-dimensional factor; a sample (one log row) is the concatenation of its
user's and its item's factors. Users who click the same items, and items clicked by the same
users, get nearby factors, which is what graph-guided selection needs and, unlike raw ids,
carries over between domains that share part of their users and items.

>>> log = InteractionLog.from_columns([1, 1, 2, 3], [10, 11, 10, 12], [0, 0, 0, 0],
...                                   [1, 0, 1, 1], "src")
>>> user_factors, item_factors = svd_factors([log], dim=2)
>>> user_factors.shape, item_factors.shape
((3, 2), (3, 2))
>>> sample_vectors(log, user_factors, item_factors).shape
(4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_limits

from graphsel.data.log import InteractionLog, distinct_codes
from graphsel.errors import InputError, check_choice, check_integer

__all__ = ["NORMALIZATIONS", "adjacency", "sample_halves", "sample_vectors", "stack_halves",
           "svd_factors"]

NORMALIZATIONS: tuple[str, ...] = ("degree", "log", "none")
"""How :func:`adjacency` weights the interaction counts ``C`` (``C[u, i]`` = rows of ``(u, i)``):

- ``"degree"``: ``D_u^-1/2 log1p(C) D_i^-1/2`` with ``D`` the row / column sums of
  ``log1p(C)``; the symmetric normalisation of spectral clustering and LightGCN, so hub items
  and heavy users do not own the leading factors;
- ``"log"``: ``log1p(C)``, repeated interactions count less and less;
- ``"none"``: the raw counts ``C``.
"""


def _as_logs(logs: InteractionLog | Sequence[InteractionLog]) -> list[InteractionLog]:
    logs = [logs] if isinstance(logs, InteractionLog) else list(logs)
    if not logs:
        raise InputError("no interaction log given")
    index = logs[0].index
    for log in logs[1:]:
        if log.index is not index:
            raise InputError(f"{log.name} and {logs[0].name} do not share one id index; read "
                             f"them with read_pair or share_index")
    return logs


def adjacency(
    logs: InteractionLog | Sequence[InteractionLog], normalize: str = "degree"
) -> sp.csr_matrix:
    """The user x item adjacency of one or more logs that share an index.

    Args:
        logs: a log, or several (e.g. source candidates and target) on one :class:`IdIndex`.
        normalize: one of :data:`NORMALIZATIONS`. Defaults to ``"degree"``.

    Returns:
        ``(U, I)`` float64 CSR matrix, ``U = index.num_users``, ``I = index.num_items``;
        users and items of the index absent from ``logs`` are empty rows / columns.

    Raises:
        InputError: for an unknown ``normalize`` or logs on different indices.

    >>> log = InteractionLog.from_columns([1, 1, 1], [10, 10, 11], [0, 0, 0], [1, 0, 1], "s")
    >>> adjacency(log, "none").toarray().tolist()
    [[2.0, 1.0]]
    """
    check_choice("normalize", normalize, NORMALIZATIONS)
    logs = _as_logs(logs)
    index = logs[0].index
    counts = _counts(logs, index.num_users, index.num_items)
    if normalize == "none":
        counts.data = counts.data.astype(np.float64)
        return counts
    weighted = counts
    weighted.data = np.log1p(counts.data, dtype=np.float64)
    if normalize == "log":
        return weighted
    # D_u^-1/2 W D_i^-1/2 in place: each entry times its row's and then its column's scale,
    # the products scipy's two sparse products make, without their copies of the matrix
    row_scale = _inv_sqrt(weighted.sum(axis=1))
    col_scale = _inv_sqrt(weighted.sum(axis=0))
    weighted.data *= np.repeat(row_scale, np.diff(weighted.indptr))
    weighted.data *= col_scale[weighted.indices]
    return weighted


def _counts(logs: Sequence[InteractionLog], num_users: int, num_items: int) -> sp.csr_matrix:
    """``(U, I)`` CSR of the rows per ``(user, item)``, float32 (exact below 2**24 rows a
    pair), sorted indices; built from narrow copies of the codes."""
    n = sum(len(log) for log in logs)
    codes = np.int32 if max(num_users, num_items) < 2**31 else np.int64
    user, item = np.empty(n, dtype=codes), np.empty(n, dtype=codes)
    start = 0
    for log in logs:
        user[start:start + len(log)] = log.user
        item[start:start + len(log)] = log.item
        start += len(log)
    counts = sp.coo_matrix((np.ones(n, dtype=np.float32), (user, item)),
                           shape=(num_users, num_items)).tocsr()
    counts.sum_duplicates()
    return counts


def _inv_sqrt(degree: np.ndarray) -> np.ndarray:
    degree = np.asarray(degree, dtype=np.float64).ravel()
    scale = np.zeros_like(degree)
    np.divide(1.0, np.sqrt(degree), out=scale, where=degree > 0)
    return scale


def svd_factors(
    logs: InteractionLog | Sequence[InteractionLog],
    dim: int = 16,
    normalize: str = "degree",
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors from a seeded randomised truncated SVD ``A ~ P S Q^T``.

    Args:
        logs: the logs whose interactions form the graph (one shared index).
        dim: factors per node, ``d``. Defaults to 16. When the graph has rank below ``d``
            (tiny logs) the missing factors are zero columns, so shapes never change.
        normalize: adjacency weighting, one of :data:`NORMALIZATIONS`. Defaults to
            ``"degree"``.
        random_state: seed of the randomised SVD. Defaults to 0.

    Returns:
        ``user_factors (U, d)`` = ``P sqrt(S)`` and ``item_factors (I, d)`` = ``Q sqrt(S)``,
        float32, so ``user_factors @ item_factors.T`` approximates ``A``. Nodes without
        interactions get zero rows. Signs are fixed deterministically.
    """
    dim = check_integer("dim", dim, 1)
    matrix = adjacency(logs, normalize)
    user_factors = np.zeros((matrix.shape[0], dim), dtype=np.float32)
    item_factors = np.zeros((matrix.shape[1], dim), dtype=np.float32)
    if matrix.nnz == 0:
        return user_factors, item_factors
    # The SVD leaves out the nodes without an edge on one side: they would only add zero rows
    # to that side's (nodes, d + 10) float64 panels (the synthetic default at 6M rows: 94k
    # of the index's 600k users are candidates or target). randomized_svd draws its random
    # matrix over the other side (the items, or the users when it transposes a matrix with
    # fewer users than items), so that side keeps every node, and the transposition and
    # the number of power iterations are those of the whole matrix: the factors are the
    # whole matrix's up to rounding (ML-1M, 30,000 source rows: within 1e-9).
    transpose = matrix.shape[0] < matrix.shape[1]
    n_iter = 7 if min(dim, *matrix.shape) < 0.1 * min(matrix.shape) else 4  # its "auto"
    users = (np.arange(matrix.shape[0]) if transpose
             else np.flatnonzero(np.diff(matrix.indptr)))
    items = (distinct_codes(matrix.indices, matrix.shape[1]) if transpose
             else np.arange(matrix.shape[1]))
    part = _submatrix(matrix, users, items)
    rank = min(dim, *part.shape)
    # the dense steps work on (U, d + 10) and (I, d + 10) panels, too thin for BLAS threads
    # to pay for their start-up; on shared cores their spinning doubled the wall time
    with threadpool_limits(1, user_api="blas"):
        left, singular, right_t = randomized_svd(part, rank, n_iter=n_iter, transpose=transpose,
                                                 random_state=random_state)
    root = np.sqrt(singular)
    user_factors[users, :rank] = left * root
    item_factors[items, :rank] = right_t.T * root
    return user_factors, item_factors


def _submatrix(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows][:, columns]`` for sorted ``rows`` and ``columns`` that hold every
    non-empty row and column: the entries stay as they are, the column indices are
    renumbered (still sorted); ``matrix`` itself when nothing is left out."""
    if len(rows) == matrix.shape[0] and len(columns) == matrix.shape[1]:
        return matrix
    renumber = np.zeros(matrix.shape[1], dtype=matrix.indices.dtype)
    renumber[columns] = np.arange(len(columns), dtype=matrix.indices.dtype)
    return sp.csr_matrix((matrix.data, renumber[matrix.indices],
                          np.append(matrix.indptr[rows], matrix.nnz)),
                         shape=(len(rows), len(columns)))


def sample_vectors(
    log: InteractionLog, user_factors: np.ndarray, item_factors: np.ndarray
) -> np.ndarray:
    """One vector per log row: its user's and its item's factors, each L2-normalised.

    Each half is scaled to norm ``1/sqrt(2)``, so a whole vector has unit norm and the inner
    product of two samples is the mean of their user cosine and their item cosine. A node
    whose factors are all zero (no interactions) gives a zero half.

    Args:
        log: ``N`` rows whose codes index ``user_factors`` / ``item_factors``.
        user_factors: ``(U, d)`` from :func:`svd_factors` (``U = log.index.num_users``).
        item_factors: ``(I, d)``.

    Returns:
        ``(N, 2d)`` float32.
    """
    user_factors = np.asarray(user_factors, dtype=np.float32)
    item_factors = np.asarray(item_factors, dtype=np.float32)
    for name, factors, rows in (("user_factors", user_factors, log.index.num_users),
                                ("item_factors", item_factors, log.index.num_items)):
        if factors.ndim != 2 or factors.shape[0] != rows:
            raise InputError(f"{name} has shape {factors.shape}, expected ({rows}, d) for the "
                             f"id index of {log.name}")
    return stack_halves(*sample_halves(user_factors, item_factors), log.user, log.item)


def stack_halves(users: np.ndarray, items: np.ndarray, user: np.ndarray,
                 item: np.ndarray) -> np.ndarray:
    """``(N, d_u + d_i)`` float32 sample vectors of the rows ``(user[r], item[r])`` from the
    per-node halves of :func:`sample_halves`."""
    # filled in place: stacking the gathered halves would make two more (N, 2d) arrays
    dim = users.shape[1]
    vectors = np.empty((len(user), dim + items.shape[1]), dtype=np.float32)
    np.take(users, user, axis=0, out=vectors[:, :dim])
    np.take(items, item, axis=0, out=vectors[:, dim:])
    return vectors


def sample_halves(user_factors: np.ndarray,
                  item_factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of :func:`sample_vectors` per node: every row of the factors scaled to
    norm ``1/sqrt(2)`` (zero rows stay zero), float32.

    A row's sample vector is ``[users[u], items[i]]``, so the inner product of two samples is
    ``users[u] @ users[u'] + items[i] @ items[i']``.
    """
    scale = np.float32(np.sqrt(0.5))
    return (_unit_rows(np.asarray(user_factors, dtype=np.float32)) * scale,
            _unit_rows(np.asarray(item_factors, dtype=np.float32)) * scale)


def _unit_rows(factors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
