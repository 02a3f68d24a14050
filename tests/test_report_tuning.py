"""The report's tuned-model table: budget, cost and choice from the fit rows' facts, the
held-out figure beside the untuned peer's on the same splits."""

from __future__ import annotations

from kmrec_gpu.report.tuning import section

PROTO = "holdout test_fraction=0.1"


def evaluate_row(key: str) -> dict:
    return {"phase": "evaluate", "status": "ok", "extra": {"harness": {"cell_key": key}}}


def fit_row(key: str, seed: int, best: dict, at_edge: str = "", tune_s: float = 10.0,
            when: str = "2026-12-07T00:00:00") -> dict:
    return {"phase": "fit", "status": "ok", "created_utc": when, "seed": seed,
            "model": {"name": "tuned_biased_mf", "params": {"n_trials": 20, "timeout_s": None}},
            "extra": {"harness": {"cell_key": key},
                      "facts": {"best_params": best, "n_trials": 20, "tune_s": tune_s,
                                "best_score": 0.9, "at_edge": at_edge}}}


def test_a_tuned_line_shows_its_cost_choice_and_the_untuned_figure():
    fits = [fit_row("k0", 0, {"reg": 0.1, "n_factors": 40}, tune_s=50.0),
            fit_row("k1", 1, {"reg": 0.3, "n_factors": 40}, at_edge="reg", tune_s=70.0),
            fit_row("k1", 1, {"reg": 9.0, "n_factors": 1}, when="2026-01-01T00:00:00")]
    figures = {("ml-latest-small", "tuned_biased_mf", "numpy", "", PROTO):
               ([evaluate_row("k0"), evaluate_row("k1")], None, 0.8412),
               ("ml-latest-small", "biased_mf", "numpy", "", PROTO):
               ([evaluate_row("b0"), evaluate_row("b1")], None, 0.8395)}
    text = section(fits, ("RMSE", figures))
    line = next(ln for ln in text.splitlines() if "| tuned_biased_mf |" in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:5] == ["ml-latest-small", "tuned_biased_mf", PROTO, "2", "20 trials"]
    assert cells[5] == "20" and cells[6] == "60.0"  # the median of 50 and 70 s
    assert cells[7] == "n_factors 40; reg 0.1-0.3"  # the older row of k1 is not used
    assert cells[8] == "1 of 2"
    assert cells[9:] == ["RMSE 0.8412", "biased_mf", "0.8395"]
    assert "| ml-latest-small | biased_mf |" not in text  # an untuned line is no tuned line


def test_without_tuned_rows_it_says_how_to_make_them():
    assert section([], ("RMSE", {})).startswith("No stored rows of a tuned model")


def test_a_search_options_rows_of_every_seed_count_as_its_configuration():
    from kmrec_gpu.report import accuracy

    def row(seed: int) -> dict:
        params = {"estimator": {"class": "kmrec_gpu.models.mf.BiasedMF", "random_state": seed},
                  "n_trials": 20, "random_state": seed, "task": "rating", "timeout_s": None,
                  "space": {"n_factors": {"low": 8, "high": 128, "log": True, "int": True},
                            "reg": {"low": 0.01, "high": 1.0, "log": True},
                            "reg_bias": {"low": 0.1, "high": 50.0, "log": True},
                            "n_epochs": {"low": 5, "high": 40, "int": True}},
                  "k": 10, "threshold": 4.0, "valid_fraction": 0.1}
        return {"phase": "evaluate", "status": "ok", "seed": seed,
                "created_utc": f"2026-12-07T00:00:0{seed}+00:00",
                "dataset": {"name": "toy", "sha256": "ab" * 32},
                "split": {"method": "holdout", "params": {"test_fraction": 0.1, "seed": seed}},
                "model": {"name": "tuned_biased_mf", "params": params},
                "backend": {"library": "numpy"}, "metrics": {"rmse": 0.9}, "extra": {}}

    rows = [row(s) for s in range(3)]
    # the option's estimator holds random_state: ${seed}, nested: it sets no value to match
    assert all(accuracy.current_configuration(r) for r in rows)
    (kept,) = accuracy._groups(rows).values()
    assert [r["seed"] for r in kept] == [0, 1, 2]
    other = row(3)
    other["model"]["params"]["estimator"]["class"] = "kmrec_gpu.models.knn.KNNBaseline"
    assert not accuracy.current_configuration(other)
