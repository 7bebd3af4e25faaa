"""Data stewardship: tenant consent, retention purge, policy changes and key rotation.

Every change here is written to the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from fleet.access import audit
from fleet.access.principal import SYSTEM, Principal
from fleet.core.db import rowcount
from fleet.feed.catalogue import METRICS
from fleet.feed.policy import (
    PRECISIONS,
    WITHDRAWAL_ACTIONS,
    Policy,
    policies,
    rotate_key,
)
from fleet.feed.snapshot import sync
from fleet.models import Borough, Device, Placement, Property, Reading
from fleet.models.base import utcnow
from fleet.models.feed import FeedPolicy, FeedThing, PropertyConsent, PropertyGeo
from fleet.registry import places

log = logging.getLogger(__name__)
CONSENT_STATES = ("granted", "withdrawn")


class StewardshipError(ValueError):
    """A request that cannot be applied; the message says what to change."""


@dataclass(frozen=True)
class ConsentResult:
    property_id: int
    state: str
    deleted_readings: int


def _readings_of_property(session: Session, property_id: int) -> Any:
    """A condition matching every reading taken at the property, across device swaps."""
    periods = session.execute(
        select(FeedThing.device_pk, FeedThing.started_at, FeedThing.ended_at)
        .join(Placement, Placement.id == FeedThing.placement_id)
        .where(Placement.property_id == property_id)
    ).all()
    if not periods:
        return None
    return or_(
        *(
            and_(
                Reading.device_pk == device_pk,
                Reading.ts >= start,
                *([Reading.ts < end] if end is not None else []),
            )
            for device_pk, start, end in periods
        )
    )


def set_consent(
    session: Session,
    *,
    property_id: int,
    state: str,
    principal: Principal,
    note: str | None = None,
) -> ConsentResult:
    if state not in CONSENT_STATES:
        raise StewardshipError(f"consent state {state!r} is not one of {', '.join(CONSENT_STATES)}")
    prop = places.get_property(session, property_id=property_id, principal=principal)
    row = session.scalars(
        select(PropertyConsent).where(PropertyConsent.property_id == prop.id)
    ).one_or_none()
    if row is None:
        row = PropertyConsent(property_id=prop.id, changed_by=principal.actor)
        session.add(row)
    now = utcnow()
    regranted = state == "granted" and row.state == "withdrawn"
    if regranted:
        # Consent is not retroactive: what was taken before this grant (while withdrawn, or
        # kept under keep_internal) stays unpublished. The readings stay for the landlord's
        # damp and mould duty (the risk engine), which does not rest on publication consent.
        row.published_since = now
    row.state, row.note, row.changed_at, row.changed_by = state, note, now, principal.actor
    deleted = 0
    policy = policies(session).get(prop.borough_id) or Policy(borough_id=prop.borough_id)
    if state == "withdrawn" and policy.withdrawal_action == "delete":
        sync(session)  # so a device placed moments ago is covered too
        condition = _readings_of_property(session, prop.id)
        if condition is not None:
            deleted = rowcount(session.execute(delete(Reading).where(condition)))
    audit.record(
        session,
        principal,
        f"feed.consent_{state}",
        target_type="property",
        target_id=prop.id,
        borough_id=prop.borough_id,
        detail={
            "deleted_readings": deleted,
            "policy": policy.withdrawal_action,
            "note": note,
            **({"published_since": now.isoformat()} if regranted else {}),
        },
    )
    return ConsentResult(prop.id, state, deleted)


def purge_expired(
    session: Session, *, now: datetime | None = None, principal: Principal = SYSTEM
) -> dict[str, dict[str, int]]:
    """Delete readings older than their Datastream's retention; one audit entry per borough."""
    now = now or utcnow()
    by_borough = policies(session)
    report: dict[str, dict[str, int]] = {}
    for borough_id, code in _purge_boroughs(session):
        policy = by_borough.get(borough_id or -1) or Policy(borough_id=borough_id)
        counts = _purge_borough(session, borough_id, code, policy, now=now, principal=principal)
        if counts:
            report[code] = counts
    return report


def _purge_boroughs(session: Session) -> list[tuple[int | None, str]]:
    boroughs: list[tuple[int | None, str]] = [
        (b.id, b.code) for b in session.scalars(select(Borough).order_by(Borough.id))
    ]
    boroughs.append((None, "(no borough)"))
    return boroughs


def _purge_borough(
    session: Session,
    borough_id: int | None,
    code: str,
    policy: Policy,
    *,
    now: datetime,
    principal: Principal,
) -> dict[str, int]:
    """One borough's expired readings, per metric, and its audit entry."""
    devices = select(Device.id).where(
        Device.borough_id == borough_id if borough_id is not None else Device.borough_id.is_(None)
    )
    counts: dict[str, int] = {}
    for metric in METRICS:
        cutoff = now - timedelta(days=policy.retention_for(metric.name))
        result = session.execute(
            delete(Reading).where(
                Reading.device_pk.in_(devices),
                Reading.metric == metric.name,
                Reading.ts < cutoff,
            )
        )
        deleted = rowcount(result)
        if deleted:
            counts[metric.name] = deleted
    if counts:
        audit.record(
            session,
            principal,
            "feed.retention_purge",
            target_type="borough",
            target_id=code,
            borough_id=borough_id,
            detail={
                "deleted": counts,
                "retention_days": {m.name: policy.retention_for(m.name) for m in METRICS},
            },
        )
    return counts


def purge_committed(
    sessions: sessionmaker[Session],
    *,
    now: datetime | None = None,
    should_continue: Callable[[], bool] = lambda: True,
) -> dict[str, dict[str, int]]:
    """The background purge: one transaction per borough (its deletes with its audit entry).

    ``should_continue`` is asked before each borough, outside any transaction: once false
    (the process is stopping) the purge ends there; the boroughs purged stay purged and the
    next purge finds the rest still expired."""
    now = now or utcnow()
    with sessions() as session:
        boroughs = _purge_boroughs(session)
    report: dict[str, dict[str, int]] = {}
    for done, (borough_id, code) in enumerate(boroughs):
        if not should_continue():
            log.info(
                "retention purge stopped after %d of %d boroughs (deleted %s); "
                "the next purge deletes the rest",
                done,
                len(boroughs),
                report or "nothing",
            )
            break
        with sessions.begin() as session:
            policy = policies(session).get(borough_id or -1) or Policy(borough_id=borough_id)
            counts = _purge_borough(session, borough_id, code, policy, now=now, principal=SYSTEM)
        if counts:
            report[code] = counts
    if report:
        log.info("retention purge deleted readings: %s", report)
    return report


def set_policy(
    session: Session, *, borough: Borough, principal: Principal, changes: dict[str, Any]
) -> FeedPolicy:
    precision = changes.get("location_precision")
    if precision is not None and precision not in PRECISIONS:
        raise StewardshipError(f"location_precision must be one of {', '.join(PRECISIONS)}")
    action = changes.get("withdrawal_action")
    if action is not None and action not in WITHDRAWAL_ACTIONS:
        raise StewardshipError(f"withdrawal_action must be one of {', '.join(WITHDRAWAL_ACTIONS)}")
    unknown = set(changes.get("metric_retention_days") or {}) - {m.name for m in METRICS}
    if unknown:
        raise StewardshipError(f"unknown metric(s) in metric_retention_days: {sorted(unknown)}")
    row = session.scalars(select(FeedPolicy).where(FeedPolicy.borough_id == borough.id)).first()
    if row is None:
        row = FeedPolicy(borough_id=borough.id)
        session.add(row)
    before = {k: getattr(row, k, None) for k in changes}
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        principal,
        "feed.policy_changed",
        target_type="borough",
        target_id=borough.code,
        borough_id=borough.id,
        detail={"before": before, "after": changes},
    )
    return row


def set_location(
    session: Session, *, property_id: int, lat: float, lon: float, principal: Principal
) -> PropertyGeo:
    prop: Property = places.get_property(session, property_id=property_id, principal=principal)
    row = session.get(PropertyGeo, prop.id)
    if row is None:
        row = PropertyGeo(property_id=prop.id, lat=lat, lon=lon)
        session.add(row)
    row.lat, row.lon = lat, lon
    # The coordinates themselves stay out of the audit log: it is read by more people.
    audit.record(
        session,
        principal,
        "feed.location_set",
        target_type="property",
        target_id=prop.id,
        borough_id=prop.borough_id,
    )
    return row


def rotate_pseudonym_key(session: Session, *, principal: Principal) -> int:
    key = rotate_key(session)
    audit.record(
        session, principal, "feed.key_rotated", target_type="feed_key", target_id=key.version
    )
    return key.version
