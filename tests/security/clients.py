"""TLS MQTT clients for the broker tests: every wait is an event with a deadline."""

from __future__ import annotations

import queue
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

DEADLINE_S = 10.0


@dataclass(frozen=True)
class Identity:
    """Files a client connects with; `cert`/`key` None means no client certificate."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


class TlsClient:
    """A paho MQTT 3.1.1 client over TLS that records what it receives, in order."""

    def __init__(
        self,
        client_id: str,
        identity: Identity,
        host: str,
        port: int,
        *,
        clean_session: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.session_present: bool | None = None
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._suback_event = threading.Condition()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
        )
        self._client.tls_set(
            ca_certs=str(identity.ca),
            certfile=str(identity.cert) if identity.cert else None,
            keyfile=str(identity.key) if identity.key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # -- callbacks (paho's network thread) --
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.disconnected.set()
        else:
            self.session_present = bool(flags.session_present)
            self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.disconnected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._suback_event:
            self._subacks[mid] = list(reason_codes)
            self._suback_event.notify_all()

    # -- API for tests --
    def connect(self, timeout: float = DEADLINE_S) -> bool:
        """True once the broker accepted us; False if it refused (TLS or MQTT) or went away."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except (ssl.SSLError, OSError):
            return False
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.disconnected.wait(0.05):
                return self.connected.is_set()
        raise TimeoutError(f"no CONNACK and no refusal from {self.host}:{self.port} in {timeout}s")

    def subscribe(self, topic: str, timeout: float = DEADLINE_S) -> None:
        result, mid = self._client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"subscribe to {topic} failed locally: {result}")
        with self._suback_event:
            if not self._suback_event.wait_for(lambda: mid in self._subacks, timeout):
                raise TimeoutError(f"no SUBACK for {topic} in {timeout}s")

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, timeout: float = DEADLINE_S
    ) -> None:
        """Publish QoS 1 and wait for PUBACK: the broker has then routed (or dropped) it."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK for {topic} in {timeout}s")

    def receive_until(
        self, topic: str, payload: bytes, timeout: float = DEADLINE_S
    ) -> list[tuple[str, bytes]]:
        """Everything received up to and including the marker (`topic`, `payload`)."""
        seen: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"marker {topic} {payload!r} not received; got {seen}")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            seen.append(message)
            if message == (topic, payload):
                return seen

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
