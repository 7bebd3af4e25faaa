"""The periodic risk update: due placements, property levels, and cases when risk is high."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fleet.cases import service as cases
from fleet.models import (
    Borough,
    Device,
    Placement,
    PlacementRisk,
    Property,
    PropertyRisk,
    RiskHour,
    RiskLevelChange,
)
from fleet.models.base import utcnow
from fleet.risk.hourly import HOUR, floor_hour
from fleet.risk.level import RiskLevel
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.update import advance_placement

log = logging.getLogger(__name__)
TREND_SRH_POINTS = 2.0
TREND_MOULD = 0.001


@dataclass
class SweepResult:
    properties: int = 0
    placements: int = 0
    hours: int = 0
    recomputed: int = 0
    level_changes: int = 0
    cases_opened: int = 0
    failed: int = 0


def due_placements(session: Session) -> dict[int, list[tuple[int, datetime]]]:
    """Property id -> [(placement id, newest reading time)] for placements with a new complete
    hour, a pending recompute, or messages since the last check (which may carry late data)."""
    newest = session.execute(
        select(Device.placement_id, func.max(Device.latest_at), func.max(Device.last_seen_at))
        .where(Device.placement_id.is_not(None), Device.latest_at.is_not(None))
        .group_by(Device.placement_id)
    ).all()
    states = {
        pid: (last, late, checked)
        for pid, last, late, checked in session.execute(
            select(
                PlacementRisk.placement_id,
                PlacementRisk.last_hour,
                PlacementRisk.recompute_from,
                PlacementRisk.checked_at,
            )
        ).all()
    }
    due: dict[int, datetime] = {}
    for pid, ts, seen in newest:
        if pid is None or ts is None:
            continue
        last, late, checked = states.get(pid, (None, None, None))
        if (
            last is None
            or late is not None
            or floor_hour(ts) > last + HOUR
            or (seen is not None and (checked is None or seen > checked))
        ):
            due[pid] = ts
    out: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    if due:
        rows = session.execute(
            select(Placement.id, Placement.property_id).where(Placement.id.in_(due))
        ).all()
        for pid, prop_id in rows:
            out[prop_id].append((pid, due[pid]))
    return dict(out)


def _trend(session: Session, placement_ids: Sequence[int], until: datetime) -> str:
    """Rising, falling or steady: the last 24 h against the 24 h before."""
    rows = session.execute(
        select(RiskHour.placement_id, RiskHour.hour, RiskHour.surface_rh, RiskHour.mould_index)
        .where(
            RiskHour.placement_id.in_(placement_ids),
            RiskHour.hour >= until - timedelta(hours=48),
            RiskHour.hour < until,
        )
        .order_by(RiskHour.hour)
    ).all()
    split = until - timedelta(hours=24)
    recent: list[float] = []
    earlier: list[float] = []
    first_m: dict[int, float] = {}
    last_m: dict[int, float] = {}
    for pid, hour, srh, m in rows:
        (recent if hour >= split else earlier).append(srh)
        first_m.setdefault(pid, m)
        last_m[pid] = m
    d_mould = sum(last_m[p] - first_m[p] for p in last_m)
    d_srh = (sum(recent) / len(recent) - sum(earlier) / len(earlier)) if recent and earlier else 0.0
    if d_mould > TREND_MOULD or d_srh >= TREND_SRH_POINTS:
        return "rising"
    if d_mould < -TREND_MOULD or d_srh <= -TREND_SRH_POINTS:
        return "falling"
    return "steady"


def refresh_property(session: Session, prop: Property, *, now: datetime) -> PropertyRisk | None:
    """Set the property's level from its worst placement; record level changes."""
    rows = session.scalars(select(PlacementRisk).where(PlacementRisk.property_id == prop.id)).all()
    rows = [r for r in rows if r.last_hour is not None]
    if not rows:
        return None
    rooms = dict(
        session.execute(
            select(Placement.id, Placement.room).where(Placement.property_id == prop.id)
        ).all()
    )
    worst = max(rows, key=lambda r: (r.score, r.mould_index))
    evidence = []
    for r in sorted(rows, key=lambda r: (-r.score, r.placement_id)):
        for e in r.evidence or []:
            # Points count only for the worst room: the level is that room's level.
            points = e.get("points", 0) if r is worst else 0
            evidence.append({**e, "points": points, "room": rooms.get(r.placement_id)})
    until = max(r.last_hour for r in rows if r.last_hour is not None) + HOUR
    level = RiskLevel(worst.level)
    current = session.get(PropertyRisk, prop.id)
    if current is None:
        current = PropertyRisk(property_id=prop.id, borough_id=prop.borough_id)
        session.add(current)
    if current.level_since is None or current.level != level.value:
        session.add(
            RiskLevelChange(
                property_id=prop.id,
                borough_id=prop.borough_id,
                at=until,
                from_level=None if current.level_since is None else current.level,
                to_level=level.value,
                score=worst.score,
            )
        )
        current.level_since = until
    current.level = level.value
    current.rank = level.rank
    current.score = worst.score
    current.mould_index = max(r.mould_index for r in rows)
    current.trend = _trend(session, [r.placement_id for r in rows], until)
    current.data_until = until
    current.evidence = evidence
    current.updated_at = now
    return current


def case_threshold(borough: Borough | None, settings: RiskSettings) -> RiskLevel:
    """The borough's ``risk_case_level`` if it set a valid one, else the settings'."""
    wanted = (borough.alert_settings or {}).get("risk_case_level") if borough else None
    try:
        return RiskLevel(wanted) if wanted else RiskLevel(settings.case_level)
    except ValueError:
        return RiskLevel(settings.case_level)


def update_property(
    session: Session,
    prop: Property,
    placements: Sequence[tuple[int, datetime]],
    *,
    settings: RiskSettings,
    now: datetime,
    result: SweepResult,
) -> None:
    for pid, newest in placements:
        placement = session.get(Placement, pid)
        if placement is None:
            continue
        devices = session.scalars(select(Device.id).where(Device.placement_id == pid)).all()
        done = advance_placement(
            session, placement, device_pks=devices, newest=newest, settings=settings
        )
        if done is not None:
            result.placements += 1
            result.hours += done.hours
            result.recomputed += int(done.recomputed)
    before = session.get(PropertyRisk, prop.id)
    old_level = None if before is None else before.level
    risk = refresh_property(session, prop, now=now)
    if risk is None:
        return
    result.level_changes += int(old_level != risk.level)
    threshold = case_threshold(session.get(Borough, prop.borough_id), settings)
    linked = cases.on_property_risk(session, prop=prop, risk=risk, threshold=threshold, now=now)
    if linked is not None and linked[1]:
        result.cases_opened += 1


def sweep(
    sessions: sessionmaker[Session], settings: RiskSettings, *, now: datetime | None = None
) -> SweepResult:
    """One pass: every due placement, grouped by property, a batch of properties per
    transaction; a property that fails is rolled back alone and retried next pass."""
    result = SweepResult()
    with sessions() as session:
        due = due_placements(session)
    prop_ids = sorted(due)
    for start in range(0, len(prop_ids), settings.batch):
        with sessions.begin() as session:
            clock = now or utcnow()
            for prop_id in prop_ids[start : start + settings.batch]:
                prop = session.get(Property, prop_id)
                if prop is None:
                    continue
                try:
                    with session.begin_nested():
                        update_property(
                            session, prop, due[prop_id], settings=settings, now=clock, result=result
                        )
                except (SQLAlchemyError, ValueError):
                    result.failed += 1
                    log.exception("risk update failed for property %s; retrying next pass", prop_id)
                    continue
                result.properties += 1
    return result


class RiskWorker:
    """Runs :func:`sweep` every ``settings.sweep_s`` seconds on a background thread."""

    def __init__(self, sessions: sessionmaker[Session], settings: RiskSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="risk-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.sweep_s):
            try:
                result = sweep(self._sessions, self._settings)
            except Exception:  # a database blip must not end the worker
                log.exception("risk sweep failed; retrying next interval")
                continue
            if result.placements or result.failed:
                log.info(
                    "risk sweep: %d placements, %d hours, %d recomputed, %d cases opened, "
                    "%d failed",
                    result.placements,
                    result.hours,
                    result.recomputed,
                    result.cases_opened,
                    result.failed,
                )
