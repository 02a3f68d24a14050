"""claims.json's builder on hand-made stored rows: which row each cell takes, every field of
a held-out, probe, comparison and context figure, the conclusion's evidence, the notes and
the messages. Cell keys are plain strings here, so no harness configuration is composed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kmrec_gpu.claims import build as cb
from kmrec_gpu.claims.protocol import Cell, ConclusionTest, Entry, Protocol
from kmrec_gpu.claims.record import load_claims
from kmrec_gpu.claims.verdict import figure_verdict
from kmrec_gpu.errors import KmrecError
from kmrec_gpu.metrics import users as us
from kmrec_gpu.results import make_row

SEEDS = (0, 1, 2)


def key(c: Cell) -> str:
    return f"{c.model}|{c.dataset}|{c.split}|{c.seed}"


@pytest.fixture(autouse=True)
def plain_keys(monkeypatch):
    monkeypatch.setattr(cb, "cell_keys", lambda cells: {c: key(c) for c in cells})


def entry(model: str, kind: str = "held-out", metric: str = "rmse", **kw) -> Entry:
    return Entry(model=model, kind=kind, dataset=kw.pop("dataset", "toy"),
                 split=kw.pop("split", "holdout"), seeds=kw.pop("seeds", SEEDS), metric=metric,
                 **kw)


def protocol(figures, comparison=(), context=(), test=None, tuned=None, declared=None,
             claimed=0.9, margin=0.05, pid="t") -> Protocol:
    return Protocol(id=pid, document="doc", statement="s", metric="rmse", unit="RMSE",
                    claimed=claimed, margin=margin, margin_reason="why", dataset="toy",
                    split="holdout", seeds=SEEDS, figures=tuple(figures),
                    comparison=tuple(comparison), context=tuple(context), conclusion="c",
                    conclusion_test=test, protocol="p", tuned_test=tuned, declared=declared)


def per_user(model: str, seed: int, scale: float) -> dict:
    """Rating statistics of 40 users, two to four rows each, errors of about ``scale``."""
    rng = np.random.default_rng([seed, len(model)])
    users = np.repeat(np.arange(40), rng.integers(2, 5, size=40))
    y = rng.integers(1, 6, size=users.size).astype(float)
    return us.rating_stats(users, y, y + rng.normal(0, scale, size=users.size))


def stored_row(model: str, seed: int, *, metrics=None, extra=None, when="2026-01-01T00:00:00+00:00",
               phase="evaluate", status="ok", cell_key=None) -> dict:
    c = Cell(model, "toy", "holdout", seed)
    row = make_row(run_id="r", dataset={"name": "toy", "sha256": "ab"}, split=None, seed=seed,
                   model={"name": model, "params": {}},
                   backend={"name": "cpu", "library": "numpy", "device_name": "t"},
                   phase=phase, status=status, metrics=metrics or {"rmse": 1.0},
                   **({} if status == "ok" else {"reason": "broke"}),
                   extra={"harness": {"cell_key": cell_key or key(c)}, **(extra or {})})
    row["created_utc"] = when
    return row


def stored(*models: tuple[str, float]) -> dict[str, cb.Stored]:
    out = {}
    for m, scale in models:
        for s in SEEDS:
            r = stored_row(m, s, extra={"per_user": per_user(m, s, scale)})
            out[key(Cell(m, "toy", "holdout", s))] = cb.Stored(r, f"runs/{m}.jsonl")
    return out


def probe_rows(model: str, metrics: list[dict], details: list | None = None) -> dict:
    out = {}
    for s, m in zip(SEEDS, metrics):
        extra = {} if details is None else {"details": details[s]}
        out[key(Cell(model, "toy", "holdout", s))] = cb.Stored(
            stored_row(model, s, metrics=m, extra=extra), f"runs/p{s}.jsonl")
    return out


# -- stored_rows ------------------------------------------------------------------------

def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_stored_rows_takes_the_newest_ok_evaluate_row_of_each_cell(tmp_path):
    t0, t1, t2 = (f"2026-01-0{d}T00:00:00+00:00" for d in (1, 2, 3))
    _write(tmp_path / "runs" / "a.jsonl", [
        stored_row("m", 0, metrics={"rmse": 1.0}, when=t1),
        stored_row("m", 0, metrics={"rmse": 2.0}, when=t0),      # older, later in the file
        stored_row("m", 0, metrics={"rmse": 3.0}, when=t2, phase="fit"),
        stored_row("m", 0, metrics={"rmse": 4.0}, when=t2, status="failed"),
        stored_row("n", 0, metrics={"rmse": 5.0}, when=t0),
    ])
    _write(tmp_path / "runs" / "b.jsonl", [
        stored_row("n", 0, metrics={"rmse": 6.0}, when=t0),      # same time: the later read wins
    ])
    got = cb.stored_rows(tmp_path)
    assert set(got) == {key(Cell("m", "toy", "holdout", 0)), key(Cell("n", "toy", "holdout", 0))}
    m = got[key(Cell("m", "toy", "holdout", 0))]
    assert m.row["metrics"] == {"rmse": 1.0} and m.file == "runs/a.jsonl"
    n = got[key(Cell("n", "toy", "holdout", 0))]
    assert n.row["metrics"] == {"rmse": 6.0} and n.file == "runs/b.jsonl"


@pytest.mark.parametrize("change", [
    {"phase": "fit"}, {"status": "failed"}, {"phase": "fit", "status": "failed"}])
def test_stored_rows_skips_rows_that_are_no_evaluation(tmp_path, change):
    r = stored_row("m", 0, phase=change.get("phase", "evaluate"),
                   status=change.get("status", "ok"))
    _write(tmp_path / "runs" / "a.jsonl", [r])
    assert cb.stored_rows(tmp_path) == {}


@pytest.mark.parametrize("harness", [None, "k", {"cell_key": 3}, {"other": "k"}])
def test_stored_rows_skips_rows_without_a_harness_key(tmp_path, harness):
    r = stored_row("m", 0)
    r["extra"] = {} if harness is None else {"harness": harness}
    _write(tmp_path / "runs" / "a.jsonl", [r])
    assert cb.stored_rows(tmp_path) == {}


def test_stored_rows_of_a_folder_without_runs_is_empty(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    assert cb.stored_rows(tmp_path) == {}
    assert cb.stored_rows(tmp_path / "nowhere") == {}


def test_stored_rows_warns_and_goes_on_past_a_bad_line(tmp_path, capsys):
    f = tmp_path / "runs" / "a.jsonl"
    _write(f, [stored_row("m", 0)])
    f.write_text(f.read_text() + "{not json\n")
    assert list(cb.stored_rows(tmp_path)) == [key(Cell("m", "toy", "holdout", 0))]
    assert f"{f}:2" in capsys.readouterr().err


# -- one claim, every field ---------------------------------------------------------------

def _interval(parts, metric="rmse"):
    return us.user_bootstrap(parts, metric, n_resamples=2000, seed=0).as_dict()


def _r(v):
    return round(float(v), 6)


def test_a_held_out_figure_is_the_pooled_user_bootstrap_of_its_seeds():
    p = protocol([entry("a", note="n1")])
    rows = stored(("a", 0.9))
    c = cb.build_claim(p, rows)
    parts = [rows[key(Cell("a", "toy", "holdout", s))].row["extra"]["per_user"] for s in SEEDS]
    d = _interval(parts)
    want = {"model": "a", "kind": "held-out", "dataset": "toy", "split": "holdout",
            "seeds": [0, 1, 2], "metric": "rmse",
            "cell_keys": [key(Cell("a", "toy", "holdout", s)) for s in SEEDS],
            "value": _r(d["value"]), "ci_low": _r(d["ci_low"]), "ci_high": _r(d["ci_high"]),
            "per_seed": [_r(v) for v in d["per_seed"]], "per_seed_sd": _r(d["per_seed_sd"]),
            "n_users": 40, "interval": "95% user bootstrap, seeds pooled", "note": "n1",
            "verdict": figure_verdict(_r(d["ci_low"]), _r(d["ci_high"]), 0.9, 0.05)}
    assert c["figures"] == [want] and c["held_out"] == want
    assert c["verdict"] == want["verdict"]
    assert c["as_published"] is None and c["comparison"] == [] and c["context"] == []
    assert c["bootstrap"] == {"unit": "user", "n_resamples": 2000, "seed": 0,
                              "confidence": 0.95}
    assert c["evidence"] == ["runs/a.jsonl", "kmrec claims run --only t",
                             "kmrec claims --only t"]
    assert {k: c[k] for k in ("id", "source", "statement", "metric", "unit", "claimed",
                              "margin", "margin_reason", "conclusion", "protocol")} == {
        "id": "t", "source": "doc", "statement": "s", "metric": "rmse", "unit": "RMSE",
        "claimed": 0.9, "margin": 0.05, "margin_reason": "why", "conclusion": "c",
        "protocol": "p"}
    assert c["conclusion_holds"] is None and c["conclusion_evidence"] == []
    assert c["tuned_holds"] is None and c["tuned_evidence"] == []


def test_one_seed_has_no_spread_between_seeds():
    f = cb.build_claim(protocol([entry("a", seeds=(0,))]), stored(("a", 0.9)))["held_out"]
    assert f["per_seed_sd"] is None and len(f["per_seed"]) == 1


def test_a_row_without_extras_keeps_no_per_user_statistics():
    rows = stored(("a", 0.9))
    k = key(Cell("a", "toy", "holdout", 1))
    rows[k].row.pop("extra")
    with pytest.raises(cb.MissingRows, match="^a@toy/seed1: its row keeps no per-user"):
        cb.build_claim(protocol([entry("a")]), rows)


def test_the_figures_keep_six_decimals():
    c = cb.build_claim(protocol([entry("a")]), stored(("a", 0.9)))
    f = c["held_out"]
    for v in (f["value"], f["ci_low"], f["ci_high"], f["per_seed_sd"], *f["per_seed"]):
        assert v == round(v, 6) and v != round(v, 4)


def test_the_claimed_verdict_comes_from_the_first_judged_figure_and_the_rule():
    rows = stored(("a", 0.9), ("b", 0.3))
    value = cb.build_claim(protocol([entry("a")]), rows)["held_out"]["value"]
    near = protocol([entry("b"), entry("a")], claimed=value, margin=0.1)
    c = cb.build_claim(near, rows)
    assert [f["verdict"] for f in c["figures"]] == ["not reproduced", "reproduced"]
    assert c["verdict"] == "not reproduced" and c["held_out"]["model"] == "b"


def test_the_held_out_figure_is_the_one_in_the_claims_metric():
    rows = stored(("a", 0.9), ("b", 0.3))
    c = cb.build_claim(protocol([entry("a", metric="mae"), entry("b")]), rows)
    assert c["held_out"]["model"] == "b" and c["held_out"]["metric"] == "rmse"
    c = cb.build_claim(protocol([entry("a", metric="mae")]), rows)
    assert c["held_out"] is None


def test_an_as_published_figure_is_named_and_judged_only_as_a_figure():
    rows = stored(("a", 0.9), ("b", 0.3))
    p = protocol([entry("a", kind="as-published"), entry("b")])
    c = cb.build_claim(p, rows)
    assert c["as_published"]["model"] == "a" and "verdict" not in c["as_published"]
    assert c["held_out"]["model"] == "b" and c["verdict"] == c["held_out"]["verdict"]


def test_comparison_and_context_figures_carry_no_verdict():
    rows = stored(("a", 0.9), ("b", 0.3), ("c", 0.5))
    p = protocol([entry("a")], comparison=[entry("b")], context=[entry("c", note="ctx")])
    c = cb.build_claim(p, rows)
    (b,), (ctx,) = c["comparison"], c["context"]
    assert b["model"] == "b" and ctx["model"] == "c" and ctx["note"] == "ctx"
    assert "verdict" not in b and "verdict" not in ctx
    assert b["value"] == _r(_interval([rows[key(Cell("b", "toy", "holdout", s))]
                                       .row["extra"]["per_user"] for s in SEEDS])["value"])


def test_a_declared_verdict_and_its_reason_replace_the_rule():
    rows = stored(("a", 0.9))
    p = protocol([entry("a")], declared=("unsupported", "  the document gives no figure \n"),
                 claimed=None, margin=None)
    c = cb.build_claim(p, rows)
    assert c["verdict"] == "unsupported"
    assert c["verdict_note"] == "the document gives no figure"
    assert "verdict" not in c["figures"][0]


def test_the_verdict_note_names_each_judged_figure():
    rows = stored(("a", 0.9), ("b", 0.3))
    p = protocol([entry("a"), entry("b", kind="as-published")], claimed=0.9, margin=0.05)
    c = cb.build_claim(p, rows)
    f = c["held_out"]
    assert c["verdict_note"] == (
        f"a (held-out, rmse, toy): {f['value']:.4f} [{f['ci_low']:.4f}, {f['ci_high']:.4f}] "
        f"against 0.9000 ± 0.0500: {f['verdict']}.")
    two = cb.build_claim(protocol([entry("a"), entry("b")]), rows)["verdict_note"]
    first, second = two.split("; ")
    assert first.startswith("a (held-out") and first.endswith(f": {f['verdict']}")
    assert second.startswith("b (held-out") and second.endswith(".")


@pytest.mark.parametrize("x, shown", [(3, "3"), (3.0, "3"), (1234.5, "1,234"),
                                      (100.25, "100"), (99.5, "99.5000"), (0.91234, "0.9123"),
                                      (-0.5, "-0.5000")])
def test_show_writes_counts_as_counts_and_figures_to_four_decimals(x, shown):
    assert cb._show(x) == shown


# -- probes -------------------------------------------------------------------------------

def test_a_probe_is_the_median_and_range_of_its_metric_over_seeds():
    rows = probe_rows("pr", [{"n": 7.0}, {"n": 5.0}, {"n": 9.0}], details=["x", "y", "z"])
    p = protocol([entry("pr", kind="probe", metric="n")], claimed=7, margin=1)
    c = cb.build_claim(p, rows)
    f = c["figures"][0]
    assert {k: f[k] for k in ("value", "ci_low", "ci_high", "per_seed", "interval",
                              "details", "verdict")} == {
        "value": 7.0, "ci_low": 5.0, "ci_high": 9.0, "per_seed": [7.0, 5.0, 9.0],
        "interval": "range over seeds", "details": ["x", "y", "z"], "verdict": "inconclusive"}
    assert "n_users" not in f and "per_seed_sd" not in f
    assert c["verdict"] == "inconclusive" and c["held_out"] is None
    assert c["evidence"][:3] == ["runs/p0.jsonl", "runs/p1.jsonl", "runs/p2.jsonl"]


def test_a_probe_with_its_own_interval_ends_takes_the_widest_over_seeds():
    ms = [{"n": 7.0, "lo": 6.5, "hi": 7.5}, {"n": 6.0, "lo": 5.0, "hi": 8.0},
          {"n": 7.25, "lo": 6.0, "hi": 7.0}]
    e = entry("pr", kind="probe", metric="n", low="lo", high="hi")
    c = cb.build_claim(protocol([e], claimed=6.5, margin=1.5), probe_rows("pr", ms))
    f = c["figures"][0]
    assert (f["value"], f["ci_low"], f["ci_high"]) == (7.0, 5.0, 8.0)
    assert f["interval"] == "range over the row's releases" and "details" not in f
    assert f["verdict"] == "reproduced"


def test_one_probe_cells_details_are_kept_bare():
    e = entry("pr", kind="probe", metric="n", seeds=(0,))
    c = cb.build_claim(protocol([e], claimed=3, margin=0),
                       probe_rows("pr", [{"n": 3.0}], details=[{"k": 1}]))
    assert c["figures"][0]["details"] == {"k": 1} and c["verdict"] == "reproduced"


def test_probe_details_of_two_seeds_are_a_list_and_a_row_without_extras_has_none():
    c = cb.build_claim(protocol([entry("pr", kind="probe", metric="n", seeds=(0, 1))],
                                claimed=3, margin=1),
                       probe_rows("pr", [{"n": 3.0}, {"n": 4.0}], details=["x", "y"]))
    assert c["figures"][0]["details"] == ["x", "y"]
    rows = probe_rows("pr", [{"n": 3.0}, {"n": 4.0}])
    for s in rows.values():
        s.row.pop("extra")
    c = cb.build_claim(protocol([entry("pr", kind="probe", metric="n", seeds=(0, 1))],
                                claimed=3, margin=1), rows)
    assert "details" not in c["figures"][0]


@pytest.mark.parametrize("where", ["comparison", "context"])
def test_a_comparison_or_context_probe_without_its_metric_names_the_claim(where):
    rows = {**stored(("a", 0.9)), **probe_rows("pr", [{"m": 1.0}] * 3)}
    p = protocol([entry("a")], **{where: [entry("pr", kind="probe", metric="n")]})
    with pytest.raises(KmrecError, match="^claim t: probe pr row has no metric 'n'$"):
        cb.build_claim(p, rows)


@pytest.mark.parametrize("low, high, missing", [(None, None, "n"), ("lo", None, "lo"),
                                                (None, "hi", "hi")])
def test_a_probe_row_without_its_metric_is_a_clear_error(low, high, missing):
    ms = [{"n": 1.0, "lo": 0.5, "hi": 1.5}] * 3
    ms = [{k: v for k, v in m.items() if k != missing} for m in ms]
    e = entry("pr", kind="probe", metric="n", low=low, high=high)
    with pytest.raises(KmrecError, match=f"claim t: probe pr row has no metric '{missing}'"):
        cb.build_claim(protocol([e], claimed=1, margin=0), probe_rows("pr", ms))


# -- conclusions --------------------------------------------------------------------------

def _test(models, versus, better="lower", metric="rmse", **kw):
    return ConclusionTest(tuple(models), tuple(versus), better, metric,
                          kw.get("dataset", "toy"), kw.get("split", "holdout"))


def test_the_conclusion_evidence_is_each_paired_difference():
    rows = stored(("a", 0.3), ("b", 0.9), ("c", 1.2))
    p = protocol([entry("a")], comparison=[entry("b"), entry("c")],
                 test=_test(["a"], ["b", "c"]))
    c = cb.build_claim(p, rows)

    def parts(m):
        return [rows[key(Cell(m, "toy", "holdout", s))].row["extra"]["per_user"] for s in SEEDS]

    want = []
    for v in ("b", "c"):
        d = us.paired_difference(parts("a"), parts(v), "rmse", n_resamples=2000, seed=0)
        want.append({"model": "a", "versus": v, "metric": "rmse", "dataset": "toy",
                     "split": "holdout", "difference": _r(d.value), "ci_low": _r(d.ci_low),
                     "ci_high": _r(d.ci_high), "per_seed": [_r(x) for x in d.per_seed],
                     "better": "lower", "side": "better"})
    assert c["conclusion_evidence"] == want and c["conclusion_holds"] is True
    worse = cb.build_claim(protocol([entry("a")], comparison=[entry("b")],
                                    test=_test(["b"], ["a"])), rows)
    assert worse["conclusion_evidence"][0]["side"] == "worse"
    assert worse["conclusion_holds"] is False


def test_a_conclusion_on_another_dataset_and_split_uses_those_entries():
    rows = stored(("a", 0.3), ("b", 0.9))
    for m, scale in (("a", 0.9), ("b", 0.3)):
        for s in SEEDS:
            c = Cell(m, "big", "kfold", s)
            r = stored_row(m, s, cell_key=key(c), extra={"per_user": per_user(m, s + 9, scale)})
            rows[key(c)] = cb.Stored(r, "runs/big.jsonl")
    p = protocol([entry("a"), entry("a", dataset="big", split="kfold")],
                 comparison=[entry("b"), entry("b", dataset="big", split="kfold")],
                 test=_test(["a"], ["b"], dataset="big", split="kfold"))
    c = cb.build_claim(p, rows)
    (ev,) = c["conclusion_evidence"]
    assert (ev["dataset"], ev["split"], ev["side"]) == ("big", "kfold", "worse")


def test_a_comparison_row_without_per_user_statistics_is_named():
    rows = stored(("a", 0.3))
    rows[key(Cell("b", "toy", "holdout", 1))] = cb.Stored(stored_row("b", 1), "runs/b.jsonl")
    for s in (0, 2):
        rows[key(Cell("b", "toy", "holdout", s))] = cb.Stored(
            stored_row("b", s, extra={"per_user": per_user("b", s, 1)}), "runs/b.jsonl")
    p = protocol([entry("a")], comparison=[entry("b")], test=_test(["a"], ["b"]))
    with pytest.raises(cb.MissingRows, match=r"^b@toy/seed1: its row keeps no per-user "
                                             r"statistics \(run it again with this version\)$"):
        cb.build_claim(p, rows)


@pytest.mark.parametrize("n_missing, tail", [(6, ""), (7, " and 1 more"), (9, " and 3 more")])
def test_missing_cells_are_listed_six_at_most(n_missing, tail):
    seeds = tuple(range(n_missing))
    p = protocol([entry("a", seeds=seeds)])
    shown = ", ".join(f"a@toy/holdout/seed{s}" for s in seeds[:6])
    with pytest.raises(cb.MissingRows) as err:
        cb.build_claim(p, {})
    assert str(err.value) == (f"claim t: {n_missing} cells have no stored row ({shown}{tail}); "
                              "run `kmrec claims run --only t`")


# -- claims.json --------------------------------------------------------------------------

def _results(tmp_path, *models):
    rows = stored(*models)
    _write(tmp_path / "runs" / "r.jsonl", [s.row for s in rows.values()])
    return tmp_path


def test_build_claims_writes_beside_the_rows_by_default(tmp_path):
    root = _results(tmp_path, ("a", 0.9))
    path, claims = cb.build_claims(root, protocols=[protocol([entry("a")])])
    assert path == root / "claims.json" and load_claims(path) == claims
    assert claims[0]["evidence"][0] == "runs/r.jsonl"


def test_build_claims_reads_results_where_it_runs_by_default(tmp_path, monkeypatch):
    _results(tmp_path / "results", ("a", 0.9))
    monkeypatch.chdir(tmp_path)
    path, (c,) = cb.build_claims(protocols=[protocol([entry("a")])])
    assert path.resolve() == (tmp_path / "results" / "claims.json").resolve()
    assert c["evidence"][0] == "runs/r.jsonl"


def test_build_claims_with_only_keeps_the_other_claims_in_the_file(tmp_path):
    root = _results(tmp_path, ("a", 0.9), ("b", 0.3))
    out = tmp_path / "c.json"
    cb.build_claims(root, out, protocols=[protocol([entry("a")], pid="x"),
                                          protocol([entry("a")], pid="y")])
    before = {c["id"]: c for c in load_claims(out)}
    _, claims = cb.build_claims(root, out, only="y", protocols=[protocol([entry("b")], pid="y")])
    assert [c["id"] for c in claims] == ["x", "y"]
    assert claims[0] == before["x"] and claims[1]["held_out"]["model"] == "b"
    _, claims = cb.build_claims(root, out, protocols=[protocol([entry("b")], pid="y")])
    assert [c["id"] for c in claims] == ["y"]


def test_build_claims_without_protocols_loads_those_only_names(tmp_path):
    with pytest.raises(cb.MissingRows, match="^claim 001-nmf: "):
        cb.build_claims(tmp_path, tmp_path / "c.json", only="001-nmf")
    assert not (tmp_path / "c.json").exists()
