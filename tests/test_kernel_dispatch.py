"""Who computes the K-means assignment and the sampled products, and the row saying so.

The rule (``kernels.find_triton``): ``auto`` takes a compiled Triton kernel on CUDA,
``off`` never a kernel, ``on`` demands one and also accepts an interpreted kernel on torch
CPU tensors. That last case is how these tests drive the models' kernel paths end to end
without a GPU: ``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` before triton is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton: see tests/conftest.py

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

import kernels
from kernels import triton_kmeans, triton_sddmm
from kmrec_gpu.backends import get_backend
from kmrec_gpu.cluster import KMeans
from kmrec_gpu.factor.linalg import sampled_dot, sddmm_path
from kmrec_gpu.factor.models import IterativeSVDModel
from kmrec_gpu.harness.spec import CellSpec
from kmrec_gpu.models.genre_profiles import GenreProfileClusters
from kmrec_gpu.models.mf import BiasedMF
from tests.test_harness import cfg_for, harness

pytestmark = pytest.mark.skipif(not triton_kmeans.INTERPRETED,
                                reason="with a GPU the kernels compile; these drive the "
                                       "interpreted path on torch CPU tensors")

TORCH = get_backend("cpu", library="torch")
FAKE_CUDA = SimpleNamespace(name="cuda", library="torch")


@pytest.fixture(scope="module")
def synthetic_small():
    from kmrec_gpu.data.synthetic import synthetic_preset

    return synthetic_preset("synthetic-small")


@pytest.fixture
def compiled(monkeypatch):
    """Pretend Triton compiles (as on a GPU machine) to check the rule for CUDA and CPU."""
    monkeypatch.setattr(triton_kmeans, "INTERPRETED", False)
    monkeypatch.setattr(triton_sddmm, "INTERPRETED", False)


def test_the_rule_with_the_interpreter():
    mod, why = kernels.find_triton("triton_kmeans", TORCH, "on")
    assert mod is triton_kmeans and why == "" and kernels.path_name(mod) == "triton-interpret"
    mod, why = kernels.find_triton("triton_kmeans", TORCH, "auto")
    assert mod is None and "only when asked for with kernels='on'" in why
    assert kernels.find_triton("triton_sddmm", TORCH, "off") == (None, "kernels='off'")
    mod, why = kernels.find_triton("triton_sddmm", get_backend("cpu"), "on")
    assert mod is None and "not numpy" in why
    with pytest.raises(ValueError, match="kernels must be one of"):
        kernels.find_triton("triton_sddmm", TORCH, "yes")


def test_the_rule_when_triton_compiles(compiled):
    for name, mod in (("triton_kmeans", triton_kmeans), ("triton_sddmm", triton_sddmm)):
        assert kernels.find_triton(name, FAKE_CUDA, "auto") == (mod, "")
        assert kernels.path_name(mod) == "triton"
        got, why = kernels.find_triton(name, TORCH, "on")
        assert got is None and "Triton compiles for CUDA" in why
    assert sddmm_path(FAKE_CUDA, "auto") == ("triton", "")
    assert sddmm_path(FAKE_CUDA, "off") == ("composed", "kernels='off'")
    with pytest.raises(RuntimeError, match="no SDDMM kernel applies: Triton compiles"):
        sddmm_path(TORCH, "on")


def test_kmeans_on_the_kernel_equals_the_composition():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (60, 5)) for m in (-4, 0, 4)])
    C = X[[0, 70, 130, 10]]
    fits = {mode: KMeans(4, init=C, max_iter=10, tol=0, backend=TORCH, kernels=mode).fit(X)
            for mode in ("on", "off", "auto")}
    assert fits["on"].assign_path_ == "triton-interpret"
    assert fits["off"].assign_path_ == fits["auto"].assign_path_ == "composed"
    np.testing.assert_array_equal(fits["on"].labels_, fits["off"].labels_)
    np.testing.assert_allclose(fits["on"].cluster_centers_, fits["off"].cluster_centers_,
                               rtol=1e-12)
    assert fits["on"].inertia_ == pytest.approx(fits["off"].inertia_, rel=1e-12)
    np.testing.assert_array_equal(fits["on"].predict(X[::7]), fits["off"].labels_[::7])


def test_sparse_kmeans_input_has_no_triton_kernel():
    X = sp.random(40, 30, density=0.2, format="csr", random_state=0)
    with pytest.raises(RuntimeError, match="takes dense rows"):
        KMeans(3, backend=TORCH, kernels="on").fit(X)


def test_sampled_dot_on_the_kernel_equals_the_composition():
    be = TORCH
    rng = np.random.default_rng(1)
    a, b = be.asarray(rng.normal(size=(30, 7))), be.asarray(rng.normal(size=(20, 7)))
    rows, cols = be.asarray(rng.integers(0, 30, 500)), be.asarray(rng.integers(0, 20, 500))
    bu, bi = be.asarray(rng.normal(size=30)), be.asarray(rng.normal(size=20))
    path, _ = sddmm_path(be, "on")
    got = sampled_dot(be, a, b, rows, cols, row_bias=bu, col_bias=bi, offset=3.5, path=path)
    want = sampled_dot(be, a, b, rows, cols, row_bias=bu, col_bias=bi, offset=3.5)
    np.testing.assert_allclose(be.to_numpy(got), be.to_numpy(want), rtol=1e-13, atol=1e-13)


def test_biased_mf_scores_through_the_kernel(synthetic_small):
    train = synthetic_small
    on = BiasedMF(n_factors=4, n_epochs=3, backend=TORCH, kernels="on").fit(train)
    off = BiasedMF(n_factors=4, n_epochs=3, backend=TORCH, kernels="off").fit(train)
    assert on.sddmm_path_ == "triton-interpret" and off.sddmm_path_ == "composed"
    np.testing.assert_allclose(on.train_loss_, off.train_loss_, rtol=1e-12)
    np.testing.assert_allclose(on.predict(train), off.predict(train), rtol=1e-12)
    assert on.get_params()["kernels"] == "on"


def test_iterative_svd_residual_through_the_kernel(synthetic_small):
    kw = dict(n_components=3, max_iter=3, backend=TORCH)
    on = IterativeSVDModel(kernels="on", **kw).fit(synthetic_small)
    off = IterativeSVDModel(kernels="off", **kw).fit(synthetic_small)
    assert on.sddmm_path_ == "triton-interpret" and off.sddmm_path_ == "composed"
    assert on.n_iter_ == off.n_iter_
    np.testing.assert_allclose(on.predict(synthetic_small), off.predict(synthetic_small),
                               rtol=1e-9)


def test_the_row_names_the_path_and_the_switch(tmp_path):
    h = harness(tmp_path)
    specs = {}
    for mode in ("on", "off", "auto"):
        cfg = cfg_for(tmp_path, "model=kmeans_genre", "backend=cpu_torch", f"kernels={mode}")
        specs[mode] = spec = CellSpec.from_config(cfg)
        res = h.run(spec)
        assert res.status == "ok", res
        ev = res.rows[-1]
        assert ev["extra"]["harness"]["kernels"] == mode
        want = "triton-interpret" if mode == "on" else "composed"
        assert ev["extra"]["facts"]["assign_path"] == want
        assert ev["model"]["params"]["kernels"] == mode
    assert len({s.key for s in specs.values()}) == 3
    assert "kernels" not in specs["auto"].canonical()  # keys of earlier rows still match


def test_kernels_on_skips_a_model_without_a_kernel(tmp_path):
    res = harness(tmp_path).run(CellSpec.from_config(
        cfg_for(tmp_path, "model=bias_baseline", "kernels=on")))
    assert res.status == "skipped"
    assert "has no fused kernel" in res.reason


def test_genre_clusters_pass_the_switch_to_their_kmeans(synthetic_small):
    m = GenreProfileClusters(n_clusters=3, backend=TORCH, kernels="on").fit(synthetic_small)
    assert m.kmeans_.assign_path_ == "triton-interpret"


def test_a_cpu_run_decides_without_importing_triton():
    import subprocess
    import sys

    code = ("import sys; from kmrec_gpu.backends import get_backend; "
            "from kmrec_gpu.factor.linalg import sddmm_path; "
            "print(sddmm_path(get_backend('cpu', library='torch'), 'auto')[0], "
            "'triton' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["composed", "False"]
