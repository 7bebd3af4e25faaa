"""The firmware's MQTT 3.1.1 client in the VM against a scripted broker (tests/firmware/
fakebroker.py) that sends what Mosquitto never does: packets one byte per segment or
several per segment, malformed lengths, refusals, stray acks, a silent broker, a full
socket. Each test names the rule of the MQTT 3.1.1 standard it checks."""

from __future__ import annotations

import struct
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import DEADLINE_SCALE
from tests.firmware.conftest import VM
from tests.firmware.fakebroker import (
    CONNACK_OK,
    Conn,
    FakeBroker,
    mqtt_str,
    puback,
    publish,
    remaining_length,
    suback,
)

pytestmark = pytest.mark.vm

_PRELUDE = """
import asyncio, json, time
from cs.mqtt import MQTTClient, MQTTError, ConnectionLost, Transport
PORT = {port}
def out(x):
    print("RESULT", json.dumps(x))
def mark(x):
    print("MARK", x)
async def down(c, ms=20000):
    try:
        await asyncio.wait_for_ms(c.down.wait(), ms)
    except asyncio.TimeoutError:
        pass
    return c.down.is_set()
async def inbox(c, n, ms=20000):
    t = time.ticks_ms()
    while len(c.inbox) < n and not c.down.is_set() and time.ticks_diff(time.ticks_ms(), t) < ms:
        await asyncio.sleep_ms(10)
def take(c):
    got = []
    while c.inbox:
        topic, payload, retained = c.inbox.pop(0)
        got.append([topic, bytes(payload).decode(), retained])
    return got
async def online(**kw):
    c = MQTTClient("dev-1", **kw)
    await c.connect(Transport("127.0.0.1", PORT))
    return c
async def main():
"""


class Run:
    """A VM script running against the fake broker; its output lines are collected as they
    come, so the broker side can wait for a MARK line the script prints."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # EOF marker for waiters
            self._cond.notify_all()

    def wait_mark(self, mark: str, timeout: float = 30) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: f"MARK {mark}" in self.lines or self.proc.poll() is not None,
                timeout * DEADLINE_SCALE,
            )
        assert ok and f"MARK {mark}" in self.lines, "\n".join(self.lines)

    def finish(self, timeout: float = 60) -> str:
        self.proc.wait(timeout * DEADLINE_SCALE)
        self._reader.join(10)
        return "\n".join(self.lines)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[FakeBroker]:
    b = FakeBroker(rcvbuf=getattr(request, "param", 0))
    yield b
    b.close()


def run(
    vm: VM,
    broker: FakeBroker,
    body: str,
    drive: Callable[[Run], None],
    heapsize: str = "512K",
) -> list:
    """Run `body` (the inside of `async def main()`) in the VM while `drive` plays the
    broker; the script's RESULT values."""
    code = _PRELUDE.format(port=broker.port) + textwrap.indent(textwrap.dedent(body), "    ")
    code += "\nasyncio.run(main())\n"
    r = Run(vm.popen(code, heapsize))
    try:
        drive(r)
        out = r.finish()
    except BaseException as e:
        if r.proc.poll() is None:
            r.proc.kill()
        out = r.finish()
        raise AssertionError(f"{e!r}\nVM output:\n{out}") from e
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
    assert r.proc.returncode == 0, out
    return vm.results(out)


def pid_of(body: bytes, topic_len: int) -> int:
    return int(struct.unpack("!H", body[2 + topic_len : 4 + topic_len])[0])


def test_packets_split_into_single_bytes_and_coalesced(vm: VM, broker: FakeBroker) -> None:
    """A stream, not messages [MQTT-4.2]: a CONNACK and a 2-byte-length PUBLISH arriving one
    byte per segment, and SUBACK plus two PUBLISHes in one segment, are all read whole."""
    long = b"L" * 130  # remaining length needs 2 bytes

    def drive(r: Run) -> None:
        conn = broker.accept()
        conn.expect(0x10)
        conn.send(CONNACK_OK, one_byte_at_a_time=True)
        sub = conn.expect(0x80)
        pid = struct.unpack("!H", sub[:2])[0]
        conn.send(
            suback(pid, 1) + publish("a/r", b"kept", qos=0) + publish("a/1", b"one", 1, pid=5)
        )
        conn.send(publish("a/2", long, 1, pid=6), one_byte_at_a_time=True)
        assert conn.expect(0x40) == b"\x00\x05"  # in arrival order [MQTT-4.6.0-2]
        assert conn.expect(0x40) == b"\x00\x06"
        assert conn.packets_until_closed() == [(0xE0, b"")]

    body = """
    c = await online()
    granted = await c.subscribe("a/#", 1)
    await inbox(c, 3)
    out({"granted": granted, "got": take(c)})
    await c.disconnect()
    """
    (res,) = run(vm, broker, body, drive)
    assert res["granted"] == 1
    assert res["got"] == [
        ["a/r", "kept", False],
        ["a/1", "one", False],
        ["a/2", long.decode(), False],
    ]


@pytest.mark.parametrize("where", ["connack", "connected"])
def test_remaining_length_past_four_bytes_closes_the_connection(
    vm: VM, broker: FakeBroker, where: str
) -> None:
    """A fifth length byte is malformed [MQTT-2.2.3]: the client closes the connection (and
    its socket, also while still waiting for CONNACK) instead of reading on."""
    bad = b"\x30\xff\xff\xff\xff\x7f"

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect(connack=b"" if where == "connack" else CONNACK_OK)
        conn.send(bad)
        assert conn.closed_by_device()

    body = """
    try:
        c = MQTTClient("dev-1")
        await c.connect(Transport("127.0.0.1", PORT))
        await down(c)
    except MQTTError as e:
        pass
    out({"down": c.down.is_set(), "closed": c._transport.s is None, "error": c.error})
    """
    (res,) = run(vm, broker, body, drive)
    assert res["down"] and res["closed"]
    assert "malformed remaining length" in res["error"]


def test_four_byte_length_publish_skipped_in_a_small_heap(vm: VM, broker: FakeBroker) -> None:
    """A 2 MB PUBLISH (4-byte remaining length) for a 128 KB heap is read in pieces, thrown
    away and acknowledged; an oversized packet of another type ends the connection."""
    big = publish("cs/v1/d/dev-1/config", b"x" * 2_100_000, 1, pid=7)
    assert len(remaining_length(len(big) - 5)) == 4

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        conn.send(big + publish("cs/v1/d/dev-1/cmd", b"after", 1, pid=8))
        assert conn.expect(0x40) == b"\x00\x07"  # acked unread: the broker will not resend it
        assert conn.expect(0x40) == b"\x00\x08"
        conn.send(b"\x90" + remaining_length(5000) + bytes(5000))  # an oversized SUBACK
        assert conn.closed_by_device()

    body = """
    c = await online()
    await inbox(c, 1)
    got = take(c)
    await down(c)
    out({"got": got, "oversized": c.oversized, "error": c.error})
    """
    (res,) = run(vm, broker, body, drive, heapsize="128K")
    assert res["got"] == [["cs/v1/d/dev-1/cmd", "after", False]]
    assert res["oversized"] == 1 and "packet of 5000 bytes" in res["error"]


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5])
def test_connack_refusal_is_a_clear_error(vm: VM, broker: FakeBroker, code: int) -> None:
    """CONNACK return codes 1-5 [MQTT-3.2.2.3]: an MQTTError naming the reason, the socket
    closed; the caller's backoff decides when to try again."""
    reasons = ["protocol version", "client id", "unavailable", "credentials", "authorised"]

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect(connack=bytes((0x20, 2, 0, code)))
        assert conn.closed_by_device()

    body = """
    c = MQTTClient("dev-1")
    try:
        await c.connect(Transport("127.0.0.1", PORT))
        err = None
    except MQTTError as e:
        err = str(e)
    out({"err": err, "closed": c._transport.s is None, "down": c.down.is_set()})
    """
    (res,) = run(vm, broker, body, drive)
    assert res["closed"] and res["down"]
    assert f"broker refused ({code})" in res["err"] and reasons[code - 1] in res["err"]


def test_stray_acks_are_ignored(vm: VM, broker: FakeBroker) -> None:
    """A PUBACK or SUBACK for a packet id nothing waits for is ignored [MQTT-2.3.1]: the
    publish completes on its own PUBACK and nothing is kept for the stray ones."""

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        body = conn.expect(0x30)
        pid = pid_of(body, 3)
        conn.send(puback(pid ^ 0x100) + suback(pid ^ 0x200, 1) + puback(pid))
        assert conn.packets_until_closed() == [(0xE0, b"")]

    body = """
    c = await online()
    await c.publish("t/a", b"x", qos=1)
    out({"up": not c.down.is_set(), "kept": len(c._suback)})
    await c.disconnect()
    """
    assert run(vm, broker, body, drive) == [{"up": True, "kept": 0}]


def test_packet_ids_wrap_past_65535_never_0_and_skip_ids_in_flight(
    vm: VM, broker: FakeBroker
) -> None:
    """Packet ids run 1..65535 [MQTT-2.3.1-1] and one still unacknowledged is not reused."""
    seen: list[int] = []

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        for _ in range(2):
            seen.append(pid_of(conn.expect(0x30), 3))
        conn.send(puback(seen[1]))  # the first stays in flight
        for _ in range(2):
            seen.append(pid_of(conn.expect(0x30), 3))
        conn.send(b"".join(puback(p) for p in [seen[0], *seen[2:]]))
        assert conn.packets_until_closed() == [(0xE0, b"")]

    body = """
    c = await online(ack_timeout_ms=60000)
    c._pid = 65534
    first = asyncio.create_task(c.publish("t/a", b"A", qos=1))
    await asyncio.sleep_ms(0)
    await c.publish("t/b", b"B", qos=1)
    c._pid = 65533  # as if 65,533 more had been used meanwhile
    await asyncio.gather(c.publish("t/c", b"C", qos=1), c.publish("t/d", b"D", qos=1))
    await first
    out("acked")
    await c.disconnect()
    """
    assert run(vm, broker, body, drive) == ["acked"]
    assert seen == [65535, 1, 65534, 1]


def test_incoming_qos1_acked_when_taken_and_a_dup_delivered_again(
    vm: VM, broker: FakeBroker
) -> None:
    """QoS 1 is at least once [MQTT-4.3.2]: a redelivery with DUP is delivered and
    acknowledged again (commands carry ids for that); an empty payload and a UTF-8 topic
    come through as sent [MQTT-1.5.3]."""
    topic = "cs/v1/d/dév-ü/cmd"

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        conn.send(publish(topic, b"", 1, pid=9) + publish(topic, b"", 1, pid=9, dup=True))
        sent = conn.packets_until_closed()
        assert (0x30, mqtt_str("cs/v1/d/dév-ü/up") + "é".encode()) in sent
        assert [p for p in sent if p[0] != 0x30] == [(0x40, b"\x00\x09")] * 2 + [(0xE0, b"")]

    body = """
    c = await online()
    await inbox(c, 2)
    got = take(c)
    await c.publish("cs/v1/d/dév-ü/up", "é".encode())
    out(got)
    await c.disconnect()
    """
    (got,) = run(vm, broker, body, drive)
    assert got == [[topic, "", False], [topic, "", False]]


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (publish("a/b", b"x", qos=3, pid=1), "QoS 3"),  # [MQTT-3.3.1-4]
        (publish("a/b", b"x", qos=2, pid=1), "QoS 2"),  # never subscribed at QoS 2
        (b"\x32\x04\x00\x09a/", "malformed PUBLISH"),  # topic longer than the packet
        (publish(b"a/\xff", b"x"), "UnicodeError"),  # ill-formed UTF-8 [MQTT-1.5.3-1]
    ],
    ids=["qos3", "qos2", "short", "utf8"],
)
def test_a_publish_the_client_cannot_take_closes_the_connection(
    vm: VM, broker: FakeBroker, packet: bytes, why: str
) -> None:
    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        conn.send(packet)
        assert conn.packets_until_closed() == []  # no PUBACK for it

    body = """
    c = await online()
    await down(c)
    out({"error": c.error, "inbox": len(c.inbox)})
    """
    (res,) = run(vm, broker, body, drive)
    assert why in res["error"] and res["inbox"] == 0


def test_subscribe_refused_or_at_qos2(vm: VM, broker: FakeBroker) -> None:
    """SUBACK 0x80 [MQTT-3.9.3] is an MQTTError for that subscription and the connection
    stays usable; QoS 2 is not asked for (the client has no QoS 2 flow)."""

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        sub = conn.expect(0x80)
        conn.send(suback(struct.unpack("!H", sub[:2])[0], 0x80))
        body = conn.expect(0x30)
        conn.send(puback(pid_of(body, 3)))
        assert conn.packets_until_closed() == [(0xE0, b"")]

    body = """
    c = await online()
    errors = []
    for qos in (2, 1):
        try:
            await c.subscribe("a/#", qos)
        except (MQTTError, ValueError) as e:
            errors.append(repr(e))
    await c.publish("t/a", b"x", qos=1)
    out({"errors": errors, "up": not c.down.is_set()})
    await c.disconnect()
    """
    (res,) = run(vm, broker, body, drive)
    assert res["up"] and len(res["errors"]) == 2
    assert "ValueError" in res["errors"][0] and "refused subscription" in res["errors"][1]


def test_a_silent_broker_ends_the_connection(vm: VM, broker: FakeBroker) -> None:
    """PINGREQ within the keepalive [MQTT-3.1.2-23]; with no PINGRESP the client gives up
    (after 1.5x keepalive of silence, as the broker would) and closes the socket."""

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        assert conn.packet() == (0xC0, b"")  # and never answered
        assert conn.closed_by_device()

    body = """
    c = await online(keepalive=2)
    out({"down": await down(c), "error": c.error})
    """
    assert run(vm, broker, body, drive) == [{"down": True, "error": "keepalive: broker silent"}]


def test_connect_carries_a_retained_will_and_disconnect_is_clean(
    vm: VM, broker: FakeBroker
) -> None:
    """The device's CONNECT (cs.link) asks for a retained QoS 1 will [MQTT-3.1.2-9..17] and
    a persistent session; `disconnect` sends the PUBACKs still due, then DISCONNECT
    [MQTT-3.14.4-1], so the broker drops the will."""
    connect: list[bytes] = []

    def drive(r: Run) -> None:
        conn, body = broker.accept_connect()
        connect.append(body)
        conn.send(publish("cs/v1/d/dev-1/cmd", b"c", 1, pid=3))
        assert conn.packets_until_closed() == [(0x40, b"\x00\x03"), (0xE0, b"")]

    body = """
    from cs import link
    class Node:
        device_id = "dev-1"
        cfg = {"mqtt": {"host": "127.0.0.1", "port": PORT, "keepalive": 60, "username": "dev-1",
               "password": "pw", "clean_session": False, "tls": False}}
    c, t = link.make_client(Node())
    await c.connect(t)
    await inbox(c, 1)
    c.inbox.pop(0)
    await c.disconnect()  # before the PUBACK task ran
    out("ok")
    """
    assert run(vm, broker, body, drive) == ["ok"]
    (var,) = connect
    # "MQTT", level 4, flags: username, password, will retain, will QoS 1, will; keepalive 60
    assert var[:10] == mqtt_str("MQTT") + bytes((4, 0x80 | 0x40 | 0x20 | 0x08 | 0x04, 0, 60))
    will = mqtt_str("cs/v1/d/dev-1/status") + mqtt_str('{"sv":1,"state":"offline"}')
    assert var[10:] == mqtt_str("dev-1") + will + mqtt_str("dev-1") + mqtt_str("pw")


def _drain_all(conn: Conn, until_topic: str) -> list[str]:
    """Topics of every PUBLISH up to and including one on `until_topic`."""
    topics = []
    while True:
        head, body = conn.packet()
        assert head & 0xF0 == 0x30
        n = struct.unpack("!H", body[:2])[0]
        topics.append(body[2 : 2 + n].decode())
        if topics[-1] == until_topic:
            return topics


@pytest.mark.parametrize("broker", [4096], indirect=True)
def test_a_packet_sent_while_the_socket_is_full_waits_its_turn(vm: VM, broker: FakeBroker) -> None:
    """A second task's packet while the first one's still drains (a slow link): both leave
    whole and in order, and neither task is left waiting for ever (the stream's drain
    serves one task at a time)."""

    def drive(r: Run) -> None:
        conn, _ = broker.accept_connect()
        r.wait_mark("full")  # the broker read nothing since CONNECT: the socket filled up
        topics = _drain_all(conn, "t/small")
        assert set(topics[:-1]) == {"t/big"} and topics[-1] == "t/small"
        assert conn.packets_until_closed() == [(0xE0, b"")]

    body = """
    c = await online()
    c._transport.s.s.setsockopt(1, 7, 4096)  # SOL_SOCKET, SO_SNDBUF: fills after a few KB
    big = bytes(8000)
    stop = False
    async def flood():
        while not stop:
            await c.publish("t/big", big)
    flooding = asyncio.create_task(flood())
    for _ in range(2000):
        await asyncio.sleep_ms(5)
        if c._transport.s.out_buf:
            break
    stop = True
    mark("full")
    small = asyncio.create_task(c.publish("t/small", b"s"))
    try:
        await asyncio.wait_for_ms(asyncio.gather(flooding, small), 60000)
        out("both sent")
    except asyncio.TimeoutError:
        out("a writer hung")
    await c.disconnect()
    """
    assert run(vm, broker, body, drive) == ["both sent"]


@pytest.mark.parametrize("broker", [4096], indirect=True)
def test_a_writer_on_a_stalled_link_is_released_when_the_connection_ends(
    vm: VM, broker: FakeBroker
) -> None:
    """A link that takes no more bytes, then the connection is closed (as on a lost access
    point): a closed socket never wakes the writer's drain, so the stall bound must, and the
    publish fails instead of waiting for ever."""

    def drive(r: Run) -> None:
        broker.accept_connect()
        r.wait_mark("done", 60)

    body = """
    c = MQTTClient("dev-1")
    await c.connect(Transport("127.0.0.1", PORT, stall_ms=2000))
    c._transport.s.s.setsockopt(1, 7, 4096)  # SOL_SOCKET, SO_SNDBUF
    big = bytes(8000)
    async def flood():
        while True:
            await c.publish("t/big", big)
    flooding = asyncio.create_task(flood())
    for _ in range(2000):
        await asyncio.sleep_ms(5)
        if c._transport.s.out_buf:
            break
    c.close("Wi-Fi lost")
    try:
        await asyncio.wait_for_ms(flooding, 60000)
        err = None
    except asyncio.TimeoutError:
        err = "hung"
    except MQTTError as e:
        err = repr(e)
    out({"error": err})
    mark("done")
    """
    (res,) = run(vm, broker, body, drive)
    assert "ConnectionLost" in res["error"]


def test_a_redelivered_command_runs_once(vm: VM) -> None:
    """What a QoS 1 duplicate means for the node: the command's id marks it as run, so a
    redelivery is answered again (the sender may have missed the first answer), not run."""
    code = """
import asyncio, json
from cs import commands
class Client:
    acks = []
    async def publish(self, topic, payload, retain=False, qos=0):
        self.acks.append(json.loads(payload))
class Node:
    device_id = "dev-1"
    rtc = {}
    blinks = 0
    async def blink(self, seconds):
        Node.blinks += 1
async def main():
    node, client = Node(), Client()
    cmd = b'{"sv":1,"id":"c-1","op":"identify","args":{"seconds":1}}'
    for _ in range(2):
        await commands.handle(node, client, "cs/v1/d/dev-1/cmd", cmd)
    print("RESULT", json.dumps({"blinks": Node.blinks, "acks": client.acks}))
asyncio.run(main())
"""
    (res,) = vm.results(vm.run(code))
    assert res["blinks"] == 1
    assert res["acks"] == [
        {"sv": 1, "id": "c-1", "ok": True},
        {"sv": 1, "id": "c-1", "ok": True, "result": {"duplicate": True}},
    ]
