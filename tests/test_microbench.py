"""The micro-benchmark suites (bench/bench_ops_*.py) run end to end at tiny sizes.

They sit outside ``testpaths``, so nothing else imports them; this runs them the way
``bench/run_micro.py`` does, one round each, and reads the JSON they write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("bench_ops_factor.py", "bench_ops_kmeans.py", "bench_ops_nn.py")


def test_micro_suites_run_at_tiny_size(tmp_path):
    out = tmp_path / "micro.json"
    cmd = [sys.executable, "-m", "pytest", "bench", "-o", "python_files=bench_ops_*.py",
           "-p", "no:cacheprovider", "-q", f"--benchmark-json={out}",
           "--benchmark-min-rounds=1", "--benchmark-max-time=0.000001",
           "--benchmark-warmup=off"]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, KMREC_MICRO_SIZE="tiny"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    report = json.loads(out.read_text())
    by_suite = defaultdict(list)
    for b in report["benchmarks"]:
        by_suite[Path(b["fullname"].split("::")[0]).name].append(b)
        x = b["extra_info"]
        assert x["size"] == "tiny"
        assert x["op"] and x["library"] and x["device_name"], b["name"]
        assert b["stats"]["median"] > 0
    assert sorted(by_suite) == list(SUITES)
    # the two CPU libraries are always there, so each suite must have timed both
    for suite in ("bench_ops_factor.py", "bench_ops_kmeans.py"):
        assert {"numpy", "torch"} <= {b["extra_info"]["library"] for b in by_suite[suite]}
    nets = {b["extra_info"]["net"] for b in by_suite["bench_ops_nn.py"]}
    assert nets == {"AttentionMLP", "HybridNet", "PublishedMLP"}
    assert report["machine_info"]["kmrec"]["torch_threads"] == 1
