"""Feed entities as one consistent snapshot: Things and Datastreams with their privacy facts.

`sync` keeps the stable-id tables in step with where devices are placed; `load` reads every
Thing and Datastream with what the privacy rules need (consent, policy, pseudonym), and
`Audience` decides which of them a caller sees and at which level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.feed.catalogue import METRICS_BY_NAME, Metric, sensor_for
from fleet.feed.policy import Policy, active_key, policies, pseudonymiser, room_type
from fleet.models import Borough, Device, Placement, Property, Reading
from fleet.models.base import utcnow
from fleet.models.feed import FeedDatastream, FeedThing, PropertyConsent, PropertyGeo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- keeping stable ids in step --------------------------------------------------------------
def sync(session: Session, *, now: datetime | None = None) -> bool:
    """Open, close and extend Things and Datastreams; True when anything changed."""
    now = now or utcnow()
    changed = False
    devices = session.execute(
        select(
            Device.id,
            Device.placement_id,
            Device.placement_changed_at,
            Device.board,
            Device.latest,
        ).order_by(Device.id)
    )
    open_things = {
        t.device_pk: t
        for t in session.scalars(select(FeedThing).where(FeedThing.ended_at.is_(None)))
    }
    have_history = set(session.scalars(select(FeedThing.device_pk).distinct()))
    current: dict[int, tuple[FeedThing, str, list[str]]] = {}
    for device_pk, placement_id, moved_at, board, latest in devices:
        thing = open_things.get(device_pk)
        # Things change at the move itself, not at this sync: readings taken in between
        # belong to the new home. Never in the future, nor before the old Thing began.
        boundary = min(moved_at or now, now)
        if thing is not None and thing.placement_id != placement_id:
            boundary = max(boundary, thing.started_at)
            thing.ended_at = boundary
            thing = None
            changed = True
        if placement_id is None:
            continue
        if thing is None:
            start = boundary if device_pk in have_history else EPOCH
            thing = FeedThing(device_pk=device_pk, placement_id=placement_id, started_at=start)
            session.add(thing)
            changed = True
        metrics = sorted(
            (m for m in (latest or {}) if m in METRICS_BY_NAME), key=lambda m: METRICS_BY_NAME[m].id
        )
        current[device_pk] = (thing, board, metrics)
    if changed:
        session.flush()
    existing = {
        (d.thing_id, d.metric)
        for d in session.scalars(
            select(FeedDatastream).where(
                FeedDatastream.thing_id.in_([t.id for t, _, _ in current.values()])
            )
        )
    }
    for thing, board, metrics in current.values():
        for metric in metrics:
            if (thing.id, metric) in existing:
                continue
            session.add(
                FeedDatastream(
                    thing_id=thing.id,
                    metric=metric,
                    sensor_id=sensor_for(board, metric),
                    observed_property_id=METRICS_BY_NAME[metric].id,
                )
            )
            changed = True
    return changed


def sync_committed(sessions: sessionmaker[Session]) -> None:
    """Sync in its own transaction; a concurrent sync that won the race is as good as ours.

    The pseudonym key is made here too, so it is committed before any reader uses it.
    """
    try:
        with sessions.begin() as session:
            active_key(session)
            sync(session)
    except IntegrityError:
        pass


# -- the snapshot -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ThingRecord:
    id: int
    device_pk: int
    device_id: str
    board: str
    started_at: datetime
    ended_at: datetime | None
    created_at: datetime
    borough_id: int
    borough_code: str
    borough_name: str
    property_id: int
    reference: str
    postcode: str | None
    housing_type: str | None
    construction_age_band: str | None
    room: str  # the coarse room type, safe to publish
    room_detail: str  # the room as staff named it: full level only
    geo: tuple[float, float] | None
    withdrawn: bool
    # Consent granted again after a withdrawal: nothing taken before this is published.
    published_since: datetime | None
    placed_at: datetime  # when the Thing began, for its HistoricalLocation
    pseudonym: str
    policy: Policy

    @property
    def published_from(self) -> datetime:
        """The earliest reading time of this Thing that may be published."""
        if self.published_since is None:
            return self.started_at
        return max(self.started_at, self.published_since)

    def publishes(self, ts: datetime) -> bool:
        """Whether a reading of this Thing taken at ``ts`` may be published at all."""
        return not self.withdrawn and ts >= self.published_from


@dataclass(frozen=True)
class DatastreamRecord:
    id: int
    thing: ThingRecord
    metric: Metric
    sensor_id: int


@dataclass(frozen=True)
class Snapshot:
    things: dict[int, ThingRecord]
    datastreams: dict[int, DatastreamRecord]


def _first_reading() -> Any:
    """When a device's first Thing began: the device's first reading, if earlier than its
    enrolment (a first Thing holds everything the device measured before it was placed).
    One index probe per such Thing; later Things begin at their move."""
    earliest = (
        select(func.min(Reading.ts))
        .where(Reading.device_pk == FeedThing.device_pk)
        .correlate(FeedThing)
        .scalar_subquery()
    )
    return case((FeedThing.started_at == EPOCH, earliest), else_=None)


def load(session: Session) -> Snapshot:
    pseudo = pseudonymiser(session)
    by_borough = policies(session)
    rows = session.execute(
        select(
            FeedThing,
            Device.device_id,
            Device.board,
            Device.created_at,
            _first_reading(),
            Placement.room,
            Property,
            Borough.code,
            Borough.name,
            PropertyConsent.state,
            PropertyConsent.published_since,
            PropertyGeo.lat,
            PropertyGeo.lon,
        )
        .join(Device, Device.id == FeedThing.device_pk)
        .join(Placement, Placement.id == FeedThing.placement_id)
        .join(Property, Property.id == Placement.property_id)
        .join(Borough, Borough.id == Property.borough_id)
        .outerjoin(PropertyConsent, PropertyConsent.property_id == Property.id)
        .outerjoin(PropertyGeo, PropertyGeo.property_id == Property.id)
        .order_by(FeedThing.id)
    ).all()
    things: dict[int, ThingRecord] = {}
    for row in rows:
        thing, device_id, board, enrolled_at, first_reading, room, prop, code, name = row[:9]
        consent, published_since, lat, lon = row[9:]
        placed_at = thing.started_at
        if placed_at == EPOCH:
            placed_at = min(enrolled_at, first_reading or enrolled_at)
        things[thing.id] = ThingRecord(
            id=thing.id,
            device_pk=thing.device_pk,
            device_id=device_id,
            board=board,
            started_at=thing.started_at,
            ended_at=thing.ended_at,
            created_at=thing.created_at,
            borough_id=prop.borough_id,
            borough_code=code,
            borough_name=name,
            property_id=prop.id,
            reference=prop.reference,
            postcode=prop.postcode,
            housing_type=prop.housing_type,
            construction_age_band=prop.construction_age_band,
            room=room_type(room),
            room_detail=room,
            geo=None if lat is None or lon is None else (lat, lon),
            withdrawn=consent == "withdrawn",
            published_since=published_since,
            placed_at=placed_at,
            pseudonym=pseudo.property(prop.borough_id, prop.id),
            policy=by_borough.get(prop.borough_id) or Policy(borough_id=prop.borough_id),
        )
    datastreams: dict[int, DatastreamRecord] = {}
    for ds in session.scalars(select(FeedDatastream).order_by(FeedDatastream.id)):
        owner = things.get(ds.thing_id)
        metric = METRICS_BY_NAME.get(ds.metric)
        if owner is None or metric is None:
            continue
        datastreams[ds.id] = DatastreamRecord(ds.id, owner, metric, ds.sensor_id)
    return Snapshot(things, datastreams)


# -- who sees what --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Audience:
    """The public, or a borough-internal reader whose full-level boroughs are listed."""

    full_boroughs: frozenset[int] | None = frozenset()  # None: every borough

    @classmethod
    def for_principal(cls, principal: Principal | None) -> Audience:
        if principal is None or Scope.FEED_FULL not in principal.scopes:
            return cls()
        return cls(principal.borough_ids)

    @property
    def is_public(self) -> bool:
        return self.full_boroughs is not None and not self.full_boroughs

    def full(self, borough_id: int) -> bool:
        return self.full_boroughs is None or borough_id in self.full_boroughs

    def sees_thing(self, thing: ThingRecord) -> bool:
        # A withdrawn tenant's home is published at no level: the feed is a publication.
        if thing.withdrawn:
            return False
        return thing.policy.public_feed or self.full(thing.borough_id)

    def sees_datastream(self, ds: DatastreamRecord) -> bool:
        if not self.sees_thing(ds.thing):
            return False
        return ds.metric.public or self.full(ds.thing.borough_id)
