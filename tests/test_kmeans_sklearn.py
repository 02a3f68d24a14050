"""KMeans as scikit-learn's ecosystem takes it: its own estimator checks, pickle and joblib
on every backend, Pipeline, clone and GridSearchCV."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from kmrec_gpu.cluster import KMeans, NotFittedError


@parametrize_with_checks([KMeans(n_clusters=3, n_init=2, random_state=0)])
def test_scikit_learns_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n: int = 120) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0]])
    return centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, 3))


def test_a_fitted_model_pickles_and_loads_on_every_backend(backend):
    X = _blobs()
    m = KMeans(3, random_state=1, backend=backend).fit(X)
    for loaded in (pickle.loads(pickle.dumps(m)), _joblib_round_trip(m)):
        np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
        np.testing.assert_array_equal(loaded.cluster_centers_, m.cluster_centers_)
        np.testing.assert_allclose(loaded.transform(X[:5]), m.transform(X[:5]))
        assert loaded.backend_ == m.backend_


def _joblib_round_trip(m: KMeans) -> KMeans:
    buf = io.BytesIO()
    joblib.dump(m, buf)
    buf.seek(0)
    return joblib.load(buf)


def test_the_pickle_holds_arrays_not_modules():
    m = KMeans(3, random_state=0).fit(_blobs())
    state = m.__getstate__()
    assert "_backend_" not in state and "_centers_dev" not in state
    assert all(not hasattr(v, "__file__") for v in state.values())  # no module inside


def test_unfitted_use_is_scikit_learns_not_fitted_error():
    from sklearn.exceptions import NotFittedError as SkNotFitted

    with pytest.raises(SkNotFitted):
        KMeans(2).predict(_blobs())
    assert issubclass(NotFittedError, SkNotFitted) and issubclass(NotFittedError, RuntimeError)


def test_pipeline_clone_and_grid_search():
    X = _blobs()
    pipe = make_pipeline(StandardScaler(), KMeans(3, random_state=0)).fit(X)
    assert pipe.predict(X).shape == (len(X),)
    c = clone(KMeans(4, tol=1e-3, random_state=2))
    assert c.get_params()["n_clusters"] == 4 and not hasattr(c, "cluster_centers_")
    grid = GridSearchCV(KMeans(random_state=0), {"n_clusters": [2, 3, 6]}, cv=3).fit(X)
    assert grid.best_params_["n_clusters"] == 6  # score is -inertia: more centres, higher


def test_sparse_input_is_declared_and_clustered():
    X = _blobs()
    assert KMeans(3).__sklearn_tags__().input_tags.sparse
    dense = KMeans(3, random_state=0).fit(X)
    sparse = KMeans(3, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
