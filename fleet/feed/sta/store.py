"""In-memory SensorThings entities built from a feed snapshot for one audience.

Everything except Observations is small (a few entities per device), so these sets are built
per request from the snapshot and filtered with the Python evaluator; Observations live in
the database and are queried with compiled SQL (fleet.feed.sta.observations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from fleet.feed.catalogue import (
    METRICS,
    OM_MEASUREMENT,
    SENSORS,
    STANDARD_NAME,
    STANDARD_VERSION,
    unit_of_measurement,
)
from fleet.feed.policy import area_label, coarse_feature, exact_feature
from fleet.feed.snapshot import Audience, DatastreamRecord, Snapshot, ThingRecord

GEOJSON = "application/geo+json"
STANDARD = f"{STANDARD_NAME}/{STANDARD_VERSION}"


@dataclass
class Entity:
    """Property values (``id`` included) and single-valued navigation targets by id."""

    set: str
    id: int
    data: dict[str, Any]
    one: dict[str, int] = field(default_factory=dict)


class Store:
    def __init__(self, snapshot: Snapshot, audience: Audience) -> None:
        self.audience = audience
        self.things = {i: t for i, t in snapshot.things.items() if audience.sees_thing(t)}
        self.datastreams = {
            i: d for i, d in snapshot.datastreams.items() if audience.sees_datastream(d)
        }

    # -- per-thing facts ------------------------------------------------------------------
    def full(self, thing: ThingRecord) -> bool:
        return self.audience.full(thing.borough_id)

    def feature(self, thing: ThingRecord) -> dict[str, Any]:
        if self.full(thing):
            return exact_feature(
                borough_name=thing.borough_name, postcode=thing.postcode, geo=thing.geo
            )
        return coarse_feature(
            precision=thing.policy.location_precision,
            borough_name=thing.borough_name,
            postcode=thing.postcode,
            geo=thing.geo,
        )

    def area(self, thing: ThingRecord) -> str:
        coarse = coarse_feature(
            precision=thing.policy.location_precision,
            borough_name=thing.borough_name,
            postcode=thing.postcode,
            geo=thing.geo,
        )
        return area_label(coarse)

    # -- entity sets ------------------------------------------------------------------------
    @cached_property
    def sets(self) -> dict[str, dict[int, Entity]]:
        things = {i: self._thing(t) for i, t in self.things.items()}
        return {
            "Things": things,
            "Locations": {i: self._location(t) for i, t in self.things.items()},
            "HistoricalLocations": {i: self._historical(t) for i, t in self.things.items()},
            "FeaturesOfInterest": {i: self._feature_of_interest(t) for i, t in self.things.items()},
            "Datastreams": {i: self._datastream(d) for i, d in self.datastreams.items()},
            "Sensors": {s.id: self._sensor(s.id) for s in SENSORS},
            "ObservedProperties": {m.id: self._observed_property(m.id) for m in METRICS},
        }

    def all(self, set_name: str) -> list[Entity]:
        return list(self.sets[set_name].values())

    def get(self, set_name: str, entity_id: int) -> Entity | None:
        return self.sets[set_name].get(entity_id)

    def related(self, set_name: str, entity_id: int, nav: str) -> list[Entity]:
        """Members of a to-many navigation (Observations excepted: they live in SQL)."""
        if set_name == "Things" and nav in ("Locations", "HistoricalLocations"):
            target = self.get(nav, entity_id)
            return [target] if target else []
        if set_name == "Locations" and nav in ("Things", "HistoricalLocations"):
            target = self.get(nav, entity_id)
            return [target] if target else []
        if set_name == "HistoricalLocations" and nav == "Locations":
            target = self.get("Locations", entity_id)
            return [target] if target else []
        if nav == "Datastreams":
            key = {"Things": "Thing", "Sensors": "Sensor", "ObservedProperties": "ObservedProperty"}
            return [e for e in self.all("Datastreams") if e.one[key[set_name]] == entity_id]
        raise KeyError(f"{set_name}/{nav}")

    def datastream_ids_for(self, set_name: str, entity_id: int) -> list[int]:
        """Datastreams whose Observations a parent entity leads to."""
        if set_name == "Datastreams":
            return [entity_id] if entity_id in self.datastreams else []
        if set_name == "FeaturesOfInterest":
            return [d.id for d in self.datastreams.values() if d.thing.id == entity_id]
        raise KeyError(set_name)

    # -- builders ---------------------------------------------------------------------------
    def _thing(self, t: ThingRecord) -> Entity:
        area = self.area(t)
        props: dict[str, Any] = {
            "borough": t.borough_name,
            "area": area,
            "room": t.room,
            "property": t.pseudonym,
            "housingType": t.housing_type,
            "constructionAgeBand": t.construction_age_band,
            "deployment": "active" if t.ended_at is None else "ended",
            "level": "public",
            "standard": STANDARD,
        }
        if self.full(t):
            props.update(
                level="full",
                propertyReference=t.reference,
                roomDetail=t.room_detail,
                postcode=t.postcode,
                deviceId=t.device_id,
                board=t.board,
            )
        return Entity(
            "Things",
            t.id,
            {
                "id": t.id,
                "name": f"Damp and mould sensor in a {t.room}, {area}",
                "description": "Indoor environment sensor in a social home, placed to find "
                "damp and mould early.",
                "properties": props,
            },
        )

    def _location(self, t: ThingRecord) -> Entity:
        feature = self.feature(t)
        precision = feature["properties"]["precision"]
        return Entity(
            "Locations",
            t.id,
            {
                "id": t.id,
                "name": area_label(feature) or t.borough_name,
                "description": f"Where the home is, at {precision.replace('_', ' ')} precision.",
                "encodingType": GEOJSON,
                "location": feature,
                "properties": {"precision": precision},
            },
        )

    def _historical(self, t: ThingRecord) -> Entity:
        return Entity(
            "HistoricalLocations", t.id, {"id": t.id, "time": t.placed_at}, {"Thing": t.id}
        )

    def _feature_of_interest(self, t: ThingRecord) -> Entity:
        feature = self.feature(t)
        return Entity(
            "FeaturesOfInterest",
            t.id,
            {
                "id": t.id,
                "name": f"Indoor air of a {t.room}, {self.area(t)}",
                "description": "The air of the room where the sensor is placed.",
                "encodingType": GEOJSON,
                "feature": feature,
                "properties": {"room": t.room},
            },
        )

    def _datastream(self, d: DatastreamRecord) -> Entity:
        m, t = d.metric, d.thing
        policy = t.policy
        return Entity(
            "Datastreams",
            d.id,
            {
                "id": d.id,
                "name": f"{m.label} in a {t.room}, {self.area(t)}",
                "description": m.description,
                "unitOfMeasurement": unit_of_measurement(m),
                "observationType": OM_MEASUREMENT,
                "properties": {
                    "metric": m.name,
                    "senmlUnit": m.senml_unit,
                    "purpose": m.purpose,
                    "retentionDays": policy.retention_for(m.name),
                    "decidedBy": policy.decided_by or f"{t.borough_name} (data controller)",
                    "contact": policy.contact,
                    "standard": STANDARD,
                },
            },
            {"Thing": t.id, "Sensor": d.sensor_id, "ObservedProperty": m.id},
        )

    def _sensor(self, sensor_id: int) -> Entity:
        s = next(x for x in SENSORS if x.id == sensor_id)
        return Entity(
            "Sensors",
            s.id,
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "encodingType": "text/html",
                "metadata": s.datasheet,
                "properties": {"metrics": list(s.metrics)},
            },
        )

    def _observed_property(self, metric_id: int) -> Entity:
        m = next(x for x in METRICS if x.id == metric_id)
        return Entity(
            "ObservedProperties",
            m.id,
            {
                "id": m.id,
                "name": m.name,
                "definition": m.definition,
                "description": m.description,
                "properties": {
                    "label": m.label,
                    "senmlName": m.name,
                    "senmlUnit": m.senml_unit,
                    "purpose": m.purpose,
                    "public": m.public,
                },
            },
        )


def iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
