"""The device page's latest health reads in words and units, and faults say what to check."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.dashboard.health_view import fmt_duration, health_rows
from fleet.models import Device, Placement
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

DEVICE = "cs-hackney-0001"
# A battery node's snapshot as the ingest stores it: SenML numbers arrive as floats.
SNAPSHOT = {
    "uptime": 7500.0,
    "heap_free": 53056.0,
    "heap_min_free": 40960.0,
    "reset_cause": "watchdog",
    "wake_reason": "timer",
    "rssi": -74.0,
    "battery_voltage": 3.214,
    "battery": 87.0,
    "queue_depth": 1.0,
    "evicted": 1234.0,
    "reconnects": 3.0,
    "sensor_faults": "",
    "clock_synced": False,
    "fw_version": "0.2.0",
    "config_version": 4.0,
}


def _health(page: str) -> dict[str, tuple[str, str]]:
    """wire name -> (label, text) as the page lists them."""
    found = re.findall(r'<dt data-name="([^"]+)">([^<]*)</dt><dd>([^<]*)</dd>', page)
    return {name: (label, text) for name, label, text in found}


def _set_health(ctx: FleetContext, health: dict[str, object]) -> None:
    with ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        device.health = health


def test_health_reads_in_words_and_units(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    _set_health(fleet_ctx, {**SNAPSHOT, "added_later": "x"})
    sign_in(client, "staff_hackney")
    health = _health(client.get(f"/devices/{DEVICE}").text)
    assert health == {
        "sensor_faults": ("Sensor faults", "none"),
        "fw_version": ("Firmware", "0.2.0"),
        "config_version": ("Configuration version", "4"),
        "uptime": ("Up for", "2 h 5 min"),
        "reset_cause": ("Last reset", "the watchdog reset it (the app hung)"),
        "wake_reason": ("Wake reason", "timer"),
        "rssi": ("Wi-Fi signal", "-74 dBm (weak)"),
        "battery": ("Battery", "87 %"),
        "battery_voltage": ("Battery voltage", "3.21 V"),
        "queue_depth": ("Waiting to send", "1 reading"),
        "evicted": ("Dropped (queue full or time unknown)", "1,234 readings"),
        "reconnects": ("Reconnects", "3"),
        "clock_synced": ("Clock", "not yet set by NTP"),
        "heap_free": ("Free memory", "51.8 KB"),
        "heap_min_free": ("Lowest free memory since boot", "40.0 KB"),
        # A name this fleet does not know yet is still shown, as it came.
        "added_later": ("added_later", "x"),
    }


def test_sensor_faults_on_the_device_page_say_what_to_check(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    _set_health(fleet_ctx, {"sensor_faults": "sht4x:bus", "uptime": 120})
    sign_in(client, "staff_hackney")
    health = _health(client.get(f"/devices/{DEVICE}").text)
    assert health["sensor_faults"] == (
        "Sensor faults",
        "sht4x: its bus did not start: check the board profile&#39;s pins and the wiring",
    )
    assert health["uptime"] == ("Up for", "2 min")


def test_unknown_codes_and_unexpected_types_are_shown_as_they_came() -> None:
    rows = health_rows(
        {"reset_cause": "brownout2", "uptime": "soon", "clock_synced": 1, "rssi": True}
    )
    assert [(r.name, r.label, r.text) for r in rows] == [
        ("reset_cause", "Last reset", "brownout2"),
        ("clock_synced", "clock_synced", "1"),
        ("rssi", "rssi", "True"),
        ("uptime", "uptime", "soon"),
    ]


def test_durations_keep_their_two_largest_units() -> None:
    assert [fmt_duration(s) for s in (0, 59.9, 60, 3599, 3600, 86399, 86400 * 3 + 7200)] == [
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h 0 min",
        "23 h 59 min",
        "3 d 2 h",
    ]


def test_the_device_page_links_to_the_home_it_is_installed_in(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    page = client.get(f"/devices/{DEVICE}").text
    installed = re.search(r'<dd id="installed">(.*?)</dd>', page)
    assert installed is not None
    with fleet_ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        home = s.get(Placement, device.placement_id).property_id  # type: ignore[union-attr]
        assert installed.group(1) == (
            f'<a href="/registry/properties/{home}">HACKNEY-0001</a>, bathroom'
            f' · <a href="/risk/properties/{home}">risk</a>'
        )
        device.placement_id = None
    page = client.get(f"/devices/{DEVICE}").text
    assert '<dd id="installed">not installed in a property</dd>' in page
