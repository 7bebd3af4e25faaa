"""Advance each placement's risk from stored readings, one complete hour at a time.

Incremental by default: a placement's tracker state is loaded from ``placement_risk``, only
readings after the last processed hour are read, and the new hours are stepped and stored.
An hour is complete once a placement's devices have reported from a later hour, so the
newest (still filling) hour is never processed. A placement's readings are those its devices
took while installed there (:mod:`.spans`), whether or not they are still there.

A reading that lands in an hour already processed (a second device catching up after an
outage, a pack redelivered out of order) is found by comparing each recent hour's sample count
with the count stored for it (over ``late_lookback_hours``); :func:`note_samples` lets an ingest
path flag older ones directly, and the recompute endpoint does it by hand. Either way the
placement gets ``recompute_from`` and the update recomputes
from that hour only: the mould state is resumed from the stored hour before it, the hour-fed
windows (BS 5250 mean, LIM) are rebuilt from the stored hours of the week before, the
time-above rules (ADF, CO2) from the raw readings of the day before (their longest window),
and the hours from there on are recomputed from readings. Recomputes reach back at most
``recompute_max_days``, so a device replaying a year of buffered data cannot stall the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from fleet.ingest.senml import Sample
from fleet.models import Placement, PlacementRisk, Reading, RiskHour, RiskProfile
from fleet.models.base import utcnow
from fleet.risk import rules
from fleet.risk.hourly import HOUR, METRICS, SurfaceModel, derive, floor_hour, has_climate, hourly
from fleet.risk.level import Assessment, Evidence
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.spans import Span, reading_filter, within
from fleet.risk.tracker import PlacementTracker, sample_warmup, stored_marks, warmup_span
from fleet.risk.violation import Violation
from fleet.risk.vtt import MouldState, Sensitivity


@dataclass(frozen=True)
class Profile:
    surface: SurfaceModel
    sensitivity: Sensitivity


@dataclass(frozen=True)
class PlacementUpdate:
    placement_id: int
    hours: int
    recomputed: bool
    assessment: Assessment


@lru_cache(maxsize=8)
def rule_set(surface_days: float) -> tuple[rules.Rule, ...]:
    return rules.default_rules(surface_days=surface_days)


def resolve_profile(
    session: Session, *, property_id: int, placement_id: int, settings: RiskSettings
) -> Profile:
    """The placement's survey facts, else its property's, else the settings."""
    rows = session.scalars(
        select(RiskProfile).where(
            RiskProfile.property_id == property_id,
            or_(RiskProfile.placement_id == placement_id, RiskProfile.placement_id.is_(None)),
        )
    ).all()
    return profile_from(rows, placement_id=placement_id, settings=settings)


def profile_from(
    rows: Iterable[RiskProfile], *, placement_id: int, settings: RiskSettings
) -> Profile:
    """Resolve a placement's profile from its property's profile rows (others are ignored)."""
    mine = [r for r in rows if r.placement_id in (placement_id, None)]
    ordered = sorted(mine, key=lambda r: (r.placement_id is None, r.id or 0))  # placement first

    def pick(attr: str) -> object | None:
        for row in ordered:
            value = getattr(row, attr)
            if value is not None:
                return value
        return None

    f_rsi = pick("f_rsi")
    outdoor = pick("outdoor_temperature")
    sensitivity = pick("sensitivity")
    return Profile(
        surface=SurfaceModel(
            f_rsi=float(f_rsi) if isinstance(f_rsi, float | int) else settings.f_rsi,
            outdoor_temperature=float(outdoor)
            if isinstance(outdoor, float | int)
            else settings.outdoor_temperature,
        ),
        sensitivity=Sensitivity(sensitivity)
        if isinstance(sensitivity, str)
        else settings.sensitivity,
    )


def note_samples(session: Session, *, placement_id: int | None, samples: Sequence[Sample]) -> None:
    """Called by ingest after storing new samples: flag readings for hours already processed."""
    if placement_id is None:
        return
    times = [s.ts for s in samples if s.metric in METRICS]
    if not times:
        return
    row = session.get(PlacementRisk, placement_id)
    if row is None or row.last_hour is None:
        return
    oldest = min(times)
    if oldest < row.last_hour + HOUR and (
        row.recompute_from is None or oldest < row.recompute_from
    ):
        row.recompute_from = oldest


def late_hour(
    session: Session, row: PlacementRisk, spans: Sequence[Span], lookback: timedelta
) -> datetime | None:
    """The earliest recent processed hour whose readings changed since it was processed."""
    if row.last_hour is None:
        return None
    horizon = row.last_hour + HOUR
    since = horizon - lookback
    mine = within(spans, since, horizon)
    if not mine:
        return None
    stored = dict(
        session.execute(
            select(RiskHour.hour, RiskHour.samples).where(
                RiskHour.placement_id == row.placement_id,
                RiskHour.hour >= since,
                RiskHour.hour < horizon,
            )
        ).all()
    )
    in_window = (
        reading_filter(mine, since, horizon),
        Reading.metric.in_(METRICS),
        Reading.ts >= since,
        Reading.ts < horizon,
    )
    # Readings are never deleted, so equal totals mean no hour gained a reading: one cheap
    # aggregate settles the common case without fetching rows.
    total = session.scalar(select(func.count()).select_from(Reading).where(*in_window))
    if total == sum(stored.values()):
        return None
    counts: dict[datetime, int] = {}
    climate: dict[datetime, set[str]] = {}
    for metric, ts in session.execute(select(Reading.metric, Reading.ts).where(*in_window)):
        hour = floor_hour(ts)
        counts[hour] = counts.get(hour, 0) + 1
        if metric in ("temperature", "humidity"):
            climate.setdefault(hour, set()).add(metric)
    for hour in sorted(counts):
        known = stored.get(hour)
        if known is None:
            # Only an hour with both temperature and humidity would have been stored.
            if len(climate.get(hour, ())) == 2:
                return hour
        elif counts[hour] != known:
            return hour
    return None


def _restore(
    session: Session,
    row: PlacementRisk,
    start: datetime,
    chosen: Sequence[rules.Rule],
    sensitivity: Sensitivity,
    spans: Sequence[Span],
) -> PlacementTracker:
    """A tracker as it stood just before ``start``, rebuilt from stored hours and from the
    raw readings of the processed hours before it."""
    pid = row.placement_id
    prev = session.scalars(
        select(RiskHour)
        .where(RiskHour.placement_id == pid, RiskHour.hour < start)
        .order_by(RiskHour.hour.desc())
        .limit(1)
    ).first()
    mould = MouldState(prev.mould_index, prev.dry_hours) if prev is not None else MouldState()
    stored: list[Violation] = []
    if row.state is not None:
        try:
            stored = [Violation.from_dict(v) for v in row.state.get("recent", [])]
        except ValueError:
            stored = []
    warm = session.execute(
        select(
            RiskHour.hour,
            RiskHour.humidity,
            RiskHour.surface_rh,
            RiskHour.co2,
            RiskHour.surface_temperature,
        )
        .where(
            RiskHour.placement_id == pid,
            RiskHour.hour >= start - warmup_span(chosen),
            RiskHour.hour < start,
        )
        .order_by(RiskHour.hour)
    ).all()
    raw_from = start - sample_warmup(chosen)
    readings = session.execute(readings_select(within(spans, raw_from, start), raw_from, start))
    samples = [
        hour_samples
        for means, hour_samples in hourly((m, ts, v) for _, m, ts, v in readings)
        if has_climate(means)  # only the hours that were processed fed the rules
    ]
    return PlacementTracker.rebuild(
        rule_set=chosen,
        sensitivity=sensitivity,
        mould=mould,
        hours=warm,
        samples=samples,
        stored=stored,
        before=start,
        marks=stored_marks(row.state),
    )


def _load_tracker(
    row: PlacementRisk, chosen: Sequence[rules.Rule], sensitivity: Sensitivity
) -> PlacementTracker | None:
    if row.state is None:
        return None
    try:
        tracker = PlacementTracker.from_dict(row.state, rule_set=chosen)
    except (ValueError, KeyError, TypeError):
        return None  # an older or damaged state: recompute
    return tracker if tracker.sensitivity is sensitivity else None


@dataclass
class Plan:
    """What one update of a placement will do: hours ``[start, end)`` (``start`` ``None`` is
    the whole stored history), folded into ``tracker``."""

    row: PlacementRisk
    profile: Profile
    tracker: PlacementTracker
    start: datetime | None
    end: datetime
    recomputed: bool


def state_row(session: Session, *, placement_id: int, property_id: int) -> PlacementRisk:
    """The placement's stored state, created (pending) on its first update."""
    row = session.get(PlacementRisk, placement_id)
    if row is None:
        row = new_state_row(session, placement_id=placement_id, property_id=property_id)
    return row


def new_state_row(session: Session, *, placement_id: int, property_id: int) -> PlacementRisk:
    row = PlacementRisk(placement_id=placement_id, property_id=property_id, level="low", score=0)
    session.add(row)
    return row


def plan_update(
    session: Session,
    row: PlacementRisk,
    *,
    profile: Profile,
    newest: datetime,
    found: datetime | None,
    settings: RiskSettings,
    spans: Sequence[Span],
) -> Plan | None:
    """Where the update starts (resuming, recomputing from ``found`` or a flagged hour, or
    from scratch), or ``None`` when no complete hour is new. ``found`` is the late hour
    :func:`late_hour` reported; ``spans`` the placement's devices, read to rebuild the rule
    windows before a recompute.

    A state stored by an older version (or unreadable) is recomputed over
    ``recompute_max_days``, as after a profile change."""
    chosen = rule_set(settings.surface_days)
    end = floor_hour(newest)  # the newest hour may still be filling: exclusive
    late = row.recompute_from
    if found is not None and (late is None or found < late):
        late = found
    row.checked_at = utcnow()
    tracker = _load_tracker(row, chosen, profile.sensitivity)
    start: datetime | None
    recomputed = False
    if tracker is not None and row.last_hour is not None and late is None:
        start = row.last_hour + HOUR
    elif row.last_hour is not None:
        # A late reading, a changed profile or an unreadable state: recompute, bounded.
        wanted = floor_hour(late) if late is not None else end - timedelta(days=365)
        start = max(wanted, end - timedelta(days=settings.recompute_max_days))
        start = min(start, row.last_hour + HOUR)
        tracker = _restore(session, row, start, chosen, profile.sensitivity, spans)
        recomputed = True
    else:
        start = None  # first run: the whole stored history
        tracker = PlacementTracker(rule_set=chosen, sensitivity=profile.sensitivity)
    row.recompute_from = None
    if start is not None and start >= end:
        return None
    return Plan(row, profile, tracker, start, end, recomputed)


def readings_select(
    spans: Sequence[Span], start: datetime | None, end: datetime
) -> Select[int, str, datetime, float]:
    """``(device, metric, ts, value)`` in ``[start, end)`` taken by the devices while
    installed (the spans), in the one order that makes hourly means bit-identical however
    many placements a query serves."""
    stmt = select(Reading.device_pk, Reading.metric, Reading.ts, Reading.value).where(
        reading_filter(spans, start, end), Reading.metric.in_(METRICS), Reading.ts < end
    )
    if start is not None:
        stmt = stmt.where(Reading.ts >= start)
    return stmt.order_by(Reading.device_pk, Reading.ts, Reading.metric)


def step_hours(plan: Plan, samples: Iterable[tuple[str, datetime, float]]) -> list[dict[str, Any]]:
    """Fold the samples' complete hours into the plan's tracker; the ``risk_hours`` rows.

    Each hour steps the mould index on its means and feeds its raw samples, in time order, to
    the time-above rules: one pass over the samples, no query per hour."""
    tracker, surface = plan.tracker, plan.profile.surface
    placement_id = plan.row.placement_id
    rows = []
    for means, hour_samples in hourly(samples):
        hour = derive(means, surface)
        if hour is None:
            continue
        tracker.step(hour, hour_samples)
        rows.append(
            {
                "placement_id": placement_id,
                "hour": hour.hour,
                "temperature": hour.temperature,
                "humidity": hour.humidity,
                "dew_point": hour.dew_point,
                "absolute_humidity": hour.absolute_humidity,
                "surface_temperature": hour.surface_temperature,
                "surface_rh": hour.surface_rh,
                "surface_estimated": hour.surface_estimated,
                "co2": hour.co2,
                "mould_index": tracker.mould.m,
                "dry_hours": tracker.mould.dry_hours,
                "samples": hour.samples,
            }
        )
    return rows


def clear_recomputed(session: Session, plan: Plan) -> None:
    """Drop the stored hours a recompute replaces (before its new rows are inserted)."""
    if plan.recomputed and plan.start is not None:
        session.execute(
            delete(RiskHour).where(
                RiskHour.placement_id == plan.row.placement_id, RiskHour.hour >= plan.start
            )
        )


def finish(plan: Plan, hours: int) -> PlacementUpdate:
    """Store the tracker and its assessment on the placement's state row."""
    row, tracker = plan.row, plan.tracker
    assessment = tracker.assess()
    if plan.start is None and hours == 0:
        # A first run without one complete hour of readings knows nothing yet: the placement
        # stays unassessed ("no data", not "low") and the next run starts from scratch again.
        return PlacementUpdate(row.placement_id, 0, plan.recomputed, assessment)
    row.state = tracker.to_dict()
    row.last_hour = plan.end - HOUR
    row.mould_index = tracker.mould.m
    row.level = assessment.level.value
    row.score = assessment.score
    row.evidence = [evidence_dict(e) for e in assessment.evidence]
    row.updated_at = utcnow()
    return PlacementUpdate(row.placement_id, hours, plan.recomputed, assessment)


def advance_placement(
    session: Session,
    placement: Placement,
    *,
    spans: Sequence[Span],
    newest: datetime,
    settings: RiskSettings,
) -> PlacementUpdate | None:
    """Process the complete hours not yet processed (or recompute from a late reading).

    Returns ``None`` when there was nothing new to process. :mod:`.batch` does the same for
    many placements with a few queries in all.
    """
    profile = resolve_profile(
        session, property_id=placement.property_id, placement_id=placement.id, settings=settings
    )
    row = state_row(session, placement_id=placement.id, property_id=placement.property_id)
    found = late_hour(session, row, spans, timedelta(hours=settings.late_lookback_hours))
    plan = plan_update(
        session, row, profile=profile, newest=newest, found=found, settings=settings, spans=spans
    )
    if plan is None:
        return None
    samples = session.execute(readings_select(spans, plan.start, plan.end))
    rows = step_hours(plan, ((metric, ts, value) for _, metric, ts, value in samples))
    clear_recomputed(session, plan)
    if rows:
        session.execute(insert(RiskHour), rows)
    return finish(plan, len(rows))


def evidence_dict(e: Evidence) -> dict[str, object]:
    """JSON form of one reason behind a level."""
    out: dict[str, object] = {"code": e.code, "points": e.points, "detail": e.detail}
    if e.violation is not None:
        out["violation"] = e.violation.to_dict()
    return out
