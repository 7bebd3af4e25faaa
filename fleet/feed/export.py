"""Bulk CSV export per borough and date range, streamed in chunks (never all in memory).

Columns use the standard's names and SenML units; the property column is the pseudonym at
the public level and the landlord's reference at the full level, like the SensorThings API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet.core.spreadsheet import text_cell
from fleet.feed import snapshot
from fleet.feed.snapshot import Audience, DatastreamRecord
from fleet.feed.sta.store import Store, iso
from fleet.models import Reading

COLUMNS = (
    "datastream_id",
    "thing_id",
    "borough",
    "area",
    "property",
    "room",
    "observed_property",
    "unit",
    "phenomenon_time",
    "result",
)
CHUNK_ROWS = 5000


def _line(values: tuple[object, ...]) -> str:
    buffer = io.StringIO()
    # Names come from staff (a borough or area called "=HYPERLINK(...)"): never a formula in
    # a downstream user's spreadsheet. Numbers are written as they are.
    cells = (text_cell(v) if isinstance(v, str) else v for v in values)
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def datastreams_for_export(
    session: Session, *, audience: Audience, borough_code: str
) -> tuple[Store, list[DatastreamRecord]]:
    store = Store(snapshot.load(session), audience)
    chosen = [d for d in store.datastreams.values() if d.thing.borough_code == borough_code]
    return store, sorted(chosen, key=lambda d: d.id)


def export_csv(
    sessions: sessionmaker[Session],
    *,
    audience: Audience,
    borough_code: str,
    start: datetime,
    end: datetime,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[str]:
    """CSV text in pieces: a header, then every visible reading in [start, end) by Datastream.

    Each chunk is read in its own short session with keyset paging on time (unique within a
    Datastream), so a long download holds no transaction open.
    """
    with sessions() as session:
        store, datastreams = datastreams_for_export(
            session, audience=audience, borough_code=borough_code
        )
    yield _line(COLUMNS)
    for ds in datastreams:
        thing = ds.thing
        full = store.full(thing)
        fixed = (
            ds.id,
            thing.id,
            thing.borough_name,
            store.area(thing),
            thing.reference if full else thing.pseudonym,
            thing.room,
            ds.metric.name,
            ds.metric.senml_unit,
        )
        lower = max(start, thing.published_from)
        upper = end if thing.ended_at is None else min(end, thing.ended_at)
        after: datetime | None = None
        while lower < upper:
            stmt = (
                select(Reading.ts, Reading.value)
                .where(
                    Reading.device_pk == thing.device_pk,
                    Reading.metric == ds.metric.name,
                    Reading.ts >= lower,
                    Reading.ts < upper,
                )
                .order_by(Reading.ts)
                .limit(chunk_rows)
            )
            if after is not None:
                stmt = stmt.where(Reading.ts > after)
            with sessions() as session:
                rows = session.execute(stmt).all()
            if not rows:
                break
            yield "".join(_line((*fixed, iso(ts), value)) for ts, value in rows)
            after = rows[-1][0]
            if len(rows) < chunk_rows:
                break
