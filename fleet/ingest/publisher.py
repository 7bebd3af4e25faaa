"""A publish-only broker connection for API processes that run without the ingest worker."""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt

from fleet.broker.url import BrokerAddress

log = logging.getLogger(__name__)


class CommandPublisher:
    """Sends commands and config to devices; subscribes to nothing, so it never takes a share
    of the device traffic away from the ingest workers."""

    def __init__(self, broker: BrokerAddress, *, client_id: str) -> None:
        self.connected = threading.Event()
        self._broker = broker
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,  # nothing to keep: it receives no messages
            protocol=mqtt.MQTTv311,
        )
        broker.configure(self._client)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=60)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.error("command publisher could not connect to the broker: %s", rc)
            return
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.connected.clear()
