"""``kmrec report --html``: one page from stored rows only, opening without a network, its
plots rendered and its table filtered in a real (headless) browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from kmrec_gpu.report.build import OverwriteRefused
from kmrec_gpu.report.html import build_html, pareto_front
from tests.test_report import make_fake_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def fake_results(tmp_path):
    return make_fake_results(tmp_path / "results")


def test_the_page_is_self_contained_and_drawn_from_the_rows(fake_results):
    page = build_html(fake_results)
    text = page.read_text(encoding="utf-8")
    assert page == fake_results / "report.html"
    # plotly's JavaScript is inside; nothing is fetched
    assert "Plotly" in text and not re.search(r"<script[^>]+src=", text)
    assert "t-2-accuracy" in text and "not reproduced" in text  # the claims
    assert "toy: held-out RMSE against fit time" not in text  # no fit rows for 'toy'
    assert "fit time against ratings" in text  # the scale series
    assert text.count("<tr>") - 1 >= 7  # the row table (the fake rows' fit/evaluate rows)


def test_a_page_it_did_not_write_is_left_alone(fake_results):
    mine = fake_results / "report.html"
    mine.write_text("<html>my notes</html>")
    with pytest.raises(OverwriteRefused, match="not a page"):
        build_html(fake_results)
    assert mine.read_text() == "<html>my notes</html>"
    build_html(fake_results, force=True)
    build_html(fake_results)  # its own page: rewritten without --force


def test_the_pareto_front_keeps_the_points_nothing_beats():
    pts = [{"fit_s": 1.0, "rmse": 0.95}, {"fit_s": 2.0, "rmse": 0.90},
           {"fit_s": 3.0, "rmse": 0.93}, {"fit_s": 0.5, "rmse": 1.0}]
    assert [p["fit_s"] for p in pareto_front(pts)] == [0.5, 1.0, 2.0]


def _dom(url: str) -> str:
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--virtual-time-budget=8000", "--dump-dom", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("KMREC_REQUIRE_BROWSER"),
                    reason="no chromium on this machine (apt-get install chromium); CI "
                    "installs it and sets KMREC_REQUIRE_BROWSER=1")
def test_in_a_browser_the_plots_render_and_the_table_filters(fake_results):
    assert CHROMIUM, "KMREC_REQUIRE_BROWSER is set but chromium is not installed"
    page = build_html(fake_results).resolve()
    dom = _dom(page.as_uri())
    assert dom.count('class="main-svg"') >= 2  # plotly drew its figures
    assert "kmeans-liked [numpy" in dom  # a legend entry of the scale plot
    total = int(re.search(r'<span id="shown">(\d+)</span>', dom).group(1))
    # the filter (from the address, as the box's input handler applies it): torch rows only
    dom = _dom(page.as_uri() + "#filter=torch%20fit")
    shown = int(re.search(r'<span id="shown">(\d+)</span>', dom).group(1))
    table = dom.split('<table id="rows">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr( style=\"display: none;\")?><td>", table)
    visible = [r for r in rows if not r]
    assert 0 < shown < total == len(rows) and len(visible) == shown
    for tr in re.findall(r"<tr><td>(.*?)</tr>", table):
        assert "torch" in tr and "fit" in tr
