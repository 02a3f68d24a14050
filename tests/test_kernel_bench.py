"""bench/bench_triton.py: its no-GPU exit, its command line, its FLOP and byte models, and
its measuring path on tiny shapes.

The benchmark itself needs a CUDA GPU. Without one, the script must say so and write
nothing; its pure functions are checked against numbers worked out by hand, and its
measuring functions run on CPU tensors through the Triton interpreter (``tests/conftest.py``
sets ``TRITON_INTERPRET=1`` before triton is imported), so the records they build are
checked without a GPU too, and so are the result rows they become. bench/ is not a
package: the script is imported by path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kmrec_gpu.results import read_rows

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_triton.py"


@pytest.fixture(scope="module")
def bt():
    spec = importlib.util.spec_from_file_location("bench_triton", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_triton"] = mod  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("bench_triton", None)


def _env() -> dict[str, str]:
    # as from a user's shell: whatever the test session set for Triton is not inherited
    return {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: the script "
                    "would benchmark instead of declining")
def test_without_a_gpu_it_says_why_and_writes_nothing(tmp_path):
    out = tmp_path / "kernels"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(out)],
                          check=False, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "needs a CUDA GPU" in proc.stderr
    assert "torch.cuda.is_available() is False" in proc.stderr
    assert "Triton interpreter" in proc.stderr
    for test in ("tests/test_kernel_triton_kmeans.py", "tests/test_kernel_triton_sddmm.py",
                 "tests/test_kernel_dispatch.py"):
        assert test in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []

    # the no-GPU path decides before triton or the kernels are imported
    code = ("import runpy, sys\n"
            f"sys.argv = [{str(BENCH)!r}, '--out', {str(out)!r}]\n"
            "try:\n"
            "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "print('imported:', sorted(m for m in sys.modules\n"
            "                          if m == 'triton' or m.startswith('kernels')))\n")
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "imported: []" in proc.stdout
    assert not out.exists()


def test_help_lists_the_options(bt):
    proc = subprocess.run([sys.executable, str(BENCH), "--help"], check=False, cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for opt in ("--quick", "--repeats", "--warmup", "--seed", "--out", "--only",
                "{assign,sddmm}", "--float64", "CUDA", "sampled_addmm", "results/kernels"):
        assert opt in proc.stdout, opt

    a = bt.parse_args([])
    assert (a.repeats, a.warmup, a.seed, a.only, a.out) == (10, 3, 0, None, bt.DEFAULT_OUT)
    a = bt.parse_args(["--quick", "--only", "sddmm", "--seed", "7", "--out", "x"])
    assert (a.repeats, a.warmup, a.seed, a.only, a.out) == (5, 2, 7, "sddmm", Path("x"))
    with pytest.raises(SystemExit):
        bt.parse_args(["--warmup", "0"])  # the first call compiles: never timed


def test_flop_and_byte_models_on_a_hand_checked_example(bt):
    # n = 1000 rows, d = 20, k = 8 centres, float32 input (acc float32)
    assert bt.assign_flops(1000, 8, 20, update=False) == 2 * 1000 * 8 * 20 == 320_000
    assert bt.assign_flops(1000, 8, 20, update=True) == 640_000
    # X 1000*20*4 = 80,000 + centres 8*20*4 = 640 + labels 1000*8 = 8,000
    # + distances 1000*4 = 4,000
    assert bt.assign_bytes(1000, 8, 20, 4, 4, update=False) == 92_640
    # + sums 8*20*4 = 640 + counts 8*8 = 64
    assert bt.assign_bytes(1000, 8, 20, 4, 4, update=True) == 93_344
    # bfloat16 input, float32 distances: X 40,000 + centres 320 + 8,000 + 4,000
    assert bt.assign_bytes(1000, 8, 20, 2, 4, update=False) == 52_320

    # 1000 pairs, rank 16, float32 factors, int64 indices, float32 output
    assert bt.sddmm_flops(1000, 16) == 32_000
    # per pair: rows 2*16*4 = 128 + indices 2*8 = 16 + output 4 = 148
    assert bt.sddmm_bytes(1000, 16, 4, 8, 4, biases=False) == 148_000
    # + biases 2*4 = 8
    assert bt.sddmm_bytes(1000, 16, 4, 8, 4, biases=True) == 156_000
    assert bt.sddmm_bytes(10, 50, 8, 8, 8, biases=True) == 10 * (800 + 16 + 8 + 16)

    vendor = bt.vendor_peaks("NVIDIA H100 80GB HBM3")
    roofs = bt.Roofs(copy_Bps=4e9, matmul_flops={"float32/ieee": 8e12}, vendor=vendor)
    got = bt.rates(2_000_000_000_000, 1_000_000_000, 0.5, ("fp32", "float32/ieee"), roofs)
    assert got["gflop_per_s"] == pytest.approx(4000.0)
    assert got["gb_per_s"] == pytest.approx(2.0)
    assert got["flop_fraction_of_measured_matmul"] == pytest.approx(0.5)
    assert got["flop_fraction_of_vendor"] == pytest.approx(4e12 / 67e12)
    assert got["bandwidth_fraction_of_measured_copy"] == pytest.approx(0.5)
    assert got["bandwidth_fraction_of_vendor"] == pytest.approx(2e9 / 3350e9)
    unknown = bt.rates(10, 10, 1.0, ("fp32", "float64"), bt.Roofs(None, {}, None))
    assert unknown["flop_fraction_of_vendor"] is None
    assert unknown["flop_fraction_of_measured_matmul"] is None
    assert unknown["bandwidth_fraction_of_measured_copy"] is None


def test_roofs_vendor_table_and_names(bt, tmp_path):
    assert bt.flop_roof("assign", "float32") == ("fp32", "float32/ieee")
    assert bt.flop_roof("assign", "float32", "tf32") == ("tf32_tensor", "float32/tf32")
    assert bt.flop_roof("assign", "bfloat16") == ("bf16_tensor", "bfloat16")
    assert bt.flop_roof("sddmm", "float64") == ("fp64", "float64")
    assert bt.flop_roof("sddmm", "float32") == ("fp32", "float32/ieee")

    names = {"NVIDIA H100 80GB HBM3": ("H100 SXM", 3350), "NVIDIA H100 PCIe": ("H100 PCIe", 2000),
             "NVIDIA H100 NVL": ("H100 NVL", 3900), "NVIDIA H200": ("H200 SXM", 4800),
             "NVIDIA A100-SXM4-40GB": ("A100 40GB SXM", 1555),
             "NVIDIA A100-SXM4-80GB": ("A100 80GB SXM", 2039),
             "NVIDIA A100-PCIE-40GB": ("A100 40GB PCIe", 1555),
             "NVIDIA A100 80GB PCIe": ("A100 80GB PCIe", 1935),
             "NVIDIA L4": ("L4", 300), "NVIDIA GeForce RTX 4090": ("RTX 4090", 1008)}
    for name, (model, hbm) in names.items():
        peaks = bt.vendor_peaks(name)
        assert (peaks["model"], peaks["hbm_GBps"]) == (model, hbm), name
        assert peaks["source"]
    for name in ("NVIDIA L40S", "NVIDIA GH200 480GB", "NVIDIA GeForce RTX 4090 D", "Tesla T4"):
        assert bt.vendor_peaks(name) is None, name
    # the L4 has no FP64 tensor cores: its vector rate bounds float64 products
    assert bt.vendor_flops(bt.vendor_peaks("NVIDIA L4"), "fp64_tensor") == \
        pytest.approx(30.3 / 64 * 1e12)

    assert bt.short_device_name("NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3"
    assert bt.short_device_name("NVIDIA GeForce RTX 4090") == "rtx-4090"
    first = bt.out_path(tmp_path, "20260101T000000Z", "NVIDIA L4")
    assert first.name == "20260101T000000Z-l4.jsonl"
    first.write_text("{}")
    assert bt.out_path(tmp_path, "20260101T000000Z", "NVIDIA L4").name == \
        "20260101T000000Z-l4-2.jsonl"  # never another run's file


def test_measurements_build_records_on_tiny_shapes(bt, tmp_path):
    """The measuring path end to end at toy sizes, on whatever runs the kernels here: CPU
    tensors through the interpreter without a GPU, CUDA tensors with one."""
    from kernels import triton_kmeans

    device = torch.device("cpu" if triton_kmeans.INTERPRETED else "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ctx = bt.Ctx(device=device, seed=3, warmup=1, repeats=2,
                 roofs=bt.Roofs(1e9, {"float32/ieee": 1e10, "float32/tf32": 2e10,
                                      "float64": 5e9}, bt.vendor_peaks("NVIDIA H100 PCIe")),
                 sync=sync, free_bytes=lambda: None)

    recs = bt.run_assign(ctx, 200, 20, 8, "float32")
    assert len(recs) == 2 * len(bt.assign_variants("float32")) == 8
    for r in recs:
        assert r["status"] == "ok" and r["seed"] == 3 and r["time"]["repeats"] == 2
        assert r["flops"] == bt.assign_flops(200, 8, 20, r["update"])
        assert r["bytes"] == bt.assign_bytes(200, 8, 20, 4, 4, r["update"])
        assert r["time"]["min_s"] <= r["time"]["median_s"] <= r["time"]["max_s"]
    kern = [r for r in recs if r["impl"] == "triton"]
    # well-separated blobs: a compiled TF32 product may still flip a rare near-tie
    assert all(r["vs_composed"]["label_agreement"] >= 0.99 for r in kern)
    assert all(r["vs_composed"]["counts_equal"] for r in kern
               if r["update"] and r["vs_composed"]["label_agreement"] == 1.0)
    assert all(r["speedup_vs_composed"] > 0 for r in kern)

    recs += bt.run_sddmm(ctx, 300, (16,), ("float64",), n_rows=40, n_cols=30)
    sd = {r["impl"]: r for r in recs if r["kernel"] == "sddmm"}
    assert set(sd) == {"triton", "composed", "triton-nobias", "sampled_addmm"}
    assert all(r["status"] == "ok" for r in sd.values()), sd
    assert sd["triton"]["max_abs_diff"] < 1e-12
    assert sd["triton-nobias"]["max_abs_diff"] < 1e-12
    assert sd["triton"]["bytes"] == bt.sddmm_bytes(300, 16, 8, 8, 8, biases=True)
    assert "speedup_vs_sampled_addmm" in sd["triton-nobias"]
    assert sd["triton"]["flop_roof"]["measured_matmul"] == "float64"

    # too little device memory: the shape is recorded as skipped, with the reason
    ctx.free_bytes = lambda: 1024
    skipped = bt.run_assign(ctx, 200, 20, 8, "float16")
    assert {r["status"] for r in skipped} == {"skipped"}
    assert all("device memory" in r["reason"] for r in skipped)

    # the records become schema-checked result rows, appended to the run's file
    path = tmp_path / "run.jsonl"
    backend = {"name": device.type, "library": "torch", "device_name": "test device"}
    run = bt.Run(path, seed=3, backend=backend, command="bench_triton.py --test",
                 context={"settings": {"repeats": 2}})
    copy = {"bytes": 4096, "time": bt.timing_stats([1e-3, 2e-3], 1), "gb_per_s": 8.0,
            "how": "test"}
    matmul = {"float64": {"size": 8, "time": bt.timing_stats([1e-3], 1),
                          "tflop_per_s": 1e-6, "how": "test"}}
    run.add(bt.roof_records(copy, matmul, 3))
    run.add(recs[:2])
    run.add(recs[2:] + skipped)
    rows = read_rows(path)
    assert len(rows) == 2 + len(recs) + len(skipped) == len(run.records)
    assert len({r["run_id"] for r in rows}) == 1
    assert [r["model"]["name"] for r in rows[:2]] == ["copy torch clone", "matmul torch.matmul"]
    assert rows[0]["metrics"]["gb_per_s"] == 8.0 and rows[0]["wall_time"]["warmup"] == 1
    for row, rec in zip(rows[2:], recs + skipped):
        assert row["seed"] == 3 and row["backend"] == backend and row["split"] is None
        assert row["status"] == rec["status"] and row.get("reason") == rec.get("reason")
        assert row["extra"]["bench"] == "triton_kernels"
        assert row["extra"]["run"] == {"settings": {"repeats": 2}}
        assert row["extra"]["impl"] == rec["impl"] and "time" not in row["extra"]
        assert row["model"]["name"] == f"{rec['kernel']} {rec['impl']}"
        if rec["status"] == "ok":
            assert row["wall_time"] == rec["time"]
            assert row["metrics"]["gb_per_s"] == pytest.approx(rec["gb_per_s"])
        else:
            assert row["wall_time"] is None and row["metrics"] == {}
    # appending again keeps every earlier row
    run.add(skipped[:1])
    assert len(read_rows(path)) == len(rows) + 1
