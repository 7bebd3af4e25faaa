"""The firmware's asyncio MQTT client in the VM against a real Mosquitto."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable

import pytest

from tests.firmware.conftest import VM, Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]


def _client_script(broker: Broker, device: str, body: str) -> str:
    return f"""
import asyncio, json
from cs import topics
from cs.mqtt import MQTTClient, MQTTError, Transport
DEV = {device!r}
STATUS = topics.device_topic(DEV, topics.STATUS)
async def main():
    c = MQTTClient(DEV, keepalive=30, clean_session=True,
                   will=(STATUS, topics.status_payload(topics.STATE_OFFLINE), True, 1))
    await c.connect(Transport({broker.host!r}, {broker.port}))
{body}
asyncio.run(main())
"""


def test_qos1_publish_is_acked_and_status_retained(
    vm: VM, test_broker: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    device = "cs-test-" + uuid.uuid4().hex[:8]
    sub = subscriber(f"cs/v1/d/{device}/#")
    body = """
    await c.publish(STATUS, topics.status_payload(topics.STATE_ONLINE), True, 1)
    await c.publish(topics.device_topic(DEV, topics.UP), b'[{"n":"x","v":1}]', False, 1)
    # A pack's parts go out as one message, QoS 1 and 0.
    parts = [b'[{"n":', b'"y","v":2}', b"]"]
    await c.publish(topics.device_topic(DEV, topics.HEALTH), parts, False, 1)
    await c.publish(topics.device_topic(DEV, topics.CMD_ACK), [b'{"id":', b'"z"}'], False, 0)
    granted = await c.subscribe(topics.device_topic(DEV, topics.CMD), 1)
    print("RESULT", json.dumps({"acked": True, "granted": granted}))
    await c.disconnect()
"""
    out = vm.run(_client_script(test_broker, device, body))
    assert vm.results(out) == [{"acked": True, "granted": 1}]
    up = sub.wait_for(f"cs/v1/d/{device}/up")[0]
    assert up.qos == 1 and json.loads(up.payload) == [{"n": "x", "v": 1}]
    health = sub.wait_for(f"cs/v1/d/{device}/health")[0]
    assert health.qos == 1 and json.loads(health.payload) == [{"n": "y", "v": 2}]
    ack = sub.wait_for(f"cs/v1/d/{device}/cmd/ack")[0]
    assert json.loads(ack.payload) == {"id": "z"}
    # A clean DISCONNECT drops the will: status stays "online", retained.
    late = subscriber(f"cs/v1/d/{device}/status")
    (status,) = late.wait_for(f"cs/v1/d/{device}/status")
    assert status.retain and json.loads(status.payload) == {"sv": 1, "state": "online"}


def test_last_will_fires_when_the_device_dies(
    vm: VM, test_broker: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    device = "cs-test-" + uuid.uuid4().hex[:8]
    topic = f"cs/v1/d/{device}/status"
    sub = subscriber(topic)
    body = """
    await c.publish(STATUS, topics.status_payload(topics.STATE_ONLINE), True, 1)
    print("RESULT", json.dumps("online"))
    await asyncio.sleep(600)
"""
    proc = vm.popen(_client_script(test_broker, device, body))
    try:
        sub.wait_for(topic, 1)
        os.killpg(proc.pid, signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
        proc.wait(10)
        states = wait_until(
            lambda: [json.loads(m.payload)["state"] for m in sub.on(topic)][1:] or None,
            15,
            "the last will",
        )
        assert states == ["offline"]
        # Retained: a newcomer sees "offline" too.
        late = subscriber(topic)
        (msg,) = late.wait_for(topic)
        assert msg.retain and json.loads(msg.payload) == {"sv": 1, "state": "offline"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_connect_to_a_dead_port_fails_cleanly(vm: VM) -> None:
    code = """
import asyncio, json
from cs.mqtt import MQTTClient, ConnectionLost, Transport
async def main():
    c = MQTTClient("cs-x")
    try:
        await c.connect(Transport("127.0.0.1", 9), 2000)
    except ConnectionLost as e:
        print("RESULT", json.dumps({"down": c.down.is_set(), "error": str(e)}))
asyncio.run(main())
"""
    (res,) = vm.results(vm.run(code))
    assert res["down"] is True and "connect failed" in res["error"]


def test_puback_timeout_retransmits_with_dup(vm: VM) -> None:
    """A fake transport that never acks: the client resends with DUP, then gives up."""
    code = """
import asyncio, json
from cs.mqtt import MQTTClient, MQTTError
class Silent:
    def __init__(self):
        self.sent = []
        self.gate = asyncio.Event()
        self.rx = bytearray(b"\\x20\\x02\\x00\\x00")  # CONNACK accepted
    async def open(self, timeout_ms):
        pass
    async def read(self, n):
        while not self.rx:
            await self.gate.wait()
        out = bytes(self.rx[:n]); self.rx = self.rx[n:]
        return out
    async def write(self, packet):
        self.sent.append(bytes(packet))
    def close(self):
        pass
async def main():
    t = Silent()
    c = MQTTClient("cs-x", ack_timeout_ms=50, retries=2)
    await c.connect(t)
    try:
        await c.publish("a/b", b"hi", qos=1)
    except MQTTError as e:
        err = str(e)
    heads = [p[0] for p in t.sent[1:]]
    same = t.sent[1][1:] == t.sent[2][1:]
    print("RESULT", json.dumps({"heads": heads, "err": err, "same": same}))
    c.close()
asyncio.run(main())
"""
    (res,) = vm.results(vm.run(code))
    assert res["heads"] == [0x32, 0x3A, 0x3A]  # PUBLISH qos1, then twice with DUP
    assert res["same"] and "no PUBACK" in res["err"]
