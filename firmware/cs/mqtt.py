"""Asyncio MQTT 3.1.1 client for the device.

`Transport` moves bytes (TCP, optionally TLS); `MQTTClient` speaks the protocol
on one connection. Neither retries a lost connection: the caller owns the retry
policy (see cs.backoff and cs.app), watches `client.down` and builds a new
client. QoS 1 publishes wait for PUBACK and retransmit with DUP on timeout.
"""

import asyncio
import struct
import time

from micropython import const

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)

# CONNACK return codes 1..5.
_REFUSED = ("protocol version", "client id rejected", "server unavailable", "bad credentials", "not authorised")


class MQTTError(Exception):
    pass


class ConnectionLost(MQTTError):
    pass


class Transport:
    """A byte stream to the broker (TCP, or TLS with a context). No protocol, no retries;
    tests substitute their own object with the same four methods."""

    def __init__(self, host: str, port: int, tls_context=None) -> None:
        self.addr = (host, port, tls_context)
        self.s = None  # MicroPython's open_connection returns one stream for both ways

    async def open(self, timeout_ms: int = 10000) -> None:
        host, port, ctx = self.addr
        self.s = (await asyncio.wait_for_ms(asyncio.open_connection(host, port, ssl=ctx), timeout_ms))[0]

    async def read(self, n: int) -> bytes:
        if self.s is None:
            raise OSError("closed")
        return await self.s.readexactly(n)

    async def write(self, packet) -> None:
        s = self.s
        if s is None:
            raise OSError("closed")
        # One write per packet: the stream sends each write at once, and a second small
        # segment would wait for the broker's delayed ACK (Nagle), ~40 ms per PUBACK round
        # trip, which a battery node pays in radio time. Queued before the first await, so
        # another task's packet never lands in the middle (no lock needed).
        s.write(packet)
        await s.drain()

    def close(self) -> None:
        s, self.s = self.s, None
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


def _encode_len(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _packet(head: int, *parts) -> bytearray:
    """A whole packet in one block sized once: the parts' only copy (a pack is the largest
    block the node allocates, and a fragmented heap may not have room for a second)."""
    n = 0
    for part in parts:
        n += len(part)
    size = _encode_len(n)
    packet = bytearray(1 + len(size) + n)
    packet[0] = head
    i = 1 + len(size)
    packet[1:i] = size
    for part in parts:
        packet[i : i + len(part)] = part
        i += len(part)
    return packet


def _str(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


class MQTTClient:
    def __init__(
        self,
        client_id: str,
        keepalive: int = 60,
        username=None,
        password=None,
        will=None,
        clean_session: bool = True,
        ack_timeout_ms: int = 5000,
        retries: int = 2,
        inbox_size: int = 4,
    ) -> None:
        """`will` is (topic, payload, retain, qos) or None."""
        self.client_id = client_id
        self.keepalive = keepalive
        self.username = username
        self.password = password
        self.will = will
        self.clean_session = clean_session
        self.ack_timeout_ms = ack_timeout_ms
        self.retries = retries
        self.down = asyncio.Event()  # set once when the connection is lost or closed
        self.error = ""  # why it went down
        self.inbox: list = []  # received (topic, payload, retained), bounded; oldest dropped
        self.inbox_dropped = 0
        self.inbox_event = asyncio.Event()
        self._inbox_size = inbox_size
        self._transport: "Transport | None" = None
        self._pid = 0
        self._acks: dict = {}  # packet id -> Event, for PUBACK/SUBACK
        self._suback: dict = {}
        self._tasks: list = []
        self._last_rx = time.ticks_ms()
        self._last_tx = time.ticks_ms()
        self.connected = False

    # -- wire ----------------------------------------------------------------------
    async def _send(self, head: int, *parts) -> None:
        await self._write(_packet(head, *parts))

    async def _write(self, packet) -> None:
        t = self._transport
        if t is None or self.down.is_set():
            raise ConnectionLost(self.error or "not connected")
        try:
            await t.write(packet)
        except OSError as e:
            self._lost("write failed: %r" % e)
            raise ConnectionLost(self.error)
        self._last_tx = time.ticks_ms()

    async def _recv_packet(self) -> tuple:
        t = self._transport
        if t is None:
            raise ConnectionLost("not connected")
        head = (await t.read(1))[0]
        n = 0
        shift = 0
        while True:
            b = (await t.read(1))[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length")
        body = await t.read(n) if n else b""
        self._last_rx = time.ticks_ms()
        return head, body

    def _next_pid(self) -> int:
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._acks:
                return self._pid

    def _failed(self, what: str, err: Exception) -> None:
        """_lost for a task's unexpected error; the reason is plain text if the heap is too
        full to format the error (a background task must not die of its own report)."""
        try:
            why = what + repr(err)
        except MemoryError:
            why = what + "out of memory"
        self._lost(why)

    def _lost(self, why: str) -> None:
        if not self.down.is_set():
            self.error = why
            self.connected = False
            self.down.set()
            for ev in self._acks.values():
                ev.set()  # wake publishers; they see `down` and raise
            self.inbox_event.set()  # and the inbox's reader, so it moves to the next client
        if self._transport is not None:
            self._transport.close()

    # -- session -------------------------------------------------------------------
    async def connect(self, transport, timeout_ms: int = 10000) -> bool:
        """Open `transport`, send CONNECT and wait for CONNACK. Returns session_present."""
        self._transport = transport
        try:
            await transport.open(timeout_ms)
            flags = 0x02 if self.clean_session else 0
            payload = _str(self.client_id)
            if self.will is not None:
                w_topic, w_msg, w_retain, w_qos = self.will
                flags |= 0x04 | (w_qos & 3) << 3 | (0x20 if w_retain else 0)
                payload += _str(w_topic) + _str(w_msg)
            if self.username is not None:
                flags |= 0x80
                payload += _str(self.username)
                if self.password is not None:
                    flags |= 0x40
                    payload += _str(self.password)
            var = _str("MQTT") + struct.pack("!BBH", 4, flags, self.keepalive)
            await self._send(CONNECT, var, payload)
            pkt: tuple = await asyncio.wait_for_ms(self._recv_packet(), timeout_ms)
            head, body = pkt
        except (OSError, EOFError, asyncio.TimeoutError, ConnectionLost) as e:
            self._lost("")
            # e.g. ECONNREFUSED surfaces on the first write of a non-blocking connect.
            self.error = "connect failed: %r" % e
            raise ConnectionLost(self.error)
        if head != CONNACK or len(body) != 2:
            self._lost("expected CONNACK")
            raise MQTTError(self.error)
        if body[1]:
            code = body[1]
            self._lost("broker refused (%d): %s" % (code, _REFUSED[code - 1] if code <= 5 else "?"))
            raise MQTTError(self.error)
        self.connected = True
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._pinger())]
        return bool(body[0] & 1)

    async def disconnect(self) -> None:
        """Clean DISCONNECT: the broker drops the last will."""
        try:
            if self.connected:
                await self._send(DISCONNECT)
        except MQTTError:
            pass
        self.close("disconnected")

    def close(self, why: str = "closed") -> None:
        """Drop the connection without DISCONNECT (the broker then sends the will)."""
        self._lost(why)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._tasks = []

    # -- operations ----------------------------------------------------------------
    async def publish(self, topic: str, payload, retain: bool = False, qos: int = 0) -> None:
        """Send a message. With qos=1 return only once the broker acknowledged it. `payload`
        is bytes, or a list of bytes sent as one (a pack's records, never joined in the heap)."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        head = PUBLISH | (qos << 1) | (1 if retain else 0)
        body = payload if isinstance(payload, list) else (payload,)
        if qos == 0:
            await self._send(head, _str(topic), *body)
            return
        pid = self._next_pid()
        ev = asyncio.Event()
        self._acks[pid] = ev
        try:
            packet = _packet(head, _str(topic), struct.pack("!H", pid), *body)
            for attempt in range(self.retries + 1):
                # Retransmissions carry DUP so the broker and subscribers can tell.
                packet[0] = head | (0x08 if attempt else 0)
                await self._write(packet)
                try:
                    await asyncio.wait_for_ms(ev.wait(), self.ack_timeout_ms)
                except asyncio.TimeoutError:
                    continue
                if self.down.is_set():
                    raise ConnectionLost(self.error)
                return
            raise MQTTError("no PUBACK for packet %d after %d tries" % (pid, self.retries + 1))
        finally:
            self._acks.pop(pid, None)

    async def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe and wait for SUBACK; returns the granted QoS."""
        pid = self._next_pid()
        ev = asyncio.Event()
        self._acks[pid] = ev
        try:
            await self._send(SUBSCRIBE, struct.pack("!H", pid), _str(topic), bytes((qos,)))
            try:
                await asyncio.wait_for_ms(ev.wait(), self.ack_timeout_ms)
            except asyncio.TimeoutError:
                raise MQTTError("no SUBACK for '%s'" % topic)
            if self.down.is_set():
                raise ConnectionLost(self.error)
            granted = self._suback.pop(pid, 0x80)
            if granted == 0x80:
                raise MQTTError("broker refused subscription to '%s'" % topic)
            return granted
        finally:
            self._acks.pop(pid, None)

    # -- background tasks ----------------------------------------------------------
    async def _reader(self) -> None:
        try:
            while True:
                head, body = await self._recv_packet()
                kind = head & 0xF0
                if kind == PUBLISH:
                    await self._on_publish(head, body)
                elif kind == PUBACK or kind == SUBACK:
                    pid = (body[0] << 8) | body[1]
                    if kind == SUBACK:
                        self._suback[pid] = body[2] if len(body) > 2 else 0x80
                    ev = self._acks.get(pid)
                    if ev is not None:
                        ev.set()
                # PINGRESP only refreshes _last_rx.
        except asyncio.CancelledError:
            raise
        except Exception as e:  # EOF, reset, malformed packet: all mean "connection gone"
            self._failed("read failed: ", e)

    async def _on_publish(self, head: int, body: bytes) -> None:
        qos = (head >> 1) & 3
        tlen = (body[0] << 8) | body[1]
        topic = body[2 : 2 + tlen].decode()
        pos = 2 + tlen
        if qos:
            pid = body[pos : pos + 2]
            pos += 2
            await self._send(PUBACK, pid)
        if len(self.inbox) >= self._inbox_size:
            self.inbox.pop(0)
            self.inbox_dropped += 1
        self.inbox.append((topic, body[pos:], bool(head & 1)))
        self.inbox_event.set()

    async def _pinger(self) -> None:
        # Ping at half the keepalive; give up when nothing arrived for 1.5x keepalive
        # (the broker itself waits 1.5x before it publishes our will).
        ka_ms = self.keepalive * 1000
        try:
            while not self.down.is_set():
                await asyncio.sleep_ms(min(ka_ms // 4, 5000))
                now = time.ticks_ms()
                if time.ticks_diff(now, self._last_rx) > ka_ms * 3 // 2:
                    self._lost("keepalive: broker silent")
                    return
                if time.ticks_diff(now, self._last_tx) >= ka_ms // 2:
                    await self._send(PINGREQ)
        except asyncio.CancelledError:
            raise
        except MQTTError:
            pass
        except Exception as e:  # e.g. MemoryError: no pings would leave a zombie connection
            self._failed("keepalive failed: ", e)
