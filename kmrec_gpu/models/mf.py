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
in batch from BLAS-shaped products. Once per fit, on the host, each side's rows are sorted
by rating count and cut into degree buckets (a bucket's counts are within a factor 1.25 of
its smallest, or within 8 of it, and none straddles ``k+1``); each bucket's rows are padded
to its largest count ``d``, the padding pointing at an extra zero row, so a bucket is an
index ``(m, d)`` into the fixed side and its centred ratings ``R0`` as an ``(m, d)`` array.
Per half-step, with ``V = [Q, 1]`` (``k`` factors), a bucket gathers ``S = V[index]``
``(m, d, k+1)`` and ``y = R0 - b_item[index]``; its Gram matrices
``sum_(i in Omega_u) v_i v_i^T`` are ``S^T S`` and its right-hand sides ``S^T y``, two
batched ``matmul``; then ``xp.linalg.solve`` on the stacked ``(m, k+1, k+1)`` systems
``(S^T S + L) x = S^T y``, ``L`` the diagonal penalties. A bucket of rows with fewer than
``k+1`` ratings is solved in the dual form instead (Woodbury's identity, when every
penalty is positive): ``Z = S L^-1/2``, ``(Z Z^T + I) a = y``, ``x = L^-1/2 Z^T a``, a
``(d, d)`` system per row. The item side is the same with the transposed matrices; rows
with no rating get zero factors and bias without a solve. Costs per epoch: ``O(nnz' k^2)``
for the products, ``nnz'`` the padded rating count (about 1.1 to 1.2 ``nnz`` on MovieLens;
padding rows are zeros, so they change nothing), ``O(n k^3)`` for the solves of the ``n``
rows with at least ``k+1`` ratings and ``O(d^3)`` for each other row's; on a CPU, LAPACK
runs once per small system, which makes the ``(k+1, k+1)`` solves about half the time.
Memory: ``O(nnz')`` for the index, kept for the fit, and, per chunk of a bucket, the
gathered ``(m, d, k+1)`` stack and the ``(m, k+1, k+1)`` systems, bounded by
``block_bytes`` (a row's ratings are split into column pieces whose Gram matrices add up
if one row alone would exceed it).

``solver="cd"`` replaces each row's solve by one cyclic coordinate-descent sweep from the
previous epoch's values (``kernels/cpu_als_cd.py``, with the sweep's arithmetic there):
``O(nnz k)`` an epoch and ``O(nnz)`` memory, the same objective and, at 20 epochs on
MovieLens, the same held-out RMSE to the third decimal (results/bench/peers.md).

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
from kmrec_gpu.backends import Backend, check_float_dtype, resolve_backend
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.factor.linalg import sampled_dot, sddmm_path
from kmrec_gpu.ratings import Ratings

# degree buckets: a bucket holds the rows whose rating count is at most
# max(_BUCKET_GROWTH * d, d + _BUCKET_SLACK) for its smallest count d, so padding to the
# bucket's largest count wastes under 25% of the gathered rows (more, but only a few rows'
# worth, among the small counts, where each row's solve costs far more than its padding);
# a bucket below k (= n_factors + 1) ratings stops at k - 1, for the dual form
_BUCKET_GROWTH = 1.25
_BUCKET_SLACK = 8


@dataclass(frozen=True, eq=False)
class _Chunk:
    """Rows ``start:stop`` of a side's degree-sorted order, all padded to one width.

    ``pieces`` splits that width into column pieces ``(index, r0)``: ``index`` (rows * w,)
    int64 are the fixed side's rows to gather, the padding pointing at an extra zero row
    (``n_cols``); ``r0`` (rows, w) are the centred ratings, 0 at the padding.
    """

    start: int
    stop: int
    width: int  # the largest rating count of these rows
    counts: Any  # xp float array (rows,): ratings per row
    pieces: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True, eq=False)
class _Side:
    """The fixed sparse data of one half-step: rows are solved, columns are held fixed."""

    n_rows: int
    n_cold: int  # rows with no rating: first in the degree-sorted order, solved to zero
    chunks: tuple[_Chunk, ...]
    unsort: Any  # xp int64 (n_rows,): position of each row in the degree-sorted order
    counts: Any  # xp float array (n_rows,): ratings per row
    cold: Any  # xp float array (n_rows,): 1 for rows with no rating, else 0
    # solver="cd": the host CSR (the numba sweep's input), or for the composed sweep the
    # cells in CSR order on the device (rows, cols, centred ratings) and the (n_rows, nnz)
    # 0/1 matrix whose product sums each row's cells
    csr: sp.csr_matrix | None = None
    cells: tuple[Any, Any, Any, Any] | None = None


def _chunks(be: Backend, csr: sp.csr_matrix, order: np.ndarray, n_cold: int, k: int,
            itemsize: int, block_bytes: int, dtype: str) -> tuple[_Chunk, ...]:
    """Degree buckets of the rows in ``order`` (sorted by count, cold rows first), cut into
    chunks of rows and column pieces that keep one gathered stack within ``block_bytes``."""
    n_cols = csr.shape[1]
    counts = np.diff(csr.indptr)[order]
    starts = csr.indptr[:-1][order]
    nnz = csr.indices.size
    # a piece gathers (rows, w, k) factor rows; ~4 (rows, k, k) stacks follow it
    w_step = max(1, block_bytes // (itemsize * k))
    out = []
    lo = n_cold
    while lo < counts.size:
        d = int(counts[lo])
        edge = max(int(_BUCKET_GROWTH * d), d + _BUCKET_SLACK)
        if d < k:  # no bucket straddles k: below it, rows may be solved in the dual form
            edge = min(edge, k - 1)
        hi = int(np.searchsorted(counts, edge, side="right"))
        width = int(counts[hi - 1])
        row_step = max(1, block_bytes // (itemsize * k * (min(width, w_step) + 4 * k)))
        for rs in range(lo, hi, row_step):
            re = min(rs + row_step, hi)
            n = counts[rs:re, None]
            pieces = []
            for ws in range(0, width, w_step):
                j = np.arange(ws, min(ws + w_step, width))
                pad = j[None, :] >= n
                at = np.minimum(starts[rs:re, None] + j[None, :], nnz - 1)
                index = np.where(pad, n_cols, csr.indices[at]).astype(np.int64)
                r0 = np.where(pad, 0.0, csr.data[at]).astype(dtype)
                pieces.append((be.asarray(index.ravel(), "int64"), be.asarray(r0, dtype)))
            out.append(_Chunk(rs, re, width, be.asarray(counts[rs:re].astype(dtype), dtype),
                              tuple(pieces)))
        lo = hi
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


class BiasedMF(Estimator):
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
    block_bytes : memory budget for one gathered stack of factor rows and its stack of
        systems.
    clip : clip predictions to the rating scale.
    kernels : ``"auto"`` scores the training loss and validation pairs with the Triton SDDMM
        kernel on CUDA, ``"off"`` with the namespace composition (A/B), ``"on"`` demands
        the kernel; ``sddmm_path_`` records which ran. With ``solver="cd"``, ``"off"`` also
        runs the sweep as the namespace composition instead of the numba kernel.
    solver : ``"exact"`` solves every row's system each half-step (above); ``"cd"`` makes
        one cyclic coordinate-descent sweep per row instead, from the previous epoch's
        values (Pilászy et al. 2010, LensKit's ``method="cd"``): ``O(nnz k)`` an epoch, not
        ``O(nnz k^2 + n k^3)``; the numba kernel ``kernels/cpu_als_cd.py`` on NumPy, the
        same sweep over the namespace elsewhere (``solver_path_`` records which).

    Fitted attributes: ``global_mean_``, ``user_factors_`` (n_users, k), ``item_factors_``
    (n_items, k), ``user_bias_``, ``item_bias_`` (host NumPy float64), ``train_loss_`` and,
    with a validation set, ``valid_rmse_`` (one value per epoch run), ``best_epoch_``
    (1-based epoch whose parameters are kept), ``n_epochs_`` (epochs run).
    """

    _fitted_attr = "global_mean_"

    def __init__(self, *, n_factors: int = 50, reg: float = 0.1, reg_bias: float = 2.0,
                 n_epochs: int = 20, reg_exponent: float = 1.0,
                 reg_bias_exponent: float = 0.0, init_std: float = 0.1,
                 random_state: int = 0, backend: str | Backend = "cpu",
                 library: str | None = None, dtype: str = "float64", patience: int = 3,
                 block_bytes: int = 256 * 2**20, clip: bool = True,
                 kernels: str = "auto", solver: str = "exact") -> None:
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
        self.solver = solver

    def _backend(self) -> Backend:
        return resolve_backend(self.backend, self.library)

    def _validate(self) -> None:
        if int(self.n_factors) != self.n_factors or self.n_factors < 1:
            raise ValueError(f"n_factors must be a positive int, got {self.n_factors!r}")
        if self.n_epochs < 1:
            raise ValueError(f"n_epochs must be >= 1, got {self.n_epochs}")
        if self.reg < 0 or self.reg_bias < 0:
            raise ValueError(f"penalties must be >= 0, got reg={self.reg}, "
                             f"reg_bias={self.reg_bias}")
        check_float_dtype(self.dtype)
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.solver not in ("exact", "cd"):
            raise ValueError(f"solver must be 'exact' or 'cd', got {self.solver!r}")

    # -- fitting ---------------------------------------------------------------------------

    def _side(self, be: Backend, r0: sp.csr_matrix, k: int) -> _Side:
        """The index of one half-step, built once per fit on the host from the structure of
        ``r0`` (a CSR without duplicate entries; explicit zeros are ratings)."""
        if self.solver == "cd":
            return self._cd_side(be, r0)
        itemsize = np.dtype(self.dtype).itemsize
        counts = np.diff(r0.indptr)
        order = np.argsort(counts, kind="stable")
        unsort = np.empty_like(order)
        unsort[order] = np.arange(order.size)
        n_cold = int(np.count_nonzero(counts == 0))
        counts = counts.astype(self.dtype)
        return _Side(n_rows=r0.shape[0], n_cold=n_cold,
                     chunks=_chunks(be, r0, order, n_cold, k, itemsize,
                                    int(self.block_bytes), self.dtype),
                     unsort=be.asarray(unsort, "int64"),
                     counts=be.asarray(counts, self.dtype),
                     cold=be.asarray((counts == 0).astype(self.dtype), self.dtype))

    def _half_step(self, be: Backend, side: _Side, fixed_f: Any, fixed_b: Any) -> tuple[Any, Any]:
        """Solve every row's ridge system with the other side ``(fixed_f, fixed_b)`` fixed.

        Returns the row factors ``(n_rows, n_factors)`` and biases ``(n_rows,)``.
        """
        xp, dt = be.xp, be._xp_dtype(self.dtype)
        n_cols = fixed_f.shape[0]
        k = self.n_factors + 1
        # V = [Q, 1] and the fixed biases, each with a zero row at n_cols for the padding
        v = xp.concat([xp.concat([fixed_f, xp.ones((n_cols, 1), dtype=dt, device=be.device)],
                                 axis=1),
                       xp.zeros((1, k), dtype=dt, device=be.device)], axis=0)
        b = xp.concat([fixed_b, xp.zeros((1,), dtype=dt, device=be.device)])
        # below k ratings a row's system is smaller in the dual form, which needs every
        # penalty positive
        dual = self.reg > 0 and self.reg_bias > 0
        # rows with no rating solve to zero factors and bias (the old I x = 0)
        xs = [xp.zeros((side.n_cold, k), dtype=dt, device=be.device)] if side.n_cold else []
        # once per half-step (finding the BLAS libraries takes milliseconds), around the
        # batched matmul too: it is also one small BLAS call per row
        with _one_blas_thread(be):
            for chunk in side.chunks:
                # the penalties: the diagonal of each row's system
                pen_f, pen_b = self._penalties(xp, chunk.counts)
                m = chunk.stop - chunk.start
                lam = xp.concat([xp.broadcast_to(pen_f[:, None], (m, k - 1)), pen_b[:, None]],
                                axis=1)
                if dual and chunk.width < k and len(chunk.pieces) == 1:
                    xs.append(self._solve_dual(be, chunk, v, b, lam))
                else:
                    xs.append(self._solve_primal(be, chunk, v, b, lam))
        x = xs[0] if len(xs) == 1 else xp.concat(xs, axis=0)
        x = xp.take(x, side.unsort, axis=0)  # back from the degree-sorted order
        return x[:, :-1], x[:, -1]

    def _cd_side(self, be: Backend, r0: sp.csr_matrix) -> _Side:
        counts = np.diff(r0.indptr)
        n_rows, nnz = r0.shape[0], r0.nnz
        csr = cells = None
        if self.solver_path_ == "numba-cpu":
            csr = r0
        else:
            rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
            seg = sp.csr_matrix((np.ones(nnz, dtype=self.dtype), np.arange(nnz), r0.indptr),
                                shape=(n_rows, nnz))
            cells = (be.asarray(rows, "int64"), be.asarray(r0.indices.astype(np.int64), "int64"),
                     be.asarray(r0.data, self.dtype), be.sparse.from_scipy(seg))
        counts = counts.astype(self.dtype)
        return _Side(n_rows=n_rows, n_cold=int(np.count_nonzero(counts == 0)), chunks=(),
                     unsort=None, counts=be.asarray(counts, self.dtype),
                     cold=be.asarray((counts == 0).astype(self.dtype), self.dtype),
                     csr=csr, cells=cells)

    def _penalties(self, xp: Any, n: Any) -> tuple[Any, Any]:
        """Each row's penalty on its factors and on its bias (the diagonal of its system)."""
        return (self.reg * self._weights(xp, n, self.reg_exponent),
                self.reg_bias * self._weights(xp, n, self.reg_bias_exponent))

    def _cd_half_step(self, be: Backend, side: _Side, fixed_f: Any, fixed_b: Any,
                      x_f: Any, x_b: Any) -> tuple[Any, Any, float]:
        """One coordinate-descent sweep of every row from its current ``(x_f, x_b)``:
        ``kernels/cpu_als_cd.py`` on NumPy, else :meth:`_cd_composed` (the same sweep).
        Returns the new factors, biases and sum of squared training residuals."""
        if side.csr is None:
            return self._cd_composed(be, side, fixed_f, fixed_b, x_f, x_b)
        from kernels.cpu_als_cd import cd_sweep

        x = np.concatenate([np.asarray(x_f), np.asarray(x_b)[:, None]], axis=1)
        pen_f, pen_b = self._penalties(np, np.asarray(side.counts))
        sse = cd_sweep(side.csr.indptr, side.csr.indices, side.csr.data,
                       np.ascontiguousarray(fixed_f), np.ascontiguousarray(fixed_b), x,
                       np.ascontiguousarray(pen_f, dtype=x.dtype),
                       np.ascontiguousarray(pen_b, dtype=x.dtype))
        return x[:, :-1], x[:, -1], float(sse)

    def _cd_composed(self, be: Backend, side: _Side, fixed_f: Any, fixed_b: Any,
                     x_f: Any, x_b: Any) -> tuple[Any, Any, float]:
        """The sweep of ``kernels/cpu_als_cd.py`` over the namespace: rows are independent
        within a half-step, so coordinate ``f`` of every row is updated at once, each row's
        sums over its cells being one product with the 0/1 cell matrix."""
        xp = be.xp
        rows, cols, r, seg = side.cells
        n, warm = side.counts, 1.0 - side.cold
        pen_f, pen_b = self._penalties(xp, n)
        e = (r - xp.take(fixed_b, cols) - xp.take(x_b, rows)
             - sampled_dot(be, x_f, fixed_f, rows, cols, path=self.sddmm_path_))
        out = []
        for f in range(int(fixed_f.shape[1])):
            vf = xp.take(fixed_f[:, f], cols)
            num = be.sparse.matmul(seg, e * vf)
            den = be.sparse.matmul(seg, vf * vf)
            old = x_f[:, f]
            den_all = den + pen_f
            ok = den_all > 0  # else the coordinate keeps its value, as in the kernel
            new = xp.where(ok, (num + old * den) / xp.where(ok, den_all, 1.0), old) * warm
            e = e - xp.take(new - old, rows) * vf
            out.append(new)
        num = be.sparse.matmul(seg, e)
        den_all = n + pen_b
        new_b = (num + x_b * n) / xp.where(den_all > 0, den_all, 1.0) * warm
        e = e - xp.take(new_b - x_b, rows)
        return xp.stack(out, axis=1), new_b, float(xp.sum(e * e))

    @staticmethod
    def _solve_primal(be: Backend, chunk: _Chunk, v: Any, b: Any, lam: Any) -> Any:
        """``(S^T S + diag(lam)) x = S^T y`` for the chunk's rows, ``S`` their gathered
        ``V`` rows and ``y`` their ratings less the fixed biases, summed over the pieces."""
        xp, m, k = be.xp, chunk.stop - chunk.start, v.shape[1]
        gram = rhs = None
        for index, r0 in chunk.pieces:
            vs = xp.reshape(xp.take(v, index, axis=0), (m, -1, k))  # (m, w, k)
            y = r0 - xp.reshape(xp.take(b, index), (m, -1))  # (m, w)
            vt = xp.matrix_transpose(vs)
            g, h = xp.matmul(vt, vs), xp.matmul(vt, y[:, :, None])
            gram, rhs = (g, h) if gram is None else (gram + g, rhs + h)
        eye = xp.eye(k, dtype=v.dtype, device=be.device)
        return xp.linalg.solve(gram + lam[:, :, None] * eye[None, :, :], rhs)[:, :, 0]

    @staticmethod
    def _solve_dual(be: Backend, chunk: _Chunk, v: Any, b: Any, lam: Any) -> Any:
        """The same solution by Woodbury's identity, for rows of fewer than ``k`` ratings
        (one piece): with ``Z = S diag(lam)^-1/2``, ``x = diag(lam)^-1/2 Z^T a`` where
        ``(Z Z^T + I) a = y``, a ``(w, w)`` system per row instead of ``(k, k)``. Padding
        rows of ``S`` are zero and their ``y`` is 0, so their ``a`` is 0."""
        xp, m, k = be.xp, chunk.stop - chunk.start, v.shape[1]
        index, r0 = chunk.pieces[0]
        scale = 1.0 / xp.sqrt(lam)  # (m, k)
        z = xp.reshape(xp.take(v, index, axis=0), (m, -1, k)) * scale[:, None, :]  # (m, w, k)
        y = r0 - xp.reshape(xp.take(b, index), (m, -1))  # (m, w)
        eye = xp.eye(z.shape[1], dtype=v.dtype, device=be.device)
        a = xp.linalg.solve(xp.matmul(z, xp.matrix_transpose(z)) + eye[None, :, :],
                            y[:, :, None])
        return scale * xp.matmul(xp.matrix_transpose(z), a)[:, :, 0]

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
              n_u: Any, n_i: Any, sse: float | None = None) -> float:
        """The objective: squared training error (``sse`` when the sweep measured it)
        plus the penalties."""
        xp = be.xp
        if sse is None:
            u, i, r = data
            e = r - self._predict_xp(be, u, i, mu, p, q, bu, bi)
            sse = float(xp.sum(e * e))

        def wsum(n: Any, x2: Any, exponent: float) -> Any:
            return xp.sum(self._weights(xp, n, exponent) * x2)

        ef, eb = self.reg_exponent, self.reg_bias_exponent
        pen = self.reg * (wsum(n_u, xp.sum(p * p, axis=1), ef)
                          + wsum(n_i, xp.sum(q * q, axis=1), ef))
        pen = pen + self.reg_bias * (wsum(n_u, bu * bu, eb) + wsum(n_i, bi * bi, eb))
        return sse + float(pen)

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
        # the CD sweep's numba kernel takes NumPy arrays on the host; "off" forces the
        # composition (A/B), as for the other kernels
        self.solver_path_ = ("numba-cpu" if self.solver == "cd" and self.kernels != "off"
                             and be.name == "cpu" and be.library == "numpy" else
                             "composed" if self.solver == "cd" else "batched-solve")
        k = self.n_factors
        r64 = train.ratings.astype(np.float64)
        mu = float(r64.mean())
        shape = (train.n_users, train.n_items)
        # the centred ratings; COO -> CSR keeps explicit zeros (a rating equal to mu), so its
        # structure is the ratings' own
        r0_ui = sp.csr_matrix(((r64 - mu).astype(self.dtype), (train.users, train.items)),
                              shape=shape)
        if r0_ui.nnz != len(train):
            raise ValueError("train has duplicate (user, item) pairs; call Ratings.validate()")
        users = self._side(be, r0_ui, k + 1)
        items = self._side(be, r0_ui.T.tocsr(), k + 1)

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
            sse = None  # the item sweep's residuals are the epoch's training error
            if self.solver == "cd":
                p, bu, _ = self._cd_half_step(be, users, q, bi, p, bu)
                q, bi, sse = self._cd_half_step(be, items, p, bu, q, bi)
            else:
                p, bu = self._half_step(be, users, q, bi)
                q, bi = self._half_step(be, items, p, bu)
            self.train_loss_.append(self._loss(be, tr, mu, p, q, bu, bi, users.counts,
                                               items.counts, sse))
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
