"""The fleet's ingest accepts device OTA reports (`ota/progress`) and refuses malformed ones."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.models import Device, RejectedMessage
from tests.contracts.schemas import schema_for_topic_leaf

TOPIC = "cs/v1/d/cs-ota-0001/ota/progress"
GOOD = {
    "sv": 1,
    "id": "r1-7",
    "kind": "app",
    "version": "0.2.0",
    "state": "downloading",
    "pct": 40,
    "app": "0.1.0",
}


@pytest.fixture
def handler(fleet_ctx: FleetContext) -> IngestHandler:
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-ota-0001"))
    return IngestHandler(fleet_ctx.sessions)


def test_a_progress_report_is_accepted_and_marks_the_device_seen(
    handler: IngestHandler,
    fleet_ctx: FleetContext,
) -> None:
    schema_for_topic_leaf("ota/progress").validate(GOOD)
    outcome = handler.handle(TOPIC, json.dumps(GOOD).encode())
    assert outcome.action == "stored"
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(Device.last_seen_at)).one() is not None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        json.dumps({**GOOD, "sv": 9}).encode(),
        json.dumps({**GOOD, "state": "exploded"}).encode(),
        json.dumps({k: v for k, v in GOOD.items() if k != "app"}).encode(),
        # Outside the schema's 0..100; a huge one once reached an integer column and failed
        # its batch on PostgreSQL on every retry.
        json.dumps({**GOOD, "pct": 99_999_999_999}).encode(),
        json.dumps({**GOOD, "pct": -1}).encode(),
        json.dumps({**GOOD, "pct": 50.5}).encode(),
    ],
)
def test_a_malformed_report_is_rejected_with_a_reason(
    handler: IngestHandler,
    fleet_ctx: FleetContext,
    payload: bytes,
) -> None:
    outcome = handler.handle(TOPIC, payload)
    assert outcome.action == "rejected"
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(RejectedMessage.topic)).all() == [TOPIC]
