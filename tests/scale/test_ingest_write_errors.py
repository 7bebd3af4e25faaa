"""A batch write that fails inside the driver is retried; it never stops a writer lane."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, insert, select, text

from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.ingest.profile import base_name, device_topic
from fleet.loadgen import harness, payloads
from fleet.loadgen.fleetdb import register_devices
from fleet.loadgen.infra import PrivateMosquitto
from fleet.models import Device, Reading, RejectedMessage
from tests.fleet.packs import telemetry
from tests.scale.conftest import worker_for

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(120)]

# Fails the first readings insert and lets every later one through. A sequence, because
# its counter survives the rollback of the failed batch (a flag row would be rolled back).
_FAIL_ONCE = """
CREATE SEQUENCE ingest_fail_once;
CREATE FUNCTION ingest_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('ingest_fail_once') = 1 THEN
    RAISE EXCEPTION 'injected failure of a readings insert';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ingest_fail_once BEFORE INSERT ON readings
  FOR EACH STATEMENT EXECUTE FUNCTION ingest_fail_once();
"""


def test_a_driver_error_mid_batch_is_retried_and_loses_nothing(
    fleet_db: FleetContext, broker: PrivateMosquitto
) -> None:
    ids = [f"cs-retry-{i:02d}" for i in range(5)]
    register_devices(fleet_db.sessions, ids)
    with fleet_db.sessions.begin() as session:
        session.execute(text(_FAIL_ONCE))
    worker = worker_for(fleet_db, broker, writers=1)
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="retry-sender")
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    try:
        # The insert runs through psycopg directly (COPY and the bulk insert), so the
        # failure arrives as the driver's exception, not one SQLAlchemy wrapped.
        now = float(int(time.time()))
        rng = random.Random(3)
        for n, device in enumerate(ids):
            sender.publish(
                device_topic(device, "up"), payloads.telemetry(device, now - n, rng), qos=1
            ).wait_for_publish(10)
        assert harness.wait_for(lambda: worker.counters.stored >= len(ids), 60), worker.counters
        assert worker.counters.db_errors >= 1
    finally:
        worker.stop()
        sender.loop_stop()
        sender.disconnect()
    with fleet_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reading)) == 3 * len(ids)


def test_a_sample_stored_meanwhile_without_the_row_lock_is_skipped_not_an_error(
    fleet_db: FleetContext,
) -> None:
    # The ingest inserts what its lookup did not find, relying on the device's row lock. A
    # writer without that lock (a manual backfill) inserts one of the batch's samples and
    # commits while the ingest waits on it: the insert collides, and the batch is stored again
    # skipping that sample.
    device = "cs-backfill-01"
    register_devices(fleet_db.sessions, [device])
    handler = IngestHandler(fleet_db.sessions)
    now = float(int(time.time()))
    pack = telemetry(device, now - 60, [(0, 20.0, 50.0), (30, 20.5, 51.0)])  # four readings
    with fleet_db.sessions() as s:
        pk = s.scalar(select(Device.id).where(Device.device_id == device))
    backfill = fleet_db.engine.connect()
    backfill_tx = backfill.begin()
    backfill.execute(
        insert(Reading).values(
            device_pk=pk,
            metric="temperature",
            ts=datetime.fromtimestamp(now - 60, UTC),
            value=20.0,
            unit="Cel",
            received_at=datetime.now(UTC),
        )
    )
    result: list[object] = []
    ingest = threading.Thread(
        target=lambda: result.append(handler.handle_batch([(device_topic(device, "up"), pack)]))
    )
    ingest.start()
    try:

        def ingest_waits_on_the_backfill() -> bool:
            with fleet_db.engine.connect() as c:
                return bool(
                    c.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE 'INSERT INTO readings%'"
                        )
                    )
                )

        assert harness.wait_for(ingest_waits_on_the_backfill, 30)
        backfill_tx.commit()
    finally:
        backfill.close()
        ingest.join(30)
    (outcomes,) = result
    assert [(o.action, o.inserted) for o in outcomes] == [("stored", 3)]  # type: ignore[attr-defined]
    with fleet_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Reading)) == 4


def test_a_message_the_database_refuses_is_recorded_and_the_rest_of_its_batch_stored(
    fleet_db: FleetContext,
) -> None:
    # Valid to the decoder, but PostgreSQL cannot hold a NUL in text: the device update fails.
    # Retrying such a batch would fail for ever and hold up everything queued behind it.
    devices = ["cs-refused-01", "cs-refused-02"]
    register_devices(fleet_db.sessions, devices)
    handler = IngestHandler(fleet_db.sessions)
    now = float(int(time.time()))
    health = json.dumps(
        [{"bn": base_name(devices[0]), "bt": now, "sv": 1, "n": "fw_version", "vs": "1.0\u0000"}]
    ).encode()
    outcomes = handler.handle_batch(
        [
            (device_topic(devices[0], "up"), telemetry(devices[0], now - 60, [(0, 20.0, 50.0)])),
            (device_topic(devices[0], "health"), health),
            (device_topic(devices[1], "up"), telemetry(devices[1], now - 60, [(0, 21.0, 55.0)])),
        ]
    )
    assert [(o.action, o.reason) for o in outcomes] == [
        ("stored", None),
        ("rejected", "store_failed"),
        ("stored", None),
    ]
    assert "refused" in (outcomes[1].detail or "")
    with fleet_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Reading)) == 4
        (reject,) = s.scalars(select(RejectedMessage)).all()
        assert (reject.reason, reject.device_id) == ("store_failed", devices[0])
        assert reject.topic.endswith("/health") and "fw_version" in reject.payload_excerpt
