"""A claim's protocol, declared as data in ``bench/conf/claim/<id>.yaml``.

A protocol names the document, the statement, the metric and its unit, the claimed
figure, the margin (and why it has that size), the dataset, split and seeds, the models
whose figures are measured (held out, as published, or a probe cell for a protocol that
is no fit/predict), the comparison models behind the conclusion, and context figures.
Everything it names is a harness option (``model/``, ``dataset/``, ``split/``), so its
cells run through :class:`~kmrec_gpu.harness.runner.Harness` like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import KmrecError
from kmrec_gpu.harness.spec import conf_dir, options

KINDS = ("held-out", "as-published", "probe")
DECLARED = {"unsupported": "unsupported", "no_claim": "no claim"}
MIN_HELD_OUT_SEEDS = 5
_TOP = {"id", "document", "statement", "metric", "unit", "claimed", "claimed_all", "margin",
        "margin_reason", "declared", "dataset", "split", "seeds", "figures", "comparison",
        "conclusion", "conclusion_test", "tuned_test", "context", "protocol"}
_ENTRY = {"model", "kind", "dataset", "split", "seeds", "metric", "low", "high", "note"}


class ProtocolError(KmrecError, ValueError):
    """A claim protocol file is malformed or names an option that does not exist."""


@dataclass(frozen=True)
class Cell:
    model: str
    dataset: str
    split: str
    seed: int


@dataclass(frozen=True)
class Entry:
    """One measured figure: a model on a dataset and split, over seeds, in a metric."""

    model: str
    kind: str
    dataset: str
    split: str
    seeds: tuple[int, ...]
    metric: str
    low: str | None = None  # probe metrics holding the interval's ends, where one row has them
    high: str | None = None
    note: str | None = None

    def cells(self) -> list[Cell]:
        return [Cell(self.model, self.dataset, self.split, s) for s in self.seeds]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "dataset": self.dataset,
                "split": self.split, "seeds": list(self.seeds), "metric": self.metric}


@dataclass(frozen=True)
class ConclusionTest:
    models: tuple[str, ...]
    versus: tuple[str, ...]
    better: str
    metric: str
    dataset: str  # default: the claim's (the held-out entries compared live there)
    split: str


@dataclass(frozen=True)
class Protocol:
    id: str
    document: str
    statement: str
    metric: str
    unit: str
    claimed: float | None
    margin: float | None
    margin_reason: str | None
    dataset: str
    split: str
    seeds: tuple[int, ...]
    figures: tuple[Entry, ...]
    comparison: tuple[Entry, ...]
    context: tuple[Entry, ...]
    conclusion: str | None
    conclusion_test: ConclusionTest | None
    protocol: str
    tuned_test: ConclusionTest | None = None  # the conclusion against tuned baselines
    claimed_all: dict[str, float] = field(default_factory=dict)
    declared: tuple[str, str] | None = None  # (verdict, reason) for unsupported / no claim

    def entries(self) -> list[Entry]:
        return [*self.figures, *self.comparison, *self.context]

    def cells(self) -> list[Cell]:
        seen: dict[Cell, None] = {}
        for e in self.entries():
            for c in e.cells():
                seen.setdefault(c, None)
        return list(seen)

    def entry(self, model: str, dataset: str | None = None, split: str | None = None) -> Entry:
        """The held-out entry of ``model`` on ``dataset`` and ``split`` (the claim's by
        default), among the figures, comparisons and context."""
        where = (dataset or self.dataset, split or self.split)
        for e in self.entries():
            if e.model == model and e.kind == "held-out" and (e.dataset, e.split) == where:
                return e
        raise ProtocolError(f"claim {self.id}: no held-out entry for model {model!r} on "
                            f"{where[0]}/{where[1]}")


def _need(d: dict, key: str, types: type | tuple, where: str) -> Any:
    if key not in d:
        raise ProtocolError(f"{where}: missing {key!r}")
    v = d[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)):
        raise ProtocolError(f"{where}: {key!r} is {v!r}; expected {types}")
    return v


def _num(v: Any, where: str, key: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"{where}: {key!r} is {v!r}; expected a number or null")
    return float(v)


def _seeds(v: Any, where: str) -> tuple[int, ...]:
    if (not isinstance(v, list) or not v
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v)
            or len(set(v)) != len(v)):
        raise ProtocolError(f"{where}: seeds must be a non-empty list of distinct "
                            f"non-negative ints, got {v!r}")
    return tuple(v)


def _entry(raw: Any, top: dict, where: str, kind: str | None = None) -> Entry:
    if isinstance(raw, str):
        raw = {"model": raw}
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected a model name or a mapping, got {raw!r}")
    unknown = set(raw) - _ENTRY
    if unknown:
        raise ProtocolError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(_ENTRY)}")
    e = Entry(model=_need(raw, "model", str, where), kind=raw.get("kind", kind or "held-out"),
              dataset=raw.get("dataset", top["dataset"]), split=raw.get("split", top["split"]),
              seeds=_seeds(raw.get("seeds", top["seeds"]), where),
              metric=raw.get("metric", top["metric"]), low=raw.get("low"),
              high=raw.get("high"), note=raw.get("note"))
    if e.kind not in KINDS:
        raise ProtocolError(f"{where}: kind {e.kind!r}; expected one of {KINDS}")
    if e.kind == "held-out" and len(e.seeds) < MIN_HELD_OUT_SEEDS:
        raise ProtocolError(f"{where}: a held-out figure needs at least {MIN_HELD_OUT_SEEDS} "
                            f"seeds, got {list(e.seeds)}")
    for group, name in (("model", e.model), ("dataset", e.dataset), ("split", e.split)):
        if name not in options(group):
            raise ProtocolError(f"{where}: {group} {name!r} is not an option of "
                                f"bench/conf/{group}/")
    return e


def parse(raw: Any, where: str) -> Protocol:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected a mapping")
    unknown = set(raw) - _TOP
    if unknown:
        raise ProtocolError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(_TOP)}")
    for k in ("id", "document", "statement", "metric", "unit", "dataset", "split", "protocol"):
        _need(raw, k, str, where)
    top = {"dataset": raw["dataset"], "split": raw["split"], "metric": raw["metric"],
           "seeds": raw.get("seeds")}
    _seeds(top["seeds"], where)
    figures = tuple(_entry(e, top, f"{where} figures[{i}]")
                    for i, e in enumerate(raw.get("figures") or []))
    comparison = tuple(_entry(e, top, f"{where} comparison[{i}]", "held-out")
                       for i, e in enumerate(raw.get("comparison") or []))
    context = tuple(_entry(e, top, f"{where} context[{i}]")
                    for i, e in enumerate(raw.get("context") or []))
    declared = raw.get("declared")
    if declared is not None:
        if (not isinstance(declared, dict) or len(declared) != 1
                or next(iter(declared)) not in DECLARED
                or not isinstance(next(iter(declared.values())), str)):
            raise ProtocolError(f"{where}: declared must be {{unsupported: reason}} or "
                                f"{{no_claim: reason}}, got {declared!r}")
        (k, reason), = declared.items()
        declared = (DECLARED[k], reason)
    claimed, margin = _num(raw.get("claimed"), where, "claimed"), _num(raw.get("margin"), where,
                                                                      "margin")
    if declared is None:
        if claimed is None or margin is None or not raw.get("margin_reason"):
            raise ProtocolError(f"{where}: a claim with a verdict by the rule needs claimed, "
                                "margin and margin_reason")
        if not any(f.kind in ("held-out", "probe") for f in figures):
            raise ProtocolError(f"{where}: needs a held-out or probe figure for its verdict")
    test = _conclusion_test(raw, "conclusion_test", where, figures, comparison, context)
    tuned = _conclusion_test(raw, "tuned_test", where, figures, comparison, context)
    if tuned is not None:
        for m in tuned.versus:
            if not _is_search(m):
                raise ProtocolError(f"{where} tuned_test: {m!r} is not a tuned model (a "
                                    "ValidatedSearch option such as tuned_biased_mf)")
    claimed_all = raw.get("claimed_all") or {}
    return Protocol(
        id=raw["id"], document=raw["document"], statement=raw["statement"].strip(),
        metric=raw["metric"], unit=raw["unit"], claimed=claimed, margin=margin,
        margin_reason=(raw.get("margin_reason") or "").strip() or None,
        dataset=raw["dataset"], split=raw["split"], seeds=tuple(raw["seeds"]),
        figures=figures, comparison=comparison, context=context,
        conclusion=(raw.get("conclusion") or "").strip() or None, conclusion_test=test,
        protocol=raw["protocol"].strip(), tuned_test=tuned,
        claimed_all={str(k): _num(v, where, f"claimed_all.{k}") for k, v in claimed_all.items()},
        declared=declared)


def _conclusion_test(raw: dict, key: str, where: str, *entries: tuple[Entry, ...]
                     ) -> ConclusionTest | None:
    ct = raw.get(key)
    if ct is None:
        return None
    w = f"{where} {key}"
    test = ConclusionTest(tuple(_need(ct, "models", list, w)), tuple(_need(ct, "versus", list, w)),
                          _need(ct, "better", str, w), ct.get("metric", raw["metric"]),
                          ct.get("dataset", raw["dataset"]), ct.get("split", raw["split"]))
    if test.better not in ("lower", "higher"):
        raise ProtocolError(f"{w}: better must be lower or higher, got {test.better!r}")
    held = {e.model for group in entries for e in group if e.kind == "held-out"
            and (e.dataset, e.split) == (test.dataset, test.split)}
    for m in (*test.models, *test.versus):
        if m not in held:
            raise ProtocolError(f"{w}: {m!r} has no held-out figure, comparison or "
                                f"context entry on {test.dataset}/{test.split}")
    return test


def _is_search(model: str) -> bool:
    from kmrec_gpu.harness.spec import load_option

    return str(load_option("model", model).estimator.get("_target_", "")).endswith(
        ".ValidatedSearch")


def claim_dir() -> Path:
    return conf_dir() / "claim"


def load_protocols(only: str | None = None) -> list[Protocol]:
    """Every protocol in ``bench/conf/claim/``, in id order; ``only``: the ids starting
    with it (``001`` or ``001-nmf``)."""
    import yaml

    out = []
    for path in sorted(claim_dir().glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ProtocolError(f"{path}: not valid YAML ({e})") from None
        p = parse(raw, str(path))
        if p.id != path.stem:
            raise ProtocolError(f"{path}: id {p.id!r} must equal the file name {path.stem!r}")
        out.append(p)
    if only:
        picked = [p for p in out if p.id.startswith(only)]
        if not picked:
            raise ProtocolError(f"--only {only!r} matches no claim; claims are "
                                f"{[p.id for p in out]}")
        return picked
    return out
