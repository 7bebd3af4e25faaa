"""The load generator's MQTT client at the byte level, and a fleet against real Mosquitto."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleet.core.context import FleetContext
from fleet.loadgen import harness
from fleet.loadgen.fleetdb import count_against_db
from fleet.loadgen.infra import PrivateMosquitto
from tests.scale.conftest import load, worker_for


@pytest.mark.postgres
@pytest.mark.mosquitto
@pytest.mark.timeout(120)
def test_bad_payloads_are_rejected_and_a_reconnect_storm_loses_nothing(
    fleet_db: FleetContext, broker: PrivateMosquitto
) -> None:
    worker = worker_for(fleet_db, broker)
    try:
        run = load(
            fleet_db,
            broker,
            devices=300,
            messages=12,
            rate=600,
            bad_ratio=0.1,
            storm_at=(2.0,),
            prefix="cs-st",
        )
        manifest = run.result()
        totals = manifest.totals()
        # The storm came once all had connected; the zero loss below says those it dropped
        # came back to deliver the rest.
        (dropped,) = manifest.storm_drops
        assert dropped > 0 and totals["connects"] > 300
        assert totals["bad"] > 0
        assert harness.wait_for(
            lambda: harness.count_readings(fleet_db.sessions, "cs-st") >= manifest.readings, 40
        )
        tally = count_against_db(fleet_db.sessions, manifest)
        assert (tally.lost, tally.duplicates, tally.unexpected) == (0, 0, 0), tally
        # Each bad payload is recorded with its reason (redeliveries may record it again).
        assert tally.rejects >= totals["bad"]
    finally:
        worker.stop()


def test_client_reports_a_refused_connection_clearly() -> None:
    from fleet.loadgen.infra import free_port
    from fleet.loadgen.mqtt import MqttClient, MqttError

    async def attempt() -> None:
        await MqttClient("127.0.0.1", free_port(), "cs-nobody-01").connect(timeout=2)

    # A thread of its own: another test's browser session may own this thread's event loop.
    with ThreadPoolExecutor(1) as pool, pytest.raises(MqttError, match="cannot reach"):
        pool.submit(asyncio.run, attempt()).result()
