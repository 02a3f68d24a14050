"""K-means against scikit-learn, on every backend and both assignment paths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from kmrec_gpu.cluster import KMeans, NotFittedError
from kmrec_gpu.cluster.data import prepare


def _paths(backend):
    # NumPy (numba) and CUDA (Triton, dense input) have fused kernels; every backend has the
    # composition
    return ("auto", "off") if backend.library == "numpy" or backend.name == "cuda" else ("off",)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(2500, n_features=6, centers=7, cluster_std=1.0, random_state=3)
    return X, y


def test_same_iterates_as_sklearn_from_same_centres(backend, blobs):
    X, _ = blobs
    rng = np.random.default_rng(0)
    C = X[rng.choice(len(X), 7, replace=False)]
    sk = SKKMeans(7, init=C, n_init=1, max_iter=6, tol=0).fit(X)
    for kernels in _paths(backend):
        ours = KMeans(7, init=C, max_iter=6, tol=0, backend=backend, kernels=kernels).fit(X)
        assert ours.n_iter_ == sk.n_iter_
        np.testing.assert_array_equal(ours.labels_, sk.labels_)
        assert ours.inertia_ == pytest.approx(sk.inertia_, rel=1e-5)
        np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=1e-9,
                                   atol=1e-9)


def test_sparse_same_iterates_as_sklearn(backend):
    A = sp.random(600, 80, density=0.08, format="csr", random_state=1, dtype=np.float64)
    A.data[:] = 1.0  # a liked-matrix is binary
    C = A[:6].toarray()
    sk = SKKMeans(6, init=C, n_init=1, max_iter=8, tol=0).fit(A)
    for kernels in _paths(backend):
        # a tiny budget forces many row blocks; the answer must not depend on it
        ours = KMeans(6, init=C, max_iter=8, tol=0, backend=backend, kernels=kernels,
                      memory_budget_mb=0.01).fit(A)
        np.testing.assert_array_equal(ours.labels_, sk.labels_)
        assert ours.inertia_ == pytest.approx(sk.inertia_, rel=1e-5)
        assert ours.n_iter_ == sk.n_iter_


def test_converged_run_matches_sklearn_with_tol(blobs):
    X, _ = blobs
    C = X[:7]
    sk = SKKMeans(7, init=C, n_init=1, max_iter=300, tol=1e-4).fit(X)
    ours = KMeans(7, init=C, max_iter=300, tol=1e-4).fit(X)
    assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_array_equal(ours.labels_, sk.labels_)


def test_blobs_quality_against_sklearn_best_of_n_init(backend, blobs):
    X, y = blobs
    sk = SKKMeans(7, n_init=10, random_state=0).fit(X)
    ours = KMeans(7, n_init=10, random_state=0, backend=backend, kernels="off").fit(X)
    assert adjusted_rand_score(y, ours.labels_) >= 0.99
    assert ours.inertia_ <= sk.inertia_ * 1.01


def test_float32_stays_float32(backend, blobs):
    X = blobs[0].astype(np.float32)
    m = KMeans(7, random_state=0, backend=backend).fit(X)
    assert m.cluster_centers_.dtype == np.float32
    sk = SKKMeans(7, n_init=1, random_state=0).fit(X)
    assert adjusted_rand_score(sk.labels_, m.labels_) >= 0.99


def test_same_seed_same_result_on_every_backend(backend, blobs):
    X, _ = blobs
    ref = KMeans(7, random_state=5, library="numpy").fit(X)
    ours = KMeans(7, random_state=5, backend=backend).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    # and 0 is a seed like any other; another seed gives other initial centres
    a = KMeans(7, random_state=0, init="random", max_iter=1).fit(X).cluster_centers_
    b = KMeans(7, random_state=1, init="random", max_iter=1).fit(X).cluster_centers_
    assert not np.allclose(a, b)


def test_empty_cluster_is_reseeded_from_farthest_point():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.3], [10.0, 10.0], [10.1, 10.0]])
    # the third centre is far from every point: it starts empty
    C = np.array([[0.0, 0.0], [10.0, 10.0], [-100.0, -100.0]])
    sk = SKKMeans(3, init=C, n_init=1, max_iter=1, tol=0).fit(X)
    for kernels in ("auto", "off"):
        ours = KMeans(3, init=C, max_iter=1, tol=0, kernels=kernels).fit(X)
        assert np.bincount(ours.labels_, minlength=3).min() >= 1
        np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_)
        np.testing.assert_array_equal(ours.labels_, sk.labels_)


def test_budget_bounds_block_size(backend):
    X = np.random.default_rng(0).random((5000, 8))
    data = prepare(X, backend, k=4, budget_bytes=64 * 1024)
    per_row = 8 * (4 * 4 + 8) + 16
    assert len(data.blocks) > 1
    assert max(b.n for b in data.blocks) * per_row <= 64 * 1024
    assert sum(b.n for b in data.blocks) == 5000


def test_predict_transform_score_match_sklearn(blobs):
    X, _ = blobs
    C = X[:7]
    sk = SKKMeans(7, init=C, n_init=1, max_iter=20).fit(X)
    ours = KMeans(7, init=C, max_iter=20).fit(X)
    Z = X[::7] + 0.1
    np.testing.assert_array_equal(ours.predict(Z), sk.predict(Z))
    np.testing.assert_allclose(ours.transform(Z), sk.transform(Z), rtol=1e-6, atol=1e-6)
    assert ours.score(Z) == pytest.approx(sk.score(Z), rel=1e-6)
    np.testing.assert_array_equal(KMeans(7, init=C, max_iter=20).fit_predict(X), ours.labels_)


def test_assign_path_is_recorded():
    X = np.random.default_rng(0).random((300, 3))
    assert KMeans(3).fit(X).assign_path_ == "numba-cpu"
    assert KMeans(3, kernels="off").fit(X).assign_path_ == "composed"
    with pytest.raises(RuntimeError, match="no fused assignment kernel"):
        KMeans(3, library="array_api_strict", kernels="on").fit(X)


@pytest.mark.parametrize("kwargs, X, msg", [
    ({"n_clusters": 0}, np.ones((5, 2)), "n_clusters must be a positive int"),
    ({"n_clusters": 6}, np.ones((5, 2)), "n_samples=5 should be >= n_clusters=6"),
    ({"n_clusters": 2}, np.ones(5), "Expected 2D array, got 1D array instead"),
    ({"n_clusters": 2}, np.array([[1.0, np.nan], [0, 0], [1, 1]]), r"X\[0, 1\] is NaN"),
    ({"n_clusters": 2, "init": "kmeans"}, np.ones((5, 2)), "init must be"),
    ({"n_clusters": 2, "init": np.ones((3, 2))}, np.ones((5, 2)), r"init has shape \(3, 2\)"),
    ({"n_clusters": 2, "tol": -1}, np.ones((5, 2)), "tol must be >= 0"),
])
def test_bad_input_is_named(kwargs, X, msg):
    with pytest.raises(ValueError, match=msg):
        KMeans(**kwargs).fit(X)


def test_random_state_none_is_refused():
    with pytest.raises(TypeError, match="0 is a valid seed"):
        KMeans(2, random_state=None).fit(np.random.default_rng(0).random((10, 2)))


def test_unfitted_and_wrong_width():
    with pytest.raises(NotFittedError):
        KMeans(2).predict(np.ones((3, 2)))
    m = KMeans(2).fit(np.random.default_rng(0).random((10, 2)))
    with pytest.raises(ValueError, match="X has 3 features"):
        m.predict(np.ones((3, 3)))


# ---- where the start matters (mutation testing: results/mutation.md) ---------------------

@pytest.fixture(scope="module")
def overlapping():
    """Overlapping clusters, more centres asked than there are: Lloyd's optimum depends on
    where it starts."""
    X, _ = make_blobs(600, n_features=2, centers=5, cluster_std=2.5, random_state=11)
    return X


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_n_init_keeps_the_run_of_least_inertia(overlapping, init, monkeypatch):
    import kmrec_gpu.cluster.kmeans as km

    runs = []
    real = km.lloyd

    def recording(*a, **kw):
        out = real(*a, **kw)
        runs.append(out)
        return out

    monkeypatch.setattr(km, "lloyd", recording)
    m = KMeans(9, init=init, n_init=6, random_state=0).fit(overlapping)
    inertias = [float(r[1]) for r in runs]
    assert len(runs) == 6 and len(set(np.round(inertias, 6))) > 1  # the starts differ
    best = int(np.argmin(inertias))
    assert m.inertia_ == pytest.approx(min(inertias))
    np.testing.assert_array_equal(m.labels_, np.asarray(runs[best][0]))
    assert m.n_iter_ == int(runs[best][3])


def _plusplus_reference(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ as scikit-learn describes it, in plain NumPy: of 2 + ⌊log k⌋
    candidates drawn in proportion to the squared distance, keep the one that leaves the
    least total squared distance."""
    n_trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(len(X)))]
    closest = ((X - X[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):
        rand = rng.uniform(size=n_trials) * closest.sum()
        cand = np.minimum(np.searchsorted(np.cumsum(closest), rand), len(X) - 1)
        d = ((X[None, :, :] - X[cand][:, None, :]) ** 2).sum(2)        # (trials, n)
        pots = np.minimum(closest[None, :], d).sum(1)
        best = int(np.argmin(pots))
        chosen.append(int(cand[best]))
        closest = np.minimum(closest, d[best])
    return X[chosen]


def test_kmeans_plusplus_keeps_the_best_candidate_each_step(overlapping):
    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.cluster.kmeans import kmeans_plusplus

    data = prepare(overlapping, get_backend("cpu"), k=9, budget_bytes=1 << 26)
    got = kmeans_plusplus(data, 9, np.random.default_rng(4))
    ref = _plusplus_reference(overlapping, 9, np.random.default_rng(4))
    np.testing.assert_allclose(np.asarray(got), ref)


def test_fitted_outputs_messages_and_dtypes(overlapping):
    with pytest.raises(NotFittedError, match=r"^this KMeans is not fitted yet; call fit\(X\) "
                                            r"first$"):
        KMeans(2).predict(np.ones((3, 2)))
    X32 = overlapping.astype(np.float32)
    m = KMeans(4, random_state=0).fit(X32)
    assert m.predict(X32).dtype == np.int32 and m.labels_.dtype == np.int32
    d = m.transform(X32)
    assert d.dtype == np.float32 and not np.isnan(d).any() and (d >= 0).all()
    own = m.transform(m.cluster_centers_)  # a centre's distance to itself is 0, not NaN
    assert not np.isnan(own).any() and np.allclose(np.diag(own), 0.0, atol=1e-2)
    with pytest.raises(ValueError, match=r"^X has 3 features, but KMeans is expecting 2 "
                                         r"features as input\.$"):
        m.predict(np.ones((3, 3), dtype=np.float32))  # scikit-learn's check, our name
    torch = pytest.importorskip("torch")
    mt = KMeans(2, random_state=0, library="torch").fit(torch.from_numpy(X32))
    with pytest.raises(ValueError, match=r"^X has 3 features; this KMeans was fitted on 2$"):
        mt.predict(torch.ones(3, 3))  # a device array: checked by us, on its device


def _count_runs(monkeypatch) -> list:
    import kmrec_gpu.cluster.kmeans as km

    runs, real = [], km.lloyd

    def recording(*a, **kw):
        runs.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(km, "lloyd", recording)
    return runs


@pytest.mark.parametrize(("params", "n_runs"), [
    ({"init": "k-means++"}, 1), ({"init": "random"}, 10), ({"init": "random", "n_init": 3}, 3),
    ({"init": "__array__", "n_init": 4}, 1), ({"init": "__array__"}, 1)])
def test_n_init_auto_is_scikit_learns(overlapping, monkeypatch, params, n_runs):
    runs = _count_runs(monkeypatch)
    if params["init"] == "__array__":
        params = {**params, "init": overlapping[:3]}
    KMeans(3, random_state=0, **params).fit(overlapping)
    assert len(runs) == n_runs


@pytest.mark.parametrize(("params", "msg"), [
    ({"max_iter": 0}, r"^max_iter must be a positive int, got 0$"),
    ({"max_iter": 2.5}, r"^max_iter must be a positive int, got 2\.5$"),
    ({"n_init": 0}, r"^n_init must be a positive int or 'auto', got 0$"),
    ({"n_init": 1.5}, r"^n_init must be a positive int or 'auto', got 1\.5$")])
def test_iteration_counts_are_positive_ints(overlapping, params, msg):
    with pytest.raises(ValueError, match=msg):
        KMeans(3, **params).fit(overlapping)


def test_inertia_sums_every_block(overlapping):
    """A memory budget small enough for several blocks: the inertia is still every
    point's squared distance to its centre."""
    m = KMeans(4, random_state=0, memory_budget_mb=0.001).fit(overlapping)
    d = ((overlapping - m.cluster_centers_[m.labels_]) ** 2).sum()
    assert m.inertia_ == pytest.approx(d, rel=1e-9)


def test_iteration_count_and_verbose_lines(overlapping, capsys):
    init = overlapping[:4]
    ours = KMeans(4, init=init, n_init=1, tol=0.0, max_iter=300, verbose=True).fit(overlapping)
    ref = SKKMeans(4, init=init, n_init=1, tol=0.0, max_iter=300,
                   algorithm="lloyd").fit(overlapping)
    assert ours.n_iter_ == ref.n_iter_
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("kmeans:")]
    assert len(lines) == ours.n_iter_ and lines[0].startswith("kmeans: iteration 1, ")
    assert lines[-1].startswith(f"kmeans: iteration {ours.n_iter_}, 0 labels changed")


def test_fewer_distinct_clusters_warn_and_enough_do_not():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    dup = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 5, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"^Number of distinct clusters \(2\) found "
                                                 r"smaller than n_clusters \(3\)\. Possibly due "
                                                 r"to duplicate points in X\.$"):
        KMeans(3, random_state=0).fit(dup)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(2, random_state=0).fit(dup)


def test_complex_input_is_refused_by_name():
    for X in (np.ones((4, 2), dtype=complex), [[1 + 2j, 0j], [1j, 2 + 0j]]):
        with pytest.raises(ValueError, match=r"^Complex data not supported: KMeans\.fit got X "
                                             r"of dtype complex128; K-means needs real "
                                             r"features \(pass X\.real"):
            KMeans(1).fit(X)


def test_unfitted_and_torch_models_pickle_and_keep_their_backend(overlapping):
    import pickle

    pickle.loads(pickle.dumps(KMeans(3)))  # nothing fitted to drop
    torch = pytest.importorskip("torch")
    X32 = overlapping.astype(np.float32)
    m = KMeans(3, random_state=0, library="torch").fit(torch.from_numpy(X32))
    back = pickle.loads(pickle.dumps(m))
    assert back._backend_.library == "torch" and back.backend_ == m.backend_
    np.testing.assert_array_equal(back.predict(torch.from_numpy(X32)), m.labels_)


def test_explicit_init_keeps_the_datas_float32(overlapping):
    X32 = overlapping.astype(np.float32)
    m = KMeans(3, init=X32[:3].astype(np.float64), n_init=1).fit(X32)
    assert m.cluster_centers_.dtype == np.float32


@pytest.mark.parametrize("init", ["random", "k-means++"])
def test_initial_centres_are_pinned_for_seed_0(overlapping, init):
    """The start of each init comes from its own named stream (seed, 'kmeans', init, run):
    'random' is a sorted sample of rows; a change of stream or of the init's meaning moves
    these."""
    from kmrec_gpu import seeding

    m = KMeans(5, init=init, n_init=1, max_iter=1, random_state=0).fit(overlapping)
    rng = seeding.rng(0, "kmeans", init, "0")
    if init == "random":
        start = overlapping[np.sort(rng.choice(len(overlapping), size=5, replace=False))]
    else:
        start = _plusplus_reference(overlapping, 5, rng)
    labels = ((overlapping[:, None, :] - start[None]) ** 2).sum(2).argmin(1)
    one_step = np.stack([overlapping[labels == j].mean(0) for j in range(5)])
    np.testing.assert_allclose(m.cluster_centers_, one_step, rtol=1e-9)
    # one iteration, not converged: the labels are the points' nearest new centres
    final = ((overlapping[:, None, :] - one_step[None]) ** 2).sum(2).argmin(1)
    np.testing.assert_array_equal(m.labels_, final)


def test_kmeans_plusplus_on_a_handful_of_points_can_pick_the_last():
    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.cluster.kmeans import kmeans_plusplus

    X = np.array([[0.0], [1.0], [2.0], [3.0], [50.0]])
    data = prepare(X, get_backend("cpu"), k=4, budget_bytes=1 << 20)
    for seed in range(20):
        got = np.asarray(kmeans_plusplus(data, 4, np.random.default_rng(seed)))
        ref = _plusplus_reference(X, 4, np.random.default_rng(seed))
        np.testing.assert_array_equal(got, ref)
