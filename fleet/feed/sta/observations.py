"""Observations straight from the readings table, with $filter and $orderby compiled to SQL.

A reading belongs to the Datastream of its device and metric whose Thing period covers the
reading's time. One Datastream (the common case: /Datastreams(id)/Observations) is a plain
range scan on the readings index; several use a join through the stable-id tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from fleet.feed.odata import (
    ODataError,
    QueryOptions,
    check_filter,
    compile_filter,
    compile_orderby,
    tagged,
)
from fleet.feed.odata import nodes as n
from fleet.feed.snapshot import DatastreamRecord
from fleet.feed.sta import keyset
from fleet.feed.sta.schema import SETS, check_filter_paths, paths_in, substitute
from fleet.models import Reading
from fleet.models.feed import FeedDatastream, FeedThing

OBSERVATIONS = SETS["Observations"]
_SAMPLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ObservationRow:
    id: int
    ts: datetime
    value: float
    datastream_id: int
    thing_id: int


def _typed_stand_in(path: n.Path) -> n.Expr | None:
    """A literal of the path's type, so the type checker can refuse e.g. ``result eq 'x'``."""
    last = path.segments[-1]
    if path.segments in (("result",),):
        return n.DecimalLit(Decimal(0), pos=path.pos)
    if last in ("phenomenonTime", "resultTime"):
        return n.DateTimeLit(_SAMPLE_TIME, pos=path.pos)
    if last == "id":
        return n.IntLit(0, pos=path.pos)
    if last == "name":
        return n.StringLit("", pos=path.pos)
    return None


class ObservationQuery:
    def __init__(self, session: Session, datastreams: list[DatastreamRecord]) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.datastreams = datastreams
        r = Reading.__table__.c
        if len(datastreams) == 1:
            ds = datastreams[0]
            thing = ds.thing
            conditions = [r.device_pk == thing.device_pk, r.metric == ds.metric.name]
            conditions.append(r.ts >= thing.published_from)
            if thing.ended_at is not None:
                conditions.append(r.ts < thing.ended_at)
            self.ds_id: ColumnElement[Any] = sa.literal(ds.id, sa.Integer())
            self.thing_id: ColumnElement[Any] = sa.literal(thing.id, sa.Integer())
            self.sensor_id: ColumnElement[Any] = sa.literal(ds.sensor_id, sa.Integer())
            self.property_id: ColumnElement[Any] = sa.literal(ds.metric.id, sa.Integer())
            self.metric: ColumnElement[Any] = sa.literal(ds.metric.name, sa.String())
            self.source: Any = Reading.__table__
            self.where = sa.and_(*conditions)
        else:
            t, d = FeedThing.__table__.c, FeedDatastream.__table__.c
            self.ds_id, self.thing_id = d.id, t.id
            self.sensor_id, self.property_id, self.metric = (
                d.sensor_id,
                d.observed_property_id,
                d.metric,
            )
            self.source = Reading.__table__.join(
                FeedThing.__table__,
                sa.and_(
                    t.device_pk == r.device_pk,
                    r.ts >= t.started_at,
                    sa.or_(t.ended_at.is_(None), r.ts < t.ended_at),
                ),
            ).join(FeedDatastream.__table__, sa.and_(d.thing_id == t.id, d.metric == r.metric))
            self.where = _published(datastreams, d.id, r.ts)

    def resolve(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        r = Reading.__table__.c
        columns: dict[tuple[str, ...], ColumnElement[Any]] = {
            ("id",): r.id,
            ("result",): r.value,
            ("phenomenonTime",): r.ts,
            ("resultTime",): r.ts,
            ("Datastream", "id"): self.ds_id,
            ("Datastream", "Thing", "id"): self.thing_id,
            ("Datastream", "Sensor", "id"): self.sensor_id,
            ("Datastream", "ObservedProperty", "id"): self.property_id,
            ("Datastream", "ObservedProperty", "name"): self.metric,
            ("FeatureOfInterest", "id"): self.thing_id,
        }
        column = columns.get(path)
        if column is None:
            known = ", ".join("/".join(p) for p in columns)
            raise ODataError(
                f"Observations cannot be filtered or ordered on {'/'.join(path)!r}; "
                f"use one of {known}"
            )
        return column

    def check(self, expr: n.Expr) -> None:
        check_filter_paths(OBSERVATIONS, expr)
        for path in paths_in(expr):
            _resolve_at(self, path)
        check_filter(substitute(expr, _typed_stand_in))

    def check_order(self, orderby: Sequence[n.OrderBy]) -> None:
        with tagged("$orderby"):
            for item in orderby:
                check_filter_paths(OBSERVATIONS, item.expr)
                for path in paths_in(item.expr):
                    _resolve_at(self, path)

    def _filtered(self, options: QueryOptions) -> sa.Select[Any]:
        stmt = sa.select(
            Reading.__table__.c.id,
            Reading.__table__.c.ts,
            Reading.__table__.c.value,
            self.ds_id.label("ds_id"),
            self.thing_id.label("thing_id"),
        ).select_from(self.source)
        stmt = stmt.where(self.where)
        if options.filter is not None:
            self.check(options.filter)
            stmt = stmt.where(compile_filter(options.filter, self.resolve, dialect=self.dialect))
        return stmt

    def count(self, options: QueryOptions) -> int:
        inner = self._filtered(options).subquery()
        return int(self.session.scalar(sa.select(sa.func.count()).select_from(inner)) or 0)

    def page(self, options: QueryOptions, *, top: int) -> tuple[list[ObservationRow], str | None]:
        """Up to ``top`` rows after ``$skiptoken`` and ``$skip``, and where the next page
        starts: a ``$skiptoken``, "" to continue by offset, or None when this is the last."""
        stmt = self._filtered(options)
        self.check_order(options.orderby)
        ids = Reading.__table__.c.id
        if options.skip_token is not None:
            stmt = stmt.where(
                keyset.after(options.skip_token, options.orderby, self.resolve, ids, self.dialect)
            )
        by_key = keyset.usable(options.orderby)
        if by_key:
            keys = [self.resolve(cast(n.Path, item.expr).segments) for item in options.orderby]
            stmt = stmt.add_columns(*(k.label(f"key_{i}") for i, k in enumerate(keys)))
        order = compile_orderby(options.orderby, self.resolve, dialect=self.dialect)
        stmt = stmt.order_by(*order, ids).offset(options.skip).limit(top + 1)
        found = self.session.execute(stmt).all()
        rows = [ObservationRow(*row[:5]) for row in found[:top]]
        if len(found) <= top:
            return rows, None
        if not by_key or not rows:
            return rows, ""
        last = found[top - 1]
        return rows, keyset.encode([*last[5:], last[0]])


def _published(
    datastreams: list[DatastreamRecord], ds_id: ColumnElement[Any], ts: ColumnElement[Any]
) -> ColumnElement[bool]:
    """Readings of these Datastreams that may be published: in homes where consent was
    granted again after a withdrawal, only those taken since (the Thing join covers the rest
    of each Thing's period). Such homes are few, so they are grouped by that time."""
    plain: list[int] = []
    since: dict[datetime, list[int]] = defaultdict(list)
    for ds in datastreams:
        start = ds.thing.published_from
        if start > ds.thing.started_at:
            since[start].append(ds.id)
        else:
            plain.append(ds.id)
    if not since:
        return ds_id.in_(plain)
    return sa.or_(
        ds_id.in_(plain), *(sa.and_(ds_id.in_(ids), ts >= start) for start, ids in since.items())
    )


def _resolve_at(query: ObservationQuery, path: n.Path) -> None:
    try:
        query.resolve(path.segments)
    except ODataError as exc:
        raise ODataError(exc.message, path.pos) from None
