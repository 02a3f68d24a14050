"""Held-out accuracy per dataset x model from stored rows, beside the published anchors.

Rows of one (dataset, model, variant, split protocol) from several seeds or folds are one
line, one row per split (the newest) and one configuration per model name (rows of an
earlier configuration of that name are left out and counted). Where every row keeps its
per-user statistics the line is the pooled figure with the user-bootstrap interval (the
same procedure and numbers as ``claims.json``), with the paired difference against the
bias baseline (ratings) or popularity (lists) on the same splits; older rows show the mean
over splits. A variant is what a row's ``extra`` says about its protocol (as published,
test-selected, the target), so a leaky figure never averages with a held-out one.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from typing import Any

from kmrec_gpu.report import fmt
from kmrec_gpu.report.anchors import ANCHORS, anchor_datasets, same_protocol
from kmrec_gpu.report.labels import dataset_label, label
from kmrec_gpu.report.load import comparison, kernels_tag, when

PHASES = ("evaluate", "predict", "end-to-end")
# the reference each line's paired difference is taken against, on the same splits
BASELINE = {"rmse": "bias_baseline", "ranking": "popularity"}
RANKING = re.compile(r"^(precision|recall|ndcg|map|hit_rate)@\d+$")
_RANK_ORDER = ("precision", "recall", "ndcg", "map", "hit_rate")
# what tells one draw of a protocol from another (a seed, a fold and the file that holds
# it): rows that differ only there are one line, pooled
_SEED_KEYS = ("seed", "fold", "random_state", "file", "sha256")


def is_accuracy_row(r: dict) -> bool:
    if r["status"] != "ok" or r["phase"] not in PHASES or comparison(r):
        return False
    return "rmse" in r["metrics"] or any(RANKING.match(k) for k in r["metrics"])


def protocol(split: dict[str, Any] | None) -> str:
    """The split without its seed: what stays the same across the rows of one line."""
    if not split:
        return "no split (all rows)"
    params = {k: v for k, v in sorted((split.get("params") or {}).items())
              if k not in _SEED_KEYS and v not in (None, False)}
    return " ".join([split.get("method", "?"), *(f"{k}={v}" for k, v in params.items())])


def variant(r: dict) -> str:
    e = r.get("extra") or {}
    parts = [str(e["protocol"])] if isinstance(e.get("protocol"), str) else []
    if isinstance(e.get("target"), str):
        parts.append(f"target {e['target']}")
    if kernels_tag(r):
        parts.append(kernels_tag(r))
    return ", ".join(parts)


def _canon(v: Any) -> str:
    """A parameter value as comparable text (tuples and lists alike, objects by str)."""
    return json.dumps(v, sort_keys=True, default=str)


def _params(r: dict) -> dict[str, str]:
    """The model's configuration without its seed (each split's row has its own) and its
    backend (the line's library column; older rows stored the object's repr, address
    included), each value canonical."""
    return {k: _canon(_unseeded(v)) for k, v in (r["model"].get("params") or {}).items()
            if k not in (*_SEED_KEYS, "backend")}


def _unseeded(v: Any) -> Any:
    """A nested dictionary (a search's estimator) without its seed keys either."""
    if isinstance(v, dict):
        return {k: _unseeded(x) for k, x in v.items() if k not in _SEED_KEYS}
    return v


def _same_configuration(a: dict, b: dict) -> bool:
    """Every parameter both rows record has one value: a parameter added to an estimator
    later (with a default that keeps its old behaviour, e.g. ``BiasedMF.solver``) is absent
    from older rows and does not set them apart, as it does not change the harness's cell
    key the claims select rows by."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def _split_id(r: dict) -> str:
    return json.dumps([r["seed"], r["split"]], sort_keys=True, default=str)


def _raw_groups(rows: list[dict]) -> dict[tuple[str, str, str, str, str], list[dict]]:
    # the library is part of a line: one model on two backends is two measurements
    g: dict[tuple[str, str, str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        g[(dataset_label(r["dataset"], r["seed"]), r["model"]["name"],
           str(r["backend"].get("library")), variant(r), protocol(r["split"]))].append(r)
    return g


def _config_params() -> dict[str, dict]:
    """Each model option's estimator parameters as ``bench/conf/model`` sets them now
    (without ``_target_`` and interpolations such as ``${seed}``)."""
    global _CONFIGS
    if _CONFIGS is None:
        from omegaconf import OmegaConf

        from kmrec_gpu.harness.spec import ConfigError, load_option, options

        _CONFIGS = {}
        try:
            names = options("model")
        except ConfigError:  # an installed copy without bench/conf: no names to hold to
            names = []
        for name in names:
            est = OmegaConf.to_container(load_option("model", name), resolve=False)
            _CONFIGS[name] = {k: v for k, v in _settled(est.get("estimator") or {}).items()
                              if k != "_target_"}
    return _CONFIGS


def _settled(d: dict) -> dict:
    """``d`` without its interpolations (``${seed}``), nested dictionaries included: a
    search option's estimator is a dictionary whose ``random_state`` follows the seed."""
    return {k: _settled(v) if isinstance(v, dict) else v for k, v in d.items()
            if not (isinstance(v, str) and "${" in v)}


def _holds(want: Any, have: Any) -> bool:
    """Every value the option sets, in the row; a nested dictionary by its keys."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _holds(v, have[k])
                                              for k, v in want.items())
    return _canon(have) == _canon(want)


_CONFIGS: dict[str, dict] | None = None


def current_configuration(r: dict) -> bool:
    """Whether the row's model ran with what its name means now (one name, one
    configuration): every parameter the model option sets has the row's value. A name
    that is no model option (a benchmark's own) is taken as it is."""
    want = _config_params().get(r["model"]["name"])
    if want is None:
        return True
    return _holds(want, r["model"].get("params") or {})


def _groups(rows: list[dict]) -> dict[tuple[str, str, str, str, str], list[dict]]:
    out = {}
    for k, rs in _raw_groups(rows).items():
        # one name, one configuration: the option's as it is now, and among rows of one
        # configuration the newest's; then one row (the newest) per split
        rs = [r for r in rs if current_configuration(r)]
        if not rs:
            continue
        current = _params(max(rs, key=when))
        per_split: dict[str, dict] = {}
        for r in sorted((r for r in rs if _same_configuration(_params(r), current)), key=when):
            per_split[_split_id(r)] = r
        out[k] = sorted(per_split.values(), key=lambda r: (r["seed"], _split_id(r)))
    return out


def n_older_configurations(rows: list[dict]) -> int:
    """Accuracy rows left out because their model name has other parameters now."""
    return sum(1 for r in rows if is_accuracy_row(r) and not current_configuration(r))


def _base(groups: dict, ds: str, model: str, proto: str) -> list[dict] | None:
    return next((rs for (d, m, _, v, p), rs in sorted(groups.items())
                 if (d, m, v, p) == (ds, model, "", proto)), None)


def pooled(rs: list[dict], metric: str) -> dict | None:
    """The claims' figure for these rows: pooled over splits, users resampled."""
    parts = [(r.get("extra") or {}).get("per_user") for r in rs]
    if not parts or not all(parts):
        return None
    from kmrec_gpu.claims.build import BOOTSTRAP_SEED, N_RESAMPLES
    from kmrec_gpu.metrics import users as user_stats

    try:
        return user_stats.user_bootstrap(parts, metric, n_resamples=N_RESAMPLES,
                                         seed=BOOTSTRAP_SEED).as_dict()
    except ValueError:
        return None


def paired(rs: list[dict], base: list[dict], metric: str) -> dict | None:
    """``metric(rs) - metric(base)`` over the splits both have, users resampled together."""
    from kmrec_gpu.claims.build import BOOTSTRAP_SEED, N_RESAMPLES
    from kmrec_gpu.metrics import users as user_stats

    b = {_split_id(r): r for r in base}
    pairs = [(r, b[_split_id(r)]) for r in rs if _split_id(r) in b]
    if not pairs or len(pairs) != len(rs):
        return None
    pa = [(x.get("extra") or {}).get("per_user") for x, _ in pairs]
    pb = [(y.get("extra") or {}).get("per_user") for _, y in pairs]
    if not all(pa) or not all(pb):
        return None
    try:
        return user_stats.paired_difference(pa, pb, metric, n_resamples=N_RESAMPLES,
                                            seed=BOOTSTRAP_SEED).as_dict()
    except ValueError:
        return None


def _pm(d: dict | None, sign: bool = False) -> str:
    if d is None:
        return ""
    f = "{:+.4f}" if sign else "{:.4f}"
    return f"{f.format(d['value'])} [{f.format(d['ci_low'])}, {f.format(d['ci_high'])}]"


def _seeds(rows: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    folds = sorted({f for r in rows if (f := ((r["split"] or {}).get("params") or {})
                                        .get("fold")) is not None})
    text = ", ".join(map(str, seeds))
    return f"{text}; folds {', '.join(map(str, folds))}" if folds else text


def _finite(rows: list[dict], metric: str) -> tuple[list[float], int]:
    """The metric's finite values over ``rows``, and how many rows hold it as NaN (or
    infinite): those are missing, never averaged in."""
    vals, n_nan = [], 0
    for r in rows:
        if metric in r["metrics"]:
            v = r["metrics"][metric]
            if isinstance(v, (int, float)) and math.isfinite(v):
                vals.append(v)
            else:
                n_nan += 1
    return vals, n_nan


def _mean(rows: list[dict], metric: str) -> float | None:
    vals, _ = _finite(rows, metric)
    return statistics.fmean(vals) if vals else None


def _nan_count(rows: list[dict], metric: str) -> str:
    n_nan = _finite(rows, metric)[1]
    return f" ({n_nan} of {len(rows)} splits NaN, left out)" if n_nan else ""


def _mean_cell(rows: list[dict], metric: str) -> str:
    return fmt.metric(_mean(rows, metric)) + _nan_count(rows, metric)


def nan_note(rows: list[dict]) -> str:
    """A sentence counting the NaN metric values of the accuracy rows, or ""."""
    acc = [r for r in rows if is_accuracy_row(r)]
    n = sum(1 for r in acc for v in r["metrics"].values()
            if isinstance(v, float) and not math.isfinite(v))
    if not n:
        return ""
    return (f" {n} stored metric value(s) of these rows are NaN: each is shown as "
            f"{fmt.MISSING}, counted beside the figure, and left out of every mean.")


def _vs_anchors(dataset: str, rows: list[dict]) -> str:
    anchors = [a for a in ANCHORS if a.dataset == dataset]
    if not anchors:
        return "no anchor for this dataset"
    # a line pools its rows: it has an anchor's protocol when every row has it (ml-100k's
    # five official folds pooled are not GLocal-K's fold 1)
    same = sorted({a.source for a in anchors
                   if rows and all(same_protocol(a, r["split"]) for r in rows)})
    if same:
        return "same protocol as " + ", ".join(same)
    return "protocol differs from every anchor"


def rating_figures(rows: list[dict]) -> dict[tuple, tuple[list[dict], dict | None, float | None]]:
    """Per line of the rating table (dataset, model, library, variant, protocol): its rows,
    their pooled RMSE with its user-bootstrap interval (None without per-user statistics)
    and the figure shown (the pooled value, else the mean). The bootstrap is the report's
    costliest step: compute this once and hand it to every table that shows RMSE."""
    acc = [r for r in rows if is_accuracy_row(r) and "rmse" in r["metrics"]]
    out = {}
    for key, rs in _groups(acc).items():
        pool = pooled(rs, "rmse")
        out[key] = (rs, pool, pool["value"] if pool else _mean(rs, "rmse"))
    return out


def rating_table(rows: list[dict], figures: dict | None = None) -> str:
    acc = [r for r in rows if is_accuracy_row(r) and "rmse" in r["metrics"]]
    if not acc:
        return "No stored rows carry held-out rating metrics."
    figures = rating_figures(rows) if figures is None else figures
    lines = []
    groups = {key: rs for key, (rs, _, _) in figures.items()}
    for (ds, model, lib, var, proto), (rs, pool, value) in figures.items():
        rmses, _ = _finite(rs, "rmse")
        base = _base(groups, ds, BASELINE["rmse"], proto)
        diff = paired(rs, base, "rmse") if base and model != BASELINE["rmse"] else None
        lines.append((ds, proto, math.inf if value is None else value, model, lib, var, [
            ds, model, lib, var, proto, len(rs), _seeds(rs),
            (_pm(pool) if pool else fmt.MISSING if value is None
             else f"{fmt.metric(value)} (mean)") + _nan_count(rs, "rmse"),
            f"{fmt.metric(min(rmses))} to {fmt.metric(max(rmses))}" if len(rmses) > 1 else "",
            _mean_cell(rs, "mae"), _pm(diff, sign=True),
            _vs_anchors(rs[0]["dataset"]["name"], rs)]))
    lines.sort(key=lambda t: t[:6])
    return "\n\n".join([
        fmt.table(["dataset", "model", "library", "variant", "protocol (split without seed)",
                   "splits", "seeds", "RMSE pooled [95% user bootstrap]", "RMSE per split",
                   "MAE mean", "minus bias_baseline [paired]", "vs anchors"],
                  [t[-1] for t in lines]),
        label(acc)])


def _rank_key(metric: str) -> tuple[int, str]:
    base = metric.split("@")[0]
    return (_RANK_ORDER.index(base) if base in _RANK_ORDER else len(_RANK_ORDER), metric)


def _ranking_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if is_accuracy_row(r) and any(RANKING.match(k) for k in r["metrics"])]


def _ranking_metrics(acc: list[dict]) -> list[str]:
    return sorted({k for r in acc for k in r["metrics"] if RANKING.match(k)}, key=_rank_key)


Figures = dict[tuple, tuple[list[dict], dict | None, float | None]]


def ranking_figures(rows: list[dict]) -> tuple[str | None, Figures]:
    """The ranking table's nDCG@k (its first ``ndcg@`` metric) and, per line (dataset,
    model, library, variant, protocol), its rows, their pooled value with its user
    bootstrap interval and the figure shown, as :func:`rating_figures` does for RMSE."""
    acc = _ranking_rows(rows)
    ndcg = next((m for m in _ranking_metrics(acc) if m.startswith("ndcg@")), None)
    out = {}
    for key, rs in _groups(acc).items():
        pool = pooled(rs, ndcg) if ndcg else None
        out[key] = (rs, pool, pool["value"] if pool else _mean(rs, ndcg) if ndcg else None)
    return ndcg, out


def ranking_table(rows: list[dict], figures: tuple | None = None) -> str:
    acc = _ranking_rows(rows)
    if not acc:
        return "No stored rows carry held-out ranking metrics."
    metrics = _ranking_metrics(acc)
    if any("catalog_coverage" in r["metrics"] for r in acc):
        metrics.append("catalog_coverage")
    out = []
    ndcg, figs = ranking_figures(rows) if figures is None else figures
    groups = {key: rs for key, (rs, _, _) in figs.items()}
    for (ds, model, lib, var, proto), (rs, pool, _value) in sorted(figs.items(),
                                                                   key=lambda kv: kv[0]):
        base = _base(groups, ds, BASELINE["ranking"], proto)
        diff = (paired(rs, base, ndcg) if ndcg and base and model != BASELINE["ranking"]
                else None)
        out.append([ds, model, lib, var, proto, len(rs), _seeds(rs),
                    *(_pm(pool) + _nan_count(rs, m) if m == ndcg and pool
                      else _mean_cell(rs, m) for m in metrics), _pm(diff, sign=True)])
    return "\n\n".join([
        fmt.table(["dataset", "model", "library", "variant", "protocol (split without seed)",
                   "splits", "seeds",
                   *(f"{m} pooled [95% user bootstrap]" if m == ndcg else f"{m} mean"
                     for m in metrics),
                   f"{ndcg} minus {BASELINE['ranking']} [paired]"], out),
        label(acc)])


def anchors_section(rows: list[dict]) -> str:
    acc = [r for r in rows if is_accuracy_row(r) and "rmse" in r["metrics"]]
    table = fmt.table(["source", "dataset", "model", "published RMSE", "protocol"],
                      [[a.source, a.dataset, a.model, fmt.num(a.rmse), a.protocol]
                       for a in ANCHORS])
    notes = []
    for ds in sorted(anchor_datasets()):
        here = [r for r in acc if r["dataset"]["name"] == ds]
        anchors = [a for a in ANCHORS if a.dataset == ds]
        if not here:
            notes.append(f"- **{ds}**: no stored held-out rows; the anchors stand alone.")
            continue
        same = [r for r in here if any(same_protocol(a, r["split"]) for a in anchors)]
        other = sorted({protocol(r["split"]) for r in here if r not in same})
        text = f"- **{ds}**: "
        if same:
            per_model = _groups(same)
            text += ("same protocol as " + ", ".join(sorted(
                {a.source for a in anchors if any(same_protocol(a, r["split"]) for r in same)}))
                + ": " + ", ".join(
                    f"{m} {_mean_cell(rs, 'rmse')} "
                    f"({len(rs)} splits)" for (_, m, _, _, _), rs in sorted(per_model.items()))
                + ". ")
        if other:
            text += ("The protocol differs from the anchors' ("
                     + "; ".join(sorted({a.protocol for a in anchors}))
                     + ") for the stored rows with " + "; ".join(other)
                     + ": compare those only loosely.")
        notes.append(text)
    cites = sorted({a.citation for a in ANCHORS})
    return "\n\n".join([table, "Citations: " + " ".join(f"({n + 1}) {c}."
                                                        for n, c in enumerate(cites)),
                        "\n".join(notes)])
