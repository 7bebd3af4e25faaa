"""QoS 1 delivery that amqtt (the embedded broker) does not keep on its own.

amqtt 0.12 forgets a QoS 1 message it sent to a subscriber when no PUBACK arrived within
5 s, or when the connection ended first. MQTT wants it sent again, flagged DUP, on the
session's next connection: the ingest acknowledges only after its commit, so a slow
database, a crash or a restart of the ingest would otherwise lose what was in flight. Here
a message stays in flight until its PUBACK, however late, or until the next connection
sends it again. What a connection is sent when it comes back (messages in flight, messages
queued while it was away) goes out without holding up that connection's own packets, its
SUBSCRIBE say, which amqtt would not read until those PUBACKs came.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

ACK_WAIT_S = 5.0  # how long a sender waits for the PUBACK before moving on (amqtt's figure)
# Messages kept in flight per session; beyond this the oldest is dropped, with a warning, so
# a subscriber that never acknowledges cannot exhaust its 65,535 packet ids.
MAX_IN_FLIGHT = 10_000


def spawn(tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any]) -> None:
    """Run a delivery on its own; `tasks` holds it until it ends (an unreferenced task may be
    collected mid-flight). A delivery cut off by its connection's end is no error."""
    task = asyncio.create_task(coro)
    tasks.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.debug("delivery ended: %r", t.exception())

    task.add_done_callback(done)


def at_least_once_handler_class() -> type:
    """amqtt's broker-side protocol handler, keeping unacknowledged QoS 1 messages."""
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.session import OUTGOING

    class AtLeastOnceHandler(BrokerProtocolHandler):
        resends: set[asyncio.Task[Any]]

        async def _retry_deliveries(self) -> None:
            # [MQTT-4.4.0-1] as amqtt, but without blocking the connection meanwhile.
            session = self.session
            if session is None:
                return
            self.resends = set()
            for message in [*session.inflight_in.values(), *session.inflight_out.values()]:
                spawn(self.resends, self._handle_message_flow(message))

        async def _handle_qos1_message_flow(self, app_message: Any) -> None:
            session = self.session
            if app_message.direction != OUTGOING or session is None:
                await super()._handle_qos1_message_flow(app_message)
                return
            pid = app_message.packet_id
            in_flight = session.inflight_out
            in_flight[pid] = app_message
            _bound(in_flight, session.client_id)
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            waiter.add_done_callback(lambda w: self._settled(w, app_message, in_flight))
            # Registered before sending: a PUBACK that comes back at once must find it.
            self._puback_waiters[pid] = waiter
            packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
            await self._send_packet(packet)
            app_message.publish_packet = packet
            try:
                await asyncio.wait_for(asyncio.shield(waiter), ACK_WAIT_S)
            except TimeoutError:
                log.debug("no PUBACK yet for %s/%s: kept in flight", session.client_id, pid)

        def _settled(self, waiter: asyncio.Future[Any], message: Any, in_flight: Any) -> None:
            pid = message.packet_id
            if self._puback_waiters.get(pid) is waiter:
                del self._puback_waiters[pid]
            if waiter.cancelled():
                return  # the connection ended: the next one sends it again (DUP)
            message.puback_packet = waiter.result()
            if in_flight.get(pid) is message:
                del in_flight[pid]

    return AtLeastOnceHandler


def install() -> None:
    """Make amqtt's broker build its connections' handlers from AtLeastOnceHandler (it names
    the class in its module, in a method too long to override); once per process."""
    from amqtt import broker

    if not getattr(broker.BrokerProtocolHandler, "at_least_once", False):
        handler_class = at_least_once_handler_class()
        handler_class.at_least_once = True  # type: ignore[attr-defined]
        broker.BrokerProtocolHandler = handler_class


def _bound(in_flight: Any, client_id: str | None) -> None:
    while len(in_flight) > MAX_IN_FLIGHT:
        pid, _ = in_flight.popitem(last=False)
        log.warning(
            "subscriber %s has %d messages unacknowledged: dropped the oldest (packet id %s)",
            client_id,
            MAX_IN_FLIGHT,
            pid,
        )
