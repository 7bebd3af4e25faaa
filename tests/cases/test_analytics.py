"""Borough analytics, the streamed CSV export, and scoping of lists and pages."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.core.context import FleetContext
from fleet.models import Borough, Device, Placement, Property
from fleet.models.risk import Case, RiskHour
from fleet.registry import places
from fleet.registry.devices import register_device
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, FIXED, samples, store
from tests.fleet.conftest import PASSWORD, World

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _estate_of_three(ctx: FleetContext) -> None:
    """Hackney: the World's property (damp) plus a dry house and a property without data."""
    with ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        estate = places.create_estate(s, borough=hackney, name="Kings Crescent")
        first = s.scalars(select(Property).where(Property.reference == "HACKNEY-0001")).one()
        first.estate_id, first.housing_type, first.construction_age_band = (
            estate.id,
            "flat",
            "1945-1964",
        )
        dry = places.create_property(
            s,
            borough=hackney,
            reference="HACKNEY-0002",
            housing_type="house",
            construction_age_band="2000-2010",
            address="2 Private Road",
        )
        pl = places.create_placement(s, prop=dry, room="bedroom")
        register_device(s, device_id="cs-hackney-0002", borough_id=hackney.id).placement_id = pl.id
        places.create_property(s, borough=hackney, reference="HACKNEY-0003", housing_type="flat")
    store(ctx, "cs-hackney-0001", list(samples(DAMP, T0, 24 * 9)))
    store(ctx, "cs-hackney-0002", list(samples(FIXED, T0, 24 * 9)))
    sweep(ctx.sessions, RiskSettings(), now=T0 + timedelta(days=9))


def test_distribution_trend_and_list_order(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    _estate_of_three(fleet_ctx)
    h = world.headers("staff_hackney")
    rows = client.get("/api/v1/boroughs/hackney/risk", headers=h).json()
    assert [r["reference"] for r in rows] == ["HACKNEY-0001", "HACKNEY-0002", "HACKNEY-0003"]
    assert rows[0]["level"] in ("high", "severe") and rows[0]["open_case_id"] is not None
    assert rows[1]["level"] == "low" and rows[2]["level"] == "no data"

    body = client.get("/api/v1/boroughs/hackney/risk/analytics?weeks=4", headers=h).json()
    by = {d["by"]: {r["key"]: r for r in d["rows"]} for d in body["distributions"]}
    flats = by["housing_type"]["flat"]
    assert flats["no data"] == 1 and flats["high"] + flats["severe"] == 1
    assert flats["share_at_risk"] == 1.0
    assert (
        by["housing_type"]["house"]["low"] == 1
        and by["housing_type"]["house"]["share_at_risk"] == 0.0
    )
    assert by["construction_age_band"]["1945-1964"]["share_at_risk"] == 1.0
    assert set(by["estate"]) == {"Kings Crescent", "unknown"}
    # Levels are dated by data time (March 2026): the latest weekly point counts both.
    last = body["trend"][-1]
    assert last["low"] == 1 and last["high"] + last["severe"] == 1


def test_csv_export_streams_every_property_without_addresses(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    _estate_of_three(fleet_ctx)
    with client.stream(
        "GET", "/api/v1/boroughs/hackney/risk/export.csv", headers=world.headers("staff_hackney")
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "risk-hackney.csv" in r.headers["content-disposition"]
        text = "".join(r.iter_text())
    table = list(csv.DictReader(io.StringIO(text)))
    assert [row["reference"] for row in table] == ["HACKNEY-0001", "HACKNEY-0002", "HACKNEY-0003"]
    assert table[0]["estate"] == "Kings Crescent" and table[0]["open_case"]
    assert table[2]["level"] == "no data"
    assert "Private Road" not in text and "Secret Street" not in text
    camden = client.get(
        "/api/v1/boroughs/hackney/risk/export.csv", headers=world.headers("staff_camden")
    )
    assert camden.status_code == 404


def test_other_boroughs_cases_and_pages_are_invisible(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    _estate_of_three(fleet_ctx)
    camden = world.headers("staff_camden")
    assert client.get("/api/v1/cases", headers=camden).json() == []
    assert client.get("/api/v1/cases?borough=hackney", headers=camden).status_code == 404
    case_id = client.get("/api/v1/cases", headers=world.headers("staff_hackney")).json()[0]["id"]
    with fleet_ctx.sessions() as s:
        prop_id = s.scalars(select(Property.id).where(Property.reference == "HACKNEY-0001")).one()
    r = client.post("/login", data={"email": "staff_camden@example.org", "password": PASSWORD})
    assert r.status_code in (200, 303)
    for path in (f"/cases/{case_id}", f"/risk/properties/{prop_id}", f"/cases/{case_id}/evidence"):
        assert client.get(path).status_code == 404, path
    assert "HACKNEY" not in client.get("/risk").text
    assert "HACKNEY" not in client.get("/cases?show=all").text


def test_evidence_without_data_says_so_instead_of_empty_charts(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    _estate_of_three(fleet_ctx)
    with fleet_ctx.sessions() as s:
        ids = dict(s.execute(select(Property.reference, Property.id)).tuples().all())
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    for path in ("/risk/properties/{}", "/risk/properties/{}/evidence"):
        empty = client.get(path.format(ids["HACKNEY-0003"])).text
        assert "<svg" not in empty and "No processed hours in this period" in empty, path
        damp = client.get(path.format(ids["HACKNEY-0001"])).text
        assert damp.count("<svg") == 4 and "No processed hours" not in damp, path


def test_a_property_with_cases_or_risk_history_cannot_be_deleted(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    """Its cases and hourly risk are the evidence of what the landlord knew and did."""
    _estate_of_three(fleet_ctx)
    with fleet_ctx.sessions.begin() as s:
        ids = dict(s.execute(select(Property.reference, Property.id)).tuples().all())
        for device in s.scalars(select(Device)):
            device.placement_id = None  # taken out: only the history is left
        placement = s.scalars(
            select(Placement.id).where(Placement.property_id == ids["HACKNEY-0002"])
        ).one()
    staff = world.headers("staff_hackney")
    hours = _count(fleet_ctx, RiskHour)
    assert hours > 0 and _count(fleet_ctx, Case) == 1
    for reference, said in (
        ("HACKNEY-0001", "has damp and mould cases, kept as evidence"),
        ("HACKNEY-0002", "has risk history from its sensors, kept as evidence"),
    ):
        refused = client.delete(f"/api/v1/properties/{ids[reference]}", headers=staff)
        assert refused.status_code == 409 and said in refused.text, refused.text
    refused = client.delete(f"/api/v1/placements/{placement}", headers=staff)
    assert refused.status_code == 409 and "bedroom placement has risk history" in refused.text
    no_data = client.delete(f"/api/v1/properties/{ids['HACKNEY-0003']}", headers=staff)
    assert no_data.status_code == 204
    assert (_count(fleet_ctx, Case), _count(fleet_ctx, RiskHour)) == (1, hours)


def _count(ctx: FleetContext, model: type) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)
