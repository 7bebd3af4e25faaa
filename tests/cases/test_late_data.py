"""Late readings trigger a bounded recompute that agrees with recomputing everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.ingest.senml import Sample
from fleet.models import PlacementRisk, Property, PropertyRisk, RiskHour
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from fleet.risk.service.update import note_samples
from tests.cases.rooms import DAMP, FIXED, samples, store
from tests.fleet.conftest import PASSWORD, World

T0 = datetime(2026, 2, 2, tzinfo=UTC)


def _hours(ctx: FleetContext) -> list[tuple[datetime, float, float]]:
    with ctx.sessions() as s:
        rows = s.scalars(select(RiskHour).order_by(RiskHour.hour)).all()
        return [(h.hour, h.mould_index, h.surface_rh) for h in rows]


def test_late_reading_recomputes_from_its_hour_only(fleet_ctx: FleetContext, world: World) -> None:
    settings = RiskSettings()
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0, 24 * 10)))
    first = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=10))
    assert first.recomputed == 0 and first.hours == 24 * 10 - 1

    # Nothing new: the next pass does no work.
    idle = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=10))
    assert idle.hours == 0 and idle.recomputed == 0

    # A second device's backlog: drier readings for a day already processed, then new data.
    late_start = T0 + timedelta(days=9, hours=2)
    store(fleet_ctx, "cs-hackney-0001", list(samples(FIXED, late_start + timedelta(minutes=7), 6)))
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0 + timedelta(days=10), 24)))
    second = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=11))
    assert second.recomputed == 1
    # From the late hour to the newest complete hour, not the whole history.
    assert second.hours == 24 * 2 - 2 - 1
    incremental = _hours(fleet_ctx)
    with fleet_ctx.sessions() as s:
        level = s.scalars(select(PropertyRisk)).one().level

    # Recompute everything from scratch: the same hours and the same index.
    with fleet_ctx.sessions.begin() as s:
        s.execute(delete(RiskHour))
        s.execute(delete(PlacementRisk))
    sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=11))
    full = _hours(fleet_ctx)
    assert [h for h, _, _ in incremental] == [h for h, _, _ in full]
    assert incremental == full
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(PropertyRisk)).one().level == level


def test_recompute_reach_is_bounded(fleet_ctx: FleetContext, world: World) -> None:
    settings = RiskSettings(recompute_max_days=2)
    placement = store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0, 24 * 10)))
    sweep(fleet_ctx.sessions, settings, now=T0)
    old = T0 + timedelta(days=1, minutes=5)
    store(fleet_ctx, "cs-hackney-0001", [(old, 20.0, 50.0, 15.0)])
    with fleet_ctx.sessions.begin() as s:
        # The ingest-side hook flags readings older than the automatic look-back.
        note_samples(
            s, placement_id=placement, samples=[Sample("humidity", old.timestamp(), 50.0, "%RH")]
        )
        assert s.get(PlacementRisk, placement).recompute_from == old
    result = sweep(fleet_ctx.sessions, settings, now=T0)
    assert result.recomputed == 1
    assert result.hours <= 2 * 24


def _shown_unassessed(ctx: FleetContext, world: World) -> None:
    """The API and the property page say so for the room too, not only for the home."""
    with ctx.sessions() as s:
        prop = s.scalars(select(Property).where(Property.reference == "HACKNEY-0001")).one()
    with TestClient(create_app(ctx)) as client:
        risk = client.get(
            f"/api/v1/properties/{prop.id}/risk", headers=world.headers("staff_hackney")
        ).json()
        assert risk["risk"] is None
        assert [(p["level"], p["mould_index"]) for p in risk["placements"]] == [(None, None)]
        client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
        page = client.get(f"/risk/properties/{prop.id}").text
    assert "level-low" not in page and "Not assessed yet" in page and "No rule breached" not in page


def test_no_level_before_the_first_complete_hour(fleet_ctx: FleetContext, world: World) -> None:
    """Readings of the current hour only: the home has no level yet ("no data"), rather than
    "low" on no evidence; the first complete hour gives it one."""
    settings = RiskSettings()
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0 + timedelta(minutes=20), 0.5)))
    sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(minutes=50))
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(PropertyRisk)).all() == []
        assert s.scalars(select(PlacementRisk.last_hour)).all() in ([], [None])
    _shown_unassessed(fleet_ctx, world)
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0 + timedelta(hours=1), 1)))
    result = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(hours=2, minutes=5))
    assert result.hours == 1
    with fleet_ctx.sessions() as s:
        risk = s.scalars(select(PropertyRisk)).one()
        assert risk.data_until == T0 + timedelta(hours=1)
