"""Claims: the one verdict rule at its edges, the user bootstrap against hand-computed
cases, paired differences, protocols, and claims.json rebuilt from stored rows only."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from rich.console import Console

from kmrec_gpu import seeding
from kmrec_gpu.claims import build as claims_build
from kmrec_gpu.claims.protocol import ProtocolError, load_protocols, parse
from kmrec_gpu.claims.record import load_claims
from kmrec_gpu.claims.verdict import conclusion_holds, difference_side, figure_verdict
from kmrec_gpu.errors import SchemaError
from kmrec_gpu.metrics import users as us

# -- the verdict rule ---------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi, verdict", [
    (0.90, 0.92, "reproduced"),          # inside
    (0.89, 0.91, "reproduced"),          # touching the lower end of the band counts inside
    (0.91, 0.93, "reproduced"),          # touching the upper end
    (0.889, 0.91, "inconclusive"),       # over the lower end
    (0.90, 0.931, "inconclusive"),       # over the upper end
    (0.85, 0.95, "inconclusive"),        # wider than the band
    (0.80, 0.89, "inconclusive"),        # meets the band at one point: not disjoint
    (0.80, 0.8899, "not reproduced"),    # wholly below
    (0.9301, 0.95, "not reproduced"),    # wholly above
])
def test_figure_verdict_edges(lo, hi, verdict):
    assert figure_verdict(lo, hi, 0.91, 0.02) == verdict


def test_figure_verdict_zero_margin_is_exact():
    assert figure_verdict(5, 5, 5, 0) == "reproduced"
    assert figure_verdict(5, 7, 5, 0) == "inconclusive"
    assert figure_verdict(6, 7, 5, 0) == "not reproduced"


@pytest.mark.parametrize("args", [(0.9, 0.8, 0.9, 0.01), (0.8, 0.9, 0.9, -0.01),
                                  (float("nan"), 0.9, 0.9, 0.01), (0.8, 0.9, None, 0.01),
                                  (True, 0.9, 0.9, 0.01)])
def test_figure_verdict_refuses_bad_input(args):
    with pytest.raises(ValueError):
        figure_verdict(*args)


@pytest.mark.parametrize("lo, hi, better, side", [
    (-0.03, -0.01, "lower", "better"), (0.01, 0.03, "lower", "worse"),
    (-0.01, 0.01, "lower", "either"), (-0.01, 0.0, "lower", "either"),
    (0.01, 0.03, "higher", "better"), (-0.03, -0.01, "higher", "worse"),
])
def test_difference_side(lo, hi, better, side):
    assert difference_side(lo, hi, better) == side


def test_conclusion_holds():
    assert conclusion_holds(["better", "better"]) is True
    assert conclusion_holds(["better", "worse"]) is False
    assert conclusion_holds(["better", "either"]) is None
    assert conclusion_holds([]) is None


# -- the user bootstrap -------------------------------------------------------------------

def part(users, sse, n):
    return {"users": list(users), "sse": list(map(float, sse)), "n": list(n),
            "sae": [0.0] * len(users), "rel": [0.0] * len(users), "n_rel": list(n)}


def test_user_bootstrap_matches_the_hand_computed_distribution():
    # user 1 errs by 2 on one row, user 2 is exact: the pooled RMSE is sqrt(4/2); a
    # resample of users holds {1,1} (RMSE 2), {1,2} (sqrt 2) or {2,2} (0)
    ci = us.user_bootstrap([part([1, 2], [4, 0], [1, 1])], "rmse", n_resamples=4000, seed=3)
    assert ci.value == pytest.approx(math.sqrt(2))
    assert (ci.ci_low, ci.ci_high) == (0.0, 2.0)
    assert ci.per_seed == (pytest.approx(math.sqrt(2)),)
    # the same draws by hand: the resampled values, and their percentiles
    rng = seeding.rng(3, "user-bootstrap", "rmse")
    vals = []
    for _ in range(4000):
        w = np.bincount(rng.integers(0, 2, size=2), minlength=2)
        vals.append(math.sqrt((4 * w[0]) / (w[0] + w[1])))
    assert set(np.round(vals, 12)) <= {0.0, round(math.sqrt(2), 12), 2.0}
    assert np.quantile(vals, [0.025, 0.975]).tolist() == [ci.ci_low, ci.ci_high]


def test_user_bootstrap_pools_seeds_and_resamples_users_not_rows():
    # user 7 is in both splits: one unit with all their rows (sse 1+3, n 1+1)
    a, b = part([7, 8], [1, 0], [1, 2]), part([7, 9], [3, 2], [1, 1])
    ci = us.user_bootstrap([a, b], "rmse", n_resamples=500, seed=0)
    assert ci.value == pytest.approx(math.sqrt(6 / 5))
    assert ci.n_users == 3
    assert ci.per_seed == (pytest.approx(math.sqrt(1 / 3)), pytest.approx(math.sqrt(5 / 2)))
    # every resample is a ratio of sums of whole users: users 7 and 9 alone give sqrt(2)
    assert ci.ci_low >= 0 and ci.ci_high <= math.sqrt(4 / 2) + 1e-12


def test_user_bootstrap_ranking_metric_is_a_mean_over_users():
    p = {"users": [1, 2, 3, 4], "n": [1, 1, 1, 1], "ndcg@10": [1.0, 0.0, 0.5, 0.5]}
    ci = us.user_bootstrap([p], "ndcg@10", n_resamples=300, seed=1)
    assert ci.value == pytest.approx(0.5)
    assert 0.0 <= ci.ci_low <= 0.5 <= ci.ci_high <= 1.0
    with pytest.raises(ValueError, match="no per-user statistics"):
        us.user_bootstrap([p], "inertia")


def test_paired_difference_hand_case():
    # same users and rows; model A errs by 1 where B errs by 2 on user 1, both exact on 2
    a, b = part([1, 2], [1, 0], [1, 1]), part([1, 2], [4, 0], [1, 1])
    d = us.paired_difference([a], [b], "rmse", n_resamples=2000, seed=0)
    assert d.value == pytest.approx(math.sqrt(1 / 2) - math.sqrt(4 / 2))
    # paired: each resample draws the same users for both, so the difference is
    # (1-2)*sqrt(w1/2) and never positive; {2,2} gives 0, {1,1} gives -1
    assert d.ci_high == 0.0 and d.ci_low == pytest.approx(-1.0)
    same = us.paired_difference([a], [a], "rmse", n_resamples=200, seed=0)
    assert (same.value, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same splits"):
        us.paired_difference([a], [a, b], "rmse")


def test_rating_stats_reproduce_the_row_metrics():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, size=400)
    y = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=400)
    p = y + rng.normal(0, 0.8, size=400)
    st = us.rating_stats(users, y, p, ids=np.arange(100, 130))
    assert st["users"][:2] == [100, 101]
    assert us.pooled_value([st], "rmse") == pytest.approx(np.sqrt(np.mean((p - y) ** 2)))
    assert us.pooled_value([st], "mae") == pytest.approx(np.mean(np.abs(p - y)))
    assert us.pooled_value([st], "relative_accuracy") == pytest.approx(
        np.mean(1 - np.abs(p - y) / y))


# -- protocols ----------------------------------------------------------------------------

def raw_protocol(**kw):
    raw = {"id": "t", "document": "doc.txt", "statement": "RMSE 0.9", "metric": "rmse",
           "unit": "stars", "claimed": 0.9, "margin": 0.05, "margin_reason": "test",
           "dataset": "synthetic-small", "split": "holdout", "seeds": [0, 1, 2, 3, 4],
           "figures": ["bias_baseline"], "comparison": ["global_mean"],
           "conclusion": "beats the mean",
           "conclusion_test": {"models": ["bias_baseline"], "versus": ["global_mean"],
                               "better": "lower"},
           "protocol": "test protocol"}
    raw.update(kw)
    return raw


@pytest.mark.parametrize("change, match", [
    ({"seeds": [0, 1, 2]}, "at least 5 seeds"),
    ({"figures": ["no_such_model"]}, "not an option"),
    ({"margin": None}, "needs claimed, margin"),
    ({"figures": [{"model": "bias_baseline", "kind": "guess"}]}, "kind"),
    ({"conclusion_test": {"models": ["svd"], "versus": ["global_mean"], "better": "lower"}},
     "no held-out figure"),
    ({"surprise": 1}, "unknown keys"),
    ({"tuned_test": {"models": ["bias_baseline"], "versus": ["global_mean"],
                     "better": "lower"}}, "'global_mean' is not a tuned model"),
    ({"tuned_test": {"models": ["bias_baseline"], "versus": ["tuned_biased_mf"],
                     "better": "lower"}}, "no held-out figure"),
    ({"declared": {"maybe": "x"}}, "declared must be"),
    # a YAML `true` is an int to Python: it must not pass as seed 1 or as a margin of 1
    ({"seeds": [0, 1, 2, 3, True]}, "non-negative ints"),
    ({"margin": True}, "expected a number"),
])
def test_protocol_errors_name_the_problem(change, match):
    with pytest.raises(ProtocolError, match=match):
        parse(raw_protocol(**change), "t.yaml")


def test_the_repository_protocols_parse_and_cover_every_claim():
    ps = load_protocols()
    assert [p.id for p in ps] == sorted(p.id for p in ps)
    ids = {p.id for p in ps}
    assert {"000-accuracy-81-to-99", "001-truncated-svd", "001-nmf", "001-iterative-svd",
            "002-kmeans-clusters", "003-hybrid-no-claim", "004-random-forest",
            "004-seven-clusters"} <= ids
    for p in ps:
        for e in p.entries():
            if e.kind == "held-out":
                assert len(e.seeds) >= 5, (p.id, e.model)


# -- claims.json from stored rows ---------------------------------------------------------

@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Five seeds of two models on a tiny synthetic set, run through the harness."""
    from kmrec_gpu.claims.run import run_claims

    root = tmp_path_factory.mktemp("claims")
    p = parse(raw_protocol(), "t.yaml")
    import kmrec_gpu.harness.runner as runner

    orig = runner.Harness.__init__

    def quiet(self, *a, **kw):
        kw["out"] = Console(file=io.StringIO(), width=200)
        orig(self, *a, **kw)

    runner.Harness.__init__ = quiet
    try:
        res = run_claims([p], results_dir=root, progress=False, force=True)
    finally:
        runner.Harness.__init__ = orig
    assert {r.status for r in res} == {"ok"} and len(res) == 10
    return root, p


def test_run_can_be_limited_to_one_models_cells(tmp_path, monkeypatch):
    import kmrec_gpu.harness.app as app
    from kmrec_gpu.claims.run import run_claims

    p = parse(raw_protocol(), "t.yaml")
    ran = []
    monkeypatch.setattr(app, "run_grid", lambda h, cfgs, name: ran.extend(
        c.model.name for c in cfgs) or [])
    run_claims([p], results_dir=tmp_path, progress=False, models=["global_mean"])
    assert ran == ["global_mean"] * 5
    with pytest.raises(ValueError, match=r"model\(s\) \['nope'\]"):
        run_claims([p], results_dir=tmp_path, progress=False, models=["nope"])


def test_claims_are_rebuilt_from_rows_only_and_identically(stored, tmp_path):
    root, p = stored
    out = tmp_path / "claims.json"
    claims_build.build_claims(root, out, protocols=[p])
    first = out.read_bytes()
    claims_build.build_claims(root, out, protocols=[p])
    assert out.read_bytes() == first
    (c,) = load_claims(out)
    held = c["held_out"]
    assert held["model"] == "bias_baseline" and held["seeds"] == [0, 1, 2, 3, 4]
    assert held["ci_low"] <= held["value"] <= held["ci_high"]
    assert len(held["per_seed"]) == 5 and len(held["cell_keys"]) == 5
    assert c["verdict"] == figure_verdict(held["ci_low"], held["ci_high"], 0.9, 0.05)
    (ev,) = c["conclusion_evidence"]
    assert ev["model"] == "bias_baseline" and ev["versus"] == "global_mean"
    assert c["conclusion_holds"] is (ev["side"] == "better") or ev["side"] == "either"
    assert any(e.startswith("runs/") for e in c["evidence"])
    assert "kmrec claims run --only t" in c["evidence"]


def test_the_tuned_test_is_judged_like_the_conclusion(stored, tmp_path, monkeypatch):
    import kmrec_gpu.claims.protocol as protocol

    root, _ = stored
    test = {"models": ["bias_baseline"], "versus": ["global_mean"], "better": "lower"}
    # global_mean stands in for a tuned model: the rule is the one paired comparison
    monkeypatch.setattr(protocol, "_is_search", lambda m: m == "global_mean")
    p = parse(raw_protocol(tuned_test=test), "t.yaml")
    _, (c,) = claims_build.build_claims(root, tmp_path / "c.json", protocols=[p])
    assert c["tuned_evidence"] == c["conclusion_evidence"]
    assert c["tuned_holds"] is c["conclusion_holds"]
    flipped = parse(raw_protocol(tuned_test={**test, "better": "higher"}), "t.yaml")
    _, (f,) = claims_build.build_claims(root, tmp_path / "c.json", protocols=[flipped])
    assert {e["side"] for e in f["tuned_evidence"]} <= {"worse", "either"}
    assert f["tuned_holds"] is not True
    _, (none,) = claims_build.build_claims(root, tmp_path / "c.json",
                                          protocols=[parse(raw_protocol(), "t.yaml")])
    assert none["tuned_holds"] is None and none["tuned_evidence"] == []


def test_editing_one_stored_row_moves_the_figure_and_the_verdict(stored, tmp_path):
    import shutil

    root, p = stored
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    out = tmp_path / "claims.json"
    _, (before,) = claims_build.build_claims(copy, out, protocols=[p])
    # make one seed's bias baseline far worse: every user's squared error times 25
    (f,) = (copy / "runs").glob("*.jsonl")
    lines = f.read_text().splitlines()
    key = before["held_out"]["cell_keys"][2]
    for i, line in enumerate(lines):
        row = json.loads(line)
        if row["phase"] == "evaluate" and row["extra"]["harness"]["cell_key"] == key:
            row["extra"]["per_user"]["sse"] = [v * 25 for v in row["extra"]["per_user"]["sse"]]
            lines[i] = json.dumps(row)
    f.write_text("\n".join(lines) + "\n")
    _, (after,) = claims_build.build_claims(copy, out, protocols=[p])
    assert after["held_out"]["value"] > before["held_out"]["value"] + 0.1
    assert after["held_out"]["per_seed"][2] > 2 * before["held_out"]["per_seed"][2]
    assert after["held_out"]["per_seed"][:2] == before["held_out"]["per_seed"][:2]
    tight = parse(raw_protocol(claimed=before["held_out"]["value"], margin=0.2), "t.yaml")
    _, (was,) = claims_build.build_claims(root, out, protocols=[tight])
    _, (now,) = claims_build.build_claims(copy, out, protocols=[tight])
    assert was["verdict"] == "reproduced" and now["verdict"] != "reproduced"


def test_missing_cells_are_a_clear_error(stored, tmp_path):
    root, _ = stored
    p = parse(raw_protocol(figures=["svd"], conclusion_test=None), "t.yaml")
    with pytest.raises(claims_build.MissingRows, match="svd@synthetic-small.*kmrec claims run"):
        claims_build.build_claims(root, tmp_path / "c.json", protocols=[p])


def test_a_figure_outside_the_claimed_metric_is_not_held_out():
    c = json.loads(json.dumps({"id": "x"}))
    from kmrec_gpu.claims.record import validate_claim

    fig = {"metric": "ndcg@10", "value": 0.2, "ci_low": 0.1, "ci_high": 0.3, "model": "m",
           "dataset": "d", "note": None}
    c = {"id": "x", "source": "s", "statement": "s", "metric": "n_clusters", "unit": "u",
         "claimed": 5, "claimed_all": {}, "margin": 0, "margin_reason": "r",
         "held_out": fig, "as_published": None, "figures": [], "comparison": [],
         "verdict": "inconclusive", "verdict_note": "n", "conclusion": None,
         "conclusion_holds": None, "conclusion_evidence": [], "tuned_holds": None,
         "tuned_evidence": [], "context": [],
         "protocol": "p", "bootstrap": {}, "evidence": ["e"]}
    with pytest.raises(SchemaError, match="belongs in context"):
        validate_claim(c)


def test_a_claims_file_that_is_a_directory_is_a_clear_error(tmp_path):
    (tmp_path / "claims.json").mkdir()
    with pytest.raises(SchemaError, match="claims.json: expected a claims file"):
        load_claims(tmp_path / "claims.json")


# ---- the verdict rule at its edges (mutation testing: results/mutation.md) ---------------

@pytest.mark.parametrize(("lo", "hi", "better", "side"), [
    (-1.0, 0.0, "lower", "either"), (0.0, 1.0, "lower", "either"),
    (-1.0, -0.5, "lower", "better"), (0.5, 1.0, "lower", "worse"),
    (0.0, 1.0, "higher", "either"), (-1.0, 0.0, "higher", "either"),
    (0.5, 1.0, "higher", "better"), (-1.0, -0.5, "higher", "worse"),
    (0.2, 0.8, "higher", "better"), (0.2, 0.2, "lower", "worse"),
    (-0.5, 0.5, "higher", "either")])
def test_difference_side_at_zero(lo, hi, better, side):
    """An interval touching 0 holds 0: neither side."""
    assert difference_side(lo, hi, better) == side


@pytest.mark.parametrize(("call", "msg"), [
    (lambda: figure_verdict(float("nan"), 1.0, 0.9, 0.1), r"^lo must be a finite number, got nan$"),
    (lambda: figure_verdict(0.8, float("inf"), 0.9, 0.1), r"^hi must be a finite number, got inf$"),
    (lambda: figure_verdict(0.8, 1.0, True, 0.1), r"^claimed must be a finite number, got True$"),
    (lambda: figure_verdict(0.8, 1.0, 0.9, "0.1"), r"^margin must be a finite number, got '0\.1'$"),
    (lambda: figure_verdict(1.0, 0.8, 0.9, 0.1),
     r"^the interval \[1\.0, 0\.8\] is empty \(lo > hi\)$"),
    (lambda: figure_verdict(0.8, 1.0, 0.9, -0.1), r"^margin must be >= 0, got -0\.1$"),
    (lambda: difference_side(0.0, 1.0, "up"), r"^better must be 'lower' or 'higher', got 'up'$"),
    (lambda: difference_side(1.0, 0.0, "lower"),
     r"^the interval \[1\.0, 0\.0\] is empty \(lo > hi\)$")])
def test_verdict_errors_name_the_value(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
