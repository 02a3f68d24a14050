"""One path for every number: the committed ``results/claims.json`` is what ``kmrec claims``
builds from the committed rows, and the README, ``REPORT.md`` and the rows say the same
figure for every model name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kmrec_gpu.claims import build_claims, load_claims
from kmrec_gpu.claims.render import readme_block, summary_table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


def committed_runs(dest: Path) -> Path:
    """The committed row files only: CI's own `make run` / `make check` rows (same cells,
    newer files) must not change what the committed claims cite."""
    out = subprocess.run(["git", "ls-files", "results/runs"], cwd=REPO, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        pytest.skip("not a git checkout with committed rows")
    (dest / "runs").mkdir(parents=True)
    for name in out.stdout.split():
        shutil.copy2(REPO / name, dest / "runs" / Path(name).name)
    return dest


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    root = committed_runs(tmp_path_factory.mktemp("results"))
    path, claims = build_claims(root, root / "claims.json")
    return path, claims


def test_claims_json_is_rebuilt_from_the_rows_without_a_change(rebuilt):
    path, _ = rebuilt
    assert path.read_text(encoding="utf-8") == (RESULTS / "claims.json").read_text(
        encoding="utf-8"), "results/claims.json differs from `kmrec claims` over the rows"


def test_every_claim_has_the_fields_a_reviewer_needs():
    claims = load_claims(RESULTS / "claims.json")
    assert {c["verdict"] for c in claims} <= {"reproduced", "not reproduced", "inconclusive",
                                              "unsupported", "no claim"}
    for c in claims:
        for k in ("conclusion", "conclusion_holds", "context", "evidence"):
            assert k in c
        assert any(e.startswith("kmrec claims run --only") for e in c["evidence"])
        assert c["verdict"] == "no claim" or any(e.startswith("runs/") for e in c["evidence"])


def test_readme_and_report_show_the_same_claims_table():
    claims = load_claims(RESULTS / "claims.json")
    table = summary_table(claims)
    assert readme_block(REPO / "README.md") == table, \
        "README's claims table is stale: run `kmrec claims --readme README.md`"
    assert table in (RESULTS / "REPORT.md").read_text(encoding="utf-8"), \
        "REPORT.md's claims table is stale: run `kmrec report`"


def _report_lines(md: str) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 8:
            # the dataset column is its label: the name, then the checksum's first digits
            out.setdefault((cells[0].split(" ")[0], cells[1]), []).append(line)
    return out


_FIGURE = re.compile(r"(\d\.\d{4}) \[(\d\.\d{4}), (\d\.\d{4})\]")


def _same_figure(want: tuple[float, ...], got: tuple[str, ...]) -> bool:
    """The report prints 4 decimals of the full value, claims.json keeps 6: the two can
    round a last digit apart (0.964050308 shows 0.9641, its stored 0.96405 0.9640)."""
    return all(abs(w - float(g)) <= 0.5e-4 + 1e-6 for w, g in zip(want, got))


def test_every_held_out_figure_agrees_with_the_report():
    md = (RESULTS / "REPORT.md").read_text(encoding="utf-8")
    lines = _report_lines(md)
    checked = 0
    for c in load_claims(RESULTS / "claims.json"):
        for f in [*c["figures"], *c["comparison"], *c["context"]]:
            if f["kind"] != "held-out" or f["metric"] not in ("rmse", "ndcg@10"):
                continue
            want = (f["value"], f["ci_low"], f["ci_high"])
            shown = "{:.4f} [{:.4f}, {:.4f}]".format(*want)
            found = [ln for ln in lines.get((f["dataset"], f["model"]), [])
                     if any(_same_figure(want, got) for got in _FIGURE.findall(ln))]
            assert found, (f"{c['id']}: {f['model']} on {f['dataset']} is {shown} in "
                           "claims.json but no REPORT.md line shows it")
            checked += 1
    assert checked >= 10


def test_readme_states_no_claim_figure_the_claims_do_not():
    """A held-out figure quoted in the README's claims section is one claims.json has."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The claims"):]
    section = section[:section.index("\n## ", 4)]
    values = {f"{f[k]:.4f}" for c in load_claims(RESULTS / "claims.json")
              for f in [*c["figures"], *c["comparison"], *c["context"],
                        *c["conclusion_evidence"], *c["tuned_evidence"]]
              for k in ("value", "ci_low", "ci_high", "difference") if k in f}
    values |= {f"{abs(f[k]):.4f}" for c in load_claims(RESULTS / "claims.json")
               for f in [*c["conclusion_evidence"], *c["tuned_evidence"]]
               for k in ("difference", "ci_low", "ci_high")}
    for c in load_claims(RESULTS / "claims.json"):  # the claimed figures and margins
        values |= {f"{v:.4f}" for v in (c["claimed"], c["margin"], *c["claimed_all"].values())
                   if v is not None}
    quoted = set(re.findall(r"(?<![\d.])0\.\d{4}(?!\d)", section))
    assert quoted <= values, f"README quotes figures claims.json does not have: {quoted - values}"
