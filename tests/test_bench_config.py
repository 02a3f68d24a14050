"""Every option of every config group composes through Hydra's compose API and builds."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from kmrec_gpu.backends import cuda_status, get_backend
from kmrec_gpu.data import available
from kmrec_gpu.data.synthetic import synthetic_preset
from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.harness.app import grid_configs
from kmrec_gpu.harness.runner import backend_kwargs, make_cell_split
from kmrec_gpu.harness.spec import GROUPS, CellSpec, conf_dir, options


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_defaults_compose_to_one_cell():
    cfg = composed()
    spec = CellSpec.from_config(cfg)
    assert (spec.dataset["name"], spec.model["name"], spec.backend["id"]) == (
        "ml-100k", "bias_baseline", "cpu")
    assert spec.seed == 0 and spec.key == CellSpec.from_config(composed()).key


def test_every_group_has_options():
    for g in GROUPS:
        assert options(g), g


def test_dataset_group_is_the_registry():
    # every registry entry, plus options derived from one (another training target)
    derived = {n for n in options("dataset") if composed(f"dataset={n}").dataset.get("registry")}
    own = {n for n in options("dataset") if composed(f"dataset={n}").dataset.kind == "csv"}
    assert own == {"csv"}  # the user's own ratings file, no registry entry
    assert set(options("dataset")) - derived - own == {r["name"] for r in available()}
    for name in options("dataset"):
        d = composed(f"dataset={name}").dataset
        assert d.name == name
        if name in derived:
            assert d.registry in options("dataset") and d.target


@pytest.mark.parametrize("name", options("model"))
def test_every_model_composes_and_builds(name):
    cfg = composed(f"model={name}", "seed=3")
    spec = CellSpec.from_config(cfg)
    m = spec.model
    assert m["name"] == name and set(m["backends"]) <= {"cpu", "cuda"}
    for peer in m["peers"]:
        assert peer in options("model"), f"{name}: unknown peer {peer}"
    be = get_backend("cpu") if "cpu" in m["backends"] else None
    kwargs = backend_kwargs(m["backend_arg"], be) if be else {}
    est = instantiate(cfg.model.estimator, _partial_=True, _convert_="all")(**kwargs)
    needs = {"rating": ("fit", "predict"), "topk": ("fit", "recommend"),
             "pipeline": ("fit_predict",), "probe": ("measure",)}[m["task"]]
    for attr in needs:
        assert callable(getattr(est, attr)), f"{name} lacks {attr}"
    params = est.get_params()
    if "random_state" in m["estimator"]:  # the one seed reaches the model
        assert params["random_state"] == 3
    # a row records get_params(); the report keeps a row only when it holds every value the
    # option sets (one name, one configuration), so a renamed parameter would hide them all
    from kmrec_gpu.report.accuracy import _canon

    for k, v in m["estimator"].items():
        if k != "_target_":
            assert k in params and _canon(params[k]) == _canon(v), (name, k)


@pytest.mark.parametrize("name", options("backend"))
def test_every_backend_composes_and_resolves(name):
    b = composed(f"backend={name}").backend
    assert b.id == name
    if b.name == "cuda" and not cuda_status().usable:
        with pytest.raises(BackendUnavailable, match="CUDA"):
            get_backend(b.name, library=b.library)
        return
    be = get_backend(b.name, library=b.library)
    assert be.library == (b.library or be.library)


@pytest.mark.parametrize("name", options("split"))
def test_every_split_composes_and_splits(name):
    s = composed(f"split={name}").split
    # an option is named by its method, or by the method and its variant (holdout20)
    assert s.method == name or name.startswith(s.method)
    if name == "ml100k_fold":  # GroupLens's own fold files: ml-100k only
        from tests.conftest import load_real

        r = load_real("ml-100k")
    else:
        r = synthetic_preset("synthetic-small", seed=0)
    tt = make_cell_split(r, dict(s), seed=0)
    assert len(tt.train) + len(tt.test) <= len(r)
    # `all` is the whole file in train (the protocols that are no held-out evaluation)
    assert len(tt.test) > 0 if name != "all" else len(tt.train) == len(r)

    def key(x):
        return set(zip(x.users.tolist(), x.items.tolist()))

    assert not key(tt.train) & key(tt.test)


@pytest.mark.parametrize("name", options("sweep"))
def test_every_sweep_expands_to_existing_options(name):
    cfg = composed(f"sweep={name}")
    cells = grid_configs(cfg)
    if name == "none":
        assert cells == []
        return
    assert cells, name
    for c in cells:
        spec = CellSpec.from_config(c)  # every named option exists and resolves
        assert spec.sweep == name
    keys = [CellSpec.from_config(c).key for c in cells]
    assert len(set(keys)) == len(keys), "a preset lists the same cell twice"


def test_seed_override_changes_the_key_and_reaches_the_split():
    a, b = CellSpec.from_config(composed()), CellSpec.from_config(composed("seed=1"))
    assert a.key != b.key and b.seed == 1
    r = synthetic_preset("synthetic-small", seed=0)
    s0 = make_cell_split(r, a.split, 0).test.users
    s1 = make_cell_split(r, a.split, 1).test.users
    assert not np.array_equal(s0, s1)
