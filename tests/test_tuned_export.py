"""`kmrec tuned`: a search cell's choice written back as a model option, reused as is."""

from __future__ import annotations

import io
import shutil

import pytest
import yaml
from hydra import compose, initialize_config_dir
from rich.console import Console

from kmrec_gpu.cli import main
from kmrec_gpu.harness.runner import Harness
from kmrec_gpu.harness.spec import CellSpec, conf_dir
from kmrec_gpu.harness.tuned import ExportError, export
from kmrec_gpu.results import read_rows


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A private copy of the configuration, so the exported option lands in a temp dir."""
    dst = tmp_path / "conf"
    shutil.copytree(conf_dir(), dst)
    monkeypatch.setenv("KMREC_BENCH_CONF", str(dst))
    return dst


def _cell(conf, results, model: str, seed: int = 0):
    overrides = ["dataset=synthetic-small", f"model={model}", f"seed={seed}",
                 "timing.warmup=0", "timing.repeats=1", "eval.n_boot=20", f"results={results}"]
    if model.startswith("tuned_"):
        overrides.append("model.estimator.n_trials=4")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    h = Harness(results, out=Console(file=io.StringIO(), width=200), progress=False)
    res = h.run(CellSpec.from_config(cfg))
    assert res.status == "ok", res
    return {r["phase"]: r for r in read_rows(h.results_file)}


def test_the_exported_option_refits_the_searched_choice(conf, tmp_path):
    results = tmp_path / "results"
    tuned = _cell(conf, results, "tuned_knn_baseline", seed=3)
    path = export("tuned_knn_baseline", dataset="synthetic-small", seed=3, name="knn_mine",
                  results=results)
    assert path == conf / "model" / "knn_mine.yaml"
    text = path.read_text()
    option = yaml.safe_load(text)
    best = tuned["fit"]["extra"]["facts"]["best_params"]
    assert option["name"] == "knn_mine"
    assert option["estimator"]["_target_"] == "kmrec_gpu.models.knn.KNNBaseline"
    assert {k: option["estimator"][k] for k in best} == best  # exact floats
    assert tuned["fit"]["run_id"] in text and "4 trials" in text
    again = _cell(conf, results, "knn_mine", seed=3)
    for metric in ("rmse", "mae"):
        assert again["evaluate"]["metrics"][metric] == tuned["evaluate"]["metrics"][metric]
    assert again["fit"]["model"]["params"]["k"] == best.get("k", option["estimator"].get("k"))


def test_export_refuses_to_overwrite_and_names_what_is_missing(conf, tmp_path, capsys):
    results = tmp_path / "results"
    with pytest.raises(ExportError, match="no fit row of tuned_ease on ml-100k at seed 0"):
        export("tuned_ease", dataset="ml-100k", seed=0, name="x", results=results)
    with pytest.raises(ExportError, match="exists"):
        export("tuned_ease", dataset="ml-100k", seed=0, name="ease", results=results)
    with pytest.raises(ExportError, match="lower-case"):
        export("tuned_ease", dataset="ml-100k", seed=0, name="Bad-Name", results=results)
    before = (conf / "model" / "ease.yaml").read_bytes()
    assert main(["tuned", "tuned_ease", "--dataset", "ml-100k", "--name", "ease",
                 "--results", str(results)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (conf / "model" / "ease.yaml").read_bytes() == before
    assert not list((conf / "model").glob(".*tmp"))


def test_only_a_search_option_exports(conf, tmp_path):
    results = tmp_path / "results"
    _cell(conf, results, "bias_baseline")
    with pytest.raises(ExportError, match="no fit row of bias_baseline"):
        export("bias_baseline", dataset="synthetic-small", seed=0, name="y", results=results)
