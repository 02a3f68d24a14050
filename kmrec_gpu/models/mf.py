"""Biased matrix factorisation by alternating least squares, once over the array namespace.

The model is ``r_ui = mu + b_u + b_i + p_u . q_i`` (Koren, Bell and Volinsky 2009; the model
of Surprise's ``SVD``), fitted to the training ratings by minimising

    sum_(u,i) (r_ui - mu - b_u - b_i - p_u . q_i)^2
        + sum_u w_u (reg ||p_u||^2 + reg_bias b_u^2) + sum_i w_i (reg ||q_i||^2 + reg_bias b_i^2)

with ``mu`` the training mean and ``w = n^reg_exponent`` (factors) or
``n^reg_bias_exponent`` (biases), ``n`` the rating count of the user or item. Exponent 1
is ALS-WR (Zhou et al. 2008): the penalty stochastic gradient descent applies per rating,
so ``reg`` then means what it means to Surprise's ``SVD`` (``reg_all``). Exponent 0 is a
plain ridge penalty, as Surprise's ``BaselineOnly`` and this project's ``BiasBaseline``
use for biases (``reg_bias`` then counts pseudo-ratings at the mean).

Why ALS and not SGD. With the item side fixed, each user's ``(p_u, b_u)`` is an ordinary
ridge regression on ``[q_i, 1]``, solved in closed form; alternating sides never raises the
objective (``train_loss_`` records it). That gives: no learning rate to tune (only the
penalties, the rank and the number of epochs); the same numbers for a seed on every
backend, since the only random draw is the initial item factors, made on the host;
and an epoch that is a handful of large array operations instead of a Python- or
Cython-level loop over ratings, which is what a GPU needs. Every user's system is built
in batch: the Gram matrices ``sum_(i in Omega_u) v_i v_i^T`` of all users at once are
``B @ (V (x) V)``, one sparse-dense product of the binary ratings matrix ``B`` with the
row-wise Kronecker square of ``V = [Q, 1]`` (its ``k(k+1)/2`` distinct columns only: the
Gram matrices are symmetric); the right-hand sides are
``R0 @ V - B @ (b_item * V)`` with ``R0`` the centred ratings; then ``xp.linalg.solve``
on the stacked ``(n_users, k+1, k+1)`` systems. The item side is the same with the
transposed matrices. Costs: ``O(nnz k^2)`` for the products and ``O((n_users + n_items) k^3)``
for the solves per epoch; memory ``O(n k^2)`` for the Kronecker block and the stacked
systems, bounded by processing rows and columns in blocks of at most ``block_bytes``.

Defaults (``reg=0.1`` per rating on the factors, ``reg_bias=2`` unweighted on the biases)
come from validation splits carved out of ml-100k and ml-latest-small training sets; ALS
overfits within a few epochs at these sizes, so pass a validation set to :meth:`fit` (or
use :class:`kmrec_gpu.models.tuning.TunedBiasedMF`) to choose the epoch count.

Users or items with no training rating keep zero factors and a zero bias, so they are
predicted as ``mu + b_i`` (or ``mu + b_u``, or ``mu``). Predictions are clipped to the
rating scale.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend, get_backend
from kmrec_gpu.factor.linalg import sampled_dot, sddmm_path
from kmrec_gpu.ratings import Ratings


@dataclass(frozen=True, eq=False)
class _Block:
    """One block of rows of a side's matrices, split by column blocks."""

    start: int
    stop: int
    cols: tuple[tuple[int, int, Any, Any], ...]  # (col start, col stop, B sub, R0 sub)


@dataclass(frozen=True, eq=False)
class _Side:
    """The fixed sparse data of one half-step: rows are solved, columns are held fixed."""

    n_rows: int
    blocks: tuple[_Block, ...]
    counts: Any  # xp float array (n_rows,): ratings per row
    cold: Any  # xp float array (n_rows,): 1 for rows with no rating, else 0


def _blocks(be: Backend, b: sp.csr_matrix, r0: sp.csr_matrix, row_step: int,
            col_step: int) -> tuple[_Block, ...]:
    out = []
    n_rows, n_cols = b.shape
    for rs in range(0, max(n_rows, 1), row_step):
        re = min(rs + row_step, n_rows)
        b_rows, r_rows = b[rs:re], r0[rs:re]
        cols = []
        for cs in range(0, n_cols, col_step):
            ce = min(cs + col_step, n_cols)
            b_sub = b_rows if (cs, ce) == (0, n_cols) else b_rows[:, cs:ce]
            if b_sub.nnz == 0:
                continue
            r_sub = r_rows if (cs, ce) == (0, n_cols) else r_rows[:, cs:ce]
            cols.append((cs, ce, be.sparse.from_scipy(b_sub), be.sparse.from_scipy(r_sub)))
        out.append(_Block(rs, re, tuple(cols)))
    return tuple(out)


def _one_blas_thread(be: Backend) -> contextlib.AbstractContextManager:
    """NumPy's batched ``solve`` calls LAPACK once per small system; a multi-threaded
    OpenBLAS then spends its time synchronising threads (measured on the 2-core CI machine:
    1000 systems of size 101 took 17 s threaded, 0.12 s on one thread). Other libraries
    batch on their own and are left alone."""
    if be.name == "cpu" and be.library in ("numpy", "array_api_strict"):
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1, user_api="blas")
    return contextlib.nullcontext()


class BiasedMF:
    """Biased matrix factorisation (``mu + b_u + b_i + p_u . q_i``) fitted by batched ALS.

    Parameters
    ----------
    n_factors : rank of ``P`` and ``Q``.
    reg : penalty on the factors, times ``n ** reg_exponent``.
    reg_bias : penalty on the biases, times ``n ** reg_bias_exponent``.
    n_epochs : maximum number of epochs (an epoch solves the users, then the items).
    reg_exponent, reg_bias_exponent : weight of the penalties by rating count ``n``
        (1: per rating, ALS-WR; 0: unweighted).
    init_std : standard deviation of the initial item factors (drawn on the host).
    random_state : the run seed; the only random stream is the initial ``Q``.
    backend : ``"cpu"``, ``"auto"``, ``"cuda"``, or a :class:`Backend`.
    library : array library for a named backend (see :func:`get_backend`).
    dtype : ``"float64"`` or ``"float32"``.
    patience : with a validation set, stop after this many epochs without improvement and
        keep the best epoch's parameters.
    block_bytes : memory budget for one Kronecker block or one stack of systems.
    clip : clip predictions to the rating scale.
    kernels : ``"auto"`` scores the training loss and validation pairs with the Triton SDDMM
        kernel on CUDA, ``"off"`` with the namespace composition (A/B), ``"on"`` demands
        the kernel; ``sddmm_path_`` records which ran.

    Fitted attributes: ``global_mean_``, ``user_factors_`` (n_users, k), ``item_factors_``
    (n_items, k), ``user_bias_``, ``item_bias_`` (host NumPy float64), ``train_loss_`` and,
    with a validation set, ``valid_rmse_`` (one value per epoch run), ``best_epoch_``
    (1-based epoch whose parameters are kept), ``n_epochs_`` (epochs run).
    """

    def __init__(self, *, n_factors: int = 50, reg: float = 0.1, reg_bias: float = 2.0,
                 n_epochs: int = 20, reg_exponent: float = 1.0,
                 reg_bias_exponent: float = 0.0, init_std: float = 0.1,
                 random_state: int = 0, backend: str | Backend = "cpu",
                 library: str | None = None, dtype: str = "float64", patience: int = 3,
                 block_bytes: int = 256 * 2**20, clip: bool = True,
                 kernels: str = "auto") -> None:
        self.n_factors = n_factors
        self.reg = reg
        self.reg_bias = reg_bias
        self.n_epochs = n_epochs
        self.reg_exponent = reg_exponent
        self.reg_bias_exponent = reg_bias_exponent
        self.init_std = init_std
        self.random_state = random_state
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.patience = patience
        self.block_bytes = block_bytes
        self.clip = clip
        self.kernels = kernels

    # -- sklearn-style plumbing ------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        if not isinstance(out["backend"], str):
            out["backend"] = f"{out['backend'].name}:{out['backend'].library}"
        return out

    def set_params(self, **params: Any) -> BiasedMF:
        for k, v in params.items():
            if k.endswith("_") or not hasattr(self, k):
                raise ValueError(f"unknown parameter {k!r} for BiasedMF")
            setattr(self, k, v)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "global_mean_"):
            raise RuntimeError("BiasedMF is not fitted; call fit(train) first")

    def _backend(self) -> Backend:
        if isinstance(self.backend, Backend):
            return self.backend
        return get_backend(self.backend, library=self.library)

    def _validate(self) -> None:
        if int(self.n_factors) != self.n_factors or self.n_factors < 1:
            raise ValueError(f"n_factors must be a positive int, got {self.n_factors!r}")
        if self.n_epochs < 1:
            raise ValueError(f"n_epochs must be >= 1, got {self.n_epochs}")
        if self.reg < 0 or self.reg_bias < 0:
            raise ValueError(f"penalties must be >= 0, got reg={self.reg}, "
                             f"reg_bias={self.reg_bias}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")

    # -- fitting ---------------------------------------------------------------------------

    def _side(self, be: Backend, b: sp.csr_matrix, r0: sp.csr_matrix, k: int) -> _Side:
        itemsize = np.dtype(self.dtype).itemsize
        # budget: one Kronecker block (cols x k(k+1)/2) and ~4 copies of a (rows, k, k) stack
        col_step = max(1, int(self.block_bytes // (k * (k + 1) // 2 * itemsize)))
        row_step = max(1, int(self.block_bytes // (4 * k * k * itemsize)))
        counts = np.diff(b.indptr).astype(self.dtype)
        return _Side(n_rows=b.shape[0], blocks=_blocks(be, b, r0, row_step, col_step),
                     counts=be.asarray(counts, self.dtype),
                     cold=be.asarray((counts == 0).astype(self.dtype), self.dtype))

    def _half_step(self, be: Backend, side: _Side, fixed_f: Any, fixed_b: Any) -> tuple[Any, Any]:
        """Solve every row's ridge system with the other side ``(fixed_f, fixed_b)`` fixed.

        Returns the row factors ``(n_rows, n_factors)`` and biases ``(n_rows,)``.
        """
        xp, dt = be.xp, be._xp_dtype(self.dtype)
        n_cols = fixed_f.shape[0]
        k = self.n_factors + 1
        v = xp.concat([fixed_f, xp.ones((n_cols, 1), dtype=dt, device=be.device)], axis=1)
        bv = fixed_b[:, None] * v
        lam_f = np.r_[np.full(k - 1, float(self.reg)), 0.0]
        lam_b = np.r_[np.zeros(k - 1), float(self.reg_bias)]
        lam_f, lam_b = be.asarray(lam_f, self.dtype), be.asarray(lam_b, self.dtype)
        # the Gram matrices are symmetric: form the upper triangle's n_tri = k(k+1)/2 columns
        # of the Kronecker square only, and spread them to k x k after the product
        iu, ju = np.triu_indices(k)
        n_tri = iu.size
        tri = np.empty((k, k), dtype=np.int64)
        tri[iu, ju] = tri[ju, iu] = np.arange(n_tri)
        on_diag = np.where(iu == ju, iu + 1, 0)  # triangle column -> 1 + diagonal index, or 0
        iu, ju = be.asarray(iu, "int64"), be.asarray(ju, "int64")
        spread, on_diag = be.asarray(tri.ravel(), "int64"), be.asarray(on_diag, "int64")
        xs = []
        for blk in side.blocks:
            m = blk.stop - blk.start
            gram = rhs = None
            for cs, ce, b_sub, r_sub in blk.cols:
                vb = v[cs:ce, :]
                kron = xp.take(vb, iu, axis=1) * xp.take(vb, ju, axis=1)
                g = be.sparse.matmul(b_sub, kron)
                h = be.sparse.matmul(r_sub, vb) - be.sparse.matmul(b_sub, bv[cs:ce, :])
                gram, rhs = (g, h) if gram is None else (gram + g, rhs + h)
            if gram is None:  # no rating in this block of rows
                gram = xp.zeros((m, n_tri), dtype=dt, device=be.device)
                rhs = xp.zeros((m, k), dtype=dt, device=be.device)
            # penalties on the diagonal; a row with no rating gets I (its right-hand side is
            # 0), so it solves to zero factors and bias, never a singular system
            n = side.counts[blk.start:blk.stop]
            diag = (self._weights(xp, n, self.reg_exponent)[:, None] * lam_f[None, :]
                    + self._weights(xp, n, self.reg_bias_exponent)[:, None] * lam_b[None, :]
                    + side.cold[blk.start:blk.stop][:, None])
            diag = xp.concat([xp.zeros((m, 1), dtype=dt, device=be.device), diag], axis=1)
            gram = gram + xp.take(diag, on_diag, axis=1)
            a = xp.reshape(xp.take(gram, spread, axis=1), (m, k, k))
            with _one_blas_thread(be):
                xs.append(xp.linalg.solve(a, rhs[:, :, None])[:, :, 0])
        x = xs[0] if len(xs) == 1 else xp.concat(xs, axis=0)
        return x[:, :-1], x[:, -1]

    @staticmethod
    def _weights(xp: Any, n: Any, exponent: float) -> Any:
        if exponent == 0:
            return xp.ones_like(n)
        return n if exponent == 1 else n ** exponent

    def _predict_xp(self, be: Backend, u: Any, i: Any, mu: float, p: Any, q: Any, bu: Any,
                    bi: Any) -> Any:
        return sampled_dot(be, p, q, u, i, row_bias=bu, col_bias=bi, offset=mu,
                           path=self.sddmm_path_)

    def _loss(self, be: Backend, data: tuple, mu: float, p: Any, q: Any, bu: Any, bi: Any,
              n_u: Any, n_i: Any) -> float:
        xp = be.xp
        u, i, r = data
        e = r - self._predict_xp(be, u, i, mu, p, q, bu, bi)
        def wsum(n: Any, x2: Any, exponent: float) -> Any:
            return xp.sum(self._weights(xp, n, exponent) * x2)

        ef, eb = self.reg_exponent, self.reg_bias_exponent
        pen = self.reg * (wsum(n_u, xp.sum(p * p, axis=1), ef)
                          + wsum(n_i, xp.sum(q * q, axis=1), ef))
        pen = pen + self.reg_bias * (wsum(n_u, bu * bu, eb) + wsum(n_i, bi * bi, eb))
        return float(xp.sum(e * e) + pen)

    def fit(self, train: Ratings, valid: Ratings | None = None) -> BiasedMF:
        """Fit on ``train``; with ``valid`` (same vocabularies) stop early on its RMSE."""
        self._validate()
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        # as the other factor models refuse too many components: a rank above the smaller
        # side fits nothing more, and its (k+1)^2 systems per row take minutes for nothing
        limit = min(train.n_users, train.n_items)
        if self.n_factors > limit:
            raise ValueError(f"n_factors={self.n_factors} must be in [1, {limit}] for a "
                             f"{train.n_users}x{train.n_items} training matrix "
                             "(users x items)")
        if valid is not None and (valid.n_users != train.n_users
                                  or valid.n_items != train.n_items):
            raise ValueError("valid must share the training set's vocabularies "
                             "(use splits.validation_split)")
        be = self._backend()
        xp, dt = be.xp, be._xp_dtype(self.dtype)
        self.sddmm_path_, _ = sddmm_path(be, self.kernels)
        k = self.n_factors
        r64 = train.ratings.astype(np.float64)
        mu = float(r64.mean())
        shape = (train.n_users, train.n_items)
        b_ui = sp.csr_matrix((np.ones(len(train), dtype=self.dtype), (train.users, train.items)),
                             shape=shape)
        r0_ui = sp.csr_matrix(((r64 - mu).astype(self.dtype), (train.users, train.items)),
                              shape=shape)
        if b_ui.nnz != len(train):
            raise ValueError("train has duplicate (user, item) pairs; call Ratings.validate()")
        users = self._side(be, b_ui, r0_ui, k + 1)
        items = self._side(be, b_ui.T.tocsr(), r0_ui.T.tocsr(), k + 1)

        g = seeding.rng(self.random_state, "mf", "init")
        q = be.asarray(g.normal(0.0, self.init_std, size=(train.n_items, k)), self.dtype)
        q = q * (1.0 - items.cold[:, None])  # unrated items start (and stay) at zero
        bi = xp.zeros((train.n_items,), dtype=dt, device=be.device)
        p = xp.zeros((train.n_users, k), dtype=dt, device=be.device)
        bu = xp.zeros((train.n_users,), dtype=dt, device=be.device)

        def col(a: np.ndarray, dtype: Any) -> Any:
            return be.asarray(a, dtype)

        tr = (col(train.users, "int64"), col(train.items, "int64"), col(r64, self.dtype))
        va = None if valid is None or len(valid) == 0 else (
            col(valid.users, "int64"), col(valid.items, "int64"),
            valid.ratings.astype(np.float64))
        lo, hi = train.scale.minimum, train.scale.maximum

        self.train_loss_: list[float] = []
        self.valid_rmse_: list[float] = []
        best = (math.inf, 0, None)
        since_best = 0
        for epoch in range(1, self.n_epochs + 1):
            p, bu = self._half_step(be, users, q, bi)
            q, bi = self._half_step(be, items, p, bu)
            self.train_loss_.append(self._loss(be, tr, mu, p, q, bu, bi, users.counts,
                                               items.counts))
            if va is not None:
                pred = be.to_numpy(self._predict_xp(be, va[0], va[1], mu, p, q, bu, bi))
                pred = np.clip(pred.astype(np.float64), lo, hi) if self.clip else pred
                score = float(np.sqrt(np.mean((pred - va[2]) ** 2)))
                self.valid_rmse_.append(score)
                if score < best[0]:
                    best, since_best = (score, epoch, (p, q, bu, bi)), 0
                else:
                    since_best += 1
                    if since_best >= self.patience:
                        break
        self.n_epochs_ = epoch
        if va is not None:
            p, q, bu, bi = best[2]
            self.best_epoch_ = best[1]
        else:
            self.best_epoch_ = epoch
        be.synchronize()

        def host(a: Any) -> np.ndarray:
            return np.array(be.to_numpy(a), dtype=np.float64)  # a copy, never a device view

        self.global_mean_ = mu
        self.user_factors_, self.item_factors_ = host(p), host(q)
        self.user_bias_, self.item_bias_ = host(bu), host(bi)
        self.scale_ = train.scale
        self.backend_ = be.describe()
        return self

    # -- prediction ------------------------------------------------------------------------

    def predict(self, X: Ratings) -> np.ndarray:
        """Predicted ratings of ``X``'s (user, item) pairs, float64, clipped to the scale."""
        self._check_fitted()
        if X.n_users != self.user_bias_.shape[0] or X.n_items != self.item_bias_.shape[0]:
            raise ValueError("X must share the training set's vocabularies (use a TTSplit)")
        return self.predict_pairs(X.users, X.items)

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predictions for user and item codes of the training vocabularies."""
        self._check_fitted()
        u, i = np.asarray(users), np.asarray(items)
        p = (self.global_mean_ + self.user_bias_[u] + self.item_bias_[i]
             + np.einsum("nk,nk->n", self.user_factors_[u], self.item_factors_[i]))
        if self.clip:
            p = np.clip(p, self.scale_.minimum, self.scale_.maximum)
        return p
