"""Many properties per transaction with a few set-based queries: the live path at scale.

The one-property update (:func:`fleet.risk.service.sweep.update_property`) costs about twenty
small statements per placement-hour, so on a networked database round trips dominate. Here
a batch of properties is loaded at once (placements, installations, profiles, stored states,
property levels), the late-data check and the new readings are read for every placement
sharing a window with one query each, the hourly rows of the whole batch are written with
one multi-row insert, and the state rows are flushed together. The arithmetic is the
one-placement path's own (:func:`.update.plan_update`, :func:`.update.step_hours`,
:func:`.update.finish`, :func:`.levels.apply_level`), fed the same rows in the same order,
so both paths store identical results; the rare recompute still reads its history per
placement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, instance_state

from fleet.cases import service as cases
from fleet.models import (
    Borough,
    Placement,
    PlacementRisk,
    Property,
    PropertyRisk,
    Reading,
    RiskHour,
    RiskProfile,
)
from fleet.risk.hourly import HOUR, METRICS
from fleet.risk.service import levels
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.spans import Span, clipped, load_spans, within
from fleet.risk.service.update import (
    PlacementUpdate,
    Plan,
    clear_recomputed,
    finish,
    late_hour,
    new_state_row,
    plan_update,
    profile_from,
    readings_select,
    step_hours,
)

#: Placements per ``IN (...)`` list: far below every backend's bind-parameter limit.
IN_CHUNK = 500
#: Placement-hours of readings one query may fetch; long windows (a first run, a recompute)
#: are read alone so a batch never holds more than about this many hours in memory.
READ_BUDGET_HOURS = 24 * 200
#: Hourly rows per multi-row insert (a first run of a batch can produce millions).
INSERT_CHUNK = 10_000
#: Stands in for an unbounded window (a first run reads the whole history).
WHOLE_HISTORY_HOURS = 24 * 366

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class BatchTally:
    """What a batch did, added to the sweep's result only once the batch committed."""

    properties: int = 0
    placements: int = 0
    hours: int = 0
    recomputed: int = 0
    level_changes: int = 0
    cases_opened: int = 0


@dataclass
class Loaded:
    """Everything the batch reads once: rows keyed by placement or property id."""

    props: dict[int, Property]
    boroughs: dict[int, Borough]
    placements: dict[int, tuple[int, str]]  # placement -> (property, room)
    spans: dict[int, list[Span]] = field(default_factory=dict)  # the devices, while there
    profiles: dict[int, list[RiskProfile]] = field(default_factory=dict)
    states: dict[int, PlacementRisk] = field(default_factory=dict)
    levels: dict[int, PropertyRisk] = field(default_factory=dict)


def load(session: Session, due: Mapping[int, Sequence[tuple[int, datetime]]]) -> Loaded:
    """The batch's properties and everything about their placements, one query per table."""
    prop_ids = sorted(due)
    due_ids = sorted({pid for items in due.values() for pid, _ in items})
    props = {p.id: p for p in session.scalars(select(Property).where(Property.id.in_(prop_ids)))}
    placements = {
        pid: (prop_id, room)
        for pid, prop_id, room in session.execute(
            select(Placement.id, Placement.property_id, Placement.room).where(
                or_(Placement.id.in_(due_ids), Placement.property_id.in_(prop_ids))
            )
        )
    }
    # Held here: the session's identity map is weak, and a borough nobody references would be
    # loaded again for every property.
    boroughs = {
        b.id: b
        for b in session.scalars(
            select(Borough).where(Borough.id.in_({p.borough_id for p in props.values()}))
        )
    }
    out = Loaded(props=props, boroughs=boroughs, placements=placements)
    out.spans = load_spans(session, due_ids)
    owners = sorted({prop_id for prop_id, _ in placements.values()})
    for profile in session.scalars(select(RiskProfile).where(RiskProfile.property_id.in_(owners))):
        out.profiles.setdefault(profile.property_id, []).append(profile)
    for row in session.scalars(
        select(PlacementRisk).where(
            or_(PlacementRisk.property_id.in_(prop_ids), PlacementRisk.placement_id.in_(due_ids))
        )
    ):
        out.states[row.placement_id] = row
    for level in session.scalars(
        select(PropertyRisk).where(PropertyRisk.property_id.in_(prop_ids))
    ):
        out.levels[level.property_id] = level
    return out


def _changed(
    session: Session,
    rows: Sequence[PlacementRisk],
    spans: Mapping[int, list[Span]],
    span: timedelta,
) -> set[int]:
    """Placements whose recent processed hours hold a different number of readings now than
    when they were processed (the cheap first test of :func:`.update.late_hour`)."""
    windows: dict[tuple[datetime, datetime], list[int]] = {}
    devices: dict[int, list[int]] = {}
    changed: set[int] = set()
    for row in rows:
        if row.last_hour is None:
            continue
        horizon = row.last_hour + HOUR
        mine = within(spans.get(row.placement_id, ()), horizon - span, horizon)
        if not mine:
            continue
        if clipped(mine, horizon - span, horizon):
            # A device came or went within the window: counting per device would mix in
            # another placement's readings, so the exact per-hour check decides.
            changed.add(row.placement_id)
            continue
        devices[row.placement_id] = sorted({s.device_pk for s in mine})
        windows.setdefault((horizon - span, horizon), []).append(row.placement_id)
    for (since, horizon), ids in windows.items():
        for chunk in _chunks(ids, IN_CHUNK):
            stored = dict(
                session.execute(
                    select(RiskHour.placement_id, func.sum(RiskHour.samples))
                    .where(
                        RiskHour.placement_id.in_(chunk),
                        RiskHour.hour >= since,
                        RiskHour.hour < horizon,
                    )
                    .group_by(RiskHour.placement_id)
                ).all()
            )
            owner = {pk: pid for pid in chunk for pk in devices[pid]}
            counted: dict[int, int] = {}
            for device_pk, n in session.execute(
                select(Reading.device_pk, func.count())
                .where(
                    Reading.device_pk.in_(owner),
                    Reading.metric.in_(METRICS),
                    Reading.ts >= since,
                    Reading.ts < horizon,
                )
                .group_by(Reading.device_pk)
            ):
                counted[owner[device_pk]] = counted.get(owner[device_pk], 0) + n
            changed.update(pid for pid in chunk if counted.get(pid, 0) != (stored.get(pid) or 0))
    return changed


def _read(
    session: Session, plans: Sequence[Plan], spans: Mapping[int, list[Span]]
) -> Iterator[tuple[Plan, list[tuple[str, datetime, float]]]]:
    """Each plan with its samples. Placements sharing a window are read with one query,
    ordered as the one-placement query orders them (device, time, metric), so the means are
    identical; a chunk is handed out before the next is read, so memory stays bounded. A
    device moved between two placements of a chunk is told apart by its installation
    periods."""
    windows: dict[tuple[datetime | None, datetime], list[Plan]] = {}
    for plan in plans:
        windows.setdefault((plan.start, plan.end), []).append(plan)
    for (start, end), group in windows.items():
        span = WHOLE_HISTORY_HOURS if start is None else max(1, (end - start) // HOUR)
        per_query = max(1, min(IN_CHUNK, READ_BUDGET_HOURS // span))
        for chunk in _chunks(group, per_query):
            out: dict[int, list[tuple[str, datetime, float]]] = {
                p.row.placement_id: [] for p in chunk
            }
            owner: dict[int, list[tuple[Span, int]]] = {}
            mine: list[Span] = []
            for p in chunk:
                for s in within(spans.get(p.row.placement_id, ()), start, end):
                    owner.setdefault(s.device_pk, []).append((s, p.row.placement_id))
                    mine.append(s)
            if owner:
                for device_pk, metric, ts, value in session.execute(
                    readings_select(mine, start, end)
                ):
                    places = owner[device_pk]
                    if len(places) > 1:
                        places = [o for o in places if o[0].covers(ts)]
                    out[places[0][1]].append((metric, ts, value))
            for plan in chunk:
                yield plan, out.pop(plan.row.placement_id)


def advance_many(
    session: Session,
    due: Sequence[tuple[int, datetime]],
    loaded: Loaded,
    *,
    settings: RiskSettings,
) -> list[PlacementUpdate]:
    """:func:`.update.advance_placement` for every due placement, with shared queries."""
    with session.no_autoflush:
        # State rows are written once, by the caller's flush, not between these reads.
        return _advance_many(session, due, loaded, settings=settings)


def _advance_many(
    session: Session,
    due: Sequence[tuple[int, datetime]],
    loaded: Loaded,
    *,
    settings: RiskSettings,
) -> list[PlacementUpdate]:
    lookback = timedelta(hours=settings.late_lookback_hours)
    todo: list[tuple[PlacementRisk, datetime]] = []
    for pid, newest in due:
        placement = loaded.placements.get(pid)
        if placement is None:
            continue  # removed since the sweep listed it
        row = loaded.states.get(pid)
        if row is None:
            row = new_state_row(session, placement_id=pid, property_id=placement[0])
            loaded.states[pid] = row
        todo.append((row, newest))
    suspects = _changed(session, [row for row, _ in todo], loaded.spans, lookback)
    plans: list[Plan] = []
    for row, newest in todo:
        pid = row.placement_id
        spans = loaded.spans.get(pid, [])
        found = late_hour(session, row, spans, lookback) if pid in suspects else None
        profile = profile_from(
            loaded.profiles.get(row.property_id, ()), placement_id=pid, settings=settings
        )
        plan = plan_update(
            session,
            row,
            profile=profile,
            newest=newest,
            found=found,
            settings=settings,
            spans=spans,
        )
        if plan is not None:
            plans.append(plan)
    hours: list[dict[str, Any]] = []
    counts: dict[int, int] = {}
    for plan, samples in _read(session, plans, loaded.spans):
        rows = step_hours(plan, samples)
        counts[plan.row.placement_id] = len(rows)
        clear_recomputed(session, plan)  # before this placement's new rows go in
        hours += rows
        if len(hours) >= INSERT_CHUNK:
            session.execute(insert(RiskHour), hours)
            hours = []
    if hours:
        session.execute(insert(RiskHour), hours)
    done = [finish(plan, counts[plan.row.placement_id]) for plan in plans]
    _uniform([plan.row for plan in plans], STATE_COLUMNS)
    return done


#: Columns an update writes on ``placement_risk`` and ``property_risk`` rows.
STATE_COLUMNS = (
    "state",
    "last_hour",
    "recompute_from",
    "mould_index",
    "level",
    "score",
    "evidence",
    "updated_at",
    "checked_at",
)
LEVEL_COLUMNS = (
    "level",
    "rank",
    "score",
    "mould_index",
    "trend",
    "level_since",
    "data_until",
    "evidence",
    "updated_at",
)


def _uniform(rows: Sequence[PlacementRisk | PropertyRisk], columns: Sequence[str]) -> None:
    """Mark every column written, changed or not: the flush groups UPDATEs by their column
    set, so identical sets make one executemany instead of one statement per variant."""
    for row in rows:
        if not instance_state(row).persistent:
            continue  # a new row is inserted whole anyway
        for column in columns:
            flag_modified(row, column)


def _trends(session: Session, groups: Mapping[int, Sequence[PlacementRisk]]) -> dict[int, str]:
    """Each property's trend; properties ending at the same hour share one query."""
    by_until: dict[datetime, list[int]] = {}
    for prop_id, rows in groups.items():
        by_until.setdefault(levels.data_until(rows), []).append(prop_id)
    out: dict[int, str] = {}
    for until, prop_ids in by_until.items():
        for chunk in _chunks(prop_ids, IN_CHUNK):
            ids = [r.placement_id for p in chunk for r in groups[p]]
            fetched: dict[int, list[tuple[int, datetime, float, float]]] = {}
            for pid, hour, srh, m in session.execute(
                levels.trend_select(ids, since=until - levels.TREND_SPAN, until=until)
            ):
                fetched.setdefault(pid, []).append((pid, hour, srh, m))
            for prop_id in chunk:
                # Merge the property's placements back into (hour, placement) order.
                mine = sorted(
                    (t for r in groups[prop_id] for t in fetched.get(r.placement_id, ())),
                    key=lambda t: (t[1], t[0]),
                )
                out[prop_id] = levels.trend_of(mine, until)
    return out


def update_batch(
    session: Session,
    due: Mapping[int, Sequence[tuple[int, datetime]]],
    *,
    settings: RiskSettings,
    now: datetime,
) -> BatchTally:
    """Advance every due placement of the properties in ``due``, then set their levels and
    open or update cases, in property order (as the one-property path does)."""
    tally = BatchTally()
    loaded = load(session, due)
    prop_ids = [p for p in sorted(due) if p in loaded.props]
    wanted = [item for p in prop_ids for item in due[p]]
    for done in advance_many(session, wanted, loaded, settings=settings):
        tally.placements += 1
        tally.hours += done.hours
        tally.recomputed += int(done.recomputed)
    states: dict[int, list[PlacementRisk]] = {}
    for row in loaded.states.values():
        states.setdefault(row.property_id, []).append(row)
    rooms: dict[int, dict[int, str]] = {}
    for pid, (owner, room) in loaded.placements.items():
        rooms.setdefault(owner, {})[pid] = room
    groups: dict[int, list[PlacementRisk]] = {}
    for prop_id in prop_ids:
        rows = levels.processed(states.get(prop_id, ()))
        if rows:
            groups[prop_id] = rows
    trends = _trends(session, groups)
    risks: dict[int, tuple[PropertyRisk, str | None]] = {}
    for prop_id in prop_ids:
        tally.properties += 1
        rows_of = groups.get(prop_id)
        if rows_of is None:
            continue
        before = loaded.levels.get(prop_id)
        old_level = None if before is None else before.level  # apply_level changes ``before``
        risk = levels.apply_level(
            session,
            loaded.props[prop_id],
            rows_of,
            rooms=rooms.get(prop_id, {}),
            current=before,
            trend=trends[prop_id],
            now=now,
        )
        risks[prop_id] = (risk, old_level)
    _uniform(list(loaded.levels.values()), LEVEL_COLUMNS)
    # Levels and states go out together before the case checks read anything.
    session.flush()
    for prop_id, (risk, old_level) in risks.items():
        prop = loaded.props[prop_id]
        tally.level_changes += int(old_level != risk.level)
        threshold = levels.case_threshold(loaded.boroughs.get(prop.borough_id), settings)
        linked = cases.on_property_risk(session, prop=prop, risk=risk, threshold=threshold, now=now)
        if linked is not None and linked[1]:
            tally.cases_opened += 1
    return tally
