"""The cost view: the uplink figures as cited, and every entry's extra airtime and energy per image on the
page, recomputed here by hand from the committed Parquet tables."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from erbench.leaderboard import cost
from erbench.leaderboard.aggregate import load, records, summarize
from erbench.leaderboard.site import build, render
from erbench.leaderboard.synthetic import synthetic_submission
from erbench.results import read_results

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboard" / "results"
IDS = sorted(p.name for p in COMMITTED.iterdir() if (p / "summary.parquet").is_file()) if COMMITTED.is_dir() else []
V2 = ROOT / "leaderboard" / "results-v2"  # erbench-v2, with the black-box attack (until it becomes results/)
V2_IDS = sorted(p.name for p in V2.iterdir() if (p / "summary.parquet").is_file()) if V2.is_dir() else []
NORDIC = ("https://docs.nordicsemi.com/r/bundle/ps_nrf52840/page/_tmp/nrf52840/autodita/current/"
          "parameters.i_radio.html")
RAK = "https://docs.rakwireless.com/product-categories/software-apis-and-libraries/rui3/appendix/"
MICROCHIP = ("https://onlinedocs.microchip.com/oxy/GUID-BC5AB492-AA63-41E4-8A56-931408AA8F4F-en-US-1/"
             "GUID-798C30DB-83DA-4ED4-9D0A-5DF371351E60.html")
# (name, bit/s, A, V), typed from the cited pages (the BLE voltage is the page's stated assumption)
LINKS = (("BLE 1M PHY (nRF52840, 0 dBm)", 1_000_000, 0.00640, 3.0),
         ("LoRa EU868 DR5 (SF7, 125 kHz)", 5_470, 0.04154, 3.3),
         ("LoRa EU868 DR0 (SF12, 125 kHz)", 250, 0.04154, 3.3))
PREFIX = {"": 1.0, "m": 1e-3, "µ": 1e-6, "n": 1e-9}


def test_uplinks_are_the_cited_figures():
    assert [(u.name, u.rate_bps, u.tx_current_a, u.voltage_v) for u in cost.UPLINKS] == list(LINKS)
    ble, dr5, dr0 = cost.UPLINKS
    assert ble.rate_source.url == ble.current_source.url == NORDIC and "6.40 mA" in ble.current_source.text
    assert ble.voltage_source.url is None and ble.voltage_source.assumption  # 3.0 V is assumed, not cited
    for lora in (dr5, dr0):
        assert lora.rate_source.url == RAK and lora.current_source.url == lora.voltage_source.url == MICROCHIP
        assert "41.54 mA" in lora.current_source.text and "3.3 V" in lora.voltage_source.text
    assert "spreading factor" in dr0.current_source.assumption and not dr5.current_source.assumption
    assert cost.airtime_s(5_470, dr5) == 1.0 and cost.energy_j(1_000_000, ble) == pytest.approx(0.0064 * 3.0)
    assert cost.charge_c(250, dr0) == pytest.approx(0.04154)


def _site(tmp_path_factory, results: Path, ids: list[str]) -> Path:
    if not ids:
        pytest.skip(f"no committed results under {results.relative_to(ROOT)}")
    out = tmp_path_factory.mktemp(results.name) / "site"
    build(results, out)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return _site(tmp_path_factory, COMMITTED, IDS)


def _by_hand(sid: str, root: Path = COMMITTED) -> dict:
    """Extra coded bits per image from the per-image table: the headline worst-rate row, the black-box attack at the
    same budget, and the corruption cell (severity, no-op cells, whose every image is unchanged, left out) with the
    most mean coded bits."""
    per = pd.read_parquet(root / sid / "per_image.parquet",
                          columns=["condition", "kind", "severity", "norm", "eps", "bits_coded", "perturbation_linf"])
    clean = per.loc[per["condition"] == "clean", "bits_coded"].mean()
    headline = (per["norm"] == "linf") & np.isclose(per["eps"].astype(float), 8 / 255)
    attack = per[(per["condition"] == "attack.worst_rate") & headline]
    blackbox = per[(per["condition"] == "attack.blackbox_rate") & headline]
    corr = per[per["kind"] == "corruption"].groupby(["condition", "severity"]).agg(
        bits=("bits_coded", "mean"), moved=("perturbation_linf", "max"))
    corr = corr[corr["moved"] > 0]
    condition, severity = corr["bits"].idxmax()
    return {"worst attack": attack["bits_coded"].mean() - clean, "worst corruption": corr["bits"].max() - clean,
            "black-box attack": blackbox["bits_coded"].mean() - clean,
            "cell": f"{condition.removeprefix('corruption.')} · severity {int(severity)}"}


def _shown(text: str) -> tuple[float, float]:
    """A printed figure, e.g. '+84.5 µs', as (value in base units, half its last digit)."""
    number, unit = re.fullmatch(r"([+-]?[\d,]+(?:\.(\d+))?)(?: (\S+))?", text.strip()).group(1, 3)
    decimals = len(number.partition(".")[2])
    scale = PREFIX[unit[:-1] if unit and len(unit) > 1 else ""]
    return float(number.replace(",", "")) * scale, 0.5 * 10 ** -decimals * scale * (1 + 1e-9)


def _cells(page: str, sid: str) -> dict[tuple, tuple[str, str]]:
    """(case, uplink or None) -> (main text, small text) of one entry's row."""
    row = re.search(rf'<tr data-id="{re.escape(sid)}">(.*?)</tr>', page, re.S).group(1)
    out = {}
    for case, uplink, body in re.findall(r'<td class="num[^"]*" data-case="([^"]+)"(?: data-uplink="([^"]+)")?>'
                                         r"(.*?)</td>", row, re.S):
        main, _, small = body.partition("<small>")
        out[case, html.unescape(uplink) or None] = (html.unescape(main), html.unescape(small.removesuffix("</small>")))
    return out


def _priced(root: Path) -> tuple[str, ...]:
    """The cases a site of these results prices: the black-box attack when some entry has its rows."""
    blackbox = any((pd.read_parquet(d / "summary.parquet", columns=["condition"])["condition"]
                    == "attack.blackbox_rate").any() for d in root.iterdir() if (d / "summary.parquet").is_file())
    return ("worst attack", *(("black-box attack",) if blackbox else ()), "worst corruption")


def _check_row(site: Path, sid: str, root: Path, priced: tuple[str, ...]) -> None:
    page = (site / "cost.html").read_text(encoding="utf-8")
    expected = _by_hand(sid, root)
    cells = _cells(page, sid)
    assert {case for case, _ in cells} == set(priced) and len(cells) == len(priced) * (1 + len(LINKS))
    table = pd.read_csv(site / "data" / "cost.csv")
    assert set(table["case"]) == set(priced)
    for case in priced:
        bits = expected[case]
        main, small = cells[case, None]
        assert abs(float(main.replace(",", "")) - bits) <= 0.5, (case, main, bits)
        if case == "worst corruption":
            assert small == expected["cell"]
        for name, rate, current, volts in LINKS:
            airtime, energy = bits / rate, current * volts * bits / rate
            for text, value in zip(cells[case, name], (airtime, energy)):
                shown, tol = _shown(text)
                assert abs(shown - value) <= tol, (case, name, text, value)
            row = table[(table["id"] == sid) & (table["case"] == case) & (table["uplink"] == name)]
            assert len(row) == 1
            assert row.iloc[0][["extra_bits", "airtime_s", "energy_j"]].tolist() == pytest.approx(
                [bits, airtime, energy], rel=1e-9)


@pytest.mark.parametrize("sid", IDS)
def test_the_page_shows_the_figures_recomputed_by_hand(site, sid):
    _check_row(site, sid, COMMITTED, _priced(COMMITTED))


@pytest.fixture(scope="module")
def v2_site(tmp_path_factory):
    return _site(tmp_path_factory, V2, V2_IDS)


@pytest.mark.parametrize("sid", V2_IDS)
def test_erbench_v2_prices_the_black_box_attack_too(v2_site, sid):
    assert "black-box attack" in _priced(V2)
    _check_row(v2_site, sid, V2, _priced(V2))


def test_the_page_cites_its_sources_and_keeps_the_board_order(site):
    page = (site / "cost.html").read_text(encoding="utf-8")
    for url in (NORDIC, RAK, MICROCHIP):
        assert f'href="{url}"' in page, url
    text = " ".join(page.split())
    assert "no retransmissions" in text and "wake-up" in text and text.count('class="tag warn">assumed') == 2
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="cost.html"' in index
    order = re.compile(r'<tr data-id="([^"]+)"')
    assert order.findall(page) == order.findall(index) and len(order.findall(page)) == len(IDS)


def test_worst_corruption_skips_noop_cells_and_needs_every_cell(tmp_path):
    synthetic_submission(tmp_path, "x", n_images=8, seed=0)
    summary, images = read_results(tmp_path / "x")
    corr = summary[summary["kind"] == "corruption"]
    top = corr["extra_bits"].idxmax()
    second = corr["extra_bits"].drop(top).idxmax()
    row = summarize("x", records(summary), images).row
    assert (row["worst_corruption_condition"], row["worst_corruption_severity"]) == tuple(
        summary.loc[top, ["condition", "severity"]])
    assert row["worst_corruption_extra_bits"] == summary.loc[top, "extra_bits"]
    row = summarize("x", records(summary.assign(noop=summary.index == top)), images).row
    assert row["worst_corruption_extra_bits"] == summary.loc[second, "extra_bits"]
    row = summarize("x", records(summary[summary["condition"] != "corruption.fog"]), images).row
    assert row["worst_corruption_condition"] is None and np.isnan(row["worst_corruption_extra_bits"])


def test_a_falling_rate_is_shown_as_a_saving(tmp_path):
    synthetic_submission(tmp_path, "x", n_images=8, seed=0)
    entry = load(tmp_path)[0]
    entry.row["worst_corruption_extra_bits"] = -120.0
    page = render([entry])["cost.html"]
    cells = _cells(page, "x")
    assert cells["worst corruption", None][0] == "-120"
    assert cells["worst corruption", LINKS[1][0]] == ("-21.9 ms", "-3.01 mJ")  # 120 bits / 5470 bit/s
    assert page.count('class="num saving"') == 1 + len(LINKS)
