"""The built site in a real headless Chromium: sorting, filtering, plotly figures, no console errors.

Needs /usr/bin/chromium and the playwright package (``.ci/install_browser.sh`` installs both; never
``playwright install``). Screenshots go to $ERBENCH_SCREENSHOT_DIR, else the test's tmp dir.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import threading
from pathlib import Path

import pytest

from erbench.leaderboard.site import build
from erbench.leaderboard.synthetic import synthetic_submission

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboard" / "results"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None,
    reason="needs /usr/bin/chromium and the playwright package: run `bash .ci/install_browser.sh`",
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _serve(site_dir: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    for i in range(6):
        drop = ("attack.worst",) if i == 4 else ()
        synthetic_submission(root / "results", f"entry_{i}", n_images=24, seed=i, drop=drop)
    build(root / "results", root / "site")
    yield from _serve(root / "site")


@pytest.fixture(scope="module")
def reference_site(tmp_path_factory):
    """The site of the committed reference results, as the Pages workflow builds it."""
    if not any(COMMITTED.glob("*/summary.parquet")):
        pytest.skip("no committed results under leaderboard/results")
    root = tmp_path_factory.mktemp("reference")
    build(COMMITTED, root / "site", ROOT / "submissions")
    yield from _serve(root / "site")


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("requestfailed", lambda r: page.errors.append(f"request failed: {r.url}"))
        yield page
        browser.close()


def _ids(page) -> list[str]:
    return page.locator("#board tbody tr:not([hidden]) td:nth-child(2) a").all_inner_texts()


def _bits(page) -> list[float]:
    return [float(v) for v in page.locator("#board tbody tr td:nth-child(9)").evaluate_all(
        "tds => tds.map(td => td.dataset.v)")]


def test_sort_filter_and_figures(site, page, tmp_path):
    shots = Path(os.environ.get("ERBENCH_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(f"{site}/index.html")
    page.wait_for_selector("#fig-rate-accuracy .main-svg")
    before = _ids(page)
    assert len(before) == 6

    header = page.locator('#board th[data-key="clean_bits_coded_mean"] button')
    header.click()
    assert page.locator('#board th[data-key="clean_bits_coded_mean"]').get_attribute("aria-sort") == "ascending"
    assert _bits(page) == sorted(_bits(page)) and _ids(page) != before
    header.click()
    assert _bits(page) == sorted(_bits(page), reverse=True)
    page.locator('#board th[data-key="worst_overhead"] button').click()
    assert _ids(page)[-1] == "entry_4"  # the missing value sorts last in both directions
    page.locator('#board th[data-key="worst_overhead"] button').click()
    assert _ids(page)[-1] == "entry_4"

    page.select_option('select[data-col="entropy_model"]', "hyperprior")
    shown = _ids(page)
    assert shown and len(shown) < 6
    families = page.locator("#board tbody tr:not([hidden]) td:nth-child(5)").all_inner_texts()
    assert set(families) == {"hyperprior"}
    assert page.locator("#shown").inner_text() == f"{len(shown)} of 6 shown"
    page.screenshot(path=str(shots / "leaderboard_index.png"), full_page=True)

    page.locator(f'#board a:text-is("{shown[0]}")').click()
    page.wait_for_url(f"**/s/{shown[0]}.html")
    figs = page.locator("[data-fig]")
    assert figs.count() == 7  # overhead + accuracy per norm (2), two heatmaps, bits distribution
    page.wait_for_function("document.querySelectorAll('[data-fig] svg.main-svg').length >= 7")
    for i in range(figs.count()):
        assert figs.nth(i).locator("svg.main-svg").count() >= 1
    assert page.locator("#fig-heat-overhead g.hm image").count() == 1  # the heatmap's raster
    page.screenshot(path=str(shots / "leaderboard_submission.png"), full_page=True)

    page.goto(f"{site}/protocol.html")
    assert page.locator("#aggregation ol li").count() >= 5
    page.screenshot(path=str(shots / "leaderboard_protocol.png"), full_page=True)
    assert page.errors == []


def test_the_committed_reference_results_render(reference_site, page, tmp_path):
    shots = Path(os.environ.get("ERBENCH_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    ids = sorted(p.name for p in COMMITTED.iterdir() if p.is_dir())
    page.goto(f"{reference_site}/index.html")
    page.wait_for_selector("#fig-rate-accuracy .main-svg")
    assert sorted(_ids(page)) == ids
    assert page.locator("#board tbody tr.incomplete, #board tbody tr.degenerate").count() == 0
    page.screenshot(path=str(shots / "reference_index.png"), full_page=True)
    page.goto(f"{reference_site}/s/{ids[0]}.html")
    page.wait_for_function("document.querySelectorAll('[data-fig] svg.main-svg').length >= 7")
    assert page.locator("text=erbench zoo train").count() >= 1  # metadata read from the YAML
    page.screenshot(path=str(shots / "reference_submission.png"), full_page=True)
    assert page.errors == []
