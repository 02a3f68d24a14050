"""``kmrec check``'s comparison, baselines file, tables and exit codes on hand-made cell
results (no model is fitted): each finding and message exactly, each tolerance edge."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from rich.console import Console

from kmrec_gpu.harness import check as ck
from kmrec_gpu.harness.check import BaselineError, Finding, compare, compare_metric
from kmrec_gpu.harness.spec import ConfigError

FACTS = {"sha256": "ab", "n_ratings": 10, "n_users": 3, "n_items": 4}


def result(model="m", dataset="toy", *, status="ok", reason=None, metrics=None, key="k1",
           device="cpu0", facts=None, seed=0):
    spec = SimpleNamespace(model={"name": model}, dataset={"name": dataset},
                           split={"method": "holdout"}, backend={"id": "cpu"}, seed=seed,
                           key=key)
    return SimpleNamespace(spec=spec, status=status, reason=reason,
                           metrics={"rmse": 0.9} if metrics is None else metrics,
                           rows=[{"dataset": {"name": "x"}},
                                 {"dataset": {**FACTS, **(facts or {})}}],
                           backend={"device_name": device})


def base(metrics=None, dataset="toy", **cell):
    return {"datasets": {dataset: dict(FACTS)},
            "cells": {"m@toy/holdout/cpu/seed0": {"dataset": dataset, "key": "k1",
                                                   "metrics": {"rmse": 0.9} if metrics is None
                                                   else metrics, **cell}}}


CID = "m@toy/holdout/cpu/seed0"
TOL = {"rmse": {"abs": 0.01, "worse": "higher"}}


def text() -> Console:
    return Console(file=io.StringIO(), width=400, color_system=None)


# -- one metric ---------------------------------------------------------------------------

@pytest.mark.parametrize("base_v, now, tol, status, desc", [
    # dyadic values, so each difference is exact and the edges are the edges
    (1.0, 1.25, {"abs": 0.25, "worse": "higher"}, None, "0.25, higher worse"),
    (1.0, 1.26, {"abs": 0.25, "worse": "higher"}, "regressed", "0.25, higher worse"),
    (1.0, 0.75, {"abs": 0.25, "worse": "higher"}, None, "0.25, higher worse"),
    (1.0, 0.74, {"abs": 0.25, "worse": "higher"}, "improved", "0.25, higher worse"),
    (1.0, 0.74, {"abs": 0.25, "worse": "lower"}, "regressed", "0.25, lower worse"),
    (1.0, 1.26, {"abs": 0.25, "worse": "lower"}, "improved", "0.25, lower worse"),
    (1.0, 1.25, {"abs": 0.25, "worse": "lower"}, None, "0.25, lower worse"),
    (1.0, 0.75, {"abs": 0.25, "worse": "lower"}, None, "0.25, lower worse"),
    (1.0, 1.26, {"abs": 0.25}, "regressed", "±0.25"),
    (1.0, 0.74, {"abs": 0.25, "worse": "any"}, "regressed", "±0.25"),
    (1.0, 1.25, {"abs": 0.25}, None, "±0.25"),
    (1.0, 0.75, {"abs": 0.25}, None, "±0.25"),
    # the tolerance is the larger of abs and rel * |base|
    (2.0, 2.25, {"abs": 0.01, "rel": 0.125}, None, "±0.25"),
    (2.0, 2.26, {"abs": 0.01, "rel": 0.125}, "regressed", "±0.25"),
    (-2.0, -2.25, {"rel": 0.125}, None, "±0.25"),
    (-2.0, -2.26, {"rel": 0.125}, "regressed", "±0.25"),
    (0.5, 0.75, {"abs": 0.25, "rel": 0.125}, None, "±0.25"),
    (0.5, 0.76, {"abs": 0.25, "rel": 0.125}, "regressed", "±0.25"),
    (3, 3, {}, None, "±0"),
    # a relative tolerance of a zero baseline is zero
    (0.0, 0.01, {"rel": 0.125}, "regressed", "±0"),
    (0, 0, {"rel": 0.125}, None, "±0"),
    (3, 4, {"worse": "higher"}, "regressed", "0, higher worse"),
])
def test_compare_metric_against_its_tolerance(base_v, now, tol, status, desc):
    f = compare_metric("c", "m", base_v, now, tol)
    if status is None:
        assert f is None
    else:
        assert f == Finding("c", "m", status, base_v, now, desc)


@pytest.mark.parametrize("base_v, now", [(None, 0.9), (0.9, None)])
def test_a_metric_turning_nan_or_back_is_a_regression(base_v, now):
    assert compare_metric("c", "m", base_v, now, {"abs": 1.0, "worse": "higher"}) == Finding(
        "c", "m", "regressed", base_v, now, "1, higher worse")


def test_a_metric_nan_on_both_sides_is_unchanged():
    assert compare_metric("c", "m", None, None, {"abs": 0.0}) is None


# -- a whole comparison -------------------------------------------------------------------

def test_compare_counts_the_metrics_within_tolerance():
    b = base({"rmse": 0.9, "mae": 0.7, "n_test": 5})
    tol = {**TOL, "mae": {"abs": 0.01}}
    findings, passed, unchecked = compare(b, {CID: result(metrics={"rmse": 0.905, "mae": 0.7,
                                                                   "n_test": 6})}, tol)
    assert (findings, passed, unchecked) == ([], 2, {"n_test"})


def test_compare_names_each_kind_of_change():
    b = base({"rmse": 0.9, "mae": 0.7, "ndcg": 0.2})
    b["cells"]["a@toy/holdout/cpu/seed0"] = {"dataset": "toy", "metrics": {"rmse": 1.0}}
    b["cells"]["b@toy/holdout/cpu/seed0"] = {"dataset": "toy", "metrics": {"rmse": 1.0}}
    tol = {**TOL, "mae": {"abs": 0.01}, "ndcg": {"abs": 0.01}, "prec": {"abs": 0.01}}
    res = {CID: result(metrics={"rmse": 0.95, "ndcg": 0.2, "prec": 0.1},
                       facts={"n_users": 4, "generator": {"seed": 1}}),
           "b@toy/holdout/cpu/seed0": result(status="failed", reason="boom")}
    findings, passed, unchecked = compare(b, res, tol)
    assert findings == [
        Finding("a@toy/holdout/cpu/seed0", "-", "missing", now="not in this run"),
        Finding("b@toy/holdout/cpu/seed0", "-", "failed", now="failed: boom"),
        Finding(CID, "dataset generator", "dataset changed", None, {"seed": 1}),
        Finding(CID, "dataset n_users", "dataset changed", 3, 4),
        Finding(CID, "mae", "regressed", 0.7, "absent"),
        Finding(CID, "prec", "no baseline", "absent", 0.1),
        Finding(CID, "rmse", "regressed", 0.9, 0.95, "0.01, higher worse"),
    ]
    assert passed == 1 and unchecked == set()


def test_a_baseline_cell_without_metrics_is_no_pass():
    findings, passed, _ = compare(base({}), {CID: result(metrics={})}, TOL)
    assert findings == [Finding(CID, "-", "no baseline", "no metrics")] and passed == 0


def test_a_baseline_of_an_unknown_dataset_compares_its_facts_with_nothing():
    b = base()
    b["datasets"] = {}
    findings, passed, _ = compare(b, {CID: result()}, TOL)
    assert [f.metric for f in findings] == ["dataset n_items", "dataset n_ratings",
                                            "dataset n_users", "dataset sha256"]
    assert all(f.base is None and f.status == "dataset changed" for f in findings)
    assert passed == 1


def test_compare_reads_nan_metrics_as_null():
    findings, passed, _ = compare(base({"rmse": None}), {CID: result(metrics={"rmse": float(
        "nan")})}, TOL)
    assert (findings, passed) == ([], 1)


def test_clean_turns_only_float_nan_into_null():
    assert ck.clean({"a": float("nan"), "b": 1.5, "c": 2, "d": "nan", "e": None}) == {
        "a": None, "b": 1.5, "c": 2, "d": "nan", "e": None}


def test_dataset_facts_are_the_last_rows_identity():
    r = result(facts={"generator": ("g", 1), "name": "toy", "path": "/x"})
    assert ck.dataset_facts(r) == {**FACTS, "generator": ["g", 1]}
    assert ck.dataset_facts(result(facts={"generator": {}})) == FACTS
    r.rows.append({"dataset": {"sha256": "cd"}})  # the last row's, of three
    assert ck.dataset_facts(r)["sha256"] == "cd"
    r.rows[-1]["dataset"] = {"sha256": "ab"}
    assert ck.dataset_facts(r) == {"sha256": "ab", "n_ratings": None, "n_users": None,
                                   "n_items": None}


def test_cell_id_names_the_options():
    assert ck.cell_id(result(model="svd", dataset="ml-100k", seed=3).spec) == (
        "svd@ml-100k/holdout/cpu/seed3")


# -- the baselines file -------------------------------------------------------------------

def _file(tmp_path, data):
    p = tmp_path / "check.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_load_baselines_reads_a_good_file(tmp_path):
    b = base({"rmse": 0.9, "n": 3, "gone": None})
    assert ck.load_baselines(_file(tmp_path, b)) == b


@pytest.mark.parametrize("data, msg", [
    ("{not json", r"check\.json is not a check baselines file \(no cells and datasets\); "
                  r"run `kmrec check --update` to rewrite it$"),
    ([], "is not a check baselines file"),
    ({"cells": {}}, "is not a check baselines file"),
    ({"datasets": {}}, "is not a check baselines file"),
    ({"cells": [], "datasets": {}}, "is not a check baselines file"),
    ({"cells": {}, "datasets": []}, "is not a check baselines file"),
    ({"cells": {}, "datasets": {"toy": 3}},
     r"check\.json: dataset toy is 3, not an object; fix it, or delete the file and run "
     r"`kmrec check --update`$"),
    ({"cells": {"c": []}, "datasets": {}},
     r"check\.json: cell c is list, not an object; fix it, or delete the file and run "
     r"`kmrec check --update`$"),
    ({"cells": {"c": {"metrics": {}}}, "datasets": {}}, r"cell c has no dataset name; fix it"),
    ({"cells": {"c": {"dataset": 1, "metrics": {}}}, "datasets": {}}, "no dataset name"),
    ({"cells": {"c": {"dataset": "d", "metrics": [1]}}, "datasets": {}},
     r"cell c has no 'metrics' object \(found \[1\]\); fix it"),
    ({"cells": {"c": {"dataset": "d"}}, "datasets": {}},
     r"cell c has no 'metrics' object \(found None\)"),
    ({"cells": {"c": {"dataset": "d", "metrics": {"rmse": "0.9"}}}, "datasets": {}},
     r"cell c, metric 'rmse' is '0\.9'; expected a finite number \(null stands for a NaN\); "
     r"fix it, or delete the file and run `kmrec check --update`$"),
    ({"cells": {"c": {"dataset": "d", "metrics": {"rmse": True}}}, "datasets": {}},
     "metric 'rmse' is True"),
    ({"cells": {"c": {"dataset": "d", "metrics": {"mae": None, "rmse": "x"}}}, "datasets": {}},
     "metric 'rmse' is 'x'"),  # a stored NaN before it does not end the checking
    ({"cells": {"c": {"dataset": "d", "metrics": {"rmse": 1e999}}}, "datasets": {}},
     "metric 'rmse' is inf"),
])
def test_bad_baselines_files_are_named_with_the_fix(tmp_path, data, msg):
    p = _file(tmp_path, data)
    with pytest.raises(BaselineError, match=msg) as err:
        ck.load_baselines(p)
    assert str(err.value).startswith(str(p))


def test_a_missing_baselines_file_says_how_to_make_one(tmp_path):
    p = tmp_path / "none.json"
    with pytest.raises(BaselineError, match=r"^no baselines file .*none\.json: run "
                                            r"`kmrec check --update` to create it$"):
        ck.load_baselines(p)


@pytest.fixture
def rev(monkeypatch):
    import kmrec_gpu.environment as env

    monkeypatch.setattr(env, "git_revision", lambda: "r" * 40)


def test_write_baselines_stores_every_cell_and_reports(tmp_path, rev):
    p, c = tmp_path / "b.json", text()
    results = {"b@toy/holdout/cpu/seed1": result(model="b", seed=1, metrics={"x": float("nan")},
                                                 key="kb", device="dev2"),
               "a@toy/holdout/cpu/seed0": result(model="a", key="ka")}
    ck.write_baselines(p, None, results, False, c)
    data = json.loads(p.read_text())
    assert set(data) == {"suite", "revision", "device", "seed", "updated_utc", "datasets",
                         "cells"}
    assert (data["suite"], data["revision"], data["device"], data["seed"]) == (
        "check", "r" * 40, "cpu0, dev2", 0)
    assert data["datasets"] == {"toy": FACTS}
    assert list(data["cells"]) == ["a@toy/holdout/cpu/seed0", "b@toy/holdout/cpu/seed1"]
    assert data["cells"]["b@toy/holdout/cpu/seed1"] == {
        "key": "kb", "dataset": "toy", "revision": "r" * 40, "device": "dev2",
        "metrics": {"x": None}}
    assert p.read_text().endswith("}\n") and "\n \"cells\"" in p.read_text()
    assert list(data) == sorted(data)  # keys sorted at every level, as written
    assert list(data["cells"]["b@toy/holdout/cpu/seed1"]) == sorted(
        data["cells"]["b@toy/holdout/cpu/seed1"])
    assert data["updated_utc"].endswith("+00:00")
    out = c.file.getvalue()
    assert "check: new baselines, 2 cells" in out
    assert f"check: baselines written to {p} (2 cells, revision {'r' * 40})" in out
    assert "uncommitted" not in out
    assert ck.load_baselines(p)["cells"]["a@toy/holdout/cpu/seed0"]["metrics"] == {"rmse": 0.9}


def test_an_infinite_metric_is_refused_and_nothing_written(tmp_path, rev):
    p = tmp_path / "b.json"
    with pytest.raises(ValueError, match="not JSON compliant"):
        ck.write_baselines(p, None, {CID: result(metrics={"rmse": float("inf")})}, False, text())
    assert not p.exists()


def test_a_filtered_update_keeps_the_other_cells_and_a_full_one_drops_them(tmp_path, rev):
    p = tmp_path / "b.json"
    old = base({"rmse": 0.8})
    old["cells"]["z@old/holdout/cpu/seed0"] = {"dataset": "old", "metrics": {"rmse": 1.0}}
    old["datasets"]["old"] = {"sha256": "o"}
    ck.write_baselines(p, old, {CID: result()}, True, text())
    kept = json.loads(p.read_text())
    assert set(kept["cells"]) == {CID, "z@old/holdout/cpu/seed0"}
    assert set(kept["datasets"]) == {"old", "toy"}
    assert kept["cells"][CID]["metrics"] == {"rmse": 0.9}
    ck.write_baselines(p, old, {CID: result()}, False, text())
    full = json.loads(p.read_text())
    assert set(full["cells"]) == {CID} and set(full["datasets"]) == {"toy"}


def test_a_dirty_tree_is_noted_when_baselines_are_written(tmp_path, monkeypatch):
    import kmrec_gpu.environment as env

    monkeypatch.setattr(env, "git_revision", lambda: "abc-dirty")
    c = text()
    ck.write_baselines(tmp_path / "b.json", None, {CID: result()}, False, c)
    assert ("note: the tree has uncommitted changes; commit and update again so the "
            "baselines name a revision") in c.file.getvalue()


def test_report_update_lists_each_changed_metric_and_cell():
    old = {"cells": {"a": {"metrics": {"x": 1.0, "y": 2.0, "s": "p"}},
                     "gone": {"metrics": {}}}}
    new = {"cells": {"a": {"metrics": {"x": 1.5, "y": 2.0, "z": 3.0, "s": "q"}},
                     "new": {"metrics": {}}}}
    c = text()
    ck.report_update(old, new, c)
    lines = [ln.split("│")[1:-1] for ln in c.file.getvalue().splitlines() if ln.count("│") == 6]
    rows = [[x.strip() for x in ln] for ln in lines]
    assert rows == [["a", "s", "p", "q", ""], ["a", "x", "1", "1.5", "+0.5"],
                    ["a", "z", "None", "3", ""], ["gone", "-", "cell", "", "removed"],
                    ["new", "-", "", "cell", "added"]]
    header = [ln for ln in c.file.getvalue().splitlines() if "cell" in ln and "┃" in ln]
    assert [x.strip() for x in header[0].split("┃")[1:-1]] == ["cell", "metric", "old", "new",
                                                               "delta"]
    assert c.file.getvalue().splitlines()[0].strip() == "check: baselines changed"
    same = text()
    ck.report_update(old, old, same)
    assert same.file.getvalue() == "check: no metric changed\n"


def test_the_findings_table_shows_each_finding():
    c = text()
    c.print(ck.findings_table([
        Finding("c[1]", "rmse", "regressed", 0.9, 0.95123456, "0.01, higher worse"),
        Finding("c", "mae", "improved", 0.7, 0.6, "±0.01"),
        Finding("c", "ndcg", "no baseline", "absent", 3),
        Finding("c", "-", "failed", now="failed: boom"),
        Finding("c", "n", "regressed", 2, True),
    ]))
    rows = [[x.strip() for x in ln.split("│")[1:-1]] for ln in c.file.getvalue().splitlines()
            if ln.count("│") == 8]
    assert rows == [
        ["c[1]", "rmse", "0.9", "0.951235", "+0.0512", "0.01, higher worse", "regressed"],
        ["c", "mae", "0.7", "0.6", "-0.1", "±0.01", "improved: consider --update"],
        ["c", "ndcg", "absent", "3", "", "", "no baseline: run --update"],
        ["c", "-", "None", "failed: boom", "", "", "failed"],
        ["c", "n", "2", "True", "-1", "", "regressed"],
    ]
    out = c.file.getvalue().splitlines()
    assert out[0].strip() == "check: changes beyond tolerance"
    header = [ln for ln in out if "┃" in ln]
    assert [x.strip() for x in header[0].split("┃")[1:-1]] == [
        "cell", "metric", "baseline", "now", "delta", "tolerance", "status"]


def test_the_findings_table_colours_improvements_green_and_the_rest_red():
    t = ck.findings_table([Finding("c", "m", "improved", 1.0, 0.5),
                           Finding("c", "m", "regressed", 1.0, 2.0)])
    status = t.columns[-1]._cells
    assert status[0].startswith("[green]") and status[1].startswith("[red]")


# -- overrides and patterns ---------------------------------------------------------------

def test_override_pairs_parse_values_as_yaml():
    assert ck._override_pairs(["a.b=3", " c = x ", "d=[1, 2]", "e="]) == [
        ("a.b", 3), ("c", "x"), ("d", [1, 2]), ("e", None)]
    assert ck._override_pairs("a=0.5") == [("a", 0.5)]
    assert ck._override_pairs(["model.x=a=b"]) == [("model.x", "a=b")]  # at the first "="
    assert ck._override_pairs({"a": 1, "b": "x"}) == [("a", 1), ("b", "x")]


@pytest.mark.parametrize("bad", ["novalue", "=3", " =3"])
def test_an_override_without_a_key_is_refused(bad):
    with pytest.raises(ConfigError, match=f"^override {bad!r}: expected key=value$"):
        ck._override_pairs([bad])


def test_matches_takes_one_pattern_or_several():
    assert ck._matches("svd@x/holdout", "svd@*") and not ck._matches("nmf@x", "svd@*")
    assert ck._matches("nmf@x", ["svd@*", "nmf@*"]) and not ck._matches("knn@x", ["svd@*"])


# -- run_check on hand-made cells ---------------------------------------------------------

@pytest.fixture
def fake_suite(monkeypatch, rev):
    """The suite of two cells, their results given by the test."""
    ran = {}

    def suite(only=(), overrides=()):
        cells = {CID: "cfg-m", "n@toy/holdout/cpu/seed0": "cfg-n"}
        pats = [only] if isinstance(only, str) else list(only)
        if pats:
            cells = {k: v for k, v in cells.items() if ck._matches(k, pats)}
        return cells, TOL

    def run_cells(cells, results_dir, threads, console, command):
        ran.update(cells=cells, command=command, threads=threads, console=console,
                   results_dir=results_dir)
        return {k: ran["results"][k] for k in cells}

    monkeypatch.setattr(ck, "suite", suite)
    monkeypatch.setattr(ck, "run_cells", run_cells)
    return ran


N = "n@toy/holdout/cpu/seed0"


def _run(tmp_path, **kw):
    c = text()
    code = ck.run_check(results_dir=tmp_path, baselines_path=tmp_path / "b.json", console=c,
                        **kw)
    return code, c.file.getvalue()


def _two():
    return {CID: result(), N: result(model="n", key="kn")}


def test_run_check_update_then_check(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    code, out = _run(tmp_path, update=True, threads=2)
    assert code == 0 and fake_suite["command"] == "kmrec check --update --threads 2"
    assert fake_suite["threads"] == 2 and "check: new baselines, 2 cells" in out
    code, out = _run(tmp_path)
    assert code == 0 and fake_suite["command"] == "kmrec check --threads 1"
    assert out.splitlines()[-2:] == [
        "check: 2 cells, 2 metrics within tolerance, 0 improved, 0 regressed or failed",
        "check passed"]


def test_run_check_fails_on_a_regression_and_reports_an_improvement(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    fake_suite["results"] = {CID: result(metrics={"rmse": 0.95}),
                             N: result(model="n", key="kn", metrics={"rmse": 0.8})}
    code, out = _run(tmp_path)
    assert code == 1 and "check FAILED" in out
    assert ("check: 2 cells, 0 metrics within tolerance, 1 improved, 1 regressed or failed"
            in out)
    fake_suite["results"] = {CID: result(), N: result(model="n", key="kn",
                                                      metrics={"rmse": 0.8})}
    code, out = _run(tmp_path)
    assert code == 0 and out.splitlines()[-1] == "check passed"
    assert "1 improved, 0 regressed or failed" in out and "consider --update" in out


def test_run_check_fails_on_a_failed_cell_and_notes_changes(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    fake_suite["results"] = {CID: result(key="changed", device="other", metrics={
        "rmse": 0.9, "extra_metric": 1}),
        N: result(model="n", key="kn", device="other", status="failed", reason="boom")}
    code, out = _run(tmp_path)
    assert code == 1 and "failed: boom" in out
    assert (f"note: configuration changed since the baseline for 1 cell(s): {CID}") in out
    assert "note: baselines from cpu0, this run on other" in out
    assert ("check: 2 cells, 1 metrics within tolerance, 0 improved, 1 regressed or failed; "
            "not compared: extra_metric") in out


def test_the_same_device_is_not_noted(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    _, out = _run(tmp_path)
    assert "note:" not in out and "cells are" not in out


def test_an_update_with_a_failed_cell_writes_nothing(tmp_path, fake_suite):
    fake_suite["results"] = {CID: result(), N: result(status="failed", reason="boom")}
    code, out = _run(tmp_path, update=True)
    assert code == 1 and not (tmp_path / "b.json").exists()
    assert "check: baselines not written: every cell must run" in out and "failed: boom" in out


def test_a_check_needs_a_baseline_for_every_selected_cell(tmp_path, fake_suite):
    fake_suite["results"] = {CID: result()}
    _run(tmp_path, update=True, only=CID)
    fake_suite.pop("cells")
    with pytest.raises(BaselineError, match=f"^{tmp_path / 'b.json'} has no baseline for {N}: "
                                            "run `kmrec check --update` to add it$"):
        _run(tmp_path)
    assert "cells" not in fake_suite  # refused before any cell ran
    code, out = _run(tmp_path, only=[CID])
    assert code == 0 and "check: 1 cells, 1 metrics within tolerance" in out
    with pytest.raises(BaselineError, match="no baselines file"):
        _run(tmp_path / "nowhere")


def test_a_filtered_check_answers_for_its_cells_only(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    fake_suite["results"] = {CID: result()}
    code, out = _run(tmp_path, only=CID)
    assert code == 0 and "missing" not in out and fake_suite["cells"] == {CID: "cfg-m"}
    assert "check: 1 cells, 1 metrics within tolerance" in out


def test_a_baseline_cell_the_run_lacks_is_missing(tmp_path, fake_suite, monkeypatch):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    monkeypatch.setattr(ck, "run_cells", lambda *a: {CID: result()})
    code, out = _run(tmp_path)
    assert code == 1 and "not in this run" in out and "missing" in out


def test_update_with_overrides_is_refused(tmp_path, fake_suite):
    with pytest.raises(ConfigError, match="^check --update with overrides would store a "
                                          "modified model as the baseline$"):
        _run(tmp_path, update=True, overrides=["model.x=1"])


# -- the suite ----------------------------------------------------------------------------

def test_the_suite_selects_by_pattern_and_applies_overrides():
    cells, tol = ck.suite(only=["svd@ml-100k/*", "nmf@ml-100k/*"],
                          overrides=["model.estimator.n_components=3"])
    assert sorted(cells) == ["nmf@ml-100k/holdout/cpu/seed0", "svd@ml-100k/holdout/cpu/seed0"]
    assert {c.model.estimator.n_components for c in cells.values()} == {3}
    assert {c.seed for c in cells.values()} == {0} and tol["rmse"]["worse"] == "higher"
    # an override replaces a mapping, it does not merge into it
    lim, _ = ck.suite(only="svd@ml-100k/*", overrides={"model.limits": {"reason": "x"}})
    assert [dict(c.model.limits) for c in lim.values()] == [{"reason": "x"}]
    one, _ = ck.suite(only="svd@ml-100k/*")
    assert list(one) == ["svd@ml-100k/holdout/cpu/seed0"]
    everything, _ = ck.suite()
    assert len(everything) > 30 and set(cells) < set(everything)


def test_the_suite_refuses_a_pattern_or_override_that_selects_nothing():
    with pytest.raises(ConfigError, match=r"^check: 'nope\*' matches no cell; cells are \["):
        ck.suite(only=["svd@*", "nope*"])
    with pytest.raises(ConfigError, match="^override model.nokey: no selected cell of the "
                                          "check has that key$"):
        ck.suite(only="svd@ml-100k/*", overrides={"model.nokey": 1})


def test_run_check_reads_and_writes_under_results_by_default(tmp_path, fake_suite, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_suite["results"] = _two()
    c = text()
    assert ck.run_check(update=True, console=c) == 0
    assert (tmp_path / "results" / "baselines" / "check.json").is_file()
    assert str(fake_suite["results_dir"]) == "results" and fake_suite["console"] is c
    assert ck.run_check(console=c) == 0


def test_run_check_prints_160_columns_when_not_a_terminal(tmp_path, fake_suite, capsys):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    # an uncompared metric's long name, folded at the console's width in the summary line
    fake_suite["results"] = {CID: result(metrics={"rmse": 0.9, "x" * 400: 1.0}),
                             N: result(model="n", key="kn")}
    assert ck.run_check(results_dir=tmp_path, baselines_path=tmp_path / "b.json") == 0
    out = capsys.readouterr().out
    assert max(len(ln) for ln in out.splitlines()) == 160


def test_run_check_lists_several_cells_devices_and_metrics_with_commas(tmp_path, fake_suite):
    fake_suite["results"] = _two()
    _run(tmp_path, update=True)
    fake_suite["results"] = {
        CID: result(key="k2", device="d1", metrics={"rmse": 0.9, "u1": 1, "u2": 2}),
        N: result(model="n", key="k3", device="d2")}
    code, out = _run(tmp_path)
    assert code == 0
    assert f"for 2 cell(s): {CID}, {N}" in out
    assert "note: baselines from cpu0, this run on d1, d2" in out
    assert "; not compared: u1, u2" in out
    assert out.splitlines()[-1] == "check passed"
    fake_suite["results"] = {CID: result(metrics={"rmse": 5.0}), N: result(model="n", key="kn")}
    code, out = _run(tmp_path)
    assert code == 1 and out.splitlines()[-1] == "check FAILED"


def test_absent_baselines_are_listed_with_commas(tmp_path, fake_suite):
    (tmp_path / "b.json").write_text(json.dumps({"cells": {}, "datasets": {}}))
    with pytest.raises(BaselineError, match=f"has no baseline for {CID}, {N}: run"):
        _run(tmp_path)


def test_a_failed_update_names_each_failed_cell(tmp_path, fake_suite):
    fake_suite["results"] = {CID: result(status="failed", reason="boom"), N: result()}
    code, out = _run(tmp_path, update=True)
    rows = [[x.strip() for x in ln.split("│")[1:-1]] for ln in out.splitlines()
            if ln.count("│") == 8]
    assert rows == [[CID, "-", "None", "failed: boom", "", "", "failed"]]
    assert out.splitlines()[-1] == "check: baselines not written: every cell must run"


def test_the_suite_composes_without_warnings_and_refuses_a_repeated_cell(monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck.suite(only="svd@ml-100k/*")
    import kmrec_gpu.harness.app as app

    orig = app.grid_configs
    monkeypatch.setattr(app, "grid_configs", lambda root: orig(root)[:1] * 2)
    with pytest.raises(ConfigError, match=r"^sweep check: cell \S+ appears twice$"):
        ck.suite()
