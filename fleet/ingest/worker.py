"""MQTT ingest worker: paho's network thread feeds a bounded queue, a writer thread commits
batches, and every QoS 1 message is acknowledged only after the batch holding it committed.

Nothing is acknowledged that is not in the database, so the broker keeps (and redelivers)
whatever a crash, a broker restart or a database outage interrupts; idempotent storage makes
the redelivery harmless. When the writer falls behind, the queue fills and the network thread
blocks in its callback: paho stops reading, the broker's in-flight window fills, and the
backlog waits in the broker's persistent session instead of in this process's memory.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from sqlalchemy.exc import SQLAlchemyError

from fleet.broker.url import BrokerAddress
from fleet.ingest.handler import Decoded, IngestHandler, Outcome
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
    readings: int = 0  # new readings inserted
    batches: int = 0
    backpressure: int = 0  # times the network thread found the queue full and had to wait
    dropped_stale: int = 0  # dequeued after their connection ended; the broker redelivers them
    queue_depth: int = 0


class _Item(NamedTuple):
    generation: int
    mid: int
    qos: int
    message: Decoded


class IngestWorker:
    """A paho client whose QoS 1 acks wait for the database, so the broker keeps what we lose."""

    def __init__(
        self,
        handler: IngestHandler,
        broker: BrokerAddress,
        *,
        client_id: str,
        share_group: str | None = None,
        queue_size: int = 5000,
        batch_size: int = 500,
        keepalive_s: int = 60,
        inflight: int = 1000,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self.handler = handler
        self.counters = IngestCounters()
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._keepalive = keepalive_s
        # Bumped on every disconnect: a message id is only meaningful on the connection that
        # delivered it, so an ack for an older connection must never be sent on a newer one.
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        # Only the device tree: the feed publishes under cs/v1/feed/, which is not ingest input.
        filt = f"{TOPIC_ROOT}/d/#"
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
        self._client.on_subscribe = self._on_subscribe
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Outgoing window (commands); the incoming window is the broker's max_inflight_messages.
        self._client.max_inflight_messages_set(inflight)

    @property
    def filter(self) -> str:
        return self._filter

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish and acknowledge the batch being written; queued messages stay with the broker."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Publish through the ingest connection (commands, config); False when offline."""
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # --- paho's network thread ----------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("ingest could not connect to the broker: %s", reason_code)
            return
        client.subscribe(self._filter, qos=1)
        log.info(
            "ingest connected to %s:%s, subscribed to %s (session present: %s)",
            *self._broker.hostport,
            self._filter,
            flags.session_present,
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        # Connected means subscribed: only from here on does the broker route messages to us.
        if any(rc.is_failure for rc in reason_codes):
            log.error("the broker refused the subscription to %s: %s", self._filter, reason_codes)
            return
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.counters.received += 1
        # Decoding here overlaps the CPU-bound half with the writer's database round trips.
        decoded = self.handler.decode(msg.topic, bytes(msg.payload))
        item = _Item(self._generation, msg.mid, msg.qos, decoded)
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            self.counters.backpressure += 1
        # Blocking here is the backpressure: paho stops reading until the writer catches up.
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # --- the writer thread --------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            # Take whatever has accumulated: small batches when idle (low latency), large ones
            # under load (throughput), with no waiting for a batch to fill.
            batch = [first]
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.counters.queue_depth = self._queue.qsize()
            self._commit_and_ack(batch)

    def _commit_and_ack(self, batch: list[_Item]) -> None:
        live = [i for i in batch if i.generation == self._generation]
        self.counters.dropped_stale += len(batch) - len(live)
        delay = 0.5
        while live:
            try:
                outcomes = self.handler.store([i.message for i in live])
                break
            except SQLAlchemyError as exc:
                # Nothing acked: retry the batch until the database is back (or the connection
                # that delivered it is gone, in which case the broker redelivers it anyway).
                self.counters.db_errors += 1
                log.error(
                    "database unavailable, retrying %d messages in %.1fs: %s", len(live), delay, exc
                )
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, DB_RETRY_CAP_S)
                live = [i for i in live if i.generation == self._generation]
        else:
            return
        self._count(outcomes)
        with self._ack_lock:
            for item in live:
                if item.qos > 0 and item.generation == self._generation:
                    self._client.ack(item.mid, item.qos)

    def _count(self, outcomes: list[Outcome]) -> None:
        c = self.counters
        c.batches += 1
        newest: float | None = None
        for o in outcomes:
            if o.action == "stored":
                c.stored += 1
                c.readings += o.inserted
                if o.newest_sample_ts is not None:
                    newest = max(newest or o.newest_sample_ts, o.newest_sample_ts)
            elif o.action == "rejected":
                c.rejected += 1
            else:
                c.ignored += 1
        if newest is not None:
            c.last_lag_s = max(0.0, time.time() - newest)
