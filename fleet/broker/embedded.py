"""An in-process MQTT broker (amqtt) so `fleet` runs with nothing else installed.

Production uses Mosquitto or an MQTT 5 cluster; this is the embedded default only.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from fleet.broker.url import BrokerAddress

log = logging.getLogger(__name__)


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


def _fleet_broker_class() -> type:
    from amqtt.broker import Broker

    class FleetBroker(Broker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._subscriptions = _SnapshotDict()

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

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
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
            fut.result(timeout=10)
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
        }

        async def boot() -> None:
            broker = broker_class(config)
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
