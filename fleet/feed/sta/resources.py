"""Resource paths such as ``Things(1)/Datastreams`` or ``Observations(7)/result/$value``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fleet.feed.odata import ODataError, QueryOptions
from fleet.feed.sta.engine import Engine, NotFound, Parent, jsonable
from fleet.feed.sta.schema import SETS
from fleet.feed.sta.store import Entity

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d{1,18})\))?$")


@dataclass(frozen=True)
class RawValue:
    """A ``$value`` answer: a primitive as plain text, an object or array as JSON."""

    text: str
    media_type: str = "text/plain"


def _segments(path: str) -> list[tuple[str, int | None]]:
    parts: list[tuple[str, int | None]] = []
    for raw in path.strip("/").split("/"):
        if raw == "$value":
            parts.append((raw, None))
            continue
        match = _SEGMENT.match(raw)
        if match is None:
            raise NotFound(
                f"{raw!r} is not a resource path segment; use e.g. Things, Things(1) "
                "or Things(1)/Datastreams"
            )
        parts.append((match.group(1), None if match.group(2) is None else int(match.group(2))))
    return parts


def answer(
    engine: Engine,
    path: str,
    options: QueryOptions,
    *,
    url: str,
    query: list[tuple[str, str]],
) -> dict[str, Any] | RawValue:
    segments = _segments(path)
    name, entity_id = segments[0]
    if name not in SETS:
        raise NotFound(f"no entity set {name!r}; expected one of {', '.join(SETS)}")
    entity: Entity | None = None
    collection: tuple[str, Parent | None] | None = None
    if entity_id is None:
        collection = (name, None)
    else:
        entity = engine.get(name, entity_id)
    rest = segments[1:]
    for index, (segment, segment_id) in enumerate(rest):
        if entity is None:
            raise NotFound(f"{segment!r} cannot follow a collection; pick one entity by id first")
        entity_set = SETS[entity.set]
        if segment in entity_set.one:
            target = engine.one(entity, segment)
            if target is None or (segment_id is not None and target.id != segment_id):
                raise NotFound(f"{entity.set}({entity.id}) has no {segment}")
            entity = target
        elif segment in entity_set.many:
            parent = Parent(entity.set, entity.id, segment)
            if segment_id is None:
                collection, entity = (entity_set.many[segment], parent), None
            else:
                entity = engine.member(parent, segment_id)
        elif segment in entity_set.fields and segment_id is None:
            return _property(entity, segment, rest[index + 1 :])
        else:
            known = ", ".join([*entity_set.fields, *entity_set.navigation])
            raise NotFound(f"{entity.set} has no {segment!r}; expected one of {known}")
    if collection is not None:
        set_name, within = collection
        engine.check(set_name, options)
        return engine.collection(set_name, options, within, url=url, query=query)
    if entity is None:  # pragma: no cover - every branch above leaves one of the two set
        raise NotFound(path)
    if options.filter is not None or options.orderby or options.top is not None or options.skip:
        raise ODataError("$filter, $orderby, $top and $skip apply to collections only")
    engine.check(entity.set, options)
    return engine.render(entity, options)


def _property(
    entity: Entity, name: str, rest: list[tuple[str, int | None]]
) -> dict[str, Any] | RawValue:
    value = jsonable(entity.data.get(name))
    if not rest:
        return {name: value}
    if rest == [("$value", None)]:
        if isinstance(value, dict | list):
            return RawValue(json.dumps(value, ensure_ascii=False), "application/json")
        if isinstance(value, bool):
            return RawValue("true" if value else "false")
        return RawValue("" if value is None else str(value))
    raise NotFound(f"nothing follows {name!r} except $value")
