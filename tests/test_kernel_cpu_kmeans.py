"""The fused CPU assignment kernel against a plain NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kernels.cpu_kmeans import TILE, assign_dense, assign_sparse, lloyd_step


def reference(X, C):
    d2 = (X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None, :]
    lab = d2.argmin(1)
    sums = np.zeros_like(C)
    np.add.at(sums, lab, X)
    return lab, d2.min(1), sums, np.bincount(lab, minlength=len(C))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("n, k", [(1, 1), (TILE - 1, 3), (TILE + 1, 5), (3 * TILE + 7, 1),
                                  (900, 16)])
def test_dense_matches_reference(n, k, dtype, tol):
    rng = np.random.default_rng(n * 31 + k)
    X = rng.standard_normal((n, 7)).astype(dtype)
    C = rng.standard_normal((k, 7)).astype(dtype)
    lab, mind, sums, counts = assign_dense(X, C, (X * X).sum(1))
    r_lab, r_mind, r_sums, r_counts = reference(X.astype(np.float64), C.astype(np.float64))
    np.testing.assert_array_equal(lab, r_lab)
    np.testing.assert_allclose(mind, r_mind, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(sums, r_sums, rtol=tol, atol=tol * 10)
    np.testing.assert_array_equal(counts, r_counts)
    lab2, mind2, none_sums, none_counts = assign_dense(X, C, (X * X).sum(1), update=False)
    np.testing.assert_array_equal(lab2, lab)
    assert none_sums is None and none_counts is None


@pytest.mark.parametrize("n_groups", [None, 1, 3])
def test_sparse_matches_reference_with_empty_rows(n_groups):
    A = sp.random(300, 40, density=0.05, format="csr", random_state=2, dtype=np.float64)
    A = sp.vstack([A, sp.csr_matrix((2, 40))]).tocsr()  # two rows with no value
    C = np.random.default_rng(2).random((6, 40))
    sq = np.asarray(A.multiply(A).sum(1)).ravel()
    lab, mind, sums, counts = assign_sparse(A, C, sq, n_groups=n_groups)
    r_lab, r_mind, r_sums, r_counts = reference(A.toarray(), C)
    np.testing.assert_array_equal(lab, r_lab)
    np.testing.assert_allclose(mind, r_mind, atol=1e-10)
    np.testing.assert_allclose(sums, r_sums, atol=1e-10)
    np.testing.assert_array_equal(counts, r_counts)


def test_ties_go_to_the_lowest_centre():
    X = np.zeros((TILE + 3, 2))
    C = np.ones((4, 2))  # every centre equally far
    assert (assign_dense(X, C, np.zeros(len(X)))[0] == 0).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_lloyd_step_updates_labels_in_place_and_counts_changes(sparse):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((TILE * 2 + 5, 6))
    C = X[:4].copy()
    Xin = sp.csr_matrix(X) if sparse else X
    labels, sums, counts, changed = lloyd_step(Xin, C, None)
    r_lab, _, r_sums, r_counts = reference(X, C)
    assert labels.dtype == np.int32 and changed == len(X)  # all new at the start
    np.testing.assert_array_equal(labels, r_lab)
    np.testing.assert_allclose(sums, r_sums, atol=1e-10)
    np.testing.assert_array_equal(counts, r_counts)
    C2 = sums / counts[:, None]
    before = labels.copy()
    same, _, _, changed2 = lloyd_step(Xin, C2, labels)
    assert same is labels  # updated in place
    assert changed2 == int((before != reference(X, C2)[0]).sum())
    np.testing.assert_array_equal(labels, reference(X, C2)[0])
    with pytest.raises(ValueError, match="labels must be int32"):
        lloyd_step(Xin, C, labels.astype(np.int64))
