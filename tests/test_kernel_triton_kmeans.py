"""kernels/triton_kmeans.py against its PyTorch reference.

Without a GPU the kernel runs in Triton's interpreter on CPU tensors: ``tests/conftest.py``
sets ``TRITON_INTERPRET=1`` before anything imports triton (Triton decides when it
decorates). With a GPU the same tests run the compiled kernel on CUDA tensors. Sizes are
small because interpreted kernels are slow; they are chosen to leave partial tiles in
every dimension (rows, centres, features), and to cover k = 1 and empty input.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton: see tests/conftest.py

import pytest
import torch

from kernels import triton_kmeans as tk

DEVICE = "cpu" if tk.INTERPRETED else "cuda"
# distances: accumulated in float32 (float64 for float64) on both sides, in another order
TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.float16: 1e-5, torch.bfloat16: 1e-5}
DTYPES = list(TOL)


def data(n, d, k, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g).to(dtype)
    c = torch.randn(k, d, generator=g).to(dtype)
    return x.to(DEVICE), c.to(DEVICE)


def exact_distances(x, c):
    """Squared distances of the values the kernel sees, in float64 (the oracle)."""
    x64, c64 = x.double(), c.to(x.dtype).double()
    return torch.cdist(x64, c64) ** 2


def check(x, c, got, update):
    ref = tk.reference(x, c, update=update)
    n = x.shape[0]
    assert got.labels.dtype == torch.int64 and got.labels.shape == (n,)
    acc = tk.accumulation_dtype(x.dtype)
    assert got.min_dist.dtype == acc and got.min_dist.shape == (n,)
    tol = TOL[x.dtype]
    scale = 1.0 + x.double().pow(2).sum(1) + c.double().pow(2).sum(1).max()
    if x.dtype in (torch.float32, torch.float64):
        assert torch.equal(got.labels, ref.labels)
    if n:
        # whatever the dtype, the chosen centre is a nearest one up to rounding
        dist = exact_distances(x, c)
        chosen = dist.gather(1, got.labels[:, None])[:, 0]
        assert torch.all(chosen <= dist.min(1).values + tol * scale)
        assert torch.all((got.min_dist.double() - ref.min_dist.double()).abs() <= tol * scale)
    if not update:
        assert got.sums is None and got.counts is None
        return
    k = c.shape[0]
    # sums and counts of the kernel's own labels
    want_sums = torch.zeros(k, x.shape[1], dtype=torch.float64,
                            device=x.device).index_add_(0, got.labels, x.double())
    assert got.counts.dtype == torch.int64
    assert torch.equal(got.counts, torch.bincount(got.labels, minlength=k))
    assert int(got.counts.sum()) == n
    assert torch.allclose(got.sums.double(), want_sums, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n, d, k", [
    (37, 5, 1),  # k = 1, every block partial
    (130, 20, 17),  # 3 row tiles, 2 centre blocks of 16, features padded to 32
    (65, 70, 70),  # centres and features over one 64-wide block
])
@pytest.mark.parametrize("update", [False, True])
def test_assign_matches_the_reference(dtype, n, d, k, update):
    x, c = data(n, d, k, dtype)
    check(x, c, tk.assign(x, c, update=update), update)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_small_blocks_leave_partial_tiles_in_every_dimension(dtype):
    x, c = data(37, 21, 19, dtype, seed=1)
    got = tk.assign(x, c, update=True, block_n=16, block_k=16, block_d=16)
    check(x, c, got, True)


@pytest.mark.parametrize("update", [False, True])
def test_empty_input(update):
    x, c = data(0, 4, 3, torch.float32)
    got = tk.assign(x, c, update=update)
    assert got.labels.shape == (0,) and got.min_dist.shape == (0,)
    if update:
        assert torch.equal(got.counts, torch.zeros(3, dtype=torch.int64, device=DEVICE))
        assert torch.equal(got.sums, torch.zeros(3, 4, device=DEVICE))


def test_ties_go_to_the_lowest_centre_within_and_across_centre_blocks():
    x, c = data(50, 6, 20, torch.float32, seed=2)
    c[17] = c[2]  # the twin of centre 2 lies in the next block of 16
    c[5] = c[4]  # a twin within the block
    x[:10] = c[2]  # rows exactly on the twins
    x[10:20] = c[4]
    got = tk.assign(x, c, block_k=16)
    assert torch.all(got.labels[:10] == 2) and torch.all(got.labels[10:20] == 4)
    assert not torch.any((got.labels == 17) | (got.labels == 5))


def test_centres_are_cast_to_the_data_dtype():
    x, c = data(40, 8, 5, torch.float16)
    got = tk.assign(x, c.double(), update=True)  # the products see float16 centres
    check(x, c.to(torch.float16), got, True)


@pytest.mark.parametrize("x, c, msg", [
    (torch.ones(4, 3), torch.ones(2, 4), "x has 3 features but centers have 4"),
    (torch.ones(4, 3), torch.ones(0, 3), "centers is empty"),
    (torch.ones(4, 3, dtype=torch.int64), torch.ones(2, 3), "x has dtype torch.int64"),
    (torch.ones(4), torch.ones(2, 3), "must be 2-d"),
])
def test_bad_input_is_refused(x, c, msg):
    with pytest.raises(ValueError, match=msg):
        tk.assign(x.to(DEVICE), c.to(DEVICE))


def test_unknown_precision_is_refused():
    x, c = data(4, 3, 2, torch.float32)
    with pytest.raises(ValueError, match="precision 'fast'"):
        tk.assign(x, c, precision="fast")
