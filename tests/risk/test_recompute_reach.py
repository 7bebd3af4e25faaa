"""A recompute answers with the reach the engine will really do, never a longer one.

The engine never recomputes further back than ``FLEET_RISK_RECOMPUTE_MAX_DAYS``; a request
for more is refused with the limit named, so no caller believes older hours were redone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.models import PlacementRisk
from fleet.risk.hourly import HOUR
from fleet.risk.service.settings import get_risk_settings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, samples, store
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401  (fixtures)

T0 = datetime(2026, 2, 2, tzinfo=UTC)
DAYS_STORED = 6


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


@pytest.fixture
def swept(fleet_ctx: FleetContext, world: World) -> tuple[int, int]:  # noqa: F811
    """(property id, placement id) of a bathroom with DAYS_STORED days processed."""
    placement = store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0, 24 * DAYS_STORED)))
    sweep(fleet_ctx.sessions, get_risk_settings(), now=T0 + timedelta(days=DAYS_STORED))
    with fleet_ctx.sessions() as s:
        row = s.scalars(select(PlacementRisk).where(PlacementRisk.placement_id == placement)).one()
        assert row.last_hour is not None and row.recompute_from is None
        return row.property_id, placement


def _flag(ctx: FleetContext, placement: int) -> tuple[datetime | None, datetime | None]:
    with ctx.sessions() as s:
        row = s.scalars(select(PlacementRisk).where(PlacementRisk.placement_id == placement)).one()
        return row.recompute_from, row.last_hour


def test_more_days_than_the_engine_reaches_is_refused_naming_the_limit(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    client: TestClient,
    swept: tuple[int, int],
) -> None:
    prop, placement = swept
    url = f"/api/v1/properties/{prop}/risk/recompute"
    refused = client.post(f"{url}?days=60", headers=world.headers("admin"))
    assert refused.status_code == 422, refused.text
    assert "at most 31 days" in refused.json()["detail"]
    assert "FLEET_RISK_RECOMPUTE_MAX_DAYS" in refused.json()["detail"]
    assert _flag(fleet_ctx, placement)[0] is None  # nothing was flagged

    # Without days, the answer is the configured reach, not a fixed number.
    default = client.post(url, headers=world.headers("admin"))
    assert default.status_code == 202 and default.json()["days"] == 31
    at_limit = client.post(f"{url}?days=31", headers=world.headers("admin"))
    assert at_limit.status_code == 202 and at_limit.json()["days"] == 31


def test_the_answered_reach_is_the_reach_the_sweep_recomputes(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    client: TestClient,
    swept: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_RISK_RECOMPUTE_MAX_DAYS", "3")
    prop, placement = swept
    url = f"/api/v1/properties/{prop}/risk/recompute"
    refused = client.post(f"{url}?days=4", headers=world.headers("admin"))
    assert refused.status_code == 422 and "at most 3 days" in refused.json()["detail"]

    answered = client.post(url, headers=world.headers("admin"))
    assert answered.status_code == 202, answered.text
    days = answered.json()["days"]
    assert days == 3
    flagged, last_hour = _flag(fleet_ctx, placement)
    assert last_hour is not None and flagged == last_hour + HOUR - timedelta(days=days)

    # The worker, under the same settings, recomputes exactly the days it answered.
    done = sweep(fleet_ctx.sessions, get_risk_settings(), now=T0 + timedelta(days=DAYS_STORED))
    assert done.recomputed == 1 and done.hours == days * 24


def test_a_profile_change_says_how_far_back_it_recomputes(
    world: World,  # noqa: F811
    client: TestClient,
    swept: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Older hours keep the profile they were computed with: the answer says where that is."""
    monkeypatch.setenv("FLEET_RISK_RECOMPUTE_MAX_DAYS", "5")
    prop, _ = swept
    answer = client.put(
        f"/api/v1/properties/{prop}/risk/profile",
        json={"f_rsi": 0.5},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["placements_to_recompute"] == 1
    assert answer.json()["recompute_days"] == 5
