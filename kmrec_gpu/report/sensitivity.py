"""Split sensitivity: does the order of the models hold from one split protocol to
another (Rendle et al. 2019, Ferrari Dacrema et al. 2019)?

Per dataset, the held-out lines of the rating table (pooled RMSE) or of the top-k table
(pooled nDCG@k), NumPy, no variant, with at least :data:`MIN_SPLITS` splits each, for the
protocols that share at least two models: each model's figure and its rank under every
protocol, then every pair of models whose order under some protocol is the reverse of its
order under the first (the most common protocol), with both figures.
``kmrec-bench -m sweep=split_sensitivity seed=0,1,2,3,4`` makes the rows.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from kmrec_gpu.report import fmt

MIN_SPLITS = 5  # seeds or folds behind a line: fewer is one draw, not a protocol's figure
NOT_HELD_OUT = ("all", "seed000_published", "seed004_published")


def section(figures: dict, *, metric: str = "RMSE", higher: bool = False) -> str:
    """``figures``: :func:`kmrec_gpu.report.accuracy.rating_figures`' lines (or
    ``ranking_figures``', with ``metric`` its nDCG@k and ``higher`` True)."""
    by_ds: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for (ds, model, library, variant, proto), (rows, _pool, value) in figures.items():
        if (variant or library != "numpy" or value is None or len(rows) < MIN_SPLITS
                or proto.split(" ")[0] in NOT_HELD_OUT):
            continue
        by_ds[ds][proto][model] = value
    parts = []
    for ds in sorted(by_ds):
        protos = {p: m for p, m in by_ds[ds].items() if len(m) >= 2}
        if len(protos) < 2:
            continue
        # the protocols that share the most models with the others, and those models
        order = sorted(protos, key=lambda p: (-len(protos[p]), p))
        common = set(protos[order[0]])
        kept = [order[0]]
        for p in order[1:]:
            if len(common & set(protos[p])) >= 2:
                common &= set(protos[p])
                kept.append(p)
        if len(kept) < 2 or len(common) < 2:
            continue
        parts.append(_table(ds, kept, sorted(common), protos, higher))
    if not parts:
        return (f"No dataset has two split protocols with five or more splits of the same "
                f"models scored by {metric} yet (`kmrec-bench -m sweep=split_sensitivity "
                "seed=0,1,2,3,4 threads=1 timing.warmup=0 timing.repeats=1`).")
    return (f"Pooled held-out {metric} ({'higher' if higher else 'lower'} is better) and "
            f"rank per split protocol, over at least {MIN_SPLITS} splits each; then the "
            "pairs of models whose order changes from the first protocol's.\n\n"
            + "\n\n".join(parts))


def _table(ds: str, protos: list[str], models: list[str], values: dict,
           higher: bool = False) -> str:
    sign = -1.0 if higher else 1.0
    ranks = {p: {m: i + 1 for i, m in enumerate(sorted(models,
                                                       key=lambda m: sign * values[p][m]))}
             for p in protos}
    head = "| model | " + " | ".join(protos) + " |"
    sep = "|---|" + "---|" * len(protos)
    lines = [f"**{ds}**", "", head, sep]
    for m in sorted(models, key=lambda m: ranks[protos[0]][m]):
        cells = [f"{fmt.num(values[p][m])} ({ranks[p][m]})" for p in protos]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    first = protos[0]
    flips = []
    for a, b in combinations(sorted(models, key=lambda m: ranks[first][m]), 2):
        for p in protos[1:]:
            if (values[first][a] < values[first][b]) != (values[p][a] < values[p][b]):
                flips.append(f"{a} / {b} under {p} ({fmt.num(values[p][a])} against "
                             f"{fmt.num(values[p][b])}; {fmt.num(values[first][a])} against "
                             f"{fmt.num(values[first][b])} under {first})")
    lines.append("")
    lines.append("Order changes: " + ("; ".join(flips) if flips else
                                      f"none: the {len(models)} models keep one order "
                                      f"under all {len(protos)} protocols") + ".")
    return "\n".join(lines)
