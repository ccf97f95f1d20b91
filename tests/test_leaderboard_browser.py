"""The built site in a real headless Chromium at 1440 x 900 and 390 x 844: sorting, filtering (table and
plot), the view in the URL, no sideways scroll, a header that stays, downloads, no console error, no
external request.

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


TV = "likelihood_tv(weight=0.1,iterations=100,step=0.25,object_weight=0.1)"
REPO = "https://github.com/example/erbench"
PAGES = ("index.html", "blackbox.html", "corruptions.html", "classification.html", "cost.html",
         "compare.html?ids=entry_0,entry_1", "protocol.html", "data.html", "submit.html", "s/entry_1_tv.html")
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """erbench-v2 synthetic board: six entries (entry_4 without its worst-case rows), a defended entry on
    entry_1's weights and a quick-protocol entry."""
    root = tmp_path_factory.mktemp("browser")
    for i in range(6):
        drop = ("attack.worst",) if i == 4 else ()
        synthetic_submission(root / "results", f"entry_{i}", n_images=24, seed=i, drop=drop)
    synthetic_submission(root / "results", "entry_1_tv", n_images=24, seed=11, weights_seed=1, defense=TV)
    synthetic_submission(root / "results", "entry_q", n_images=24, seed=7, protocol="erbench-v2-quick")
    build(root / "results", root / "site", repo_url=REPO, guide=ROOT / "CONTRIBUTING.md")
    yield from _serve(root / "site")


@pytest.fixture(scope="module")
def reference_site(tmp_path_factory):
    """The site of the committed reference results, as the Pages workflow builds it."""
    if not any(COMMITTED.glob("*/summary.parquet")):
        pytest.skip("no committed results under leaderboard/results")
    root = tmp_path_factory.mktemp("reference")
    build(COMMITTED, root / "site", ROOT / "submissions")
    yield from _serve(root / "site")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def _page(browser, width=1440, height=900):
    """A page that records console errors and failed requests and blocks (and records) any request
    that leaves the local server."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("requestfailed", lambda r: page.errors.append(f"request failed: {r.url}"))

    def guard(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            page.errors.append(f"external request: {route.request.url}")
            route.abort()

    page.route("**/*", guard)
    return page


@pytest.fixture
def page(browser):
    page = _page(browser)
    yield page
    page.close()


def _ids(page) -> list[str]:
    return page.locator("#board tbody tr:not([hidden]) td.sub > a").all_inner_texts()


def _values(page, key: str) -> list[float]:
    """The data-v of column ``key`` in the first group (groups sort on their own)."""
    i = page.locator("#board thead th").evaluate_all(f"ths => ths.findIndex(th => th.dataset.key === '{key}')")
    return [float(v) for v in page.locator(f'#board tbody[data-group="main"] tr td:nth-child({i + 1})').evaluate_all(
        "tds => tds.map(td => td.dataset.v)") if v]


def _shots(tmp_path) -> Path:
    shots = Path(os.environ.get("ERBENCH_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _points(page, fig: str = "ranking") -> int:
    return page.locator(f"#fig-{fig} .scatterlayer .point").count()


def test_sort_filter_and_figures(site, page, tmp_path):
    page.goto(f"{site}/index.html")
    page.wait_for_selector("#fig-rate-accuracy .main-svg")
    before = _ids(page)
    assert len(before) == 8 and page.locator('tbody[data-group="main"] tr').count() == 5
    assert page.locator('tbody[data-group="defended"] tr a[href="s/entry_1.html"]').count() == 1  # the base link

    header = page.locator('#board th[data-key="clean_bits_coded_mean"] button')
    header.click()
    assert page.locator('#board th[data-key="clean_bits_coded_mean"]').get_attribute("aria-sort") == "ascending"
    bits = _values(page, "clean_bits_coded_mean")
    assert bits == sorted(bits) and _ids(page) != before
    header.click()
    assert _values(page, "clean_bits_coded_mean") == sorted(bits, reverse=True)
    page.locator('#board th[data-key="ce_accuracy"] button').click()  # higher is better: first click descending
    assert page.locator('#board th[data-key="ce_accuracy"]').get_attribute("aria-sort") == "descending"
    assert _values(page, "ce_accuracy") == sorted(_values(page, "ce_accuracy"), reverse=True)
    page.locator('#board th[data-key="worst_overhead"] button').click()  # lower is better: ascending
    assert page.locator('#board th[data-key="worst_overhead"]').get_attribute("aria-sort") == "ascending"
    assert _ids(page)[-1] == "entry_4"  # the incomplete entry stays in its own group, last

    page.fill("#search", "quick")  # a status tag: search reads ids and titles only
    assert _ids(page) == []
    page.fill("#search", "")
    points = _points(page)
    page.select_option('select[data-col="entropy_model"]', "hyperprior")
    shown = _ids(page)
    assert shown and len(shown) < 8
    families = page.locator("#board tbody tr:not([hidden]) td:nth-child(10)").all_inner_texts()
    assert set(families) == {"hyperprior"}
    assert page.locator("#shown").inner_text() == f"{len(shown)} of 8 shown"
    assert _points(page) < points  # the filter drives the plot too
    assert page.locator("select[data-col=defense_name] option").all_inner_texts() == ["all", "likelihood_tv", "none"]

    page.locator(f'#board tr[data-id="{shown[0]}"] td.sub > a').click()
    page.wait_for_url(f"**/s/{shown[0]}.html")
    figs = page.locator("[data-fig]")
    assert figs.count() == 7  # overhead + accuracy per norm (2), two heatmaps, bits distribution
    page.wait_for_function("document.querySelectorAll('[data-fig] svg.main-svg').length >= 7")
    for i in range(figs.count()):
        assert figs.nth(i).locator("svg.main-svg").count() >= 1
    assert page.locator("#fig-heat-overhead g.hm image").count() == 1  # the heatmap's raster
    assert page.locator("details.figdata table").count() == 7  # a data table beside each plot, the histogram too
    assert page.errors == []


def test_a_shared_url_restores_the_view(site, browser):
    first = _page(browser)
    first.goto(f"{site}/corruptions.html")
    first.select_option('select[data-col="entropy_model"]', "factorized")
    first.locator('#board th[data-key="clean_accuracy"] button').click()
    first.locator('input.pick[value="entry_0"]').check()
    first.locator('input.pick[value="entry_2"]').check()
    url, ids = first.url, _ids(first)
    assert "sort=clean_accuracy%3Adesc" in url and "entropy_model=factorized" in url
    compare = first.locator("#compare-link").get_attribute("href")
    assert compare.endswith("compare.html?ids=entry_0,entry_2")
    first.close()
    second = _page(browser)
    second.goto(url)
    assert second.locator('select[data-col="entropy_model"]').input_value() == "factorized"
    assert second.locator('#board th[data-key="clean_accuracy"]').get_attribute("aria-sort") == "descending"
    assert _ids(second) == ids and second.locator("input.pick:checked").count() == 2
    second.goto(compare)
    second.wait_for_function("document.querySelectorAll('#compare-figs svg.main-svg').length >= 4")
    assert second.locator("#compare-chips li").all_inner_texts() == ["entry_0 ×", "entry_2 ×"]
    assert second.locator("#cmp-overhead-linf .scatterlayer .trace").count() == 2
    assert second.locator("#compare-table tbody tr").count() > 19
    assert second.errors == []
    second.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_page_fits_and_keeps_its_header(site, browser, viewport, tmp_path):
    """No sideways scroll, the header in view after scrolling, no console error, no external request."""
    width, height = VIEWPORTS[viewport]
    page = _page(browser, width, height)
    for rel in PAGES:
        page.goto(f"{site}/{rel}")
        page.wait_for_load_state("load")
        if page.locator("[data-fig]").count():
            page.wait_for_selector("[data-fig] .main-svg")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, rel
        name = rel.split("?")[0].replace("/", "_").removesuffix(".html")
        page.screenshot(path=str(_shots(tmp_path) / f"{viewport}_{name}.png"))
        assert page.locator(".top a.submit").is_visible() and page.locator(f'.top a[href="{REPO}"]').is_visible()
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(100)
        assert page.locator(".top").bounding_box()["y"] == 0, rel  # the header stays in view
    page.goto(f"{site}/index.html")
    metric = page.locator('#board tbody[data-group="main"] tr td.key').first.bounding_box()
    assert metric["x"] + metric["width"] <= width and metric["y"] + metric["height"] <= height  # on the first screen
    page.locator("#board-wrap").evaluate("el => el.scrollTop = 400")
    head, wrap = (page.locator(s).first.bounding_box() for s in ("#board thead th", "#board-wrap"))
    assert abs(head["y"] - wrap["y"]) < 2  # the column header sticks to the top of the scrolled table
    tags = page.locator(".tag").evaluate_all("""els => els.map(el => {
        const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
          .map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
        const lum = s => { const [r, g, b] = rgb(s); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const st = getComputedStyle(el), a = lum(st.color), b = lum(st.backgroundColor);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); })""")
    assert tags and min(tags) >= 4.5  # WCAG AA for the status pills
    assert page.errors == []
    page.close()


def test_every_download_link_resolves(site, page):
    page.goto(f"{site}/data.html")
    links = page.locator("a[download]").evaluate_all("as => as.map(a => a.href)")
    page.goto(f"{site}/s/entry_1_tv.html")
    links += page.locator("a[download]").evaluate_all("as => as.map(a => a.href)")
    assert len(links) == 3 * 8 + 4 + 3  # per entry 3, the board 4 (cost.csv too), the entry page 3
    for url in links:
        body = page.request.get(url).body()
        if url.endswith(".parquet"):
            assert body[:4] == body[-4:] == b"PAR1", url
        else:
            assert body.decode().splitlines()[0].startswith(("submission_id,", "id,")), url
    assert "@inproceedings{zhang2024resilience" in page.goto(f"{site}/data.html").text()
    assert page.errors == []


def test_the_committed_reference_results_render(reference_site, page, tmp_path):
    shots = _shots(tmp_path)
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
