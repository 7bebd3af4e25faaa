"""Answer SensorThings v1.1 requests: fetch, filter, order, page, select and expand entities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from fleet.feed.odata import (
    ExpandItem,
    ODataError,
    QueryOptions,
    evaluate,
    inside_expand,
    matches,
    tagged,
)
from fleet.feed.odata import nodes as n
from fleet.feed.sta.links import nested_next_link, next_link
from fleet.feed.sta.observations import ObservationQuery, ObservationRow
from fleet.feed.sta.schema import SETS, EntitySet, check_filter_paths, check_filter_types
from fleet.feed.sta.store import Entity, Store, iso

DEFAULT_TOP = 100
DATA_ARRAY_COMPONENTS = ("id", "phenomenonTime", "resultTime", "result")


class NotFound(Exception):
    """No such entity, or not one this caller may see."""


@dataclass(frozen=True)
class Parent:
    set: str
    id: int
    nav: str


@dataclass
class Page:
    items: list[Entity]
    total: int | None
    more: bool
    token: str | None = None  # a keyset $skiptoken for the next page, when there is one


def observation_entity(row: ObservationRow) -> Entity:
    return Entity(
        "Observations",
        row.id,
        {"id": row.id, "phenomenonTime": row.ts, "resultTime": row.ts, "result": row.value},
        {"Datastream": row.datastream_id, "FeatureOfInterest": row.thing_id},
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sort_key(value: Any) -> tuple[int, float, str]:
    # One comparable shape for every value so mixed or missing values never raise.
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool | int | float | Decimal):
        return (1, float(value), "")
    if isinstance(value, datetime):
        return (2, value.timestamp(), "")
    if isinstance(value, str):
        return (3, 0.0, value)
    return (4, 0.0, str(value))


class Engine:
    def __init__(self, session: Session, store: Store, base: str) -> None:
        self.session = session
        self.store = store
        self.base = base.rstrip("/")

    # -- navigation and lookup ---------------------------------------------------------------
    def resolve_value(self, path: tuple[str, ...], entity: Any) -> Any:
        current: Any = entity
        for segment in path:
            if current is None:
                return None
            if isinstance(current, Entity):
                if segment in current.one:
                    current = self.one(current, segment)
                else:
                    current = current.data.get(segment)
            elif isinstance(current, dict):
                current = current.get(segment)
            else:
                return None
        return current

    def one(self, entity: Entity, nav: str) -> Entity | None:
        target_id = entity.one.get(nav)
        if target_id is None:
            return None
        return self.store.get(SETS[entity.set].one[nav], target_id)

    def get(self, set_name: str, entity_id: int) -> Entity:
        if set_name == "Observations":
            key = n.Comparison("eq", n.Path(("id",)), n.IntLit(entity_id))
            page = self.fetch("Observations", QueryOptions(filter=key, top=1), None)
            found = page.items[0] if page.items else None
        else:
            found = self.store.get(set_name, entity_id)
        if found is None:
            raise NotFound(f"no {set_name}({entity_id})")
        return found

    def member(self, parent: Parent, entity_id: int) -> Entity:
        target = self.get(SETS[parent.set].many[parent.nav], entity_id)
        if target.set == "Observations":
            allowed = self._datastreams_for(parent)
            if target.one["Datastream"] not in {d.id for d in allowed}:
                raise NotFound(f"no {parent.nav}({entity_id}) under {parent.set}({parent.id})")
            return target
        members = self.store.related(parent.set, parent.id, parent.nav)
        if all(m.id != entity_id for m in members):
            raise NotFound(f"no {parent.nav}({entity_id}) under {parent.set}({parent.id})")
        return target

    def check(self, set_name: str, options: QueryOptions) -> None:
        """Refuse options that name what the set does not have, before any data is read:
        otherwise an empty collection, or entities without the expanded ones, would answer
        200 to a typo that fails once data arrives."""
        entity_set = SETS[set_name]
        _selected(entity_set, options.select)
        if set_name == "Observations":
            query = ObservationQuery(self.session, [])
            if options.filter is not None:
                with tagged("$filter"):
                    query.check(options.filter)
            query.check_order(options.orderby)
        else:
            if options.filter is not None:
                with tagged("$filter"):
                    check_filter_types(entity_set, options.filter)
            with tagged("$orderby"):
                for key in options.orderby:
                    check_filter_paths(entity_set, key.expr)
        for item in _grouped(options.expand):
            nav = _navigation(entity_set, item.path[0])
            try:
                self.check(entity_set.navigation[nav], item.options)
            except ODataError as exc:
                raise inside_expand(exc, nav) from None

    # -- collections ------------------------------------------------------------------------
    def fetch(self, set_name: str, options: QueryOptions, parent: Parent | None) -> Page:
        top = DEFAULT_TOP if options.top is None else options.top
        if set_name == "Observations":
            return self._observations(options, parent, top)
        items = (
            self.store.all(set_name)
            if parent is None
            else self.store.related(parent.set, parent.id, parent.nav)
        )
        if options.filter is not None:  # checked by check() before any fetch
            expr = options.filter
            items = [e for e in items if matches(expr, e, resolve=self.resolve_value)]
        items = self._sorted(items, options.orderby)
        total = len(items) if options.count else None
        start = options.skip
        # $top=0 asks for the count only: there is no next page to point to.
        return Page(items[start : start + top], total, top > 0 and len(items) > start + top)

    def _sorted(self, items: list[Entity], orderby: Sequence[n.OrderBy]) -> list[Entity]:
        ordered = sorted(items, key=lambda e: e.id)
        for key in reversed(orderby):  # checked by check() before any fetch
            expr = key.expr

            def sort_key(entity: Entity, expr: n.Expr = expr) -> tuple[int, float, str]:
                return _sort_key(evaluate(expr, entity, resolve=self.resolve_value))

            ordered.sort(key=sort_key, reverse=key.descending)
        return ordered

    def _datastreams_for(self, parent: Parent | None) -> list[Any]:
        if parent is None:
            return list(self.store.datastreams.values())
        ids = self.store.datastream_ids_for(parent.set, parent.id)
        return [self.store.datastreams[i] for i in ids]

    def _observations(self, options: QueryOptions, parent: Parent | None, top: int) -> Page:
        datastreams = self._datastreams_for(parent)
        if not datastreams:
            return Page([], 0 if options.count else None, False)
        query = ObservationQuery(self.session, datastreams)
        rows, token = query.page(options, top=top) if top > 0 else ([], None)
        total = query.count(options) if options.count else None
        entities = [observation_entity(r) for r in rows]
        return Page(entities, total, token is not None, token or None)

    # -- rendering ----------------------------------------------------------------------------
    def render(self, entity: Entity, options: QueryOptions) -> dict[str, Any]:
        entity_set = SETS[entity.set]
        selected = _selected(entity_set, options.select)
        self_link = f"{self.base}/{entity.set}({entity.id})"
        out: dict[str, Any] = {}
        if selected is None or "id" in selected:
            out["@iot.id"] = entity.id
            out["@iot.selfLink"] = self_link
        for name in entity_set.fields[1:]:
            if selected is None or name in selected:
                out[name] = jsonable(entity.data.get(name))
        for nav in entity_set.navigation:
            if selected is None or nav in selected:
                out[f"{nav}@iot.navigationLink"] = f"{self_link}/{nav}"
        for item in _grouped(options.expand):
            self._expand(out, entity, item)
        return out

    def _expand(self, out: dict[str, Any], entity: Entity, item: ExpandItem) -> None:
        entity_set = SETS[entity.set]
        nav = item.path[0]  # a navigation of the set: check() refused any other
        options = item.options
        if nav in entity_set.one:
            target = self.one(entity, nav)
            out[nav] = None if target is None else self.render(target, options)
            return
        parent = Parent(entity.set, entity.id, nav)
        page = self.fetch(entity_set.many[nav], options, parent)
        out[nav] = [self.render(e, options) for e in page.items]
        if options.count:
            out[f"{nav}@iot.count"] = page.total
        if page.more:
            top = DEFAULT_TOP if options.top is None else options.top
            link = f"{self.base}/{entity.set}({entity.id})/{nav}"
            out[f"{nav}@iot.nextLink"] = nested_next_link(link, options, top)

    def collection(
        self,
        set_name: str,
        options: QueryOptions,
        parent: Parent | None,
        *,
        url: str,
        query: list[tuple[str, str]],
    ) -> dict[str, Any]:
        if options.result_format == "dataArray":
            return self._data_array(set_name, options, parent, url=url, query=query)
        page = self.fetch(set_name, options, parent)
        body: dict[str, Any] = {}
        if options.count:
            body["@iot.count"] = page.total
        if page.more:
            body["@iot.nextLink"] = self._next(page, options, url, query)
        body["value"] = [self.render(e, options) for e in page.items]
        return body

    @staticmethod
    def _next(page: Page, options: QueryOptions, url: str, query: list[tuple[str, str]]) -> str:
        top = DEFAULT_TOP if options.top is None else options.top
        if page.token is not None:
            return next_link(url, query, 0, top, token=page.token)
        return next_link(url, query, options.skip + top, top)

    def _data_array(
        self,
        set_name: str,
        options: QueryOptions,
        parent: Parent | None,
        *,
        url: str,
        query: list[tuple[str, str]],
    ) -> dict[str, Any]:
        if set_name != "Observations":
            raise ODataError(
                "only Observations can be returned as a dataArray", None, "$resultFormat"
            )
        if options.expand:
            raise ODataError("$expand cannot be combined with a dataArray", None, "$resultFormat")
        fields = SETS[set_name].fields
        chosen = _selected(SETS[set_name], options.select)
        if chosen is not None and not chosen <= set(fields):
            raise ODataError(
                f"a dataArray holds properties only; choose from {', '.join(fields)}",
                None,
                "$select",
            )
        # In the order of $select, so a client can zip the rows against its own list.
        components = (
            list(DATA_ARRAY_COMPONENTS)
            if options.select is None
            else list(dict.fromkeys(path[0] for path in options.select))
        )
        page = self.fetch(set_name, replace(options, select=None), parent)
        groups: dict[int, list[list[Any]]] = {}
        for entity in page.items:
            row = [jsonable(entity.data[c]) for c in components]
            groups.setdefault(entity.one["Datastream"], []).append(row)
        body: dict[str, Any] = {}
        if options.count:
            body["@iot.count"] = page.total
        if page.more:
            body["@iot.nextLink"] = self._next(page, options, url, query)
        body["value"] = [
            {
                "Datastream@iot.navigationLink": f"{self.base}/Datastreams({ds_id})",
                "components": components,
                "dataArray@iot.count": len(rows),
                "dataArray": rows,
            }
            for ds_id, rows in groups.items()
        ]
        return body


def _selected(entity_set: EntitySet, select: tuple[tuple[str, ...], ...] | None) -> set[str] | None:
    if select is None:
        return None
    chosen: set[str] = set()
    allowed = [*entity_set.fields, *entity_set.navigation]
    for path in select:
        name = "/".join(path)
        if len(path) != 1 or path[0] not in allowed:
            raise ODataError(
                f"cannot select {name!r} on {entity_set.name}; expected one of "
                f"{', '.join(allowed)}",
                None,
                "$select",
            )
        chosen.add(path[0])
    return chosen


def _navigation(entity_set: EntitySet, nav: str) -> str:
    if nav not in entity_set.navigation:
        known = ", ".join(entity_set.navigation)
        raise ODataError(
            f"{entity_set.name} has no navigation property {nav!r}; expected one of {known}",
            option="$expand",
        )
    return nav


def _grouped(items: Sequence[ExpandItem]) -> list[ExpandItem]:
    """Merge ``A/B`` and ``A/C`` (and ``A(...)``) into one ``A`` with nested expands."""
    merged: dict[str, ExpandItem] = {}
    for item in items:
        head = item.path[0]
        if len(item.path) == 1:
            current = merged.get(head)
            nested = current.options.expand if current else ()
            options = replace(item.options, expand=(*item.options.expand, *nested))
            merged[head] = ExpandItem((head,), options)
            continue
        inner = ExpandItem(item.path[1:], item.options)
        current = merged.get(head) or ExpandItem((head,), QueryOptions())
        merged[head] = ExpandItem(
            (head,), replace(current.options, expand=(*current.options.expand, inner))
        )
    return list(merged.values())
