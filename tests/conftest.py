"""Shared fixtures.

Tests never download and never touch the user's cache: KMREC_OFFLINE is set and the
cache points into a temporary folder. Real MovieLens copies come from KMREC_DATA_DIR;
when one is missing the test skips, unless KMREC_REQUIRE_DATA=1 (as in CI), where it
fails so a misconfigured CI can never pass by skipping.
"""

from __future__ import annotations

import os

import pytest

os.environ["KMREC_OFFLINE"] = "1"

# Triton makes a kernel interpreted or compiled when @triton.jit decorates it, i.e. when a
# module of kernels/ is first imported, so this must precede every test's import. Without
# a GPU the kernels run interpreted on CPU tensors; with one they compile and the kernel
# tests run on CUDA tensors. (torch does not import triton.)
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

from kmrec_gpu.errors import DatasetNotFound

pytest_plugins = ["tests.backend_fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def require_data() -> bool:
    return os.environ.get("KMREC_REQUIRE_DATA", "") not in ("", "0")


def load_real(name: str):
    from kmrec_gpu.data import load

    try:
        return load(name, download=False)
    except DatasetNotFound as e:
        msg = f"{name} not available (set KMREC_DATA_DIR): {e}"
        if require_data():
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def ml100k():
    return load_real("ml-100k")


@pytest.fixture(scope="session")
def ml_small():
    return load_real("ml-latest-small")


@pytest.fixture(scope="session")
def seed002():
    return load_real("seed-002")


@pytest.fixture
def clean_revision(monkeypatch):
    """A clean git revision, so that the harness skips cells already run at it."""
    from kmrec_gpu.harness import runner

    monkeypatch.setattr("kmrec_gpu.results.git_revision", lambda: "a" * 40)
    monkeypatch.setattr(runner, "git_revision", lambda: "a" * 40)


@pytest.fixture(autouse=True)
def _library_messages_on_stderr():
    """The library's log messages on stderr, as the command lines show them, so that tests
    read them from captured stderr (pytest's own log capture would otherwise hold them)."""
    from kmrec_gpu.log import for_cli

    for_cli()


def pytest_collection_modifyitems(config, items):
    """Under mutmut, each mutant's test files quickest first (in file order within one, so
    module fixtures are built once): the first failure ends its run (-x). mutmut's fork
    workers order tests by time; its forkserver workers (this project's) do not."""
    stats = "mutmut-stats.json"  # in mutmut's working copy, where its workers run
    if not os.environ.get("MUTANT_UNDER_TEST") or not os.path.isfile(stats):
        return
    import json

    with open(stats) as f:
        took = json.load(f).get("duration_by_test", {})
    per_file: dict[str, float] = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        per_file[path] = per_file.get(path, 0.0) + took.get(item.nodeid, 60.0)
    items.sort(key=lambda item: per_file[item.nodeid.split("::")[0]])  # stable
