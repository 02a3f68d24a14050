"""A tuned model's chosen configuration, written back as a model option for reuse.

A ``ValidatedSearch`` cell (``tuned_ease``, ``tuned_knn_baseline``) records the
hyper-parameters its search chose in its fit row (``extra.facts.best_params``). ``export``
turns the row of one (dataset, split, seed) cell into a plain model option: the searched
estimator's class with its fixed parameters and the chosen values, the search config's
task, backends, peers and limits, and a header naming the row it came from. Running the
new option on the same cell fits exactly the estimator the search refitted, so its
metrics are the tuned cell's; on another dataset or seed it is the reuse.

The file is new or nothing: an existing option is never overwritten, and the text is
written to a temporary file and renamed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import KmrecError
from kmrec_gpu.harness.spec import ConfigError, conf_dir, load_option

NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class ExportError(KmrecError, ValueError):
    """No row, or no single row, to export; or a target that exists."""


def _matches(row: dict[str, Any], model: str, dataset: str, seed: int,
             split: str | None) -> bool:
    return (row.get("phase") in ("fit", "end-to-end") and row.get("status") == "ok"
            and row["model"]["name"] == model and row["dataset"]["name"] == dataset
            and row.get("seed") == seed
            and (split is None or (row.get("split") or {}).get("method") == split)
            and "best_params" in ((row.get("extra") or {}).get("facts") or {}))


def find_row(results: Path, model: str, dataset: str, seed: int,
             split: str | None = None) -> tuple[dict[str, Any], Path]:
    """The newest fit row of ``model``'s search on ``dataset`` at ``seed`` (and split
    method), with its run file."""
    from kmrec_gpu.results import read_rows, rows_files

    found = [(row, path) for path in rows_files(results / "runs") for row in read_rows(path)
             if _matches(row, model, dataset, seed, split)]
    if not found:
        raise ExportError(f"no fit row of {model} on {dataset} at seed {seed}"
                          f"{f' (split {split})' if split else ''} with a search's "
                          f"best_params under {results / 'runs'}; run the cell first, e.g. "
                          f"kmrec-bench model={model} dataset={dataset} seed={seed}")
    splits = {(r.get("split") or {}).get("method") for r, _ in found}
    if split is None and len(splits) > 1:
        raise ExportError(f"{model} on {dataset} at seed {seed} was tuned on several "
                          f"splits ({', '.join(sorted(map(str, splits)))}); choose one "
                          "with --split")
    return max(found, key=lambda rp: rp[0]["created_utc"])


def _base_option(target: str, fixed: dict[str, Any]):
    """The first model option that builds ``target`` with the ``fixed`` parameters (the
    option the search tunes), or None."""
    from omegaconf import OmegaConf

    from kmrec_gpu.harness.spec import options

    for name in options("model"):
        option = load_option("model", name)
        est = OmegaConf.to_container(option.estimator, resolve=False)
        if est.get("_target_") == target and all(est.get(k) == v for k, v in fixed.items()):
            return option
    return None


def render(model: str, search: Any, row: dict[str, Any], source: Path, name: str) -> str:
    """The new option's YAML text, from the search option ``model`` (loaded: ``search``)."""
    from omegaconf import OmegaConf

    est = OmegaConf.to_container(search.estimator, resolve=False)
    if not str(est.get("_target_", "")).endswith("ValidatedSearch"):
        raise ExportError(f"model {model} is not a search (its estimator is "
                          f"{est.get('_target_')}); only ValidatedSearch options export")
    inner = dict(est["estimator"])
    best = row["extra"]["facts"]["best_params"]
    unknown = sorted(set(best) - set(est["space"]))
    if unknown:
        raise ExportError(f"{source}: row {row['run_id']} chose {unknown}, which "
                          f"{model}'s space {sorted(est['space'])} does not search: the "
                          "option changed since the row was written")
    estimator = {"_target_": inner.pop("class"), **inner, **best}
    base = _base_option(estimator["_target_"], inner)
    option = {"name": name, "task": search.task,
              "backends": OmegaConf.to_container(search.backends),
              "backend_arg": search.get("backend_arg"),
              "peers": OmegaConf.to_container(search.peers),
              # one fit, not a search's many: the searched estimator's own option's limits
              "limits": OmegaConf.to_container((base or search).limits),
              "estimator": estimator}
    if "cold_pairs" in search:
        option["cold_pairs"] = search.cold_pairs
    facts, ds, sp = row["extra"]["facts"], row["dataset"], row.get("split") or {}
    metric = f"nDCG@{est.get('k', 10)}" if search.task == "topk" else "RMSE"
    header = [
        f"{name}: {model}'s choice, exported by `kmrec tuned {model} --dataset {ds['name']} "
        f"--seed {row['seed']} --name {name}`",
        f"searched: {', '.join(sorted(est['space']))} over {facts['n_trials']} trials, "
        f"validation {metric} {facts['best_score']:.4f}"
        + (f"; at the edge of its range: {facts['at_edge']}" if facts.get("at_edge") else ""),
        f"from row {row['run_id']} ({row['created_utc']}) of {source.name}, git "
        f"{str(row.get('git_revision'))[:12]}",
        f"on {ds['name']} (sha256 {str(ds.get('sha256'))[:16]}), split {sp.get('method')} "
        f"{sp.get('params', {})}, seed {row['seed']}",
    ]
    body = OmegaConf.to_yaml(OmegaConf.create(option), sort_keys=False)
    return "".join(f"# {line}\n" for line in header) + body


def export(model: str, *, dataset: str, seed: int, name: str, results: Path,
           split: str | None = None, out_dir: Path | None = None) -> Path:
    """Write the option ``name`` (``out_dir``, default the model config group) from the
    search row; returns its path."""
    if not NAME.match(name):
        raise ExportError(f"--name {name!r}: expected lower-case letters, digits and "
                          "underscores, starting with a letter (a model option's name)")
    target = (out_dir or conf_dir() / "model") / f"{name}.yaml"
    if target.exists():
        raise ExportError(f"{target} exists; choose another --name (an option is never "
                          "overwritten)")
    try:
        search = load_option("model", model)
    except ConfigError as e:
        raise ExportError(str(e)) from None
    row, source = find_row(results, model, dataset, seed, split)
    text = render(model, search, row, source, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, target)  # whole file or none, and never over a file made meanwhile
    except FileExistsError:
        raise ExportError(f"{target} appeared while writing; left as it is") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
