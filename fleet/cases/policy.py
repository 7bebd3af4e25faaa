"""When a case may change that is not about dates: further works or none, and when sensor
risk opens a new case after one was closed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.cases.deadlines import FURTHER_WORKS, STEP_COLUMNS, STEP_LABELS, CaseStep
from fleet.cases.errors import CaseConflict
from fleet.models import Case, RiskLevelChange
from fleet.risk.level import RiskLevel


def new_after_close(
    session: Session, property_id: int, level: RiskLevel, threshold: RiskLevel
) -> bool:
    """Whether risk at ``level`` is new since the property's last case was closed.

    Closing a case while the risk is still at the case level must not open another at once
    with a fresh clock (an endless stream of cases, and a way to reset deadlines). Risk is new
    when it is above the level the case was closed at, or when the level has fallen below the
    case level since the close and risen again (a new episode).
    """
    stmt = select(Case).where(Case.property_id == property_id, Case.status == "closed")
    last = session.scalars(stmt.order_by(Case.closed_at.desc(), Case.id.desc()).limit(1)).first()
    if last is None or last.closed_at is None or last.closed_level is None:
        return True
    if level.rank > RiskLevel(last.closed_level).rank:
        return True
    below = [lv.value for lv in RiskLevel if lv.rank < threshold.rank]
    fell = select(RiskLevelChange.id).where(
        RiskLevelChange.property_id == property_id,
        RiskLevelChange.at > last.closed_at,
        RiskLevelChange.to_level.in_(below),
    )
    return session.scalars(fell.limit(1)).first() is not None


def check_further_works(case: Case, step: CaseStep) -> None:
    """Further works and "no further works needed" exclude each other; a note explains a
    change of mind (works found necessary later are a new case)."""
    if step is CaseStep.NO_FURTHER_WORKS:
        for works in FURTHER_WORKS:
            if getattr(case, STEP_COLUMNS[works]) is not None:
                raise CaseConflict(
                    f"{STEP_LABELS[works].lower()} is already recorded: further works were "
                    "needed; add a note instead"
                )
    elif step in FURTHER_WORKS and case.no_further_works_at is not None:
        raise CaseConflict(
            "the investigation found no further works needed; add a note, or close this "
            "case and open a new one if works are needed after all"
        )
