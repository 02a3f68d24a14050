"""``sampled_dot``'s namespace-specific forms agree with the generic composition.

NumPy gathers with ``take`` and reduces with ``einsum``; torch on the CPU runs
``torch.sparse.sampled_addmm`` when the rows are in CSR order and gathers with
``index_select`` otherwise; array-api-strict (and anything else) takes the generic
``xp.take``/``xp.sum`` form. Every form must give the same numbers, chunked or not, with
or without biases, and the same errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.backends import get_backend
from kmrec_gpu.factor import linalg
from kmrec_gpu.factor.linalg import sampled_dot

ATOL = {np.float64: 1e-12, np.float32: 1e-4}


def _case(sorted_rows: bool, dtype=np.float64, m=37, n=53, nnz=900, r=6, seed=0):
    g = np.random.default_rng(seed)
    rows, cols = g.integers(0, m, nnz), g.integers(0, n, nnz)
    if sorted_rows:
        rows = np.sort(rows)
    a, b = g.standard_normal((m, r)).astype(dtype), g.standard_normal((n, r)).astype(dtype)
    bu, bi = g.standard_normal(m).astype(dtype), g.standard_normal(n).astype(dtype)
    return a, b, rows, cols, bu, bi


def _reference(a, b, rows, cols, bu=None, bi=None, offset=None):
    out = np.einsum("ij,ij->i", a.astype(np.float64)[rows], b.astype(np.float64)[cols])
    if bu is not None:
        out = out + bu[rows]
    if bi is not None:
        out = out + bi[cols]
    return out if offset is None else out + offset


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sorted_rows", [True, False], ids=["csr-order", "any-order"])
@pytest.mark.parametrize("budget_mb", [256.0, 300 / 2**20], ids=["one-chunk", "chunks"])
@pytest.mark.parametrize("biases", [False, True])
def test_every_form_matches_the_reference(backend, dtype, sorted_rows, budget_mb, biases):
    a, b, rows, cols, bu, bi = _case(sorted_rows, dtype)
    kw = {"row_bias": backend.asarray(bu), "col_bias": backend.asarray(bi), "offset": 0.5} \
        if biases else {}
    got = sampled_dot(backend, backend.asarray(a), backend.asarray(b), backend.asarray(rows),
                      backend.asarray(cols), budget_mb=budget_mb, **kw)
    want = _reference(a, b, rows, cols, *((bu, bi, 0.5) if biases else ()))
    assert np.dtype(linalg.np_dtype(got.dtype)) == np.dtype(dtype)
    np.testing.assert_allclose(backend.to_numpy(got), want, atol=ATOL[dtype], rtol=1e-5)


def test_torch_forms_agree_with_numpy_and_strict():
    """The same cells through every CPU form: NumPy, torch's sampled_addmm (CSR order),
    torch's gather (the same cells shuffled) and array-api-strict."""
    pytest.importorskip("torch")
    a, b, rows, cols, _, _ = _case(True, m=300, n=500, nnz=20_000, r=16)
    outs = {}
    for lib in ("numpy", "torch", "array_api_strict"):
        be = get_backend("cpu", library=lib)
        outs[lib] = be.to_numpy(sampled_dot(be, *(be.asarray(x) for x in (a, b, rows, cols))))
    perm = np.random.default_rng(1).permutation(rows.size)
    be = get_backend("cpu", library="torch")
    shuffled = be.to_numpy(sampled_dot(be, be.asarray(a), be.asarray(b),
                                       be.asarray(rows[perm]), be.asarray(cols[perm])))
    outs["torch-gather"] = np.empty_like(shuffled)
    outs["torch-gather"][perm] = shuffled
    want = _reference(a, b, rows, cols)
    for lib, got in outs.items():
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=lib)


@pytest.mark.parametrize("library", ["numpy", "torch", "array_api_strict"])
def test_negative_indices_count_from_the_end(library):
    be = get_backend("cpu", library=library)
    a, b, rows, cols, _, _ = _case(False)
    neg_rows, neg_cols = rows - a.shape[0], cols - b.shape[0]
    if library == "array_api_strict":
        pytest.skip("array-api-strict's take refuses negative indices")
    got = sampled_dot(be, be.asarray(a), be.asarray(b), be.asarray(neg_rows),
                      be.asarray(neg_cols))
    np.testing.assert_allclose(be.to_numpy(got), _reference(a, b, rows, cols), atol=1e-12)


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("sorted_rows", [True, False], ids=["csr-order", "any-order"])
def test_an_index_out_of_range_raises(library, sorted_rows):
    be = get_backend("cpu", library=library)
    a, b, rows, cols, _, _ = _case(sorted_rows)
    cols = cols.copy()
    cols[-1] = b.shape[0]  # one past the end: sampled_addmm would read past B
    with pytest.raises((IndexError, RuntimeError)):
        sampled_dot(be, be.asarray(a), be.asarray(b), be.asarray(rows), be.asarray(cols))


def test_torch_row_pointer_cache_sees_in_place_changes():
    torch = pytest.importorskip("torch")
    be = get_backend("cpu", library="torch")
    a, b, rows, cols, _, _ = _case(True)
    ta, tb, tr, tc = (torch.tensor(x) for x in (a, b, rows, cols))  # copies: no sharing
    first = sampled_dot(be, ta, tb, tr, tc)
    np.testing.assert_allclose(first.numpy(), _reference(a, b, rows, cols), atol=1e-12)
    tr[:] = torch.flip(tr, (0,))  # no longer CSR order: the cached pointers must not apply
    again = sampled_dot(be, ta, tb, tr, tc)
    np.testing.assert_allclose(again.numpy(), _reference(a, b, rows[::-1], cols), atol=1e-12)
    tc[0] = -1  # in place again: wraps to the last column, like xp.take
    cols2 = cols.copy()
    cols2[0] = b.shape[0] - 1
    np.testing.assert_allclose(sampled_dot(be, ta, tb, tr, tc).numpy(),
                               _reference(a, b, rows[::-1], cols2), atol=1e-12)


def test_torch_keeps_autograd():
    torch = pytest.importorskip("torch")
    be = get_backend("cpu", library="torch")
    a, b, rows, cols, _, _ = _case(True)
    ta = be.asarray(a).requires_grad_(True)
    out = sampled_dot(be, ta, be.asarray(b), be.asarray(rows), be.asarray(cols))
    out.sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, rows, b[cols])
    np.testing.assert_allclose(ta.grad.numpy(), want, atol=1e-12)
    with torch.inference_mode():  # inference tensors keep no version counter
        ti = [be.asarray(x) for x in (a, b, rows, cols)]
        np.testing.assert_allclose(sampled_dot(be, *ti).numpy(), _reference(a, b, rows, cols),
                                   atol=1e-12)


def test_empty_selection():
    for lib in ("numpy", "torch", "array_api_strict"):
        be = get_backend("cpu", library=lib)
        a, b, _, _, _, _ = _case(True)
        e = be.asarray(np.zeros(0, dtype=np.int64))
        out = sampled_dot(be, be.asarray(a), be.asarray(b), e, e)
        assert tuple(out.shape) == (0,)


def test_torch_index_cache_lives_no_longer_than_its_tensors():
    torch = pytest.importorskip("torch")
    be = get_backend("cpu", library="torch")
    a, b, rows, cols, _, _ = _case(True)
    ta, tb = torch.tensor(a), torch.tensor(b)
    linalg._CSR_CACHE.clear()
    for _ in range(2 * linalg._CSR_CACHE_SIZE):  # more patterns than the cache keeps
        tr, tc = torch.tensor(rows), torch.tensor(cols)
        np.testing.assert_allclose(sampled_dot(be, ta, tb, tr, tc).numpy(),
                                   _reference(a, b, rows, cols), atol=1e-12)
        assert len(linalg._CSR_CACHE) <= linalg._CSR_CACHE_SIZE
    del tr, tc
    assert linalg._CSR_CACHE == {}  # each entry left with its pattern


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("nnz", [5, 900], ids=["fewer-cells-than-rows", "more-cells"])
def test_factor_tables_that_are_views_give_the_same_numbers(library, nnz):
    """A model hands its factors sliced off its solution (``x[:, :-1]``): not contiguous."""
    if library == "torch":
        pytest.importorskip("torch")
    be = get_backend("cpu", library=library)
    a, b, rows, cols, _, _ = _case(False, nnz=nnz)
    wide_a = np.concatenate([a, np.full((a.shape[0], 1), 7.0)], axis=1)
    wide_b = np.concatenate([b, np.full((b.shape[0], 1), -3.0)], axis=1)
    got = sampled_dot(be, be.asarray(wide_a)[:, :-1], be.asarray(wide_b)[:, :-1],
                      be.asarray(rows), be.asarray(cols))
    np.testing.assert_allclose(be.to_numpy(got), _reference(a, b, rows, cols), atol=1e-12)
