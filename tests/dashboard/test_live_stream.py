"""The overview's live stream costs a short query per poll and no database connection in
between (a tab stays open for hours), and it ends when its user is no longer signed in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.access import accounts
from fleet.dashboard import live
from fleet.models import User
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "LIVE_POLL_S", 0.05)


def _messages(lines: Iterator[str]) -> Iterator[str]:
    """One SSE message (event or keep-alive) at a time."""
    chunk: list[str] = []
    for line in lines:
        if line:
            chunk.append(line)
        elif chunk:
            yield "\n".join(chunk)
            chunk = []


def test_a_stream_holds_no_database_connection_between_polls(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    pool = world.ctx.engine.pool
    idle = pool.checkedout()  # type: ignore[attr-defined]
    with client.stream("GET", "/events") as answer:
        assert answer.status_code == 200
        messages = _messages(answer.iter_lines())
        assert next(messages).startswith("retry:")
        first = next(messages)
        assert first.startswith("event: devices") and "cs-hackney-0001" in first
        assert "cs-camden" not in first  # scoped like the page
        # The poll's session closed before the message went out, and nothing else is held.
        assert pool.checkedout() == idle  # type: ignore[attr-defined]


def test_a_disabled_users_stream_ends(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    with client.stream("GET", "/events") as answer:
        messages = _messages(answer.iter_lines())
        assert next(messages).startswith("retry:")
        assert next(messages).startswith("event: devices")
        with world.ctx.sessions.begin() as session:
            user = session.scalars(
                select(User).where(User.email == "staff_hackney@example.org")
            ).one()
            accounts.set_active(session, user, False)
        # At most the poll already under way answers; then the stream is over.
        rest = [m for _, m in zip(range(5), messages, strict=False)]
        assert len(rest) <= 1, rest


def test_nobody_signed_in_gets_the_sign_in_page(client: TestClient) -> None:  # noqa: F811
    client.cookies.clear()
    answer = client.get("/events", follow_redirects=False)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["location"]
