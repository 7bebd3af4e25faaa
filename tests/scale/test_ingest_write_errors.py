"""A batch write that fails inside the driver is retried; it never stops a writer lane."""

from __future__ import annotations

import random
import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select, text

from fleet.core.context import FleetContext
from fleet.ingest.profile import device_topic
from fleet.loadgen import harness, payloads
from fleet.loadgen.fleetdb import register_devices
from fleet.loadgen.infra import PrivateMosquitto
from fleet.models import Reading
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
