"""The periodic risk update: due placements, property levels, and cases when risk is high."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fleet.cases import service as cases
from fleet.models import (
    Borough,
    Device,
    DeviceInstallation,
    Placement,
    PlacementRisk,
    Property,
    PropertyRisk,
)
from fleet.models.base import utcnow
from fleet.risk.hourly import HOUR, floor_hour
from fleet.risk.service.batch import BatchTally, update_batch
from fleet.risk.service.levels import case_threshold, refresh_property
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.spans import load_spans
from fleet.risk.service.update import advance_placement

__all__ = [
    "RiskWorker",
    "SweepResult",
    "case_threshold",
    "due_placements",
    "refresh_property",
    "sweep",
    "update_property",
]

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    properties: int = 0
    placements: int = 0
    hours: int = 0
    recomputed: int = 0
    level_changes: int = 0
    cases_opened: int = 0
    failed: int = 0
    properties_left: int = 0  # not reached: the pass was told to stop (next pass does them)


def due_placements(
    session: Session, *, late_lookback: timedelta
) -> dict[int, list[tuple[int, datetime]]]:
    """Property id -> [(placement id, newest reading time)] for placements with a new complete
    hour, a pending recompute, or messages since the last check (which may carry late data),
    including placements whose devices have all been moved or removed (:func:`_left_behind`)."""
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
    left = _left_behind(session, exclude={pid for pid, _, _ in newest}, lookback=late_lookback)
    for pid, (end, seen) in left.items():
        last, late, checked = states.get(pid, (None, None, None))
        if (
            late is not None
            or (last is None and checked is None)
            or (last is not None and end > last + HOUR)
            or (seen is not None and checked is not None and seen > checked)
        ):
            due[pid] = end
    out: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    if due:
        rows = session.execute(
            select(Placement.id, Placement.property_id).where(Placement.id.in_(due))
        ).all()
        for pid, prop_id in rows:
            out[prop_id].append((pid, due[pid]))
    return dict(out)


def _left_behind(
    session: Session, *, exclude: set[int | None], lookback: timedelta
) -> dict[int, tuple[datetime, datetime | None]]:
    """Placements no device is installed at any more -> (the end of their last installation
    rounded up to the hour, when a device that left within ``lookback`` was last heard from).

    The hours up to the end are complete and still to be processed there; a device that left
    recently may still deliver readings from before it left (the late-data check finds them);
    and a recompute asked of such a placement still runs."""
    recent = utcnow() - lookback
    out: dict[int, tuple[datetime, datetime | None]] = {}
    for pid, removed, seen in session.execute(
        select(
            DeviceInstallation.placement_id,
            func.max(DeviceInstallation.removed_at),
            func.max(case((DeviceInstallation.removed_at >= recent, Device.last_seen_at))),
        )
        .join(Device, Device.id == DeviceInstallation.device_pk)
        .where(DeviceInstallation.removed_at.is_not(None))
        .group_by(DeviceInstallation.placement_id)
    ):
        if pid in exclude or removed is None:
            continue
        hour = floor_hour(removed)
        out[pid] = (hour if hour == removed else hour + HOUR, seen)
    return out


def update_property(
    session: Session,
    prop: Property,
    placements: Sequence[tuple[int, datetime]],
    *,
    settings: RiskSettings,
    now: datetime,
    result: SweepResult,
) -> None:
    """One property on its own: its due placements, its level, its case. The path a batch
    falls back to when it fails, so one bad property cannot hold up the others."""
    for pid, newest in placements:
        placement = session.get(Placement, pid)
        if placement is None:
            continue
        spans = load_spans(session, [pid]).get(pid, [])
        done = advance_placement(session, placement, spans=spans, newest=newest, settings=settings)
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
    sessions: sessionmaker[Session],
    settings: RiskSettings,
    *,
    now: datetime | None = None,
    batched: bool = True,
    should_continue: Callable[[], bool] = lambda: True,
) -> SweepResult:
    """One pass: every due placement, grouped by property, a batch of properties per
    transaction, each batch with a few set-based queries (:mod:`.batch`).

    If a batch fails, it is rolled back and its properties are updated one at a time
    (``batched=False`` does only that), so a property that fails is rolled back alone and
    retried next pass while the rest of its batch goes ahead.

    ``should_continue`` is asked before each batch, outside any transaction: once false (the
    process is stopping, or another replica took the lease) the pass ends there. A batch
    commits its placements' states (last hour, pending recompute, last check) with their
    hours, levels and cases, so the placements not reached are still due by those states and
    the next pass, here or in the next lease holder, takes them up where they were.
    """
    result = SweepResult()
    with sessions() as session:
        due = due_placements(session, late_lookback=timedelta(hours=settings.late_lookback_hours))
    prop_ids = sorted(due)
    for start in range(0, len(prop_ids), settings.batch):
        if not should_continue():
            result.properties_left = len(prop_ids) - start
            log.info(
                "risk sweep stopped after %d of %d due properties (%d placements, %d hours); "
                "the next pass takes up the rest",
                start,
                len(prop_ids),
                result.placements,
                result.hours,
            )
            break
        chunk = prop_ids[start : start + settings.batch]
        with sessions.begin() as session:
            clock = now or utcnow()
            if batched and _try_batch(session, {p: due[p] for p in chunk}, settings, clock, result):
                continue
            for prop_id in chunk:
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


def _try_batch(
    session: Session,
    due: dict[int, list[tuple[int, datetime]]],
    settings: RiskSettings,
    now: datetime,
    result: SweepResult,
) -> bool:
    """Update the batch in one savepoint; ``False`` (rolled back) if any of it failed."""
    try:
        with session.begin_nested():
            tally: BatchTally = update_batch(session, due, settings=settings, now=now)
    except (SQLAlchemyError, ValueError):
        log.warning(
            "batched risk update of %d properties failed; updating them one by one",
            len(due),
            exc_info=True,
        )
        session.expire_all()
        return False
    result.properties += tally.properties
    result.placements += tally.placements
    result.hours += tally.hours
    result.recomputed += tally.recomputed
    result.level_changes += tally.level_changes
    result.cases_opened += tally.cases_opened
    return True


class RiskWorker:
    """Runs :func:`sweep` every ``settings.sweep_s`` seconds on a background thread; a pass
    ends between batches once the worker is stopped or the lease is lost."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: RiskSettings,
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._gate = gate  # false: another process runs the sweep (fleet.core.lease)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="risk-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _should_continue(self) -> bool:
        return not self._stop.is_set() and self._gate()

    def _run(self) -> None:
        while not self._stop.wait(self._settings.sweep_s):
            if not self._gate():
                continue
            try:
                result = sweep(
                    self._sessions, self._settings, should_continue=self._should_continue
                )
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
