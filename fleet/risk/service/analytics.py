"""Borough analytics: risk by housing type, age band and estate; trends; CSV export."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet.core.spreadsheet import text_cell
from fleet.models import Borough, Case, Estate, Property, PropertyRisk, RiskLevelChange

LEVELS = ("low", "elevated", "high", "severe")
NO_DATA = "no data"
COLUMNS = (*LEVELS, NO_DATA)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Distribution:
    """Properties per level for each value of one attribute (e.g. housing type)."""

    by: str
    rows: dict[str, dict[str, int]]

    def share_at_risk(self, key: str) -> float | None:
        """Share of properties with data that are high or severe."""
        counts = self.rows[key]
        known = sum(counts[lvl] for lvl in LEVELS)
        return None if not known else (counts["high"] + counts["severe"]) / known

    def to_dict(self) -> dict[str, object]:
        return {
            "by": self.by,
            "rows": [
                {"key": key, **counts, "share_at_risk": self.share_at_risk(key)}
                for key, counts in sorted(self.rows.items())
            ],
        }


def distributions(session: Session, borough: Borough) -> list[Distribution]:
    """Level counts by housing type, construction age band and estate."""
    stmt = (
        select(Property.housing_type, Property.construction_age_band, Estate.name, PropertyRisk)
        .outerjoin(Estate, Estate.id == Property.estate_id)
        .outerjoin(PropertyRisk, PropertyRisk.property_id == Property.id)
        .where(Property.borough_id == borough.id)
    )
    tables: dict[str, dict[str, Counter[str]]] = {
        "housing_type": defaultdict(Counter),
        "construction_age_band": defaultdict(Counter),
        "estate": defaultdict(Counter),
    }
    for housing, band, estate, risk in session.execute(stmt):
        level = risk.level if risk is not None else NO_DATA
        tables["housing_type"][housing or UNKNOWN][level] += 1
        tables["construction_age_band"][band or UNKNOWN][level] += 1
        tables["estate"][estate or UNKNOWN][level] += 1
    return [
        Distribution(by, {k: {c: counts[c] for c in COLUMNS} for k, counts in table.items()})
        for by, table in tables.items()
    ]


@dataclass(frozen=True)
class TrendPoint:
    at: datetime
    counts: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), **self.counts}


def trend(
    session: Session,
    borough: Borough,
    *,
    until: datetime,
    periods: int = 12,
    step: timedelta = timedelta(days=7),
) -> list[TrendPoint]:
    """Properties per level at the end of each period (levels are data time)."""
    changes = session.execute(
        select(RiskLevelChange.property_id, RiskLevelChange.at, RiskLevelChange.to_level)
        .where(RiskLevelChange.borough_id == borough.id, RiskLevelChange.at <= until)
        .order_by(RiskLevelChange.at, RiskLevelChange.id)
    ).all()
    history: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for pid, at, level in changes:
        history[pid].append((at, level))
    points = []
    for i in range(periods - 1, -1, -1):
        at = until - step * i
        counts = dict.fromkeys(LEVELS, 0)
        for items in history.values():
            current = None
            for when, level in items:
                if when > at:
                    break
                current = level
            if current in counts:
                counts[current] += 1
        points.append(TrendPoint(at, counts))
    return points


CSV_HEADER = (
    "reference",
    "estate",
    "housing_type",
    "construction_age_band",
    "level",
    "score",
    "mould_index",
    "trend",
    "level_since",
    "data_until",
    "open_case",
)


def stream_csv(
    sessions: sessionmaker[Session], borough_id: int, *, chunk: int = 500
) -> Iterator[str]:
    """The borough's properties with their risk as CSV text, a chunk of rows at a time.

    Opens its own session: a streamed response outlives the request's session. Addresses
    are personal data and are left out.
    """
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    with sessions() as session:
        open_cases = dict(
            session.execute(
                select(Case.property_id, Case.id).where(
                    Case.borough_id == borough_id, Case.status == "open"
                )
            ).all()
        )
        stmt = (
            select(Property, Estate.name, PropertyRisk)
            .outerjoin(Estate, Estate.id == Property.estate_id)
            .outerjoin(PropertyRisk, PropertyRisk.property_id == Property.id)
            .where(Property.borough_id == borough_id)
            .order_by(Property.reference)
            .execution_options(yield_per=chunk)
        )
        for n, (prop, estate, risk) in enumerate(session.execute(stmt).all(), start=1):
            writer.writerow(
                (
                    text_cell(prop.reference),
                    text_cell(estate or ""),
                    prop.housing_type or "",
                    prop.construction_age_band or "",
                    risk.level if risk else NO_DATA,
                    risk.score if risk else "",
                    f"{risk.mould_index:.4f}" if risk else "",
                    risk.trend if risk else "",
                    risk.level_since.isoformat() if risk and risk.level_since else "",
                    risk.data_until.isoformat() if risk and risk.data_until else "",
                    open_cases.get(prop.id, ""),
                )
            )
            if n % chunk == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue()
