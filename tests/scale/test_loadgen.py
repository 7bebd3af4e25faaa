"""The load generator's MQTT client at the byte level, and a fleet against real Mosquitto."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleet.core.context import FleetContext
from fleet.loadgen import harness
from fleet.loadgen.fleetdb import count_against_db
from fleet.loadgen.infra import PrivateMosquitto
from fleet.loadgen.mqtt import Will, _remaining_length, encode_connect, encode_publish
from tests.scale.conftest import load, worker_for


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_matches_the_spec_table(n: int, encoded: bytes) -> None:
    assert _remaining_length(n) == encoded


def test_connect_carries_the_last_will_and_session_flag() -> None:
    packet = encode_connect(
        "cs-abc-001",
        keepalive=60,
        clean_session=False,
        will=Will("cs/v1/d/cs-abc-001/status", b'{"sv":1,"state":"offline"}'),
    )
    assert packet[0] == 0x10
    body = packet[2:]
    assert body[:6] == b"\x00\x04MQTT" and body[6] == 4
    # will flag, will QoS 1, will retain; clean session off
    assert body[7] == 0x04 | 0x08 | 0x20
    assert body[8:10] == b"\x00\x3c"
    assert body.endswith(b'{"sv":1,"state":"offline"}')


def test_publish_qos1_has_a_packet_id_and_dup_on_resend() -> None:
    first = encode_publish("a/b", b"xy", qos=1, packet_id=7)
    again = encode_publish("a/b", b"xy", qos=1, packet_id=7, dup=True)
    assert first == b"\x32\x09\x00\x03a/b\x00\x07xy"
    assert again[0] == 0x3A and again[1:] == first[1:]


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
        assert totals["connects"] >= 2 * 300  # everyone came back after the storm
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
