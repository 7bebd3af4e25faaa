"""MQTT ingest worker: the intake client's thread decodes into a bounded buffer split by
device into lanes, a writer thread per lane commits batches, and every QoS 1 message is
acknowledged only after the batch holding it committed.

Nothing is acknowledged that is not in the database, so the broker keeps (and redelivers)
whatever a crash, a broker restart or a database outage interrupts; idempotent storage makes
the redelivery harmless. When the writers fall behind, the buffer fills and the intake client
stops reading: the broker's in-flight window fills, and the backlog waits in the broker's
persistent session instead of in this process's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from fleet.broker.intake import IntakeCallbacks, IntakeClient
from fleet.broker.url import BrokerAddress
from fleet.broker.wire import Delivery
from fleet.ingest.handler import Decoded, IngestHandler, Outcome
from fleet.ingest.profile import TOPIC_ROOT

log = logging.getLogger(__name__)

DB_RETRY_CAP_S = 10.0
CLIENT_STOP_S = 5.0  # DISCONNECT and the last acks; a connect in progress is abandoned
# The share group the deployment files and docs use. A worker also unsubscribes from it when it
# runs without it, so a persistent session left by another topology does not double-deliver.
KNOWN_SHARE_GROUPS = ("ingest",)


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
    backpressure: int = 0  # times the intake found the buffer full and stopped reading
    dropped_stale: int = 0  # dequeued after their connection ended; the broker redelivers them
    queue_depth: int = 0


class _Item(NamedTuple):
    generation: int
    mid: int
    qos: int
    message: Decoded


class _AckOrder:
    """PUBACKs in the order the PUBLISHes arrived, as MQTT requires ([MQTT-4.6.0-2]), though
    lanes commit in any order: a committed message is acknowledged once every message that
    arrived before it on the same connection is committed too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._arrived: deque[int] = deque()  # mids not yet acknowledged, in arrival order
        self._committed: set[int] = set()  # those of them committed

    def arrived(self, generation: int, mids: list[int]) -> None:
        with self._lock:
            if generation != self._generation:
                # A new connection: the broker redelivers what the old one left unacked.
                self._generation = generation
                self._arrived.clear()
                self._committed.clear()
            self._arrived.extend(mids)

    def committed(self, generation: int, mids: list[int]) -> list[int]:
        """The mids that can be acknowledged now, in arrival order."""
        ready: list[int] = []
        with self._lock:
            if generation != self._generation:
                return ready  # that connection has ended: its acks mean nothing now
            arrived, done = self._arrived, self._committed
            done.update(mids)
            while arrived and arrived[0] in done:
                mid = arrived.popleft()
                done.discard(mid)
                ready.append(mid)
        return ready


class _Lane:
    """Messages for one writer thread. A device always maps to the same lane, so its messages
    are stored in arrival order and lanes never wait on each other's device row locks."""

    def __init__(self) -> None:
        self.pending: deque[_Item] = deque()
        self.ready = threading.Condition()


class IngestWorker:
    """An MQTT subscription whose QoS 1 acks wait for the database, so the broker keeps what
    we lose."""

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
        writers: int = 4,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or writers < 1:
            raise ValueError("queue_size, batch_size and writers must be at least 1")
        self.handler = handler
        self.counters = IngestCounters()
        self.connected = threading.Event()
        self._stopping = threading.Event()
        # Writers overlap one batch's database round trips with the next one's Python work;
        # a database that takes one writer at a time (SQLite) gets one.
        lanes = writers if handler.parallel_writes else 1
        self._lanes = [_Lane() for _ in range(lanes)]
        self._acks = _AckOrder()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._writers: list[threading.Thread] = []
        self._count_lock = threading.Lock()
        # Only the device tree: the feed publishes under cs/v1/feed/, which is not ingest input.
        filt = f"{TOPIC_ROOT}/d/#"
        self._filter = f"$share/{share_group}/{filt}" if share_group else filt
        # Filters an earlier `fleet serve` or another group left in this client id's session.
        former = (filt, *(f"$share/{g}/{filt}" for g in KNOWN_SHARE_GROUPS))
        self._broker = broker
        # The incoming window is the broker's max_inflight_messages; `inflight` bounds ours.
        self._client = IntakeClient(
            broker,
            client_id=client_id,
            topic_filter=self._filter,
            former_filters=former,
            callbacks=IntakeCallbacks(
                on_batch=self._on_batch, room=self._room, on_up=self._on_up, on_down=self._on_down
            ),
            clean_session=False,  # the broker queues QoS 1 messages while we are down
            keepalive_s=keepalive_s,
            max_outgoing=inflight,
        )

    @property
    def filter(self) -> str:
        return self._filter

    def start(self) -> None:
        for n, lane in enumerate(self._lanes):
            writer = threading.Thread(
                target=self._write_loop, args=(lane,), name=f"ingest-writer-{n}", daemon=True
            )
            writer.start()
            self._writers.append(writer)
        self._client.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish and acknowledge the batches being written; queued messages stay with the
        broker. The writers share one `timeout` (not one each), and the disconnect gets at
        most CLIENT_STOP_S more, so a stop ends within Kubernetes' grace period. A writer
        still inside its transaction then is left to the process exit: it acknowledges only
        after its commit, so the broker delivers whatever it had again."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for writer in self._writers:
            writer.join(max(0.0, deadline - time.monotonic()))
        late = sum(writer.is_alive() for writer in self._writers)
        if late:
            log.warning("%d ingest writer(s) still busy after %.0f s; not waiting", late, timeout)
        self._writers.clear()
        self._client.stop(min(timeout, CLIENT_STOP_S))

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Publish through the ingest connection (commands, config); False when offline."""
        return self.connected.is_set() and self._client.publish(
            topic, payload, qos=qos, retain=retain
        )

    # --- the intake client's thread -----------------------------------------------------

    def _on_up(self, session_present: bool) -> None:
        # Up means subscribed: only from here on does the broker route new messages to us.
        log.info(
            "ingest connected to %s:%s, subscribed to %s (session present: %s)",
            *self._broker.hostport,
            self._filter,
            session_present,
        )
        self.connected.set()

    def _on_down(self, reason: str) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest lost the broker (%s); reconnecting", reason)

    def _room(self) -> int:
        room = self._queue_size - sum(len(lane.pending) for lane in self._lanes)
        if room <= 0:
            self.counters.backpressure += 1
        return room

    def _on_batch(self, deliveries: list[Delivery], generation: int) -> None:
        self.counters.received += len(deliveries)
        # Decoding here overlaps the CPU-bound half with the writer's database round trips.
        decode = self.handler.decode
        items = [
            _Item(generation, d.mid, d.qos, decode(d.topic, d.payload, d.dup, d.retained))
            for d in deliveries
        ]
        self._acks.arrived(generation, [d.mid for d in deliveries if d.qos])
        lanes = self._lanes
        if len(lanes) == 1:
            self._hand_over(lanes[0], items)
            return
        split: list[list[_Item]] = [[] for _ in lanes]
        for item in items:
            split[hash(item.message.device_id) % len(lanes)].append(item)
        for lane, share in zip(lanes, split, strict=True):
            if share:
                self._hand_over(lane, share)

    @staticmethod
    def _hand_over(lane: _Lane, items: list[_Item]) -> None:
        with lane.ready:
            lane.pending.extend(items)
            lane.ready.notify()

    # --- the writer threads --------------------------------------------------------------

    def _write_loop(self, lane: _Lane) -> None:
        pending = lane.pending
        while not self._stopping.is_set():
            with lane.ready:
                if not pending and not lane.ready.wait(0.2):
                    continue
                # Take whatever has accumulated: small batches when idle (low latency), large
                # ones under load (throughput), with no waiting for a batch to fill.
                batch = [pending.popleft() for _ in range(min(len(pending), self._batch_size))]
            self.counters.queue_depth = sum(len(other.pending) for other in self._lanes)
            if not batch:
                continue
            self._client.resume()
            self._commit_and_ack(batch)

    def _commit_and_ack(self, batch: list[_Item]) -> None:
        generation = self._client.generation
        live = [i for i in batch if i.generation == generation]
        if len(live) < len(batch):
            with self._count_lock:
                self.counters.dropped_stale += len(batch) - len(live)
        delay = 0.5
        while live:
            try:
                outcomes = self.handler.store([i.message for i in live])
                break
            except Exception as exc:
                # Nothing acked: retry the batch until the database is back (or the connection
                # that delivered it is gone, in which case the broker redelivers it anyway).
                # Not only SQLAlchemy's errors: the bulk paths talk to the driver directly, so
                # a connection dropped mid-COPY raises the driver's own; a writer thread that
                # died of it would leave its lane, and soon the whole intake, stalled.
                with self._count_lock:
                    self.counters.db_errors += 1
                log.error(
                    "database write failed, retrying %d messages in %.1fs: %s",
                    len(live),
                    delay,
                    exc,
                    exc_info=not isinstance(exc, SQLAlchemyError),
                )
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, DB_RETRY_CAP_S)
                generation = self._client.generation
                live = [i for i in live if i.generation == generation]
        else:
            return
        self._count(outcomes)
        # Dropped by the client if the connection that delivered them has ended meanwhile.
        self._client.ack(
            self._acks.committed(generation, [i.mid for i in live if i.qos]), generation
        )

    def _count(self, outcomes: list[Outcome]) -> None:
        with self._count_lock:
            self._count_locked(outcomes)

    def _count_locked(self, outcomes: list[Outcome]) -> None:
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
