"""An in-process MQTT broker (amqtt) so `fleet` runs with nothing else installed.

Production uses Mosquitto or an MQTT 5 cluster; this is the embedded default only. It keeps
QoS 1 as Mosquitto does: persistent sessions, messages in flight sent again on the next
connection (fleet.broker.amqtt_delivery), bounded queues, take-overs that leave the new
connection working, and, given a state file, all of it across a graceful restart
(fleet.broker.amqtt_state).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleet.broker import amqtt_state
from fleet.broker.amqtt_delivery import install as install_at_least_once
from fleet.broker.amqtt_delivery import spawn
from fleet.broker.url import BrokerAddress

log = logging.getLogger(__name__)

# As deploy/mosquitto/mosquitto.conf: messages queued per session while it is away, and
# how long a session that does not come back is kept.
MAX_QUEUED = 200_000
SESSION_EXPIRY_S = 30 * 86400
# How long a stop waits for what clients sent before it to be routed, before saving anyway.
SETTLE_S = 5.0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _SnapshotDict(dict[str, Any]):
    """amqtt iterates its subscription table across awaits while other sessions change it
    ("dictionary changed size during iteration" when devices connect together); iterating a
    snapshot keeps every session alive."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> Any:
        return list(super().items())


class _WatchedQueue(asyncio.Queue[dict[str, Any]]):
    """amqtt's queue of messages to route, telling whether its router waits on it: between
    taking a message and queueing it for its subscribers, the message is in neither."""

    waiting = 0

    async def get(self) -> dict[str, Any]:
        self.waiting += 1
        try:
            return await super().get()
        finally:
            self.waiting -= 1


def _transport(handler: Any) -> asyncio.Transport | None:
    writer = getattr(handler, "writer", None)
    stream = getattr(writer, "_writer", None)
    return getattr(stream, "transport", None)


def _fleet_broker_class() -> type:
    from amqtt.broker import Broker

    install_at_least_once()

    class FleetBroker(Broker):
        def __init__(self, config: dict[str, Any], state_path: Path | None = None) -> None:
            super().__init__(config)
            self._subscriptions = _SnapshotDict()
            self._replays: set[asyncio.Task[Any]] = set()
            self._broadcast_queue = _WatchedQueue()
            self._routing = 0  # messages taken from a client and not yet queued to route
            self._closing = False
            self.state_path = state_path

        async def _start_listeners(self) -> None:
            # amqtt has cleared its tables; no client is connected yet.
            state = amqtt_state.load(self.state_path) if self.state_path else None
            if state is not None:
                log.info("embedded broker restored %s", amqtt_state.restore(self, state))
            await super()._start_listeners()
            if state is not None and self.state_path is not None:
                self.state_path.unlink()  # in memory now; a crash must not bring it back

        async def shutdown(self) -> None:
            if self.state_path is not None:
                await self._settle()
                state = amqtt_state.capture(self)
                # Nothing the saved state lacks may be acknowledged or delivered after it.
                for _, handler in self._sessions.values():
                    if (transport := _transport(handler)) is not None:
                        transport.abort()
                try:
                    amqtt_state.save(self.state_path, state)
                except OSError as exc:
                    log.error(
                        "embedded broker could not save its state to %s (%s): its queued "
                        "messages and sessions are lost",
                        self.state_path,
                        exc,
                    )
                else:
                    log.info(
                        "embedded broker saved %d retained messages and %d sessions to %s",
                        len(state["retained"]),
                        len(state["sessions"]),
                        self.state_path,
                    )
            await super().shutdown()

        async def _settle(self) -> None:
            """Stop taking anything new, then let what clients already sent be routed."""
            self._closing = True  # a connection accepted just before is refused (see below)
            for server in self._servers.values():
                if server.instance is not None:
                    server.instance.close()
            for _, handler in self._sessions.values():
                if (transport := _transport(handler)) is not None:
                    transport.pause_reading()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SETTLE_S
            quiet = 0
            # Each step of a route runs on its own turn of the loop: quiet for three turns
            # in a row means nothing is half-way.
            while quiet < 3:
                if loop.time() > deadline:
                    log.warning("embedded broker: saving while messages are still routed")
                    return
                await asyncio.sleep(0 if quiet else 0.005)
                quiet = quiet + 1 if self._idle() else 0

        def _idle(self) -> bool:
            queue = self._broadcast_queue
            return (
                self._routing == 0
                and queue.empty()
                and getattr(queue, "waiting", 0) > 0
                and all(s.delivered_message_queue.empty() for s, _ in self._sessions.values())
            )

        async def _handle_message_delivery(self, session: Any, handler: Any, waiter: Any) -> bool:
            self._routing += 1
            try:
                return bool(await super()._handle_message_delivery(session, handler, waiter))
            finally:
                self._routing -= 1

        async def _authenticate(self, session: Any, listener: Any) -> bool:
            if self._closing:  # its packets would come after the state was saved
                return False
            # Runs first for each connection. One whose client is still connected takes
            # that connection over: mark the old one before amqtt ends it (see below).
            if session.transitions.is_connected():
                _, old = self._sessions.get(session.client_id, (None, None))
                if old is not None:
                    old.taken_over = True
            ok = bool(await super()._authenticate(session, listener))
            # Anyone may connect, but amqtt then marks the session anonymous and keeps
            # neither its subscriptions nor its QoS 1 messages while it is away: a sleeping
            # device's commands and the ingest's backlog would be lost. A session that asks
            # to persist (clean_session off) persists, as with Mosquitto.
            session.is_anonymous = False
            return ok

        async def _handle_disconnect(self, session: Any, handler: Any, waiter: Any) -> None:
            if getattr(handler, "taken_over", False):
                # A device back after a Wi-Fi drop its old connection never noticed: amqtt
                # would end the old connection by marking the session, which the new one
                # now uses, disconnected (nothing more delivered to it) and by publishing
                # the will ("offline" while it is online). Only the old handler ends.
                await self._stop_handler(handler)
                return
            await super()._handle_disconnect(session, handler, waiter)

        async def _publish_session_retained_messages(self, session: Any) -> None:
            # What was queued while the session was away, as amqtt sends it but without
            # waiting for the PUBACKs before reading the session's own packets, and without
            # the retain flag: these messages were queued for it, not retained.
            handler = self._get_handler(session)
            queue = session.retained_messages
            while handler is not None and not queue.empty():
                m = queue.get_nowait()
                spawn(self._replays, handler.mqtt_publish(m.topic, m.data, m.qos, retain=False))

        async def _retain_broadcast_message(
            self, broadcast: dict[str, Any], qos: int, target_session: Any
        ) -> None:
            # A session away for good must not fill the memory: the oldest queued go first.
            queue = target_session.retained_messages
            if queue.qsize() >= MAX_QUEUED:
                queue.get_nowait()
                log.warning(
                    "session %s is away with %d messages queued: dropped the oldest",
                    target_session.client_id,
                    MAX_QUEUED,
                )
            await super()._retain_broadcast_message(broadcast, qos, target_session)

        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            # On connect amqtt replays retained messages for every client's filters; a session
            # must only get those of its own subscriptions (a device never sees another's).
            holders = self._subscriptions.get(subscription[0], ())
            if not any(s is session for s, _ in holders):
                return
            await super()._publish_retained_messages_for_subscription(subscription, session)

    return FleetBroker


class EmbeddedBroker:
    """Runs amqtt on its own event-loop thread; `start()` returns once it accepts connections."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 1883, *, state_path: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.state_path = state_path  # kept across graceful restarts; None keeps nothing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    def start(self, timeout: float = 15.0) -> BrokerAddress:
        if self.port == 0:  # any free port, as with a socket bind
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            chosen = free_port(self.host)
            log.warning(
                "port %s is in use (another broker?); the embedded broker listens on %s instead",
                self.port,
                chosen,
            )
            self.port = chosen
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded MQTT broker did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the embedded MQTT broker failed: {self._error}") from self._error
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)
        return self.address

    def stop(self) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)  # type: ignore[attr-defined]
        try:
            fut.result(timeout=60)  # settling and saving a full queue take seconds
        except Exception as exc:  # shutdown errors must not mask the caller's own exit
            log.warning("embedded broker shutdown: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        broker_class = _fleet_broker_class()
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
            "session_expiry_interval": SESSION_EXPIRY_S,
        }

        async def boot() -> None:
            broker = broker_class(config, self.state_path)
            self._broker = broker
            await broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()
