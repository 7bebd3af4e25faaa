"""What the firmware's MQTT client does with incoming messages, in the VM against a real
Mosquitto: a QoS 1 message is acknowledged only once the node takes it from the inbox, a
full inbox holds messages back for the broker to send again instead of dropping them, and
a message larger than the heap is skipped without ending the connection."""

from __future__ import annotations

import json
import uuid

import paho.mqtt.publish as publish
import pytest

from tests.firmware.conftest import VM, Broker

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

# A persistent session (as devices run) that receives `cmd`; wait_inbox polls for arrivals.
_PRELUDE = """
import asyncio, json, time
from cs.mqtt import MQTTClient, Transport
HOST, PORT, DEV = {host!r}, {port}, {device!r}
TOPIC = "cs/v1/d/" + DEV + "/cmd"
async def online(**kw):
    c = MQTTClient(DEV, keepalive=30, clean_session=False, **kw)
    await c.connect(Transport(HOST, PORT))
    return c
async def wait_inbox(c, n, ms=5000):
    t = time.ticks_ms()
    while len(c.inbox) < n and time.ticks_diff(time.ticks_ms(), t) < ms:
        await asyncio.sleep_ms(20)
    await asyncio.sleep_ms(200)  # and nothing more arrives
def take(c):
    out = []
    while c.inbox:
        out.append(bytes(c.inbox.pop(0)[1]).decode())
    return out
"""


def _script(broker: Broker, device: str, body: str) -> str:
    main = "async def main():\n" + body + "\nasyncio.run(main())\n"
    return _PRELUDE.format(host=broker.host, port=broker.port, device=device) + main


def _subscribed(vm: VM, broker: Broker, device: str) -> None:
    """Create the device's persistent session with its subscription, then leave."""
    body = """
    c = await online()
    await c.subscribe(TOPIC, 1)
    await c.disconnect()
    print("RESULT", json.dumps("ok"))
"""
    assert vm.results(vm.run(_script(broker, device, body))) == ["ok"]


def _send(broker: Broker, device: str, payloads: list[bytes]) -> None:
    publish.multiple(
        [{"topic": f"cs/v1/d/{device}/cmd", "payload": p, "qos": 1} for p in payloads],
        hostname=broker.host,
        port=broker.port,
    )


def test_a_message_not_taken_comes_back_on_the_next_connection(vm: VM, test_broker: Broker) -> None:
    """Three commands arrive; the node takes one and the connection dies (no DISCONNECT,
    as in a reset). The next connection brings the two it never took, and not the taken one."""
    device = "cs-test-" + uuid.uuid4().hex[:8]
    _subscribed(vm, test_broker, device)
    _send(test_broker, device, [b"m1", b"m2", b"m3"])
    body = """
    c = await online()
    await wait_inbox(c, 3)
    first = [bytes(c.inbox.pop(0)[1]).decode()]
    await asyncio.sleep_ms(300)  # its PUBACK leaves
    c.close()
    c = await online()
    await wait_inbox(c, 2)
    again = take(c)
    await c.disconnect()
    print("RESULT", json.dumps({"first": first, "again": again}))
"""
    (res,) = vm.results(vm.run(_script(test_broker, device, body)))
    assert res == {"first": ["m1"], "again": ["m2", "m3"]}


def test_a_full_inbox_holds_messages_back_until_a_new_connection(
    vm: VM, test_broker: Broker
) -> None:
    """Seven commands for an inbox of three: the node takes the three it was given, the
    client then ends the connection cleanly by itself and the next ones bring the rest, in
    order, each once. None is acknowledged and lost."""
    device = "cs-test-" + uuid.uuid4().hex[:8]
    _subscribed(vm, test_broker, device)
    sent = [b"m%d" % i for i in range(7)]
    _send(test_broker, device, sent)
    body = """
    got, rounds, why = [], 0, []
    while len(got) < 7 and rounds < 5:
        rounds += 1
        c = await online(inbox_size=3)
        await wait_inbox(c, 3)
        got += take(c)
        try:  # caught up, the client ends the connection if it held messages back
            await asyncio.wait_for_ms(c.down.wait(), 10000)
            why.append(c.error)
        except asyncio.TimeoutError:
            await c.disconnect()
    print("RESULT", json.dumps({"got": got, "why": why}))
"""
    (res,) = vm.results(vm.run(_script(test_broker, device, body), timeout=90))
    assert res["got"] == [p.decode() for p in sent]
    assert res["why"] and all("held messages: reconnecting" in w for w in res["why"])


def test_an_oversized_message_is_skipped_and_the_connection_stays(
    vm: VM, test_broker: Broker
) -> None:
    """300 KB on `cmd` for a node with a 128 KB heap: read in small pieces and thrown away,
    acknowledged (so the broker does not send it again), counted; the connection stays up
    and the next command arrives as usual."""
    device = "cs-test-" + uuid.uuid4().hex[:8]
    _subscribed(vm, test_broker, device)
    big = json.dumps({"sv": 1, "id": "big", "op": "identify", "note": "x" * 300000}).encode()
    _send(test_broker, device, [big, b"after"])
    body = """
    c = await online()
    await wait_inbox(c, 1)
    got = take(c)
    up = not c.down.is_set()
    oversized = getattr(c, "oversized", None)
    await c.disconnect()
    c = await online()
    await wait_inbox(c, 1, 1500)
    again = take(c)
    await c.disconnect()
    print("RESULT", json.dumps({"got": got, "up": up, "oversized": oversized, "again": again}))
"""
    out = vm.run(_script(test_broker, device, body), heapsize="128K")
    (res,) = vm.results(out)
    assert res == {"got": ["after"], "up": True, "oversized": 1, "again": []}
    assert "refused a message over 4096 bytes" in out
