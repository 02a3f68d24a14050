"""Start-up stays light: ``import kmrec_gpu`` and the Hydra app load no array or data
library they do not need, an all-NumPy grid never imports torch, and Hydra composes each
``-m`` job's configuration once. These check imports (``sys.modules``), not timings."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
HEAVY = ("torch", "pandas", "scipy", "sklearn", "numba", "hydra")


def _modules_after(code: str) -> set[str]:
    """Top-level modules loaded by ``code`` in a fresh interpreter."""
    p = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\n"
                        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return set(p.stdout.split())


def test_import_kmrec_gpu_loads_no_heavy_library():
    loaded = _modules_after("import kmrec_gpu")
    assert not loaded & {*HEAVY, "numpy"}, loaded & {*HEAVY, "numpy"}


def test_the_package_names_still_resolve_on_first_use():
    loaded = _modules_after("import kmrec_gpu\nassert kmrec_gpu.Ratings.__name__ == 'Ratings'\n"
                            "from kmrec_gpu import RatingScale, DataError\n"
                            "assert 'Ratings' in dir(kmrec_gpu)")
    assert "pandas" in loaded  # Ratings needs it, and got it when asked for


def test_the_bench_app_imports_neither_torch_nor_scipy_stats():
    p = subprocess.run([sys.executable, "-c", "import sys, kmrec_gpu.harness.app\n"
                        "print(sorted(m for m in ('torch', 'scipy.stats', 'sklearn', 'numba')"
                        " if m in sys.modules))"],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["kmrec_gpu", "kmrec_gpu.metrics", "kmrec_gpu.factor",
                                     "kmrec_gpu.cluster", "kmrec_gpu.neural"])
def test_lazy_names_are_the_submodules_objects(package):
    mod = importlib.import_module(package)
    for name in mod.__all__:
        value = getattr(mod, name)
        if name in getattr(mod, "_LAZY", {}):
            assert value is getattr(importlib.import_module(mod._LAZY[name]), name)
        assert name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        getattr(mod, "nothing_here")


def test_cpu_threads_without_torch_sets_the_thread_variables_and_restores_them():
    code = """
import os, sys
os.environ.pop("OMP_NUM_THREADS", None)
os.environ["MKL_NUM_THREADS"] = "7"
from kmrec_gpu.harness.runner import THREAD_ENV, cpu_threads
with cpu_threads(1):
    assert "torch" not in sys.modules
    assert all(os.environ[k] == "1" for k in THREAD_ENV)
    import torch  # a model that imports torch during the cell: it starts with one thread
    assert torch.get_num_threads() == 1
assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "7"
torch.set_num_threads(2)
with cpu_threads(1):  # torch already imported: pinned through torch, then restored
    assert torch.get_num_threads() == 1 and "OMP_NUM_THREADS" not in os.environ
assert torch.get_num_threads() == 2
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-3000:]


def test_cpu_threads_imports_torch_for_a_torch_cell():
    code = """
import sys
from kmrec_gpu.harness.runner import cpu_threads
with cpu_threads(1, torch_needed=True):
    import torch
    assert torch.get_num_threads() == 1
with cpu_threads(None, torch_needed=True):
    pass
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-3000:]


def test_a_numpy_grid_composes_each_job_once_and_never_imports_torch(tmp_path):
    code = """
import sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
count = [0]
original = ConfigLoaderImpl.load_configuration
def counted(self, *a, **k):
    count[0] += 1
    return original(self, *a, **k)
ConfigLoaderImpl.load_configuration = counted
from kmrec_gpu.harness.app import main
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("COMPOSED", count[0], "TORCH", "torch" in sys.modules)
"""
    cmd = [sys.executable, "-c", code, "-m", "dataset=synthetic-small",
           "model=bias_baseline,popularity,global_mean", "timing.warmup=0", "timing.repeats=1",
           "eval.n_boot=0", f"results={tmp_path}", "threads=1", "progress=false"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    last = p.stdout.strip().splitlines()[-1].split()
    # Hydra: its mode, the master configuration, then one composition per job (the
    # sweeper's check and the launcher share it); it was 2 + 2 per job
    assert last == ["COMPOSED", str(2 + 3), "TORCH", "False"], p.stdout
    from kmrec_gpu.results import read_rows

    rows = read_rows(tmp_path / "runs")
    assert sorted(r["model"]["name"] for r in rows if r["phase"] == "evaluate") == [
        "bias_baseline", "global_mean", "popularity"]
    assert len({r["extra"]["harness"]["cell_key"] for r in rows if r["phase"] == "evaluate"}) == 3


def test_a_bad_override_in_a_grid_still_fails_before_any_job_runs(tmp_path):
    cmd = [sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()", "-m",
           "dataset=synthetic-small", "model=bias_baseline,no_such_model", f"results={tmp_path}",
           "timing.warmup=0", "timing.repeats=1", "eval.n_boot=0"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode != 0 and "no_such_model" in p.stderr
    assert not (tmp_path / "runs").exists()  # the sweeper's check ran before the first job
