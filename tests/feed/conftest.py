"""Feed fixtures: a migrated fleet on each backend with known homes, secrets and readings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.feed.ratelimit import Limit, RateLimiter
from fleet.models import Device, Placement, Property, Reading
from fleet.models.feed import PropertyGeo
from tests.fleet.conftest import World, fleet_ctx  # noqa: F401

T0 = datetime(2025, 3, 1, tzinfo=UTC)
POINTS = 12
STEP = timedelta(minutes=15)
# TestClient's address: links in MQTT messages match those of REST answers with it.
SERVICE_ROOT = "http://testserver/sta/v1.1"
METRICS = (("temperature", "Cel"), ("humidity", "%RH"), ("battery", "%EL"))
# Known secrets: none of these may ever appear in a public answer.
SECRETS = {
    "hackney": {
        "reference": "HACKNEY-0001",
        "address": "1 Secret Street",
        "postcode": "E8 3QT",
        "lat": 51.543219,
        "lon": -0.056781,
        "device_id": "cs-hackney-0001",
    },
    "camden": {
        "reference": "CAMDEN-0001",
        "address": "1 Secret Street",
        "postcode": "NW1 7XZ",
        "lat": 51.536612,
        "lon": -0.142217,
        "device_id": "cs-camden-0001",
    },
}


def value(metric: str, i: int, borough: str) -> float:
    offset = 0.0 if borough == "hackney" else 100.0
    if metric == "temperature":
        return offset + 18.0 + 0.5 * i
    if metric == "humidity":
        return offset + 60.0 + i
    return 90.0 - i


class FeedWorld(World):
    """World plus postcodes, coordinates and 12 quarter-hourly readings of 3 metrics per home.

    Things: 1 = hackney, 2 = camden. Datastreams: 1-3 hackney (temperature, humidity,
    battery), 4-6 camden. Battery streams are not public.
    """

    def __init__(self, ctx: FleetContext) -> None:
        super().__init__(ctx)
        with ctx.sessions.begin() as s:
            for code in ("hackney", "camden"):
                secret = SECRETS[code]
                prop = s.scalars(
                    select(Property).where(Property.reference == secret["reference"])
                ).one()
                prop.postcode = str(secret["postcode"])
                prop.housing_type = "flat"
                s.add(PropertyGeo(property_id=prop.id, lat=secret["lat"], lon=secret["lon"]))
                device = s.scalars(
                    select(Device).where(Device.device_id == secret["device_id"])
                ).one()
                for i in range(POINTS):
                    for metric, unit in METRICS:
                        s.add(
                            Reading(
                                device_pk=device.id,
                                metric=metric,
                                ts=T0 + i * STEP,
                                value=value(metric, i, code),
                                unit=unit,
                            )
                        )
                device.latest = {m: {"v": 0.0, "u": u, "t": 0.0} for m, u in METRICS}
        self.property_ids = self._property_ids()

    def _property_ids(self) -> dict[str, int]:
        with self.ctx.sessions() as s:
            rows = s.execute(
                select(Property.reference, Property.id).join(
                    Placement, Placement.property_id == Property.id
                )
            ).all()
        return {ref.split("-")[0].lower(): pid for ref, pid in rows}


@pytest.fixture
def feed_world(fleet_ctx: FleetContext) -> FeedWorld:  # noqa: F811
    return FeedWorld(fleet_ctx)


@pytest.fixture
def client(feed_world: FeedWorld) -> Iterator[TestClient]:
    app = create_app(feed_world.ctx)
    # Generous limits: these tests are about answers, the limiter has its own tests.
    app.state.feed_limiter = RateLimiter(
        public=Limit(1000.0, 100_000), token=Limit(1000.0, 100_000)
    )
    with TestClient(app) as test_client:
        yield test_client
