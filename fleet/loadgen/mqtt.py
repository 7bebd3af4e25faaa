"""A minimal asyncio MQTT 3.1.1 client: what a sensor does, at ~10 KiB per connection.

CONNECT with a last will, PUBLISH at QoS 0/1 (QoS 1 waits for PUBACK and resends with the DUP
flag on timeout), PINGREQ on the keepalive, DISCONNECT. No subscriptions: simulated devices
only send. Ten thousand of these share one event loop, which a thread per paho client
could not.
"""

from __future__ import annotations

import asyncio
import ssl

from fleet.broker import wire
from fleet.broker.wire import Control, Will

__all__ = ["MqttClient", "MqttError", "Will"]


class MqttError(Exception):
    """The connection failed or was lost; the caller reconnects (retry policy lives there)."""


class _Protocol(asyncio.Protocol):
    """Frames incoming packets and resolves the futures waiting for them."""

    def __init__(self, client: MqttClient) -> None:
        self._client = client
        self._buf = bytearray()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._lost(exc, self)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        controls: list[Control] = []
        # Devices subscribe to nothing: any PUBLISH is parsed and dropped.
        del buf[: wire.parse(buf, 1 << 30, [], controls)]
        for kind, body in controls:
            self._client._packet(kind, body)


class MqttClient:
    """One connection. `publish(qos=1)` returns once the broker has acknowledged the message."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        keepalive: int = 60,
        clean_session: bool = False,
        will: Will | None = None,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive = keepalive
        self.clean_session = clean_session
        self.will = will
        self._tls = tls
        self._username, self._password = username, password
        self._transport: asyncio.Transport | None = None
        # The current connection's protocol; losses reported by older ones are ignored.
        self._protocol: _Protocol | None = None
        self._connack: asyncio.Future[int] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._pinger: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return self._transport is not None and not self.closed.is_set()

    async def connect(self, timeout: float = 10.0) -> bool:
        """Connect and wait for CONNACK; returns the broker's session-present flag."""
        loop = asyncio.get_running_loop()
        self.closed.clear()
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(self), self.host, self.port, ssl=self._tls
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.closed.set()
            raise MqttError(
                f"{self.client_id}: cannot reach {self.host}:{self.port}: {exc}"
            ) from exc
        self._transport = transport
        self._protocol = protocol
        self._connack = loop.create_future()
        transport.write(
            wire.connect(
                self.client_id,
                keepalive_s=self.keepalive,
                clean_session=self.clean_session,
                will=self.will,
                username=self._username,
                password=self._password,
            )
        )
        try:
            flags = await asyncio.wait_for(self._connack, timeout)
        except (TimeoutError, MqttError) as exc:
            self.abort()
            raise MqttError(f"{self.client_id}: no CONNACK: {exc}") from exc
        self._pinger = asyncio.create_task(self._ping_loop())
        return bool(flags & 1)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        ack_timeout: float = 10.0,
        attempts: int = 3,
    ) -> None:
        """QoS 1: resend with DUP until PUBACK; raises MqttError if the connection goes."""
        transport = self._require()
        if qos == 0:
            transport.write(wire.publish(topic, payload, qos=0, retain=retain))
            return
        packet_id = self._packet_id()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[packet_id] = future
        try:
            for attempt in range(attempts):
                self._require().write(
                    wire.publish(
                        topic, payload, qos=qos, mid=packet_id, retain=retain, dup=attempt > 0
                    )
                )
                try:
                    await asyncio.wait_for(asyncio.shield(future), ack_timeout)
                    return
                except TimeoutError:
                    continue
            self.abort()
            raise MqttError(f"{self.client_id}: no PUBACK for {topic} after {attempts} attempts")
        finally:
            self._acks.pop(packet_id, None)

    async def disconnect(self) -> None:
        if self.is_connected and self._transport is not None:
            self._transport.write(wire.DISCONNECT)
            self._transport.close()
        await self.closed.wait()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, so the broker publishes the last will."""
        if self._transport is not None:
            self._transport.abort()
        self._lost(MqttError("aborted"), self._protocol)

    def _require(self) -> asyncio.Transport:
        if self._transport is None or self.closed.is_set():
            raise MqttError(f"{self.client_id}: not connected")
        return self._transport

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def _ping_loop(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self.keepalive * 0.75)
            if self._transport is not None and not self.closed.is_set():
                self._transport.write(wire.PINGREQ)

    def _packet(self, kind: int, body: bytes) -> None:
        if kind == wire.CONNACK and self._connack is not None and not self._connack.done():
            code = body[1] if len(body) > 1 else 255
            if code:
                reason = wire.CONNACK_REASONS.get(code, f"code {code}")
                self._connack.set_exception(MqttError(f"broker refused: {reason}"))
            else:
                self._connack.set_result(body[0])
        elif kind == wire.PUBACK and len(body) >= 2:
            future = self._acks.get(body[0] << 8 | body[1])
            if future is not None and not future.done():
                future.set_result(None)

    def _lost(self, exc: Exception | None, protocol: _Protocol | None) -> None:
        # An aborted connection reports its loss later, perhaps after a reconnect: only the
        # current connection's loss counts.
        if protocol is not self._protocol or self.closed.is_set():
            return
        self._protocol = None
        self.closed.set()
        self._transport = None
        error = MqttError(f"{self.client_id}: connection lost: {exc or 'closed by the broker'}")
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(error)
        for future in self._acks.values():
            if not future.done():
                future.set_exception(error)
        if self._pinger is not None:
            self._pinger.cancel()
