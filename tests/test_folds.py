"""ml-100k's official folds: u1..u5.test as the test parts, checked and complete."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kmrec_gpu.data import load
from kmrec_gpu.data.folds import official_fold
from kmrec_gpu.errors import ChecksumMismatch, InvalidArgument


def test_the_five_folds_partition_u_data(ml100k):
    tests = []
    for k in range(1, 6):
        s = official_fold(ml100k, k)
        assert len(s.test) == 20_000 and len(s.train) == 80_000
        assert s.params["file"] == f"u{k}.test" and s.method == "ml100k_fold"
        tests.append(set(zip(s.test.user_ids[s.test.users].tolist(),
                             s.test.item_ids[s.test.items].tolist())))
    assert sum(len(t) for t in tests) == 100_000
    assert len(set().union(*tests)) == 100_000  # disjoint and covering


def test_fold_one_is_the_file_row_for_row(ml100k):
    src = ml100k.source.path
    lines = open(f"{src}/u1.test").read().split("\n")[:3]
    s = official_fold(ml100k, 1)
    pairs = set(zip(s.test.user_ids[s.test.users].tolist(), s.test.item_ids[s.test.items].tolist()))
    for line in lines:
        u, i, rating, _ = line.split("\t")
        assert (int(u), int(i)) in pairs
        j = np.flatnonzero((s.test.user_ids[s.test.users] == int(u))
                           & (s.test.item_ids[s.test.items] == int(i)))
        assert s.test.ratings[j[0]] == float(rating)


def test_a_changed_fold_file_is_refused(ml100k, tmp_path):
    if not (ml100k.source.path and str(ml100k.source.path).endswith("ml-100k")):
        pytest.skip("needs the folder copy of ml-100k")
    copy = tmp_path / "ml-100k"
    shutil.copytree(ml100k.source.path, copy)
    data = (copy / "u2.test").read_bytes().replace(b"\t3\t", b"\t4\t", 1)
    (copy / "u2.test").write_bytes(data)
    r = load("ml-100k", copy, verify=False)
    with pytest.raises(ChecksumMismatch, match="u2.test"):
        official_fold(r, 2)


def test_only_ml100k_and_its_five_folds(ml100k, ml_small):
    with pytest.raises(InvalidArgument, match="official folds are"):
        official_fold(ml100k, 6)
    with pytest.raises(InvalidArgument, match="ml-latest-small"):
        official_fold(ml_small, 1)


def test_the_fold_override_is_checked_before_any_cell(tmp_path):
    from kmrec_gpu.harness.validate import problems
    from tests.test_harness import cfg_for

    ok = cfg_for(tmp_path, "dataset=ml-100k", "split=ml100k_fold", "split.params.fold=5")
    assert problems(ok) == []
    bad = cfg_for(tmp_path, "dataset=ml-100k", "split=ml100k_fold", "split.params.fold=0")
    assert problems(bad) == ["split.params.fold=0: expected one of ml-100k's folds 1-5"]
    kfold = cfg_for(tmp_path, "split=kfold", "split.params.fold=5")
    assert problems(kfold) == ["split.params.fold=5: expected an integer in [0, n_folds)"]
