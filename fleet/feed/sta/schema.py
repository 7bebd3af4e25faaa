"""The SensorThings v1.1 data model as served here: entity sets, properties and navigation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from fleet.feed.odata import ODataError, check_filter
from fleet.feed.odata import nodes as n


@dataclass(frozen=True)
class EntitySet:
    name: str  # plural, as in URLs: "Things"
    fields: tuple[str, ...]  # properties in response order (``id`` is ``@iot.id``)
    one: dict[str, str] = field(default_factory=dict)  # navigation name -> entity set
    many: dict[str, str] = field(default_factory=dict)
    # JSON-object properties whose sub-paths may be filtered on (free-form, missing = null).
    open: frozenset[str] = frozenset()

    @property
    def navigation(self) -> dict[str, str]:
        return {**self.one, **self.many}


SETS: dict[str, EntitySet] = {
    s.name: s
    for s in (
        EntitySet(
            "Things",
            ("id", "name", "description", "properties"),
            many={
                "Locations": "Locations",
                "HistoricalLocations": "HistoricalLocations",
                "Datastreams": "Datastreams",
            },
            open=frozenset({"properties"}),
        ),
        EntitySet(
            "Locations",
            ("id", "name", "description", "encodingType", "location", "properties"),
            many={"Things": "Things", "HistoricalLocations": "HistoricalLocations"},
            open=frozenset({"location", "properties"}),
        ),
        EntitySet(
            "HistoricalLocations",
            ("id", "time"),
            one={"Thing": "Things"},
            many={"Locations": "Locations"},
        ),
        EntitySet(
            "Datastreams",
            (
                "id",
                "name",
                "description",
                "unitOfMeasurement",
                "observationType",
                "properties",
            ),
            one={"Thing": "Things", "Sensor": "Sensors", "ObservedProperty": "ObservedProperties"},
            many={"Observations": "Observations"},
            open=frozenset({"unitOfMeasurement", "properties"}),
        ),
        EntitySet(
            "Sensors",
            ("id", "name", "description", "encodingType", "metadata", "properties"),
            many={"Datastreams": "Datastreams"},
            open=frozenset({"properties"}),
        ),
        EntitySet(
            "ObservedProperties",
            ("id", "name", "definition", "description", "properties"),
            many={"Datastreams": "Datastreams"},
            open=frozenset({"properties"}),
        ),
        EntitySet(
            "Observations",
            ("id", "phenomenonTime", "resultTime", "result"),
            one={"Datastream": "Datastreams", "FeatureOfInterest": "FeaturesOfInterest"},
        ),
        EntitySet(
            "FeaturesOfInterest",
            ("id", "name", "description", "encodingType", "feature", "properties"),
            many={"Observations": "Observations"},
            open=frozenset({"feature", "properties"}),
        ),
    )
}


def check_path(entity_set: EntitySet, path: tuple[str, ...], *, position: int | None) -> None:
    """Raise ODataError unless ``path`` names a property of the set (or of a navigation)."""
    current = entity_set
    for i, segment in enumerate(path):
        if segment in current.fields:
            if i == len(path) - 1 or segment in current.open:
                return
            raise ODataError(f"{current.name} property {segment!r} has no sub-properties", position)
        if segment in current.one and i < len(path) - 1:
            current = SETS[current.one[segment]]
            continue
        if segment in current.many:
            raise ODataError(
                f"{segment!r} is a collection; filter or order on it from {segment} instead",
                position,
            )
        known = ", ".join([*current.fields, *current.one])
        raise ODataError(
            f"unknown property {segment!r} of {current.name}; expected one of {known}", position
        )


def paths_in(expr: n.Expr) -> list[n.Path]:
    found: list[n.Path] = []
    _walk(expr, lambda node: found.append(node) if isinstance(node, n.Path) else None)
    return found


def _walk(node: object, visit: Callable[[object], None]) -> None:
    visit(node)
    if not dataclasses.is_dataclass(node):
        return
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, tuple):
            for item in value:
                _walk(item, visit)
        elif dataclasses.is_dataclass(value):
            _walk(value, visit)


def substitute(expr: n.Expr, replace: Callable[[n.Path], n.Expr | None]) -> n.Expr:
    """A copy of ``expr`` with paths swapped for what ``replace`` returns (None: keep)."""
    if isinstance(expr, n.Path):
        return replace(expr) or expr
    if not dataclasses.is_dataclass(expr):
        return expr
    changes: dict[str, object] = {}
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = tuple(substitute(v, replace) for v in value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = substitute(value, replace)  # type: ignore[arg-type]
    rebuilt: n.Expr = dataclasses.replace(expr, **changes)  # type: ignore[arg-type]
    return rebuilt


def check_filter_paths(entity_set: EntitySet, expr: n.Expr) -> None:
    for path in paths_in(expr):
        check_path(entity_set, path.segments, position=path.pos)


_SAMPLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_TIME_FIELDS = frozenset({"time", "phenomenonTime", "resultTime"})


def typed_stand_in(entity_set: EntitySet, path: n.Path) -> n.Expr | None:
    """A literal of the property's type (None when free-form), so the type checker refuses
    e.g. ``name eq 1`` on every entity set alike."""
    current = entity_set
    for segment in path.segments[:-1]:
        if segment not in current.one:
            return None  # inside a free-form object such as properties
        current = SETS[current.one[segment]]
    last = path.segments[-1]
    if last not in current.fields or last in current.open:
        return None
    if last == "id":
        return n.IntLit(0, pos=path.pos)
    if last in _TIME_FIELDS:
        return n.DateTimeLit(_SAMPLE_TIME, pos=path.pos)
    if last == "result":
        return n.DecimalLit(Decimal(0), pos=path.pos)
    return n.StringLit("", pos=path.pos)


def check_filter_types(entity_set: EntitySet, expr: n.Expr) -> None:
    check_filter_paths(entity_set, expr)
    check_filter(substitute(expr, lambda path: typed_stand_in(entity_set, path)))
