"""Result rows (schema, append-only atomic writer) and the claims record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmrec_gpu.claims import (
    DEFAULT_PATH,
    load_claims,
    validate_claim,
    validate_claims,
    write_claims,
)
from kmrec_gpu.errors import SchemaError
from kmrec_gpu.results import ResultWriter, make_row, read_rows, validate_row


def row(writer, **over):
    base = dict(run_id=writer.run_id, dataset={"name": "toy", "sha256": "ab"}, split=None,
                seed=0, model={"name": "m", "params": {"k": 3}},
                backend={"name": "cpu", "library": "numpy", "device_name": "test cpu"},
                phase="fit", metrics={"rmse": 0.9}, wall_time={"median_s": 1.0})
    base.update(over)
    return make_row(**base)


def test_rows_are_appended_and_read_back(tmp_path):
    w = ResultWriter(tmp_path)
    w.append(row(w))
    w.append(row(w, phase="predict", metrics={"rmse": 0.8, "n_test": 10}))
    rows = read_rows(tmp_path)
    assert [r["phase"] for r in rows] == ["fit", "predict"]
    assert rows[0]["seed"] == 0 and rows[0]["versions"]["python"]
    assert rows[0]["git_revision"] and rows[1]["metrics"] == {"rmse": 0.8, "n_test": 10}
    assert w.path.parent == tmp_path / "runs" and w.path.suffix == ".jsonl"
    # no temporary files are left behind
    assert [p.name for p in w.path.parent.iterdir()] == [w.path.name]


def test_separate_runs_never_share_a_file(tmp_path):
    a, b = ResultWriter(tmp_path), ResultWriter(tmp_path)
    a.append(row(a))
    b.append(row(b))
    assert a.path != b.path and len(read_rows(tmp_path)) == 2


def test_a_failing_write_keeps_the_earlier_rows(tmp_path, monkeypatch):
    w = ResultWriter(tmp_path)
    w.append(row(w))
    before = w.path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        w.append(row(w, phase="predict"))
    assert w.path.read_text() == before
    assert [p.name for p in w.path.parent.iterdir()] == [w.path.name]


@pytest.mark.parametrize("change, msg", [
    ({"phase": "train"}, "phase 'train'"),
    ({"status": "failed"}, "must give its reason"),
    ({"metrics": {"rmse": "0.9"}}, "expected a number"),
    ({"seed": "0"}, "key 'seed' is str"),
    ({"bogus": 1}, "unknown keys"),
])
def test_schema_rejects_bad_rows(tmp_path, change, msg):
    w = ResultWriter(tmp_path)
    good = row(w)
    with pytest.raises(SchemaError, match=msg):
        validate_row({**good, **change})


def test_failed_row_with_reason_is_valid(tmp_path):
    w = ResultWriter(tmp_path)
    r = row(w, status="failed", reason="out of memory", metrics={})
    w.append(r)
    assert read_rows(w.path)[0]["reason"] == "out of memory"


def test_read_rows_names_the_bad_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n')
    with pytest.raises(SchemaError, match=r"x.jsonl, line 1: result row has unknown keys"):
        read_rows(p)


# ---- claims ------------------------------------------------------------------------------
def figure(**over):
    f = {"metric": "rmse", "value": 0.95, "ci_low": 0.94, "ci_high": 0.96, "model": "svd",
         "dataset": "ml-latest-small", "note": None}
    f.update(over)
    return f


def claim(**over):
    c = {"id": "001-tsvd16-rmse", "source": "001_b75808987be9316f.txt",
         "statement": "Truncated SVD (16) RMSE 0.918", "metric": "rmse", "unit": "stars",
         "claimed": 0.918, "claimed_all": {}, "margin": 0.01, "margin_reason": "measured",
         "held_out": None, "as_published": None, "figures": [], "comparison": [],
         "verdict": "unsupported", "verdict_note": "no code", "conclusion": None,
         "conclusion_holds": None, "conclusion_evidence": [], "tuned_holds": None,
         "tuned_evidence": [], "context": [],
         "protocol": "inferred: 90/10 holdout", "bootstrap": {}, "evidence": ["runs/x.jsonl"]}
    c.update(over)
    return c


def test_committed_claims_file_follows_the_schema():
    claims = load_claims(DEFAULT_PATH)
    assert isinstance(claims, list) and claims
    validate_claims(json.loads(Path(DEFAULT_PATH).read_text()))


def test_write_then_load_round_trips(tmp_path):
    p = tmp_path / "claims.json"
    write_claims(p, [claim(held_out=figure(), verdict="not reproduced")])
    (c,) = load_claims(p)
    assert c["held_out"]["value"] == 0.95 and c["verdict"] == "not reproduced"
    assert [p.name for p in tmp_path.iterdir()] == ["claims.json"]


@pytest.mark.parametrize("change, msg", [
    ({"verdict": "maybe"}, "verdict 'maybe'"),
    ({"claimed": "0.9"}, "number or null"),
    ({"held_out": {"value": 1.0}}, "missing keys"),
    ({"held_out": figure(value=1.0, ci_low=1.1, ci_high=1.2)}, "ci_low <= value"),
    ({"held_out": figure(value=float("nan"))}, "finite number"),
    ({"verdict": "reproduced", "evidence": []}, "needs evidence"),
    ({"verdict": "inconclusive", "margin": None}, "needs claimed and margin"),
    ({"conclusion_holds": "yes"}, "true, false or null"),
    ({"conclusion_holds": True}, "needs conclusion_evidence"),
    ({"tuned_holds": True}, "needs tuned_evidence"),
    ({"tuned_holds": "yes"}, "tuned_holds must be true, false or null"),
    ({"statement": ""}, "non-empty string"),
    ({"extra": 1}, "unknown keys"),
])
def test_claim_schema_rejects(change, msg):
    with pytest.raises(SchemaError, match=msg):
        validate_claim(claim(**change))


def test_duplicate_claim_ids_rejected():
    with pytest.raises(SchemaError, match="duplicate id"):
        validate_claims([claim(), claim()])


def test_a_claims_path_that_is_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "claims.json").mkdir()
    with pytest.raises(SchemaError, match="directory"):
        load_claims(tmp_path / "claims.json")


def test_appended_results_do_not_make_the_revision_dirty(tmp_path):
    import subprocess

    from kmrec_gpu.environment import git_revision

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results" / "runs").mkdir(parents=True)
    (tmp_path / "results" / "runs" / "a.jsonl").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    rev = git_revision.__wrapped__(tmp_path)
    assert len(rev) == 40
    (tmp_path / "results" / "runs" / "a.jsonl").write_text("{}\n{}\n")  # a row appended
    assert git_revision.__wrapped__(tmp_path) == rev
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision.__wrapped__(tmp_path) == rev + "-dirty"


# ---- the claims schema at its edges (mutation testing: results/mutation.md) --------------

@pytest.mark.parametrize("change, msg", [
    ({"held_out": figure(value=0.94, ci_low=0.94)}, None),  # value on its interval's end
    ({"held_out": figure(value=0.96, ci_high=0.96)}, None),
    ({"held_out": "x"}, r"^claim '001-tsvd16-rmse' held_out: expected an object$"),
    ({"as_published": figure(verdict="maybe")},
     r"^claim '001-tsvd16-rmse' as_published: verdict 'maybe'$"),
    ({"figures": [figure(), figure(ci_low=0.99)]},
     r"^claim '001-tsvd16-rmse' figures\[1\]: needs ci_low <= value <= ci_high$"),
    ({"context": "x"}, r"^claim '001-tsvd16-rmse': context must be a list$"),
    ({"conclusion_evidence": "x"},
     r"^claim '001-tsvd16-rmse': conclusion_evidence must be a list$"),
    ({"evidence": "runs/x.jsonl"},
     r"^claim '001-tsvd16-rmse': evidence must be a list of strings \(files, commands\)$"),
    ({"evidence": [1]}, r"evidence must be a list of strings"),
    ({"verdict": "not reproduced", "claimed": None}, r"^claim '001-tsvd16-rmse': a 'not "
                                                     r"reproduced' verdict needs claimed and "
                                                     r"margin$"),
    ({"verdict": "reproduced", "margin": None}, r"a 'reproduced' verdict needs claimed"),
    ({"verdict": "not reproduced", "evidence": []},
     r"^claim '001-tsvd16-rmse': a 'not reproduced' verdict needs evidence$"),
    ({"verdict": "no claim", "evidence": []}, None),  # a document that states no figure
])
def test_claim_schema_edges(change, msg):
    if msg is None:
        assert validate_claim(claim(**change))["id"] == "001-tsvd16-rmse"
        return
    with pytest.raises(SchemaError, match=msg):
        validate_claim(claim(**change))


def test_schema_messages_name_where():
    with pytest.raises(SchemaError, match=r"^claim: expected an object, got list$"):
        validate_claim([])
    with pytest.raises(SchemaError, match=r"^claims\[1\] '001-tsvd16-rmse': verdict 'x'"):
        validate_claims([claim(id="a"), claim(verdict="x")])
    with pytest.raises(SchemaError, match=r"^claims.json must hold a JSON list$"):
        validate_claims({})


def test_claims_file_errors_and_format(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1,")
    with pytest.raises(SchemaError, match=rf"^{bad}: not valid JSON \("):
        load_claims(bad)
    bad.write_bytes(b"\xff\xfe[]")
    with pytest.raises(SchemaError, match=rf"^{bad}: not UTF-8 text \("):
        load_claims(bad)
    p = tmp_path / "claims.json"
    c = claim(statement="Précision ≥ 0.9", held_out=figure(), verdict="not reproduced")
    write_claims(p, [c])
    text = p.read_text(encoding="utf-8")
    # two-space indent, keys in the record's order, non-ASCII kept as written, one newline
    assert text == json.dumps([c], indent=2, ensure_ascii=False) + "\n"
    assert "Précision ≥ 0.9" in text and text.index('"id"') < text.index('"source"')
