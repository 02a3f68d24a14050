"""Run a claim's cells through the harness: every model, dataset, split and seed its
protocol names, with the claims' fixed settings (one fit per cell: the claims compare
accuracy, not time), appended to ``<results>/runs/`` like any other rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kmrec_gpu.claims.protocol import Cell, Protocol
from kmrec_gpu.harness.spec import CellSpec

# part of every claim cell's key; changing them makes every stored claim row stale
SETTINGS = ("timing.warmup=0", "timing.repeats=1", "with_peers=false", "sweep=none")


def cell_configs(cells: Sequence[Cell]) -> dict[Cell, Any]:
    """The composed Hydra config of each cell."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from kmrec_gpu.harness.spec import conf_dir, with_option

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        root = compose("config", overrides=list(SETTINGS))
    out = {}
    for cell in cells:
        c = with_option(root, "dataset", cell.dataset)
        c = with_option(c, "split", cell.split)
        c = with_option(c, "model", cell.model)
        OmegaConf.update(c, "seed", cell.seed, merge=False)
        out[cell] = c
    return out


def cell_keys(cells: Sequence[Cell]) -> dict[Cell, str]:
    """The harness's canonical key of each cell, as a run of it would store."""
    return {cell: CellSpec.from_config(c).key for cell, c in cell_configs(cells).items()}


def run_claims(protocols: Sequence[Protocol], *, results_dir: str | Path = "results",
               threads: int | None = 1, force: bool = False, command: str | None = None,
               progress: bool = True, models: Sequence[str] | None = None) -> list:
    """Every cell of ``protocols`` (each once, however many claims share it), or only those
    of ``models``. A cell done at this clean revision is skipped unless ``force``."""
    from kmrec_gpu.harness.app import run_grid
    from kmrec_gpu.harness.runner import Harness

    seen: dict[Cell, None] = {}
    for p in protocols:
        for c in p.cells():
            if models is None or c.model in models:
                seen.setdefault(c, None)
    if models is not None:
        known = {c.model for p in protocols for c in p.cells()}
        unknown = sorted(set(models) - known)
        if unknown:
            raise ValueError(f"no cell of these claims uses model(s) {unknown}; "
                             f"their models are {sorted(known)}")
    h = Harness(results_dir, force=force, progress=progress, threads=threads, command=command)
    results = run_grid(h, list(cell_configs(list(seen)).values()), "claims")
    if h.results_file:
        h.console.print(f"claims: rows appended to {h.results_file}")
    return results
