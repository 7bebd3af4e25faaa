"""Refused messages on the dashboard: a device's own on its page, all of them for operators."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

DEVICE = "cs-hackney-0001"


def _reasons(page: str, table: str) -> list[str]:
    body = re.search(rf'<table class="devices" id="{table}">(.*?)</table>', page, re.S)
    assert body is not None, f"no table {table}"
    return re.findall(r'<tr data-reason="([^"]+)">', body.group(1))


def test_a_devices_refused_messages_are_on_its_page_and_every_one_on_the_operators_page(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    page = client.get(f"/devices/{DEVICE}").text
    assert _reasons(page, "refused") == []
    assert "every message from this device was accepted" in page

    handler = IngestHandler(fleet_ctx.sessions)
    handler.handle(f"cs/v1/d/{DEVICE}/up", b"{not json")
    handler.handle(f"cs/v1/d/{DEVICE}/status", b'{"sv":1,"state":"dancing"}')
    handler.handle("cs/v1/d/cs-camden-0001/up", b"[]")
    handler.handle("somewhere/else", b"x")

    page = client.get(f"/devices/{DEVICE}").text
    assert _reasons(page, "refused") == ["bad_status", "malformed_json"]  # newest first
    assert "{not json" in page
    assert client.get("/rejects").status_code == 403  # fleet-wide: operators only
    assert 'href="/rejects"' not in page

    sign_in(client, "admin")
    everything = client.get("/rejects").text
    assert 'href="/rejects"' in everything
    assert _reasons(everything, "rejects") == [
        "unknown_topic",
        "not_senml",
        "bad_status",
        "malformed_json",
    ]
    assert _reasons(client.get("/rejects?reason=bad_status").text, "rejects") == ["bad_status"]
    mine = client.get(f"/rejects?device_id={DEVICE}").text
    assert _reasons(mine, "rejects") == ["bad_status", "malformed_json"]
