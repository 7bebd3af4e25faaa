"""The live feed: new readings out to the SensorThings MQTT extension and the SenML feed.

The publisher follows the readings table by id after ingest has committed, so ingest does no
extra work and a reading is only published once it is durable; readings that commit out of id
order (concurrent ingest writers on PostgreSQL) are picked up late rather than skipped
(fleet.feed.follow). Each batch re-reads the feed snapshot, so a consent withdrawal or policy
change stops publication from the next batch on.

Topics (fleet/feed/standard/asyncapi-feed.yaml):
- ``v1.1/Datastreams({id})/Observations``, ``v1.1/FeaturesOfInterest({id})/Observations`` and
  ``v1.1/Observations``: one SensorThings Observation per message, public level only;
- ``cs/v1/feed/public/ds/{id}``: SenML pack per Datastream and batch, public level;
- ``cs/v1/feed/full/{borough}/ds/{id}``: the same for every published Datastream of a borough,
  for borough-internal consumers (the broker ACL limits who may read it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from sqlalchemy.orm import Session, sessionmaker

from fleet.broker.url import BrokerAddress
from fleet.feed import snapshot
from fleet.feed.follow import BATCH_LIMIT, NewReading, ReadingFollower
from fleet.feed.snapshot import Audience, DatastreamRecord, Snapshot
from fleet.feed.sta.store import iso

log = logging.getLogger(__name__)

STA_ROOT = "v1.1"
SENML_ROOT = "cs/v1/feed"
SENML_SCHEMA_VERSION = 1
__all__ = ["BATCH_LIMIT", "FeedPublisher", "NewReading", "messages_for", "senml_pack"]


class Purge(Protocol):
    """The retention purge the publisher runs (fleet.feed.stewardship.purge_committed): it
    asks ``should_continue`` between its transactions and ends early once told to stop."""

    def __call__(
        self, sessions: sessionmaker[Session], *, should_continue: Callable[[], bool]
    ) -> object: ...


def senml_base_name(datastream_id: int) -> str:
    return f"urn:cs:feed:ds:{datastream_id}:"


def _owner(
    index: dict[tuple[int, str], list[DatastreamRecord]], reading: NewReading
) -> DatastreamRecord | None:
    for ds in index.get((reading.device_pk, reading.metric), ()):
        thing = ds.thing
        if thing.started_at <= reading.ts and (
            thing.ended_at is None or reading.ts < thing.ended_at
        ):
            return ds
    return None


def observation_message(reading: NewReading, ds: DatastreamRecord, service_root: str) -> bytes:
    """The Observation as a GET of it answers: properties and self and navigation links."""
    self_link = f"{service_root}/Observations({reading.id})"
    return json.dumps(
        {
            "@iot.id": reading.id,
            "@iot.selfLink": self_link,
            "phenomenonTime": iso(reading.ts),
            "resultTime": iso(reading.ts),
            "result": reading.value,
            "Datastream@iot.navigationLink": f"{self_link}/Datastream",
            "FeatureOfInterest@iot.navigationLink": f"{self_link}/FeatureOfInterest",
        }
    ).encode()


def messages_for(
    readings: list[NewReading], snap: Snapshot, *, service_root: str
) -> list[tuple[str, bytes]]:
    """Every MQTT message a batch of new readings produces, in reading order.

    ``service_root`` is the SensorThings root consumers reach over HTTP (for the links).
    """
    service_root = service_root.rstrip("/")
    index: dict[tuple[int, str], list[DatastreamRecord]] = defaultdict(list)
    for ds in snap.datastreams.values():
        index[(ds.thing.device_pk, ds.metric.name)].append(ds)
    public = Audience()
    messages: list[tuple[str, bytes]] = []
    packs: dict[tuple[str, int], list[NewReading]] = defaultdict(list)
    for reading in readings:
        owner = _owner(index, reading)
        if owner is None or not owner.thing.publishes(reading.ts):
            continue
        ds = owner
        internal = Audience(frozenset({ds.thing.borough_id}))
        if public.sees_datastream(ds):
            observation = observation_message(reading, ds, service_root)
            for path in (
                f"Datastreams({ds.id})/Observations",
                f"FeaturesOfInterest({ds.thing.id})/Observations",
                "Observations",
            ):
                messages.append((f"{STA_ROOT}/{path}", observation))
            packs[(f"{SENML_ROOT}/public/ds/{ds.id}", ds.id)].append(reading)
        if internal.sees_datastream(ds):
            packs[(f"{SENML_ROOT}/full/{ds.thing.borough_code}/ds/{ds.id}", ds.id)].append(reading)
    for (topic, ds_id), members in packs.items():
        messages.append((topic, json.dumps(senml_pack(snap.datastreams[ds_id], members)).encode()))
    return messages


def senml_pack(ds: DatastreamRecord, readings: list[NewReading]) -> list[dict[str, Any]]:
    base_time = readings[0].ts.timestamp()
    records: list[dict[str, Any]] = []
    for i, reading in enumerate(readings):
        record: dict[str, Any] = {
            "n": ds.metric.name,
            "u": ds.metric.senml_unit,
            "v": reading.value,
        }
        offset = reading.ts.timestamp() - base_time
        if i == 0:
            record = {
                "bn": senml_base_name(ds.id),
                "bt": base_time,
                "sv": SENML_SCHEMA_VERSION,
                **record,
            }
        elif offset:
            record["t"] = offset
        records.append(record)
    return records


class FeedPublisher:
    """Polls for committed readings and publishes them; also runs the retention purge."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        broker: BrokerAddress,
        *,
        service_root: str,
        client_id: str = "fleet-feed",
        poll_s: float = 0.5,
        purge_every_s: float = 6 * 3600.0,
        purge: Purge | None = None,
        follower: ReadingFollower | None = None,
    ) -> None:
        self._sessions = sessions
        self._broker = broker
        self._poll_s = poll_s
        self._purge_every_s = purge_every_s
        self._purge = purge
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.published = 0
        self.follower = follower or ReadingFollower()
        self._service_root = service_root
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        broker.configure(self._client)
        self._client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self._client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Messages wait in paho's queue while the broker is away instead of being dropped.
        self._client.max_queued_messages_set(0)

    def start(self) -> None:
        with self._sessions() as session:
            # Publish what arrives from now on; history is what the REST API is for.
            self.follower.start_at_latest(session)
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="feed-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._client.disconnect()
        self._client.loop_stop()

    def _run(self) -> None:
        next_purge = 0.0
        elapsed = 0.0
        while not self._stop.wait(self._poll_s):
            elapsed += self._poll_s
            try:
                self.catch_up()
                if self._purge is not None and elapsed >= next_purge:
                    next_purge = elapsed + self._purge_every_s
                    self._purge(self._sessions, should_continue=lambda: not self._stop.is_set())
            except Exception:  # the feed must outlive a database hiccup; it resumes where it was
                log.exception("feed publisher failed; retrying")

    def catch_up(self) -> list[int]:
        """Publish a batch at a time until the backlog is drained or a stop is asked for
        (checked between batches, not after the backlog); returns the batch sizes."""
        batches = [self.tick()]
        while batches[-1] >= self.follower.batch_limit and not self._stop.is_set():
            batches.append(self.tick())
        return batches

    def tick(self) -> int:
        """Publish readings committed since the last tick; returns how many were read."""
        with self._sessions() as session:
            readings = self.follower.poll(session)
        if not readings:
            return 0
        snapshot.sync_committed(self._sessions)
        with self._sessions() as session:
            snap = snapshot.load(session)
        for topic, payload in messages_for(readings, snap, service_root=self._service_root):
            self._client.publish(topic, payload, qos=1)
            self.published += 1
        return len(readings)
