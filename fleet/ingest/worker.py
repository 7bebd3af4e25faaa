"""MQTT ingest worker: subscribes to the device tree and acks each message after its commit."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from sqlalchemy.exc import SQLAlchemyError

from fleet.broker.url import BrokerAddress
from fleet.ingest.handler import IngestHandler
from fleet.ingest.profile import TOPIC_ROOT

log = logging.getLogger(__name__)

DB_RETRY_CAP_S = 10.0


@dataclass
class IngestCounters:
    received: int = 0
    stored: int = 0
    rejected: int = 0
    ignored: int = 0
    db_errors: int = 0
    last_lag_s: float = 0.0


class IngestWorker:
    """A paho client whose QoS 1 acks wait for the database, so the broker keeps what we lose."""

    def __init__(
        self,
        handler: IngestHandler,
        broker: BrokerAddress,
        *,
        client_id: str,
        share_group: str | None = None,
    ) -> None:
        self.handler = handler
        self.counters = IngestCounters()
        self.connected = threading.Event()
        self._stopping = threading.Event()
        filt = f"{TOPIC_ROOT}/#"
        self._filter = f"$share/{share_group}/{filt}" if share_group else filt
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,  # the broker queues QoS 1 messages while we are down
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        broker.configure(self._client)
        self._broker = broker
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.max_inflight_messages_set(100)

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Publish through the ingest connection (commands, config); False when offline."""
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("ingest could not connect to the broker: %s", reason_code)
            return
        client.subscribe(self._filter, qos=1)
        self.connected.set()
        log.info(
            "ingest connected to %s:%s, subscribed to %s", *self._broker.hostport, self._filter
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.counters.received += 1
        delay = 0.5
        while not self._stopping.is_set():
            try:
                outcome = self.handler.handle(msg.topic, bytes(msg.payload))
                break
            except SQLAlchemyError as exc:
                # Not acked: keep retrying so the message is neither lost nor reordered.
                self.counters.db_errors += 1
                log.error("database unavailable, retrying in %.1fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, DB_RETRY_CAP_S)
        else:
            return
        if outcome.action == "stored":
            self.counters.stored += 1
            if outcome.newest_sample_ts is not None:
                self.counters.last_lag_s = max(0.0, time.time() - outcome.newest_sample_ts)
        elif outcome.action == "rejected":
            self.counters.rejected += 1
        else:
            self.counters.ignored += 1
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)
