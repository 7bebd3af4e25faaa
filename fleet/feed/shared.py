"""One feed snapshot shared by the requests of a process.

Loading the snapshot reads every Thing and Datastream with their privacy facts: about a
second of CPU at 3,000 devices. Feed requests (SensorThings, the public register) therefore
share one, rebuilt at most every `MAX_AGE_S` seconds, and at once after this process commits
a change to what it holds (a move, consent, a policy, a property, a pseudonym key). Another
replica's change shows within `MAX_AGE_S`. The live MQTT feed does not use it: it must see a
new Datastream with the first reading of it.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from fleet.feed.snapshot import Snapshot, load, sync_committed
from fleet.models import Borough, Device, Placement, Property
from fleet.models.feed import (
    FeedDatastream,
    FeedKey,
    FeedPolicy,
    FeedThing,
    PropertyConsent,
    PropertyGeo,
)

MAX_AGE_S = 10.0
_HELD = (
    Borough,
    Property,
    Placement,
    FeedThing,
    FeedDatastream,
    FeedPolicy,
    FeedKey,
    PropertyConsent,
    PropertyGeo,
)
_DEVICE_FIELDS = ("placement_id", "board", "placement_changed_at")


@dataclass(frozen=True)
class _Entry:
    built_at: float
    generation: int
    snapshot: Snapshot


_lock = threading.Lock()
_build = threading.Lock()
_generation = 0
_entries: weakref.WeakKeyDictionary[sessionmaker[Session], _Entry] = weakref.WeakKeyDictionary()


def snapshot(sessions: sessionmaker[Session]) -> Snapshot:
    """The committed snapshot, synced and loaded again only when it may have changed."""
    if (fresh := _fresh(sessions)) is not None:
        return fresh
    with _build:  # one rebuild at a time; the others then take its result
        if (fresh := _fresh(sessions)) is not None:
            return fresh
        sync_committed(sessions)
        generation = _generation  # after the sync's own commit, before the load
        with sessions() as session:
            built = load(session)
        with _lock:
            _entries[sessions] = _Entry(time.monotonic(), generation, built)
        return built


def _fresh(sessions: sessionmaker[Session]) -> Snapshot | None:
    with _lock:
        entry = _entries.get(sessions)
        if entry is None or entry.generation != _generation:
            return None
        if time.monotonic() - entry.built_at >= MAX_AGE_S:
            return None
        return entry.snapshot


def _touches_feed(session: Session) -> bool:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _HELD):
            return True
        if isinstance(obj, Device):
            state = inspect(obj)
            if obj in session.new or obj in session.deleted:
                return True
            if any(state.attrs[f].history.has_changes() for f in _DEVICE_FIELDS):
                return True
    return False


@event.listens_for(Session, "after_flush")
def _note_feed_changes(session: Session, context: Any) -> None:
    if not session.info.get("feed_changed") and _touches_feed(session):
        session.info["feed_changed"] = True


@event.listens_for(Session, "after_commit")
def _new_generation(session: Session) -> None:
    global _generation
    if session.info.pop("feed_changed", False):
        with _lock:
            _generation += 1


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("feed_changed", None)
