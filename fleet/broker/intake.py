"""An MQTT 3.1.1 client for high-rate intake, on an asyncio loop in its own thread.

General-purpose clients read each packet with several small socket reads and hand messages
over one callback at a time; at thousands of messages a second that alone costs a Python
process a third of a core. This client reads whatever the socket holds, parses every whole
packet in it in one pass, hands the owner a batch, writes a batch's PUBACKs as one buffer, and
stops reading when the owner has no room (the broker then keeps the rest in its session).

Acknowledgements are the owner's decision and may come from any thread; an ack for a message
delivered on an earlier connection is dropped, since message ids mean nothing on a new one.
Outgoing QoS 1 publishes are kept until the broker acknowledges them and resent after a
reconnect.

A persistent session keeps every subscription it ever made, so a client whose filter changed
(a plain subscriber turned shared-subscription member, or a new share group) would still get
its old filter's messages as well. The owner names such former filters; when the broker
reports a session present they are unsubscribed, after the current filter is in place so
that nothing goes unrouted in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fleet.broker import wire
from fleet.broker.url import BrokerAddress
from fleet.broker.wire import Control, Delivery

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CLOSE_GRACE_S = 2.0  # how long a stop waits for the broker to close after DISCONNECT


class ConnectRefused(Exception):
    """The broker answered CONNECT or SUBSCRIBE with a refusal; the message says which."""


@dataclass(frozen=True)
class IntakeCallbacks:
    """What the owner is told. `on_batch` runs on the client's thread and must not block;
    `room` says how many more messages the owner can take now (0 pauses reading)."""

    on_batch: Callable[[list[Delivery], int], None]  # (deliveries, connection generation)
    room: Callable[[], int]
    on_up: Callable[[bool], None] = lambda session_present: None
    on_down: Callable[[str], None] = lambda reason: None


class IntakeClient:
    def __init__(
        self,
        broker: BrokerAddress,
        *,
        client_id: str,
        topic_filter: str,
        callbacks: IntakeCallbacks,
        former_filters: tuple[str, ...] = (),
        clean_session: bool = False,
        keepalive_s: int = 60,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        max_outgoing: int = 1000,
    ) -> None:
        self._broker = broker
        self._client_id = client_id
        self._filter = topic_filter
        self._former = [f for f in dict.fromkeys(former_filters) if f != topic_filter]
        self._cb = callbacks
        self._clean = clean_session
        self._keepalive = keepalive_s
        self._backoff = (reconnect_min_s, reconnect_max_s)
        if not 0 < max_outgoing < 0xFFFF:
            raise ValueError("max_outgoing must be between 1 and 65,534")
        self._max_outgoing = max_outgoing
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        # Connection state, touched only on the loop's thread.
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._paused = False
        self._last_sent = self._last_heard = 0.0
        # CONNACK (0), SUBACK and UNSUBACK (their packet ids).
        self._waiters: dict[int, asyncio.Future[bytes]] = {}
        self._lost: asyncio.Future[str] | None = None
        # Bumped for every connection; read from any thread.
        self.generation = 0
        # Outgoing QoS 1 publishes awaiting PUBACK, by packet id (any thread, under the lock).
        self._out_lock = threading.Lock()
        self._outgoing: dict[int, bytes] = {}
        self._next_mid = 0

    # --- the owner's side (any thread) --------------------------------------------------

    def start(self) -> None:
        if self._loop.is_closed():  # stopped before: a loop runs once
            self._loop = asyncio.new_event_loop()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mqtt-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect cleanly (the session and its queued messages stay with the broker)."""
        if self._thread is None:
            return
        self._call(self._begin_stop)
        self._thread.join(timeout)
        self._thread = None

    def ack(self, mids: list[int], generation: int) -> None:
        if mids:
            data = wire.pubacks(mids)
            self._call(self._write_for, data, generation)

    def resume(self) -> None:
        """The owner has room again; a no-op unless reading was paused."""
        if self._paused:
            self._call(self._take_buffered)

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Queue a publish; False when not connected or when `max_outgoing` QoS 1 publishes
        still await the broker's PUBACK (queued ones are resent after a reconnect)."""
        if qos not in (0, 1):
            raise ValueError("the intake client publishes at QoS 0 or 1")
        if self._transport is None:
            return False
        if qos:
            with self._out_lock:
                if len(self._outgoing) >= self._max_outgoing:
                    return False
                mid = self._allocate_mid()
                packet = wire.publish(topic, payload, qos=1, mid=mid, retain=retain)
                self._outgoing[mid] = packet
        else:
            packet = wire.publish(topic, payload, qos=0, retain=retain)
        self._call(self._write_for, packet, self.generation)
        return True

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        """Run `fn` on the client's thread; dropped once a stop has closed its loop (writes
        for a connection that is gone mean nothing)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _allocate_mid(self) -> int:
        # max_outgoing < 65,535 guarantees a free id.
        while True:
            self._next_mid = self._next_mid % 0xFFFF + 1
            if self._next_mid not in self._outgoing:
                return self._next_mid

    # --- the loop's thread --------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    def _begin_stop(self) -> None:
        self._stopping = True
        if self._stopped is not None:
            self._stopped.set()
        transport = self._transport
        if transport is not None:
            # The broker closes the connection after DISCONNECT. Closing it first, with bytes
            # from the broker still unread, would reset it, and the broker could drop the acks
            # just written; so read (and discard) until it closes, or give up after a grace.
            transport.write(wire.DISCONNECT)
            if self._paused:
                transport.resume_reading()
            self._loop.call_later(CLOSE_GRACE_S, transport.abort)

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        delay = self._backoff[0]
        while not self._stopping:
            try:
                was_up, reason = await self._session()
            except Exception as exc:  # a bug here must not end intake for good: start over
                log.exception("intake connection failed unexpectedly")
                self._drop()
                was_up, reason = False, f"unexpected error: {exc!r}"
            if self._stopping:
                break
            if was_up:
                delay = self._backoff[0]  # it was up: start the backoff again from the bottom
            wait = delay * random.uniform(0.5, 1.0)
            log.warning("connection to %s: %s; retrying in %.1fs", self._broker.url, reason, wait)
            delay = min(delay * 2, self._backoff[1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), wait)

    async def _session(self) -> tuple[bool, str]:
        """One connection from connect to loss; returns whether it was up, and why it ended."""
        loop = self._loop
        self._lost = loop.create_future()
        self._buf = bytearray()
        self._paused = False
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(self),
                    self._broker.host,
                    self._broker.port,
                    ssl=self._ssl_context(),
                ),
                CONNECT_TIMEOUT_S,
            )
            self.generation += 1
            session_present = await self._handshake()
        except (OSError, TimeoutError, ssl.SSLError, ConnectRefused, wire.ProtocolError) as exc:
            self._drop()
            return False, f"cannot connect: {exc or type(exc).__name__}"
        self._cb.on_up(session_present)
        pinger = loop.create_task(self._keep_alive())
        try:
            reason = await self._lost
        finally:
            pinger.cancel()
        self._cb.on_down(reason)
        return True, reason

    async def _handshake(self) -> bool:
        b = self._broker
        self._write(
            wire.connect(
                self._client_id,
                keepalive_s=self._keepalive,
                clean_session=self._clean,
                username=b.username,
                password=b.password,
            )
        )
        connack = await self._reply(0)
        if len(connack) != 2:
            raise wire.ProtocolError("CONNACK is not two bytes")
        if connack[1]:
            reason = wire.CONNACK_REASONS.get(connack[1], f"code {connack[1]}")
            raise ConnectRefused(f"the broker refused the connection: {reason}")
        session_present = bool(connack[0] & 1)
        # A resumed session may deliver its backlog before the SUBACK; parse() takes it.
        with self._out_lock:
            resend = list(self._outgoing.values())
        for packet in resend:
            self._write(bytes((packet[0] | 0x08,)) + packet[1:])  # DUP: sent before
        self._write(wire.subscribe(1, self._filter, 1))
        suback = await self._reply(1)
        if len(suback) < 3 or suback[2] == wire.SUBACK_FAILURE:
            raise ConnectRefused(f"the broker refused the subscription to {self._filter}")
        if session_present and self._former:
            self._write(wire.unsubscribe(2, self._former))
            await self._reply(2)  # UNSUBACK: from here on only the current filter routes to us
            log.info("unsubscribed the session's former filters %s", ", ".join(self._former))
        return session_present

    async def _reply(self, key: int) -> bytes:
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._waiters[key] = fut
        assert self._lost is not None
        done, _ = await asyncio.wait(
            (fut, self._lost), timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        self._waiters.pop(key, None)
        if fut in done:
            return fut.result()
        if self._lost in done:
            raise ConnectRefused(f"the broker closed the connection: {self._lost.result()}")
        raise TimeoutError("the broker did not answer within 10 s")

    async def _keep_alive(self) -> None:
        # PINGREQ when nothing else was sent for half the keepalive; a broker silent for 1.5x
        # the keepalive is gone. Not while paused: unread bytes are waiting, not missing.
        interval = self._keepalive / 2
        while True:
            await asyncio.sleep(min(interval, 5.0))
            now = time.monotonic()
            if now - self._last_sent >= interval:
                self._write(wire.PINGREQ)
            if not self._paused and now - self._last_heard > 1.5 * self._keepalive:
                self._drop("no reply from the broker within 1.5x the keepalive")
                return

    def _ssl_context(self) -> ssl.SSLContext | None:
        b = self._broker
        if not b.tls:
            return None
        ctx = ssl.create_default_context(cafile=b.ca_file)
        if b.cert_file:
            ctx.load_cert_chain(b.cert_file, b.key_file)
        return ctx

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)
            self._last_sent = time.monotonic()

    def _write_for(self, data: bytes, generation: int) -> None:
        if generation == self.generation:
            self._write(data)

    def _drop(self, reason: str = "") -> None:
        if self._transport is not None:
            self._transport.abort()
        if reason and self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    # Called by the protocol.
    def _connected(self, transport: asyncio.Transport) -> None:
        if self._stopping:
            transport.close()
            return
        self._transport = transport
        self._last_heard = self._last_sent = time.monotonic()

    def _connection_lost(self, transport: asyncio.Transport, exc: Exception | None) -> None:
        if transport is not self._transport:
            return  # an earlier connection, already given up
        self._transport = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(str(exc) if exc else "the broker closed the connection")

    def _received(self, data: bytes) -> None:
        self._last_heard = time.monotonic()
        self._buf += data
        if not self._paused:
            self._take_buffered()

    def _take_buffered(self) -> None:
        """Hand over what the owner has room for; pause reading when it has none."""
        if self._transport is None or self._stopping:
            return  # stopping: nothing more is handed over, so nothing more is acked
        room = self._cb.room()
        publishes: list[Delivery] = []
        controls: list[Control] = []
        try:
            used = wire.parse(self._buf, max(room, 0), publishes, controls)
        except wire.ProtocolError as exc:
            log.error("intake connection: %s; reconnecting", exc)
            self._drop(str(exc))
            return
        del self._buf[:used]
        for kind, body in controls:
            self._control(kind, body)
        if publishes:
            self._cb.on_batch(publishes, self.generation)
        full = room <= len(publishes) and bool(self._buf)
        if full != self._paused:
            self._set_paused(full)

    def _set_paused(self, paused: bool) -> None:
        assert self._transport is not None
        self._paused = paused
        if paused:
            self._transport.pause_reading()
            # The owner may have made room between room() and the flag: look again.
            if self._cb.room() > 0:
                self._loop.call_soon(self._take_buffered)
        else:
            self._transport.resume_reading()
            self._last_heard = time.monotonic()

    def _control(self, kind: int, body: bytes) -> None:
        if kind == wire.PUBACK and len(body) == 2:
            with self._out_lock:
                self._outgoing.pop(body[0] << 8 | body[1], None)
        elif kind == wire.CONNACK:
            self._resolve(0, body)
        elif kind in (wire.SUBACK, wire.UNSUBACK) and len(body) >= 2:
            self._resolve(body[0] << 8 | body[1], body)
        elif kind != wire.PINGRESP:
            log.warning("intake connection: ignored MQTT packet type %d", kind >> 4)

    def _resolve(self, key: int, body: bytes) -> None:
        fut = self._waiters.get(key)
        if fut is not None and not fut.done():
            fut.set_result(body)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: IntakeClient) -> None:
        self._client = client
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._client._connected(transport)

    def data_received(self, data: bytes) -> None:
        self._client._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._client._connection_lost(self._transport, exc)
