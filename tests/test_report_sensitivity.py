"""The report's split-sensitivity table: models side by side per protocol, and every pair
whose order changes named with its figures."""

from __future__ import annotations

from kmrec_gpu.report.sensitivity import section


def line(value: float, n: int = 5) -> tuple:
    return ([{"seed": s} for s in range(n)], None, value)


def figures(values: dict[str, dict[str, float]], n: int = 5) -> dict:
    return {("ml-latest-small", m, "numpy", "", p): line(v, n)
            for p, ms in values.items() for m, v in ms.items()}


def test_a_pair_that_swaps_is_named_with_both_figures():
    text = section(figures({
        "holdout test_fraction=0.1": {"a": 0.85, "b": 0.87, "c": 0.90},
        "temporal test_fraction=0.1": {"a": 0.95, "b": 0.93, "c": 0.99},
    }))
    assert "| a | 0.85 (1) | 0.95 (2) |" in text
    assert "a / b under temporal test_fraction=0.1 (0.95 against 0.93" in text
    assert "a / c" not in text and "b / c" not in text


def test_one_order_everywhere_says_so():
    text = section(figures({
        "holdout test_fraction=0.1": {"a": 0.85, "b": 0.87},
        "per_user fraction=0.2 min_train=1": {"a": 0.80, "b": 0.82},
    }))
    assert "none: the 2 models keep one order under all 2 protocols" in text


def test_lines_of_few_splits_variants_and_other_libraries_stay_out():
    few = figures({"holdout test_fraction=0.1": {"a": 0.8, "b": 0.9},
                   "temporal test_fraction=0.1": {"a": 0.9, "b": 0.8}}, n=4)
    assert section(few).startswith("No dataset has two split protocols")
    f = figures({"holdout test_fraction=0.1": {"a": 0.8, "b": 0.9}})
    f[("ml-latest-small", "a", "torch", "", "temporal test_fraction=0.1")] = line(0.9)
    f[("ml-latest-small", "b", "numpy", "as published", "temporal test_fraction=0.1")] = line(0.8)
    assert section(f).startswith("No dataset has two split protocols")


def test_a_higher_is_better_metric_ranks_from_the_top():
    text = section(figures({
        "per_user fraction=0.1 min_train=1": {"kmeans": 0.18, "ease": 0.29, "pop": 0.16},
        "temporal test_fraction=0.1": {"kmeans": 0.05, "ease": 0.04, "pop": 0.03},
    }), metric="ndcg@10", higher=True)
    assert text.startswith("Pooled held-out ndcg@10 (higher is better)")
    assert "| ease | 0.29 (1) | 0.04 (2) |" in text
    assert "| pop | 0.16 (3) | 0.03 (3) |" in text
    assert "ease / kmeans under temporal test_fraction=0.1 (0.04 against 0.05" in text
    assert "pop" not in text.split("Order changes:")[1]
