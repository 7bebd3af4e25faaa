"""Asyncio MQTT 3.1.1 client for the device.

`Transport` moves bytes (TCP, optionally TLS); `MQTTClient` speaks the protocol
on one connection. Neither retries a lost connection: the caller owns the retry
policy (see cs.backoff and cs.app), watches `client.down` and builds a new
client. QoS 1 publishes wait for PUBACK and retransmit with DUP on timeout.

Incoming QoS 1 messages are acknowledged only when the node takes them from the inbox, so
none is lost with a full inbox, a dropped connection or a reset: the broker keeps and
resends what was never acknowledged (a command already run is recognised by its id, see
cs.commands). The heap stays bounded: packets over MAX_PACKET are skipped in small pieces,
and the inbox holds at most `inbox_size` messages and INBOX_BYTES of payload.
"""

import asyncio
import struct
import time

from micropython import const

from cs.log import log

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)

# Largest packet read into the heap: ~3x the largest command, setting or update offer the
# fleet sends (an offer with its signed manifest is ~1.5 KB). A bigger PUBLISH is read in
# _CHUNK pieces, thrown away and acknowledged so the broker does not send it again.
MAX_PACKET = const(4096)
INBOX_BYTES = const(4096)  # payload held in the inbox (a single message of any size fits)
_CHUNK = const(512)
_REDELIVER_IDLE_MS = const(1000)  # no take for this long: the node has caught up
_STALL_MS = const(30000)  # a packet the link cannot take in this long: the connection is dead

# CONNACK return codes 1..5.
_REFUSED = ("protocol version", "client id rejected", "server unavailable", "bad credentials", "not authorised")


class MQTTError(Exception):
    pass


class ConnectionLost(MQTTError):
    pass


class Transport:
    """A byte stream to the broker (TCP, or TLS with a context). No protocol, no retries;
    tests substitute their own object with the same four methods."""

    def __init__(self, host: str, port: int, tls_context=None, stall_ms: int = _STALL_MS) -> None:
        self.addr = (host, port, tls_context)
        self.s = None  # MicroPython's open_connection returns one stream for both ways
        self.stall_ms = stall_ms
        self._draining = None  # an Event while a packet the socket did not take at once drains

    async def open(self, timeout_ms: int = 10000) -> None:
        host, port, ctx = self.addr
        self.s = (await asyncio.wait_for_ms(asyncio.open_connection(host, port, ssl=ctx), timeout_ms))[0]

    async def read(self, n: int) -> bytes:
        if self.s is None:
            raise OSError("closed")
        return await self.s.readexactly(n)

    async def write(self, packet) -> None:
        # A packet the socket did not take whole drains first: the stream's drain serves one
        # task at a time, and a second task draining meanwhile would leave the first waiting
        # for ever (and its bytes behind the second's).
        while self._draining is not None:
            await self._draining.wait()
        s = self.s
        if s is None:
            raise OSError("closed")
        # One write per packet: the stream sends each write at once, and a second small
        # segment would wait for the broker's delayed ACK (Nagle), ~40 ms per PUBACK round
        # trip, which a battery node pays in radio time.
        s.write(packet)
        if not s.out_buf:
            await s.drain()  # sent already: this only yields
            return
        # The socket is full (a slow or dead link). Bounded: a closed socket never wakes a
        # drain, and a writer stuck here would never see the connection end.
        done = self._draining = asyncio.Event()
        try:
            await asyncio.wait_for_ms(s.drain(), self.stall_ms)
        except asyncio.TimeoutError:
            raise OSError("send stalled")
        finally:
            self._draining = None
            done.set()

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


class Inbox:
    """Received messages, oldest first: `pop(0)` gives (topic, payload, retained) and sends
    the QoS 1 message's PUBACK, which is thus never sent for a message the node did not take.
    A message that does not fit is refused (see MQTTClient._on_publish)."""

    def __init__(self, client, size: int) -> None:
        self._client = client
        self._size = size
        self._items: list = []  # (topic, payload, retained, packet id or None)
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, topic: str, payload, retained: bool, pid) -> bool:
        n = len(payload)
        if self._items and (len(self._items) >= self._size or self._bytes + n > INBOX_BYTES):
            return False
        self._items.append((topic, payload, retained, pid))
        self._bytes += n
        return True

    def pop(self, i: int = 0) -> tuple:
        topic, payload, retained, pid = self._items.pop(i)
        self._bytes -= len(payload)
        if pid is not None:
            self._client._taken(pid)
        return topic, payload, retained


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
        inbox_size: int = 8,
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
        self.inbox = Inbox(self, inbox_size)
        self.inbox_dropped = 0  # QoS 0 messages refused by a full inbox (never sent again)
        # QoS 1 messages refused by a full inbox, unacknowledged: the broker sends them again
        # on the next connection. Once `redeliver`, the client ends this one (with DISCONNECT,
        # no will) when the node has caught up; a caller that reconnects itself clears it.
        self.held = 0
        self.redeliver = True
        self.oversized = 0  # messages over MAX_PACKET thrown away
        self.inbox_event = asyncio.Event()
        self._pubacks: list = []  # packet ids of taken messages, PUBACK not yet written
        self._flushing = False
        self._taken_at = time.ticks_ms()
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
        if n > MAX_PACKET:
            if head & 0xF0 != PUBLISH:
                raise MQTTError("packet of %d bytes" % n)
            await self._skip(t, head, n)
            return head, None
        body = await t.read(n) if n else b""
        self._last_rx = time.ticks_ms()
        return head, body

    async def _skip(self, t: Transport, head: int, n: int) -> None:
        """Read an oversized PUBLISH of `n` bytes a piece at a time, never whole (it may be
        larger than the heap), and acknowledge it: refused for good, not sent again."""
        b = await t.read(2)
        tlen = (b[0] << 8) | b[1]
        qos = head & 6
        n -= 2 + tlen + (2 if qos else 0)
        if n < 0:
            raise MQTTError("malformed PUBLISH")
        topic = await t.read(tlen) if tlen <= 128 else None  # to name it in the log
        if topic is None:
            await self._drop(t, tlen)
        pid = await t.read(2) if qos else None
        await self._drop(t, n)
        self.oversized += 1
        log("mqtt: refused a message over %d bytes on" % MAX_PACKET, topic)
        if pid is not None:
            await self._send(PUBACK, pid)

    async def _drop(self, t: Transport, n: int) -> None:
        while n:
            k = min(n, _CHUNK)
            await t.read(k)
            n -= k
            self._last_rx = time.ticks_ms()

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
        except MQTTError as e:  # e.g. a malformed length: the socket must not stay open
            self._lost("connect failed: %s" % e)
            raise
        if head != CONNACK or body is None or len(body) != 2:
            self._lost("expected CONNACK")
            raise MQTTError(self.error)
        if body[1]:
            code = body[1]
            self._lost("broker refused (%d): %s" % (code, _REFUSED[code - 1] if code <= 5 else "?"))
            raise MQTTError(self.error)
        self.connected = True
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._pinger())]
        return bool(body[0] & 1)

    async def disconnect(self, why: str = "disconnected") -> None:
        """Clean DISCONNECT after the PUBACKs of taken messages: the broker drops the last will."""
        try:
            if self.connected:
                while self._pubacks:
                    await self._send(PUBACK, self._pubacks.pop(0))
                await self._send(DISCONNECT)
        except MQTTError:
            pass
        self.close(why)

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
        """Subscribe and wait for SUBACK; returns the granted QoS. At most QoS 1: the
        client has no QoS 2 flow, so the broker must never send one."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
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
                if body is None:
                    continue  # an oversized PUBLISH, skipped
                if kind == PUBLISH:
                    self._on_publish(head, body)
                elif kind == PUBACK or kind == SUBACK:
                    pid = (body[0] << 8) | body[1]
                    ev = self._acks.get(pid)
                    if ev is None:
                        continue  # not (or no longer) waited for: a late or stray ack
                    if kind == SUBACK:
                        self._suback[pid] = body[2] if len(body) > 2 else 0x80
                    ev.set()
                # PINGRESP only refreshes _last_rx.
        except asyncio.CancelledError:
            raise
        except Exception as e:  # EOF, reset, malformed packet: all mean "connection gone"
            self._failed("read failed: ", e)

    def _on_publish(self, head: int, body: bytes) -> None:
        qos = (head >> 1) & 3
        if qos > 1:  # QoS 3 is malformed [MQTT-3.3.1-4]; QoS 2 was never subscribed to
            raise MQTTError("PUBLISH with QoS %d" % qos)
        tlen = (body[0] << 8) | body[1]
        pos = 2 + tlen + (2 if qos else 0)
        if pos > len(body):
            raise MQTTError("malformed PUBLISH")
        # Ill-formed UTF-8 raises here: the connection must close [MQTT-1.5.3-1].
        topic = body[2 : 2 + tlen].decode()
        pid = body[pos - 2 : pos] if qos else None
        # Once one is held, later ones are held too: the broker resends them all, in order.
        if (pid is not None and self.held) or not self.inbox.put(topic, body[pos:], bool(head & 1), pid):
            if pid is None:
                self.inbox_dropped += 1
            else:
                self.held += 1
            return
        self.inbox_event.set()

    def _taken(self, pid: bytes) -> None:
        """The node took a QoS 1 message: acknowledge it, in order, from a task (the node
        takes it in plain code); `disconnect` writes what is still waiting."""
        self._taken_at = time.ticks_ms()
        self._pubacks.append(pid)
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pubacks:
                await self._send(PUBACK, self._pubacks.pop(0))
        except MQTTError:
            pass  # connection gone: the broker resends the message, its id marks it as run
        finally:
            self._flushing = False

    def _caught_up(self) -> bool:
        """Held messages wait for the next connection, and the node has emptied the inbox and
        sent what it was sending: time to end this connection."""
        return (
            self.held > 0
            and self.redeliver
            and not self.inbox
            and not self._pubacks
            and not self._acks
            and time.ticks_diff(time.ticks_ms(), self._taken_at) >= _REDELIVER_IDLE_MS
        )

    async def _pinger(self) -> None:
        # Ping at half the keepalive; give up when nothing arrived for 1.5x keepalive
        # (the broker itself waits 1.5x before it publishes our will).
        ka_ms = self.keepalive * 1000
        try:
            while not self.down.is_set():
                await asyncio.sleep_ms(min(ka_ms // 4, _REDELIVER_IDLE_MS if self.held else 5000))
                now = time.ticks_ms()
                if time.ticks_diff(now, self._last_rx) > ka_ms * 3 // 2:
                    self._lost("keepalive: broker silent")
                    return
                if self._caught_up():
                    await self.disconnect("%d held messages: reconnecting to receive them" % self.held)
                    return
                if time.ticks_diff(now, self._last_tx) >= ka_ms // 2:
                    await self._send(PINGREQ)
        except asyncio.CancelledError:
            raise
        except MQTTError:
            pass
        except Exception as e:  # e.g. MemoryError: no pings would leave a zombie connection
            self._failed("keepalive failed: ", e)
