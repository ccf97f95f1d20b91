"""What extra coded bits cost a deployment: airtime and transmit energy per image on named uplinks.

A TX-only lower bound at the PHY bit rate: no headers, no MAC or protocol overhead, no
retransmissions, no radio wake-up or tail energy. Energy = TX current × supply voltage × airtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from erbench.leaderboard.aggregate import BLACKBOX, HEADLINE_EPS, HEADLINE_NORM, WORST_RATE
from erbench.leaderboard.boards import group

NORDIC = ("https://docs.nordicsemi.com/r/bundle/ps_nrf52840/page/_tmp/nrf52840/autodita/current/"
          "parameters.i_radio.html")
RAK = "https://docs.rakwireless.com/product-categories/software-apis-and-libraries/rui3/appendix/"
MICROCHIP = ("https://onlinedocs.microchip.com/oxy/GUID-BC5AB492-AA63-41E4-8A56-931408AA8F4F-en-US-1/"
             "GUID-798C30DB-83DA-4ED4-9D0A-5DF371351E60.html")


@dataclass(frozen=True)
class Source:
    text: str  # what the figure is
    url: str | None = None  # None: not read from a cited page
    assumption: str = ""  # non-empty: the figure is (partly) assumed, and why


@dataclass(frozen=True)
class Uplink:
    name: str
    rate_bps: float  # PHY bit rate, bit/s
    tx_current_a: float
    voltage_v: float
    rate_source: Source
    current_source: Source
    voltage_source: Source


_LORA_CURRENT = ("Microchip LoRa SiP data sheet, §7.4.1 Current Consumption: TX; European band, fRF = 868 MHz, "
                 "TX power setting = 15, PA = OFF; typ. 41.54 mA")
_LORA_VOLTAGE = Source("operating conditions of that current table: VDD = 3.3 V, 25 °C", MICROCHIP)
_EU868 = "LoRaWAN Regional Parameters, EU868 data rate table"

UPLINKS = (
    Uplink("BLE 1M PHY (nRF52840, 0 dBm)", 1_000_000, 6.40e-3, 3.0,
           Source("the 1 Mbps BLE mode of the nRF52840 radio", NORDIC),
           Source("Nordic nRF52840 Product Specification, current consumption, IRADIO_TX1: radio transmitting @ 0 dBm "
                  "output power, 1 Mbps BLE mode, Clock = HFXO, Regulator = DC/DC; typ. 6.40 mA", NORDIC),
           Source("nominal supply voltage", None, "assumed (3.0 V nominal); the cited page gives no voltage")),
    Uplink("LoRa EU868 DR5 (SF7, 125 kHz)", 5_470, 41.54e-3, 3.3,
           Source(f"{_EU868}: DR5 = LoRa SF7 / 125 kHz, indicative physical bit rate 5470 bit/s", RAK),
           Source(_LORA_CURRENT, MICROCHIP), _LORA_VOLTAGE),
    Uplink("LoRa EU868 DR0 (SF12, 125 kHz)", 250, 41.54e-3, 3.3,
           Source(f"{_EU868}: DR0 = LoRa SF12 / 125 kHz, indicative physical bit rate 250 bit/s", RAK),
           Source(_LORA_CURRENT, MICROCHIP, "assumed independent of the spreading factor: the data sheet gives the "
                  "TX current of the transceiver at this power setting, not per spreading factor"), _LORA_VOLTAGE),
)


@dataclass(frozen=True)
class Case:
    """What the cost view prices: a row column of extra bits per image, under one condition."""

    name: str
    short: str  # its column header under each uplink
    column: str
    optional: bool = False  # priced only when some entry has it (the black-box attack is erbench-v2's)


CASES = (Case("worst attack", "attack", "worst_extra_bits"),
         Case("black-box attack", "black-box", "blackbox_extra_bits", optional=True),
         Case("worst corruption", "corruption", "worst_corruption_extra_bits"))


def cases(rows: list[dict]) -> tuple[Case, ...]:
    """The cases to price: every required one, an optional one when some row has a value for it."""
    return tuple(c for c in CASES if not c.optional or any(not math.isnan(r[c.column]) for r in rows))


def airtime_s(bits: float, link: Uplink) -> float:
    return bits / link.rate_bps


def charge_c(bits: float, link: Uplink) -> float:
    return link.tx_current_a * airtime_s(bits, link)


def energy_j(bits: float, link: Uplink) -> float:
    return charge_c(bits, link) * link.voltage_v


def table(rows: list[dict]) -> pd.DataFrame:
    """One row per entry (by id) × case × uplink: the priced cell, its extra bits, airtime, charge, energy."""
    out, priced = [], cases(rows)
    for r in sorted(rows, key=lambda r: r["id"]):
        cells = {"worst attack": (WORST_RATE, None, HEADLINE_NORM, HEADLINE_EPS),
                 "black-box attack": (BLACKBOX.condition, None, HEADLINE_NORM, HEADLINE_EPS),
                 "worst corruption": (r["worst_corruption_condition"], r["worst_corruption_severity"], None, None)}
        for case in priced:
            condition, severity, norm, eps = cells[case.name]
            bits = r[case.column]
            out += [{"id": r["id"], "group": group(r), "protocol": r["protocol"], "case": case.name,
                     "condition": condition, "severity": severity, "norm": norm, "eps": eps, "extra_bits": bits,
                     "uplink": link.name, "rate_bps": link.rate_bps, "tx_current_a": link.tx_current_a,
                     "voltage_v": link.voltage_v, "airtime_s": airtime_s(bits, link), "charge_c": charge_c(bits, link),
                     "energy_j": energy_j(bits, link)} for link in UPLINKS]
    return pd.DataFrame(out).astype({"severity": "Int64"})
