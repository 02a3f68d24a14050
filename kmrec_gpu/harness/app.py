"""``kmrec-bench``: the Hydra app over ``bench/conf`` (dataset, model, backend, split, sweep).

    kmrec-bench dataset=ml-100k model=kmeans_liked backend=cpu       # one cell
    kmrec-bench -m dataset=ml-100k,ml-latest-small model=svd,nmf     # a grid (Hydra jobs)
    kmrec-bench sweep=scale                                           # a named grid
    kmrec-bench sweep=cpu_vs_gpu                                      # both backends, compared

Every other setting in ``bench/conf/config.yaml`` (seed, results, force, with_peers,
threads, timing, eval) is overridable the same way (``seed=1 timing.repeats=5``).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import sys
from collections.abc import Iterator
from typing import Any

import hydra
from omegaconf import DictConfig

from kmrec_gpu.harness.runner import CellResult, Harness
from kmrec_gpu.harness.spec import CellSpec, conf_dir, with_option

_HARNESS: dict[tuple, Harness] = {}  # one per process and settings: Hydra -m jobs share it


def harness_for(cfg: DictConfig, command: str | None = None) -> Harness:
    key = (str(cfg.results), bool(cfg.force), cfg.threads, bool(cfg.progress))
    if key not in _HARNESS:
        _HARNESS[key] = Harness(cfg.results, force=bool(cfg.force), progress=bool(cfg.progress),
                                threads=cfg.threads, command=command)
    return _HARNESS[key]


def grid_configs(cfg: DictConfig) -> list[DictConfig]:
    """The cells of a sweep preset: the product of ``grid`` then the explicit ``cells``."""
    sweep = cfg.sweep
    out = []
    grid = {g: list(v) for g, v in (sweep.grid or {}).items()}
    if grid:
        groups = list(grid)
        for combo in itertools.product(*(grid[g] for g in groups)):
            c = cfg
            for g, name in zip(groups, combo):
                c = with_option(c, g, name)
            out.append(c)
    for cell in sweep.cells or []:
        c = cfg
        for g, name in cell.items():
            c = with_option(c, g, name)
        out.append(c)
    return out


def cell_with_peers(h: Harness, cfg: DictConfig, *, keep: bool = False) -> list[CellResult]:
    spec = CellSpec.from_config(cfg)
    results = [h.run(spec, keep_artifacts=keep)]
    if cfg.with_peers:
        for peer in spec.model.get("peers") or []:
            pcfg = with_option(cfg, "model", peer)
            results.append(h.run(CellSpec.from_config(pcfg, role="peer",
                                                      peer_of=spec.model["name"])))
    return results


def run_grid(h: Harness, cfgs: list[DictConfig], title: str) -> list[CellResult]:
    # cells of one dataset run together: it is loaded once and every model sees one split
    cfgs = sorted(cfgs, key=lambda c: (c.dataset.name, c.split.method))
    out: list[CellResult] = []
    if not h.show_progress:
        for i, c in enumerate(cfgs, 1):
            h.console.print(f"[bold]cell {i}/{len(cfgs)}[/]")
            out += cell_with_peers(h, c)
        return out
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=h.console) as p:
        task = p.add_task(title, total=len(cfgs))
        for c in cfgs:
            out += cell_with_peers(h, c)
            p.advance(task)
    return out


def run(cfg: DictConfig, command: str | None = None) -> list[CellResult]:
    h = harness_for(cfg, command)
    if cfg.sweep.get("compare"):
        from kmrec_gpu.harness.compare import run_compare

        results = run_compare(h, cfg)
    elif cfg.sweep.grid or cfg.sweep.cells:
        results = run_grid(h, grid_configs(cfg), f"sweep {cfg.sweep.name}")
    else:
        results = cell_with_peers(h, cfg)
    return results


def report_end(quiet: bool = False) -> None:
    """After every job of the process: the table of what ran (unless ``quiet``), and where
    the rows went — once per run, not once per ``-m`` job."""
    from kmrec_gpu.harness.summary import print_summary

    for h in _HARNESS.values():
        print_summary([] if quiet else h.results, where=str(h.results_file or "(no new rows)"),
                      results_dir=str(h.results_dir), counts_from=h.results)


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def _main(cfg: DictConfig) -> None:
    from kmrec_gpu.harness.validate import problems

    bad = problems(cfg)
    if bad:  # before any cell runs: one line per bad value, and the usage error's status
        for line in bad:
            print(f"kmrec-bench: error: {line}", file=sys.stderr)
        sys.exit(2)
    results = run(cfg, command=" ".join(["kmrec-bench", *sys.argv[1:]]))
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    is_grid = bool(cfg.sweep.grid or cfg.sweep.cells or cfg.sweep.get("compare")
                   or HydraConfig.get().mode == RunMode.MULTIRUN)
    if not is_grid and results and results[0].status == "failed":
        sys.exit(1)  # one named cell that failed is an error for the caller


@contextlib.contextmanager
def compose_each_job_once() -> Iterator[dict]:
    """Let Hydra compose each ``-m`` job's configuration once, not twice.

    Hydra's sweeper composes every job of a batch to check it before the first one runs
    ("This repeat[s] work the launcher will do", says its docstring), then the launcher
    composes each again: for ``-m model=a,b,c`` that is six compositions of ~0.2-0.4 s
    where three do. While this is active the checking call keeps a pristine copy of what
    it composed, and the launcher's call for the same master configuration and overrides
    takes that copy (each copy once) instead of composing again; the checks still run
    before any job. Yields the counts (``composed``, ``reused``) for tests.
    """
    counts = {"composed": 0, "reused": 0}
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        original = ConfigLoaderImpl.load_sweep_config
    except (ImportError, AttributeError):  # another Hydra: compose as it does
        yield counts
        return
    memo: dict[tuple, Any] = {}

    def load_sweep_config(self, master_config, sweep_overrides):
        key = (id(self), id(master_config), tuple(sweep_overrides))
        kept = memo.pop(key, None)
        if kept is not None and kept[0] is master_config:
            counts["reused"] += 1
            return kept[1]
        cfg = original(self, master_config, sweep_overrides)
        counts["composed"] += 1
        memo[key] = (master_config, copy.deepcopy(cfg))
        return cfg

    ConfigLoaderImpl.load_sweep_config = load_sweep_config
    try:
        yield counts
    finally:
        ConfigLoaderImpl.load_sweep_config = original


QUIET_FLAGS = ("--quiet", "-q")


def main() -> Any:
    """``kmrec-bench``; ``--quiet`` (for scripts) leaves out the closing table."""
    from kmrec_gpu.log import for_cli

    for_cli()
    quiet = any(a in QUIET_FLAGS for a in sys.argv[1:])
    sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a not in QUIET_FLAGS)]
    try:
        with compose_each_job_once():
            return _main()
    finally:
        report_end(quiet)
