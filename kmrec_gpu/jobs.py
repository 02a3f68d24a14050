"""``kmrec run``: the global-mean and bias baselines on one held-out split.

A shorthand for ``kmrec-bench -m model=global_mean,bias_baseline dataset=D split=S ...``:
the same harness cells, keys, rows and closing table, so the baselines have one figure
whichever command ran them. Nothing here computes a metric.
"""

from __future__ import annotations

from pathlib import Path

from kmrec_gpu.errors import KmrecError

MODELS = ("global_mean", "bias_baseline")
SPLITS = ("holdout", "per_user", "temporal", "leave_last_k")
# the option that holds the test share in each split's config (leave-last-k has none)
_SHARE = {"holdout": "test_fraction", "temporal": "test_fraction", "per_user": "fraction"}


def job_configs(*, dataset: str, path: str | None, split: str, test_fraction: float,
                seed: int, repeats: int, n_boot: int,
                results_dir: str | Path) -> list:
    """One composed ``kmrec-bench`` configuration per baseline."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from kmrec_gpu.harness.spec import conf_dir, options, with_option
    from kmrec_gpu.harness.validate import problems

    if dataset not in options("dataset"):
        raise KmrecError(f"--dataset {dataset}: no such dataset; expected one of "
                         f"{options('dataset')}")
    if split not in SPLITS:
        raise KmrecError(f"--split {split}: expected one of {SPLITS}")
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        root = compose("config", overrides=[f"dataset={dataset}", f"split={split}",
                                            "backend=cpu"])
    # set, not parsed: a path may hold characters Hydra's override grammar reserves
    for key, value in (("seed", seed), ("timing.repeats", repeats), ("eval.n_boot", n_boot),
                       ("results", str(results_dir)), ("progress", False)):
        OmegaConf.update(root, key, value, merge=False)
    if path is not None:
        OmegaConf.update(root, "dataset.path", str(path), merge=False)
    if split in _SHARE:
        OmegaConf.update(root, f"split.params.{_SHARE[split]}", test_fraction, merge=False)
    bad = problems(root)
    if bad:
        raise KmrecError("; ".join(bad))
    return [with_option(root, "model", m) for m in MODELS]


def _require_data(d: dict) -> None:
    """A missing MovieLens copy is a usage error before any row, not a failed cell."""
    if d.get("kind") != "movielens":
        return
    from kmrec_gpu.data.locate import locate
    from kmrec_gpu.data.registry import get_spec

    locate(get_spec(d.get("registry") or d["name"]), d.get("path"), open_now=False)


def run_baseline(*, dataset: str = "ml-latest-small", path: str | None = None,
                 split: str = "holdout", test_fraction: float = 0.1, seed: int = 0,
                 repeats: int = 5, n_boot: int = 1000,
                 results_dir: str | Path = "results", command: str | None = None,
                 quiet: bool = False) -> list:
    """Run both baselines as harness cells and print the harness's closing table; the
    cells' results. Without the data it raises ``DatasetNotFound`` and writes nothing."""
    from omegaconf import OmegaConf

    from kmrec_gpu.harness.app import run_grid
    from kmrec_gpu.harness.runner import Harness
    from kmrec_gpu.harness.summary import print_summary

    cfgs = job_configs(dataset=dataset, path=path, split=split, test_fraction=test_fraction,
                       seed=seed, repeats=repeats, n_boot=n_boot,
                       results_dir=results_dir)
    _require_data(OmegaConf.to_container(cfgs[0].dataset, resolve=True))
    h = Harness(results_dir, progress=False, command=command)
    results = run_grid(h, cfgs, "kmrec run")
    print_summary([] if quiet else results, where=str(h.results_file or "(no new rows)"),
                  results_dir=str(results_dir), prog="kmrec run")
    return results

