"""``kmrec report`` overwrites and removes only files it can prove it wrote: its manifest
(``report/.kmrec-report-manifest.json``) with each file's sha256, or, for files written
before manifests, the report's own marker."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from kmrec_gpu.cli import main
from kmrec_gpu.errors import MalformedInput
from kmrec_gpu.report import build_report
from kmrec_gpu.report.build import HEADER, MANIFEST, OverwriteRefused
from kmrec_gpu.results import ResultWriter, make_row

REPO_RESULTS = Path(__file__).resolve().parent.parent / "results"
USER_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x04tEXtmine\x00\x00\x00\x00"  # not ours


def _figure(dataset: str) -> str:
    return f"elbow_liked-clusters-elbow_{dataset}_wcss.png"


def _results(root: Path, dataset: str = "toy") -> Path:
    """A results folder whose only rows draw one elbow figure, named after ``dataset``."""
    shutil.rmtree(root / "runs", ignore_errors=True)
    w = ResultWriter(root)
    w.append(make_row(
        run_id=w.run_id, dataset={"name": dataset, "sha256": "ab" * 32}, split=None, seed=1,
        model={"name": "liked-clusters-elbow", "params": {"n_clusters": 4}},
        backend={"name": "cpu", "library": "numpy", "device_name": "Test CPU"},
        phase="fit", wall_time=None,
        extra={"elbow_k": 4, "elbow_ks": [2, 4, 6, 8], "elbow_wcss": [10.0, 6.0, 5.0, 4.5]}))
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return _results(tmp_path / "results")


def _manifest(root: Path) -> dict:
    return json.loads((root / "report" / MANIFEST).read_text(encoding="utf-8"))


def test_a_users_own_pngs_survive_rebuilds(root, capsys):
    figures = root / "report"
    figures.mkdir()
    (figures / "holiday.png").write_bytes(USER_PNG)
    (figures / "elbow_by_hand.png").write_bytes(USER_PNG)  # named like the report's
    for _ in range(2):
        build_report(root)
        assert (figures / "holiday.png").read_bytes() == USER_PNG
        assert (figures / "elbow_by_hand.png").read_bytes() == USER_PNG
        err = capsys.readouterr().err
        assert "left elbow_by_hand.png" in err and "holiday" not in err
    assert set(_manifest(root)["reports"]["REPORT.md"]["figures"]) == {_figure("toy")}


def test_a_stale_figure_the_report_wrote_is_removed(root):
    build_report(root)
    assert (root / "report" / _figure("toy")).exists()
    build_report(_results(root, "other"))
    assert not (root / "report" / _figure("toy")).exists()
    assert (root / "report" / _figure("other")).exists()
    assert set(_manifest(root)["reports"]["REPORT.md"]["figures"]) == {_figure("other")}


def test_a_figure_the_user_changed_is_never_deleted_nor_silently_redrawn(root, capsys):
    build_report(root)
    mine = root / "report" / _figure("toy")
    mine.write_bytes(USER_PNG)
    with pytest.raises(OverwriteRefused, match=f"{mine}: changed since.*--force"):
        build_report(root)  # the same rows would redraw it
    assert mine.read_bytes() == USER_PNG
    build_report(_results(root, "other"))  # no longer drawn: stale, but changed
    assert mine.read_bytes() == USER_PNG
    assert f"kept {mine.name}" in capsys.readouterr().err
    build_report(_results(root, "toy"), force=True)
    assert mine.read_bytes() != USER_PNG


def test_a_users_file_at_out_is_refused_without_force(root, tmp_path):
    out = tmp_path / "notes" / "REPORT.md"
    out.parent.mkdir()
    out.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(OverwriteRefused, match=f"{out}: not written by `kmrec report`.*--force"):
        build_report(root, out)
    assert out.read_text(encoding="utf-8") == "my own notes\n"
    assert not (out.parent / "report").exists()  # refused before anything was written
    assert build_report(root, out, force=True) == out
    text = out.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    build_report(root, out)  # now it is the report's own
    assert out.read_text(encoding="utf-8") == text


def test_an_edited_report_is_refused_without_force(root):
    out = build_report(root)
    out.write_text(out.read_text(encoding="utf-8") + "\nMy remark.\n", encoding="utf-8")
    with pytest.raises(OverwriteRefused, match="changed since"):
        build_report(root)
    assert out.read_text(encoding="utf-8").endswith("My remark.\n")
    build_report(root, force=True)
    assert "My remark." not in out.read_text(encoding="utf-8")


def test_a_report_written_before_manifests_is_adopted(root, capsys):
    out = build_report(root)
    md, fig = out.read_bytes(), (root / "report" / _figure("toy")).read_bytes()
    (root / "report" / MANIFEST).unlink()
    (root / "report" / "elbow_old_toy_wcss.png").write_bytes(fig)  # no proof: left
    capsys.readouterr()
    build_report(root)
    assert out.read_bytes() == md and (root / "report" / _figure("toy")).read_bytes() == fig
    assert (root / "report" / "elbow_old_toy_wcss.png").exists()
    assert "left elbow_old_toy_wcss.png" in capsys.readouterr().err


def test_a_users_file_at_a_figures_name_is_refused(root):
    (root / "report").mkdir()
    mine = root / "report" / _figure("toy")
    mine.write_bytes(USER_PNG)
    with pytest.raises(OverwriteRefused, match=f"{mine}: not written by"):
        build_report(root)
    assert mine.read_bytes() == USER_PNG and not (root / "REPORT.md").exists()


def test_the_manifest_is_checked_and_names_no_file_outside_its_folder(root, tmp_path):
    out = build_report(root)
    victim = root / "victim.png"
    victim.write_bytes(USER_PNG)
    m = _manifest(root)
    m["reports"]["REPORT.md"]["figures"]["../victim.png"] = hashlib.sha256(USER_PNG).hexdigest()
    (root / "report" / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    build_report(root)
    assert victim.read_bytes() == USER_PNG
    (root / "report" / MANIFEST).write_text("[not json", encoding="utf-8")
    with pytest.raises(MalformedInput, match=f"{root / 'report' / MANIFEST}: not a kmrec "
                       "report manifest.*--force"):
        build_report(root)
    assert build_report(root, force=True) == out and _manifest(root)["reports"]


def test_cli_refuses_then_forces(root, tmp_path, capsys):
    out = tmp_path / "R.md"
    out.write_text("mine\n", encoding="utf-8")
    args = ["report", "--results", str(root), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"kmrec: error: refusing to overwrite {out}" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert main([*args, "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith(HEADER)


def test_the_stored_report_rebuilds_in_place(tmp_path):
    if not (REPO_RESULTS / "REPORT.md").exists():
        pytest.skip("no stored report in this checkout")
    root = tmp_path / "results"
    shutil.copytree(REPO_RESULTS, root, ignore=shutil.ignore_patterns(MANIFEST))
    before = {p.name for p in (root / "report").glob("*.png")}
    build_report(root)  # no manifest yet: the committed outputs carry the report's marker
    assert before <= {p.name for p in (root / "report").glob("*.png")}
    assert _manifest(root)["reports"]["REPORT.md"]["figures"]
