"""kmrec compact: finished run files gzipped in place, every reader sees the same rows."""

from __future__ import annotations

import gzip
import os
import time

from kmrec_gpu.claims.build import stored_rows
from kmrec_gpu.results import ResultWriter, compact_runs, read_rows, rows_files
from tests.test_results_claims import row


def write_run(tmp_path, n=3):
    w = ResultWriter(tmp_path)
    for i in range(n):
        w.append(row(w, seed=i, phase="evaluate", extra={"harness": {"cell_key": f"k{i}"}}))
    return w.path


def age(path, seconds=7200):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_same_bytes_same_rows_and_the_plain_file_gone(tmp_path):
    p = write_run(tmp_path)
    age(p)
    before, raw = read_rows(tmp_path / "runs"), p.read_bytes()
    (done,) = compact_runs(tmp_path)
    assert done[0] == p.with_name(p.name + ".gz") and not p.exists()
    assert gzip.decompress(done[0].read_bytes()) == raw
    assert read_rows(tmp_path / "runs") == before == read_rows(done[0])
    assert compact_runs(tmp_path) == []  # nothing left to do


def test_a_recent_file_is_left_alone(tmp_path):
    p = write_run(tmp_path)
    assert compact_runs(tmp_path) == [] and p.exists()
    assert compact_runs(tmp_path, min_age_s=0)  # when told it is finished


def test_a_file_present_both_ways_is_read_plain(tmp_path):
    p = write_run(tmp_path, n=2)
    age(p)
    compact_runs(tmp_path)
    # a writer that was still running rewrites its whole file: the plain copy is newer
    p.write_bytes(gzip.decompress(p.with_name(p.name + ".gz").read_bytes()))
    assert rows_files(tmp_path / "runs") == [p]
    assert len(read_rows(tmp_path / "runs")) == 2


def test_the_claims_reader_sees_compacted_rows(tmp_path):
    p = write_run(tmp_path)
    age(p)
    want = {k: v.row for k, v in stored_rows(tmp_path).items()}
    compact_runs(tmp_path)
    got = stored_rows(tmp_path)
    assert {k: v.row for k, v in got.items()} == want
    assert all(v.file.endswith(".jsonl.gz") for v in got.values())
