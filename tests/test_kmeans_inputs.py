"""K-means at its input edges: what counts as host input, complex data by name from every
entry point, dtypes kept or promoted as scikit-learn does, device arrays as init, several
memory blocks in transform, and where its warnings point."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from kmrec_gpu.cluster import KMeans
from kmrec_gpu.cluster.kmeans import _host_array

X = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.2, 1.0], [5.0, 5.0, 0.0],
              [5.1, 5.0, 0.0], [5.0, 5.3, 0.0], [9.0, 0.0, 2.0], [9.0, 0.4, 2.0]] * 3)


def test_host_input_is_numpy_scipy_pandas_or_python_sequences():
    torch = pytest.importorskip("torch")
    for x in (X, X.tolist(), tuple(map(tuple, X)), sp.csr_matrix(X), pd.DataFrame(X),
              np.float64(1.0), np.float32(2.0), pd.Series([1.0]), pd.array([1.0, 2.0])):
        assert _host_array(x), type(x)
    assert not _host_array(torch.from_numpy(X))
    assert not _host_array(object())


def test_a_dataframe_fits_as_its_array():
    a = KMeans(3, random_state=0, backend="cpu").fit(X)
    b = KMeans(3, random_state=0, backend="cpu").fit(pd.DataFrame(X))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.predict(X), b.predict(pd.DataFrame(X)))


def _complex_message(where: str, dtype: str = "complex128") -> str:
    return (f"^Complex data not supported: {where} got X of dtype {dtype}; K-means needs real "
            r"features \(pass X\.real, or np\.abs\(X\), or stack the real and imaginary parts "
            r"as columns\)$")


def test_complex_data_is_refused_by_name_at_every_entry():
    m = KMeans(2, random_state=0, backend="cpu").fit(X)
    c = X.astype(complex) * 1j
    for x, dtype in ((c, "complex128"), (c.tolist(), "complex128"),
                     (pd.DataFrame(c), "complex128"), (c.astype(np.complex64), "complex64")):
        with pytest.raises(ValueError, match=_complex_message("KMeans.fit", dtype)):
            KMeans(2).fit(x)
        for method in (m.predict, m.transform, m.score):
            with pytest.raises(ValueError, match=_complex_message("KMeans", dtype)):
                method(x)


@pytest.mark.parametrize("dtype, kept", [(np.float32, np.float32), (np.float64, np.float64),
                                         (np.float16, np.float64), (np.int64, np.float64),
                                         (np.int8, np.float64)])
def test_float64_and_float32_are_kept_and_the_rest_made_float64(dtype, kept):
    m = KMeans(3, random_state=0, backend="cpu").fit(X.astype(dtype))
    assert m.cluster_centers_.dtype == kept and m.transform(X.astype(dtype)).dtype == kept


def test_a_device_array_as_init_is_the_same_start():
    torch = pytest.importorskip("torch")
    init = X[[0, 3, 6]]
    a = KMeans(3, init=init, max_iter=1, backend="cpu").fit(X)
    b = KMeans(3, init=torch.from_numpy(init), max_iter=1, backend="cpu").fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = KMeans(3, init=torch.from_numpy(init), max_iter=1, library="torch").fit(X)
    np.testing.assert_allclose(c.cluster_centers_, a.cluster_centers_, rtol=1e-12)


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 5])
def test_transform_over_several_memory_blocks(n_blocks):
    m = KMeans(3, random_state=0, backend="cpu").fit(X)
    n, d = X.shape
    rows = -(-n // n_blocks)
    # prepare() sizes a transform's blocks for k=1: 8 * (4 + d) + 16 bytes a row
    m.memory_budget_mb = rows * (8 * (4 + d) + 16) / 2**20
    want = np.sqrt(((X[:, None, :] - m.cluster_centers_[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(m.transform(X), want, rtol=1e-12, atol=1e-12)
    assert len(m._data(X).blocks) == n_blocks


def test_empty_clusters_raise_no_numpy_warning_and_the_fewer_clusters_one_names_the_caller():
    dup = np.repeat(X[:2], 10, axis=0)  # two distinct points for four clusters
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KMeans(4, random_state=0, backend="cpu").fit(dup)
    assert [w.category for w in caught] == [ConvergenceWarning]
    # the caller's line (under mutmut, its trampoline stands between the caller and fit)
    assert caught[0].filename == __file__ or "mutmut" in caught[0].filename
    assert str(caught[0].message) == ("Number of distinct clusters (2) found smaller than "
                                      "n_clusters (4). Possibly due to duplicate points in X.")


def test_sparse_inertia_of_points_on_their_centres_is_never_below_zero():
    """‖x‖² - 2x·c + ‖c‖² rounds a little below 0 for some x = c: each term is clipped at 0,
    so the total is a rounding error above 0 (2e-10 here), never one below (-2e-10)."""
    rng = np.random.default_rng(2)
    x = rng.random((6, 5)) * rng.choice([1, 1e3, 1e-3], size=(6, 5))
    both = np.vstack([x, x])  # each point twice: six clusters, each centred on its point
    m = KMeans(6, init=x.copy(), max_iter=5, backend="cpu").fit(sp.csr_matrix(both))
    assert 0.0 <= m.inertia_ < 1e-6
    assert -1e-6 < m.score(sp.csr_matrix(both)) <= 0.0


def test_a_start_already_at_the_means_stops_after_one_iteration():
    """Centres that are the means of their points move by exactly 0: with tol=0 that stops
    the first iteration (shift <= tol), as scikit-learn's Lloyd loop does."""
    first = KMeans(3, random_state=0, tol=0.0, backend="cpu").fit(X)
    again = KMeans(3, init=first.cluster_centers_, tol=0.0, backend="cpu").fit(X)
    assert again.n_iter_ == 1
    np.testing.assert_array_equal(again.labels_, first.labels_)
    np.testing.assert_array_equal(again.cluster_centers_, first.cluster_centers_)


def test_complex_torch_and_sparse_input_are_refused_by_their_own_dtype():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=_complex_message("KMeans.fit", "torch.complex64")):
        KMeans(2).fit(torch.ones((4, 2), dtype=torch.complex64))
    with pytest.raises(ValueError, match=_complex_message("KMeans.fit", "complex128")):
        KMeans(2).fit(sp.csr_matrix(np.ones((4, 2), dtype=complex)))


def test_a_refit_on_other_features_starts_afresh():
    from kmrec_gpu.backends import get_backend

    m = KMeans(2, random_state=0, backend="cpu").fit(X)
    assert m.n_features_in_ == 3 and m.backend_ == get_backend("cpu").describe()
    m.fit(X[:, :2])
    assert m.n_features_in_ == 2 and m.cluster_centers_.shape == (2, 2)
