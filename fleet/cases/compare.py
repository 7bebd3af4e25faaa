"""Before/after comparison of a case on the stored hourly risk data."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.models import Case, Placement, PlacementRisk, RiskHour
from fleet.risk.compare import Comparison, HourPoint, compare
from fleet.risk.hourly import HOUR

DEFAULT_WINDOW = timedelta(days=14)


def works_time(case: Case) -> datetime | None:
    """The intervention to judge: works completed, else further works started, else safety
    work (the latest thing done to the home)."""
    return case.works_completed_at or case.further_works_started_at or case.safety_work_at


def data_until(session: Session, property_id: int) -> datetime | None:
    """End of the newest processed hour over the property's placements."""
    last = session.scalar(
        select(func.max(PlacementRisk.last_hour)).where(PlacementRisk.property_id == property_id)
    )
    return None if last is None else last + HOUR


def property_series(
    session: Session, property_id: int, start: datetime, end: datetime
) -> list[list[HourPoint]]:
    """Each placement's stored hours in ``[start, end)``, time-ordered."""
    stmt = (
        select(RiskHour.placement_id, RiskHour.hour, RiskHour.humidity, RiskHour.surface_rh)
        .add_columns(RiskHour.mould_index)
        .join(Placement, Placement.id == RiskHour.placement_id)
        .where(Placement.property_id == property_id, RiskHour.hour >= start, RiskHour.hour < end)
        .order_by(RiskHour.placement_id, RiskHour.hour)
    )
    by_placement: dict[int, list[HourPoint]] = defaultdict(list)
    for pid, hour, rh, srh, m in session.execute(stmt):
        by_placement[pid].append(HourPoint(hour, rh, srh, m))
    return list(by_placement.values())


def case_comparison(
    session: Session, case: Case, *, window: timedelta = DEFAULT_WINDOW
) -> Comparison | None:
    """The comparison around the case's works, or ``None`` before any works are recorded."""
    works = works_time(case)
    until = data_until(session, case.property_id)
    if works is None or until is None:
        return None
    series = property_series(session, case.property_id, works - window, works + window)
    return compare(series, works, data_until=until, window=window)
