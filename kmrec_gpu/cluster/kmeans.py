"""K-means (Lloyd) written once over the backend's array namespace.

The estimator follows scikit-learn's ``KMeans``: the same parameter names, learned
attributes (``cluster_centers_``, ``labels_``, ``inertia_``, ``n_iter_``), the same
k-means++ (greedy, ``2 + log k`` local trials), the same relative ``tol`` (scaled by the
mean feature variance), the same convergence rule (labels unchanged, or centre shift
below ``tol``), the same final re-assignment, and the same relocation of empty clusters
to the points farthest from their centres. Given the same initial centres, it walks the
same iterates as scikit-learn; the tests hold it to that.

Random numbers are drawn on the host from streams derived from ``random_state`` (0 is a
seed), so every backend gets the very same initial centres for a seed.

Assignment and accumulation go through :mod:`kmrec_gpu.cluster.assign`, which picks a
fused kernel where one exists for the backend and the namespace composition otherwise.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend, resolve_backend
from kmrec_gpu.cluster import assign as assign_mod
from kmrec_gpu.cluster.data import KMeansData, prepare
from kmrec_gpu.estimator import NotFittedError


def _host_array(X: Any) -> bool:
    """NumPy, SciPy sparse, or Python sequences: what scikit-learn's validation takes.
    Device arrays (PyTorch, CuPy) are checked by :func:`prepare` on their device."""
    import scipy.sparse as sp

    return isinstance(X, (np.ndarray, list, tuple)) or sp.issparse(X) or (
        type(X).__module__.split(".")[0] in ("pandas", "numpy"))


def _validated(X: Any, what: str, *, reset: bool, est: Any) -> Any:
    """scikit-learn's own input checks and messages for host input (2-D, real, non-empty,
    numeric; float64 or float32 kept; CSR for sparse)."""
    _refuse_complex(X, what)
    if not _host_array(X):
        return X
    from sklearn.utils.validation import validate_data

    # finiteness is left to prepare(), whose message names the first bad cell
    return validate_data(est, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                         reset=reset, ensure_all_finite=False)


def _refuse_complex(X: Any, what: str) -> None:
    """scikit-learn refuses complex data; casting it to float would drop the imaginary part
    without a word."""
    dtype = getattr(X, "dtype", None)
    if dtype is None:  # a list or tuple of numbers, or a DataFrame (which has dtypes)
        try:
            dtype = np.asarray(X).dtype
        except (TypeError, ValueError):
            return  # not array-like: prepare() says what is wrong
    if dtype is not None and "complex" in str(dtype):
        raise ValueError(f"Complex data not supported: {what} got X of dtype {dtype}; "
                         "K-means needs real features (pass X.real, or np.abs(X), or "
                         "stack the real and imaginary parts as columns)")


def _warn_if_fewer_clusters(labels: np.ndarray, k: int) -> None:
    """scikit-learn's warning when duplicate points leave clusters empty."""
    found = int(np.unique(labels).size)
    if found < k:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(f"Number of distinct clusters ({found}) found smaller than "
                      f"n_clusters ({k}). Possibly due to duplicate points in X.",
                      ConvergenceWarning, stacklevel=3)


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering (Lloyd's algorithm) on any backend.

    Parameters mirror :class:`sklearn.cluster.KMeans`; ``backend`` / ``library`` choose
    where it runs (``"cpu"``, ``"cuda"``, ``"auto"``, or a :class:`Backend`),
    ``memory_budget_mb`` bounds the intermediates of one pass, and ``kernels`` selects
    fused kernels (``"auto"``: use one when the backend has it; ``"off"``: always the
    namespace composition, for A/B comparisons; ``"on"``: demand one). ``assign_path_``
    says which ran: ``numba-cpu``, ``triton``, ``triton-interpret`` or ``composed``.
    """

    def __init__(self, n_clusters: int = 8, *, init: str | Any = "k-means++",
                 n_init: int | str = "auto", max_iter: int = 300, tol: float = 1e-4,
                 random_state: int = 0, backend: str | Backend = "cpu",
                 library: str | None = None, memory_budget_mb: float = 64.0,
                 kernels: str = "auto", verbose: bool = False) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.backend = backend
        self.library = library
        self.memory_budget_mb = memory_budget_mb
        self.kernels = kernels
        self.verbose = verbose

    # -- scikit-learn conventions (get_params, set_params, repr: BaseEstimator's) -----------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR input is clustered without densifying
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # the backend holds its array module and the centres may live on a device: a
        # pickle keeps plain arrays, and the backend is resolved again when it is loaded
        state = dict(super().__getstate__())
        state.pop("_backend_", None)
        state.pop("_centers_dev", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "cluster_centers_" in state:
            be = resolve_backend(self.backend, self.library)
            self._backend_ = be
            self._centers_dev = be.asarray(self.cluster_centers_,
                                           dtype=self.cluster_centers_.dtype.name)

    def _check_params(self) -> int:
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_clusters must be a positive int, got {k!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        import kernels

        kernels.check_mode(self.kernels)
        explicit = not isinstance(self.init, str)
        if isinstance(self.init, str) and self.init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++', 'random' or an array, got {self.init!r}")
        if self.n_init == "auto":
            return 1 if explicit or self.init == "k-means++" else 10
        if not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ValueError(f"n_init must be a positive int or 'auto', got {self.n_init!r}")
        return 1 if explicit else int(self.n_init)

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> KMeans:
        n_init = self._check_params()
        X = _validated(X, "KMeans.fit", reset=True, est=self)
        be = resolve_backend(self.backend, self.library)
        data = prepare(X, be, k=self.n_clusters, budget_bytes=int(self.memory_budget_mb * 2**20))
        ops = assign_mod.choose(data, self.kernels)
        tol_abs = self.tol * data.column_variance_mean() if self.tol else 0.0
        best = None
        for run in range(n_init):
            centers = self._initial_centers(data, run)
            out = lloyd(data, centers, max_iter=int(self.max_iter), tol=tol_abs, ops=ops,
                        verbose=self.verbose)
            if best is None or out[1] < best[1]:
                best = out
        assert best is not None
        labels, inertia, centers, n_iter = best
        self._backend_ = be
        self._centers_dev = centers
        self.cluster_centers_ = be.to_numpy(centers).copy()
        self.labels_ = be.to_numpy(labels).astype(np.int32)
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = data.d
        self.backend_ = be.describe()
        self.assign_path_ = ops.name
        _warn_if_fewer_clusters(self.labels_, self.n_clusters)
        return self

    def _initial_centers(self, data: KMeansData, run: int) -> Any:
        k = self.n_clusters
        if not isinstance(self.init, str):
            init = self.init
            if not isinstance(init, (np.ndarray, list, tuple)):  # a device array
                init = data.backend.to_numpy(init)
            c = np.asarray(init, dtype=data.dtype)
            if c.shape != (k, data.d):
                raise ValueError(f"init has shape {c.shape}; expected ({k}, {data.d})")
            return data.backend.asarray(c, dtype=data.dtype)
        rng = seeding.rng(self.random_state, "kmeans", self.init, str(run))
        if self.init == "random":
            return data.rows(np.sort(rng.choice(data.n, size=k, replace=False)))
        return kmeans_plusplus(data, k, rng)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    # -- using a fitted model ----------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("this KMeans is not fitted yet; call fit(X) first")

    def _data(self, X: Any) -> KMeansData:
        self._check_fitted()
        X = _validated(X, "KMeans", reset=False, est=self)
        data = prepare(X, self._backend_, k=1,
                       budget_bytes=int(self.memory_budget_mb * 2**20))
        if data.d != self.n_features_in_:
            raise ValueError(f"X has {data.d} features; this KMeans was fitted on "
                             f"{self.n_features_in_}")
        return data

    def predict(self, X: Any) -> np.ndarray:
        data = self._data(X)
        centers = self._centers_as(data)
        labels, _ = assign_mod.choose(data, self.kernels).assign(data, centers)
        return self._backend_.to_numpy(labels).astype(np.int32)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances to every centre, ``(n_samples, n_clusters)``."""
        data = self._data(X)
        d2 = sq_distances(data, self._centers_as(data))
        xp = data.xp
        return self._backend_.to_numpy(xp.sqrt(xp.clip(d2, 0.0, None))).astype(data.dtype)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Opposite of the inertia of ``X`` against the fitted centres (as scikit-learn)."""
        data = self._data(X)
        centers = self._centers_as(data)
        labels, _ = assign_mod.choose(data, self.kernels).assign(data, centers)
        return -exact_inertia(data, centers, labels)

    def _centers_as(self, data: KMeansData) -> Any:
        xp = data.xp
        return xp.astype(self._centers_dev, getattr(xp, data.dtype))


# -- the algorithm body ----------------------------------------------------------------------


def lloyd(data: KMeansData, centers: Any, *, max_iter: int, tol: float,
          ops: assign_mod.AssignOps, verbose: bool = False) -> tuple[Any, float, Any, int]:
    """scikit-learn's ``_kmeans_single_lloyd`` over ``xp``: (labels, inertia, centers, n_iter)."""
    xp = data.xp
    labels = None
    strict = False
    it = 0
    for it in range(max_iter):
        labels, sums, counts, n_changed = ops.assign_update(data, centers, labels)
        new = _new_centers(data, centers, labels, sums, counts, ops)
        shift = float(xp.sum((new - centers) ** 2))
        centers = new
        if verbose:
            # verbose=True is the caller asking for this on stdout, as scikit-learn's
            # verbose estimators print it: not a library message
            print(f"kmeans: iteration {it + 1}, {n_changed} labels changed, "
                  f"centre shift {shift:.6g}")
        if it > 0 and n_changed == 0:
            strict = True
            break
        if shift <= tol:
            break
    if not strict:
        labels, _ = ops.assign(data, centers)
    return labels, exact_inertia(data, centers, labels), centers, it + 1


def _new_centers(data: KMeansData, centers: Any, labels: Any, sums: Any, counts: Any,
                 ops: assign_mod.AssignOps) -> Any:
    xp = data.xp
    empty = np.flatnonzero(data.backend.to_numpy(counts) == 0)
    if empty.size:
        # distances to the current centres, only now: the farthest points re-seed
        _, mind = ops.assign(data, centers)
        sums, counts = _relocate_empty(data, labels, mind, sums, counts, empty)
    safe = xp.where(counts > 0, counts, xp.ones_like(counts))
    means = sums / xp.astype(safe, sums.dtype)[:, None]
    # a cluster that stays empty (fewer distinct points than clusters) keeps its centre
    return xp.where((counts > 0)[:, None], means, centers)


def _relocate_empty(data: KMeansData, labels: Any, mind: Any, sums: Any, counts: Any,
                    empty: np.ndarray) -> tuple[Any, Any]:
    """Move each empty cluster onto one of the points farthest from their centre,
    taking that point out of its old cluster's sums (scikit-learn's rule)."""
    be = data.backend
    d = be.to_numpy(mind).astype(np.float64)
    far = np.argsort(-d, kind="stable")[: empty.size]
    lab = be.to_numpy(labels)
    s = be.to_numpy(sums).copy()
    c = be.to_numpy(counts).copy()
    rows = be.to_numpy(data.rows(far))
    for new_id, point, row in zip(empty, far, rows):
        old_id = lab[point]
        s[old_id] -= row
        c[old_id] -= 1
        s[new_id] = row
        c[new_id] = 1
    return be.asarray(s, dtype=data.dtype), be.asarray(c)


def sq_distances(data: KMeansData, points: Any) -> Any:
    """``(n, m)`` squared distances from every row to ``points`` (an ``(m, d)`` array)."""
    xp = data.xp
    pn = xp.sum(points * points, axis=1)
    pt = xp.permute_dims(points, (1, 0))
    parts = [xp.clip(b.sq_norms[:, None] + pn[None, :] - 2 * data.products(b, pt), 0.0, None)
             for b in data.blocks]
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def exact_inertia(data: KMeansData, centers: Any, labels: Any) -> float:
    """Sum of squared distances to the assigned centres.

    Dense input is summed as ``(x - c)²`` so float32 does not lose the small distances to
    cancellation; sparse input uses ``‖x‖² - 2x·c + ‖c‖²`` (as scikit-learn does there).
    """
    xp = data.xp
    total = 0.0
    cn = xp.sum(centers * centers, axis=1)
    for b in data.blocks:
        lab = labels[b.start:b.stop]
        if data.sparse:
            dots = data.backend.sparse.matmul(b.x, xp.permute_dims(centers, (1, 0)))
            ar = xp.arange(centers.shape[0], device=data.backend.device)
            onehot = xp.astype(lab[:, None] == ar[None, :], dots.dtype)
            cross = xp.sum(dots * onehot, axis=1)
            total += float(xp.sum(xp.clip(b.sq_norms - 2 * cross + xp.take(cn, lab), 0.0, None)))
        else:
            diff = b.x - xp.take(centers, lab, axis=0)  # dense only: (rows, d) is small here
            total += float(xp.sum(diff * diff))
    return total


def kmeans_plusplus(data: KMeansData, k: int, rng: np.random.Generator) -> Any:
    """scikit-learn's greedy k-means++ (``2 + ⌊log k⌋`` candidates per centre), with the
    random numbers drawn on the host so every backend seeds identically."""
    xp = data.xp
    be = data.backend
    n_trials = 2 + int(math.log(k))
    first = int(rng.integers(data.n))
    chosen = [first]
    closest = sq_distances(data, data.rows(np.array([first])))[:, 0]
    pot = float(xp.sum(closest))
    for _ in range(1, k):
        rand = rng.uniform(size=n_trials) * pot
        cum = xp.cumulative_sum(xp.astype(closest, xp.float64))
        cand = be.to_numpy(xp.searchsorted(cum, be.asarray(rand, dtype="float64")))
        cand = np.minimum(cand.astype(np.int64), data.n - 1)
        d_cand = sq_distances(data, data.rows(cand))
        new = xp.minimum(closest[:, None], d_cand)
        pots = be.to_numpy(xp.sum(xp.astype(new, xp.float64), axis=0))
        best = int(np.argmin(pots))
        chosen.append(int(cand[best]))
        closest = new[:, best]
        pot = float(pots[best])
    return data.rows(np.array(chosen))
