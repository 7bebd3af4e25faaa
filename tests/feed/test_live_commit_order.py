"""The live feed on PostgreSQL when ingest transactions commit out of id order.

Two real transactions take reading ids from the sequence; the one with the higher id commits
first and is published, then the lower one commits. It must still be published, once.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.broker.url import BrokerAddress
from fleet.feed.follow import ReadingFollower
from fleet.feed.live import FeedPublisher
from fleet.models import Device, Reading
from tests.feed.conftest import POINTS, SERVICE_ROOT, STEP, T0, FeedWorld

pytestmark = pytest.mark.postgres

DEADLINE_S = 10.0


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def _pending_reading(world: FeedWorld, session: Session, i: int) -> int:
    """Insert a Hackney temperature reading without committing; returns its id."""
    device = session.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
    reading = Reading(
        device_pk=device.id,
        metric="temperature",
        ts=T0 + (POINTS + i) * STEP,
        value=30.0 + i,
        unit="Cel",
    )
    session.add(reading)
    session.flush()
    return reading.id


@pytest.fixture
def observations(mosquitto: BrokerAddress) -> Iterator[queue.Queue[int]]:
    """Ids of Observations arriving on v1.1/Observations."""
    received: queue.Queue[int] = queue.Queue()
    subscribed = queue.Queue[int]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="order-watch")
    client.on_message = lambda c, u, m: received.put(json.loads(m.payload)["@iot.id"])
    client.on_subscribe = lambda c, u, mid, rc, p: subscribed.put(mid)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    client.subscribe("v1.1/Observations", qos=1)
    subscribed.get(timeout=DEADLINE_S)
    yield received
    client.loop_stop()
    client.disconnect()


def test_a_reading_committed_late_below_the_cursor_is_still_published(
    feed_world: FeedWorld, mosquitto: BrokerAddress, observations: queue.Queue[int]
) -> None:
    publisher = FeedPublisher(
        feed_world.ctx.sessions, mosquitto, service_root=SERVICE_ROOT, poll_s=0.05
    )
    publisher.start()
    slow, fast = feed_world.ctx.sessions(), feed_world.ctx.sessions()
    try:
        low = _pending_reading(feed_world, slow, 0)
        high = _pending_reading(feed_world, fast, 1)
        assert low < high
        fast.commit()
        assert observations.get(timeout=DEADLINE_S) == high  # the cursor is now past `low`

        slow.commit()

        assert observations.get(timeout=DEADLINE_S) == low
        assert observations.empty()
    finally:
        slow.close()
        fast.close()
        publisher.stop()


def test_ids_that_never_commit_are_given_up_after_the_grace_period(
    feed_world: FeedWorld,
) -> None:
    now = [0.0]
    follower = ReadingFollower(grace_s=60.0, clock=lambda: now[0])
    sessions = feed_world.ctx.sessions
    with sessions() as s:
        follower.start_at_latest(s)
    rolled_back, committed = sessions(), sessions()
    try:
        lost = _pending_reading(feed_world, rolled_back, 0)
        kept = _pending_reading(feed_world, committed, 1)
        committed.commit()
        with sessions() as s:
            assert [r.id for r in follower.poll(s)] == [kept]
        assert [(g.low, g.high) for g in follower.gaps] == [(lost, lost)]
        rolled_back.rollback()

        now[0] = 59.0
        with sessions() as s:
            assert follower.poll(s) == []
        assert follower.gaps  # still waiting within the grace period
        now[0] = 60.0
        with sessions() as s:
            assert follower.poll(s) == []
        assert follower.gaps == []
    finally:
        rolled_back.close()
        committed.close()


def test_a_batch_cut_by_the_limit_continues_without_loss(feed_world: FeedWorld) -> None:
    follower = ReadingFollower(batch_limit=4)
    sessions = feed_world.ctx.sessions
    with sessions() as s:
        follower.start_at_latest(s)
    late = sessions()
    try:
        held = [_pending_reading(feed_world, late, i) for i in range(3)]
        with sessions.begin() as s:
            committed = [_pending_reading(feed_world, s, 10 + i) for i in range(6)]
        seen: list[int] = []
        with sessions() as s:
            seen += [r.id for r in follower.poll(s)]
            seen += [r.id for r in follower.poll(s)]
        late.commit()
        with sessions() as s:
            seen += [r.id for r in follower.poll(s)]
            assert follower.poll(s) == []
        assert sorted(seen) == sorted(held + committed)
        assert len(seen) == len(set(seen))
        assert follower.gaps == []
    finally:
        late.close()


def _backlogged_publisher(world: FeedWorld, readings: int) -> FeedPublisher:
    """A publisher, never connected (publish() queues), with `readings` waiting for it in
    batches of four."""
    sessions = world.ctx.sessions
    publisher = FeedPublisher(
        sessions,
        BrokerAddress("127.0.0.1", 9),
        service_root=SERVICE_ROOT,
        poll_s=0,
        follower=ReadingFollower(batch_limit=4),
    )
    with sessions() as s:
        publisher.follower.start_at_latest(s)
    with sessions.begin() as s:
        for i in range(readings):
            _pending_reading(world, s, i)
    return publisher


def test_a_backlog_is_caught_up_in_batches_without_waiting_between_them(
    feed_world: FeedWorld,
) -> None:
    publisher = _backlogged_publisher(feed_world, 10)
    assert publisher.catch_up() == [4, 4, 2]
    with feed_world.ctx.sessions() as s:
        assert publisher.follower.poll(s) == []


def test_a_publisher_told_to_stop_ends_its_catch_up_between_batches(
    feed_world: FeedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop lands after the batch in hand, not after the whole backlog."""
    publisher = _backlogged_publisher(feed_world, 10)
    tick = publisher.tick

    def tick_then_stop() -> int:
        size = tick()
        publisher.stop()
        return size

    monkeypatch.setattr(publisher, "tick", tick_then_stop)
    assert publisher.catch_up() == [4]
    with feed_world.ctx.sessions() as s:  # the rest waits for the next start
        assert len(publisher.follower.poll(s)) == 4
