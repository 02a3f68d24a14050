"""kmrec-bench composes each job's configuration once (issue 17's start-up goal): Hydra's
sweeper composes every job to check it, then its launcher composes each again; the app
hands the launcher the check's pristine copy. The jobs must see exactly the
configurations Hydra would have composed."""

from __future__ import annotations

import sys

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from kmrec_gpu.harness import app
from kmrec_gpu.results import read_rows

GRID = ["-m", "dataset=synthetic-small", "model=bias_baseline,popularity", "seed=3",
        "timing.warmup=0", "timing.repeats=1", "eval.n_boot=0", "threads=1",
        "progress=false"]


def run_app(monkeypatch, tmp_path, *, once: bool) -> tuple[list[dict], int, dict]:
    seen: list[int] = []
    impl = ConfigLoaderImpl._load_configuration_impl

    def counting(self, *a, **kw):
        seen.append(1)
        return impl(self, *a, **kw)

    monkeypatch.setattr(ConfigLoaderImpl, "_load_configuration_impl", counting)
    monkeypatch.setattr(sys, "argv", ["kmrec-bench", *GRID, f"results={tmp_path}"])
    counts: dict = {}
    try:
        if once:
            with app.compose_each_job_once() as counts:
                app._main()
        else:
            app._main()
    finally:
        app._HARNESS.clear()
    rows = [r for r in read_rows(tmp_path / "runs") if r["phase"] == "evaluate"]
    return rows, len(seen), dict(counts)


def test_a_grid_composes_each_configuration_once_and_runs_the_same_cells(monkeypatch,
                                                                         tmp_path):
    rows, composed, counts = run_app(monkeypatch, tmp_path / "once", once=True)
    plain_rows, plain_composed, _ = run_app(monkeypatch, tmp_path / "plain", once=False)
    # the primary configuration and the two jobs, against Hydra's six
    # get_mode's, the primary (it adds hydra.mode), then each job once: 4 against 6
    assert (composed, plain_composed) == (4, 6)
    assert counts == {"composed": 2, "reused": 2}
    def cells(rs: list[dict]) -> list[tuple]:
        return sorted((r["model"]["name"], r["extra"]["harness"]["cell_key"], r["seed"])
                      for r in rs)

    assert cells(rows) == cells(plain_rows)
    assert {r["model"]["name"] for r in rows} == {"bias_baseline", "popularity"}


def test_a_sweep_over_hydras_own_settings_is_still_refused(monkeypatch, tmp_path, capsys):
    # Hydra's own check of the overrides still runs with the app's reuse in place
    monkeypatch.setattr(sys, "argv", ["kmrec-bench", "-m", "dataset=synthetic-small",
                                      "hydra.job.name=a,b", f"results={tmp_path}"])
    try:
        with app.compose_each_job_once(), pytest.raises(SystemExit) as e:
            app._main()
    finally:
        app._HARNESS.clear()
    assert e.value.code != 0
    assert "Sweeping over Hydra's configuration is not supported" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
