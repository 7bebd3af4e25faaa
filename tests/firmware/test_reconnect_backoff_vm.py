"""A broker that takes the node's connection and drops it at once (another sensor with the
same id, a broker-side limit) is not hammered: the node's wait before each reconnect grows
as it does after failed connects, and starts again from a second only after a connection
that lasted."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.firmware.fakebroker import Conn, FakeBroker, puback, suback

pytestmark = pytest.mark.vm

SESSION_PRESENT = b"\x20\x02\x01\x00"  # the node then subscribes to its OTA topic only
LOST = re.compile(r"connection lost: .* - retry in (\d+) ms")


def _serve_until_subscribed(conn: Conn) -> None:
    """Acknowledge what the node sends while it sets up, up to its subscription."""
    while True:
        head, body = conn.packet()
        kind = head & 0xF0
        if kind == 0x30 and head & 0x06:  # a QoS 1 publish (its online status)
            (topic_len,) = struct.unpack("!H", body[:2])
            (pid,) = struct.unpack("!H", body[2 + topic_len : 4 + topic_len])
            conn.send(puback(pid))
        elif kind == 0x80:
            (pid,) = struct.unpack("!H", body[:2])
            conn.send(suback(pid, 1))
            return


def test_a_connection_dropped_at_once_backs_off_like_a_failed_connect(
    tmp_path: Path, micropython_bin: Path
) -> None:
    broker = FakeBroker()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=83,
        broker_port=broker.port,
        sample_interval_s=60,
        health_interval_s=600,
        heapsize="256K",
    )

    def log() -> str:
        return dev.log_path.read_text() if dev.log_path.exists() else ""

    def waits() -> list[int]:
        return [int(ms) for ms in LOST.findall(log())]

    try:
        dev.start()
        for n in range(1, 5):
            conn, _ = broker.accept_connect(SESSION_PRESENT)
            _serve_until_subscribed(conn)
            wait_until(lambda n=n: log().count("online as") >= n, 30, f"online {n}")
            conn.close()  # taken, then dropped
            wait_until(lambda n=n: len(waits()) >= n, 30, f"drop {n} noticed")
    finally:
        dev.stop()
        broker.close()
    got = waits()[:4]
    # Equal jitter: the n-th wait lies in [2^n/2, 2^n] seconds, so they only grow.
    assert got == sorted(got), got
    assert got[3] >= 4000, f"the fourth wait in a row should be 4-8 s, got {got}"
    assert "connect failed" not in log() and "Traceback" not in log()
