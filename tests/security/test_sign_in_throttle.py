"""Failed sign-ins slow guessing down per account and per address, and are audited; the
right password is not even checked while an account waits. The counts live in the database,
so every API process (and a restarted one) sees the same counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.access.throttle import (
    ADDRESS_FREE_FAILURES,
    FIRST_WAIT_S,
    FORGET_AFTER,
    FREE_FAILURES,
    MAX_WAIT_S,
    SignInThrottle,
)
from fleet.core.context import FleetContext
from fleet.core.db import make_engine, make_session_factory
from fleet.models import AuditEntry, SignInFailures, User
from tests.fleet.conftest import PASSWORD, World, fleet_ctx, world  # noqa: F401

ANA = "ana@borough.gov.uk"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def other_worker(fleet_ctx: FleetContext) -> Iterator[SignInThrottle]:  # noqa: F811
    """A throttle of another API process: its own engine and pool on the same database."""
    engine = make_engine(fleet_ctx.engine.url.render_as_string(hide_password=False))
    try:
        yield SignInThrottle(make_session_factory(engine))
    finally:
        engine.dispose()


def _rows(ctx: FleetContext) -> list[SignInFailures]:
    with ctx.sessions() as s:
        return list(s.scalars(select(SignInFailures)))


def test_waits_double_up_to_a_cap_and_a_success_clears_them(
    fleet_ctx: FleetContext,  # noqa: F811
) -> None:
    clock = Clock()
    throttle = SignInThrottle(fleet_ctx.sessions, clock=clock)
    for _ in range(FREE_FAILURES - 1):
        throttle.failed("Ana@Borough.gov.uk", "10.0.0.1")
    assert throttle.wait_s(ANA, "10.0.0.1") == 0.0
    throttle.failed("ana@borough.gov.uk ", "10.0.0.1")
    assert throttle.wait_s(ANA, "10.0.0.2") == FIRST_WAIT_S
    clock.advance(FIRST_WAIT_S)
    assert throttle.wait_s(ANA, "10.0.0.2") == 0.0
    throttle.failed(ANA, "10.0.0.2")
    assert throttle.wait_s(ANA, "10.0.0.3") == 2 * FIRST_WAIT_S
    for _ in range(20):
        throttle.failed(ANA, "10.0.0.2")
    assert throttle.wait_s(ANA, "10.0.0.3") == MAX_WAIT_S
    throttle.succeeded("ANA@borough.gov.uk")
    assert throttle.wait_s(ANA, "10.0.0.3") == 0.0
    # One address spraying many accounts waits too.
    assert throttle.wait_s("someone-else@borough.gov.uk", "10.0.0.2") > 0


def test_a_quiet_hour_forgets_the_count(fleet_ctx: FleetContext) -> None:  # noqa: F811
    clock = Clock()
    throttle = SignInThrottle(fleet_ctx.sessions, clock=clock)
    for _ in range(FREE_FAILURES):
        throttle.failed(ANA, "10.0.0.1")
    clock.advance(FORGET_AFTER.total_seconds() - 1)
    assert throttle.wait_s(ANA, "10.0.0.1") == 0.0  # the wait is long over
    throttle.failed(ANA, "10.0.0.1")  # within the hour: the count goes on
    assert throttle.wait_s(ANA, "10.0.0.1") == 2 * FIRST_WAIT_S
    clock.advance(FORGET_AFTER.total_seconds() + 1)
    throttle.failed(ANA, "10.0.0.1")  # after a quiet hour: the count starts again
    assert throttle.wait_s(ANA, "10.0.0.1") == 0.0
    assert {row.failures for row in _rows(fleet_ctx)} == {1}


def test_every_api_process_and_a_restart_see_the_same_counts(
    fleet_ctx: FleetContext,  # noqa: F811
    other_worker: SignInThrottle,
) -> None:
    clock = Clock()
    first = SignInThrottle(fleet_ctx.sessions, clock=clock)
    other_worker.clock = clock
    # A load balancer spreads one guesser's attempts over two processes.
    for n in range(FREE_FAILURES):
        (first if n % 2 else other_worker).failed(ANA, "10.0.0.1")
    assert first.wait_s(ANA, "10.0.0.1") == FIRST_WAIT_S
    assert other_worker.wait_s(ANA, "10.0.0.1") == FIRST_WAIT_S
    restarted = SignInThrottle(fleet_ctx.sessions, clock=clock)
    assert restarted.wait_s(ANA, "10.0.0.9") == FIRST_WAIT_S
    other_worker.succeeded(ANA)
    assert first.wait_s(ANA, "10.0.0.9") == 0.0


def test_failures_at_many_processes_at_once_are_all_counted(
    fleet_ctx: FleetContext,  # noqa: F811
    other_worker: SignInThrottle,
) -> None:
    workers = [SignInThrottle(fleet_ctx.sessions), other_worker] * 3
    per_worker = 15
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def guess(throttle: SignInThrottle) -> None:
        try:
            start.wait()
            for _ in range(per_worker):
                throttle.failed(ANA, "10.0.0.1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [row.failures for row in _rows(fleet_ctx)] == [len(workers) * per_worker] * 2


def test_quiet_rows_are_deleted_and_no_row_names_anyone(
    fleet_ctx: FleetContext,  # noqa: F811
) -> None:
    clock = Clock()
    throttle = SignInThrottle(fleet_ctx.sessions, clock=clock)
    for n in range(ADDRESS_FREE_FAILURES):
        throttle.failed(f"guess-{n}@example.org", f"198.51.100.{n}")
    keys = {row.key for row in _rows(fleet_ctx)}
    assert len(keys) == 2 * ADDRESS_FREE_FAILURES
    assert all(len(key) == 64 and "@" not in key and "." not in key for key in keys)
    clock.advance(FORGET_AFTER.total_seconds() + 1)
    throttle.failed(ANA, "10.0.0.1")
    remaining = _rows(fleet_ctx)
    assert len(remaining) == 2 and not {row.key for row in remaining} & keys


def test_guessing_a_password_is_slowed_and_audited(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    clock = Clock()
    client.app.state.sign_in_throttle.clock = clock  # type: ignore[attr-defined]
    email = "staff_hackney@example.org"
    for guess in range(FREE_FAILURES):
        wrong = client.post("/login", data={"email": email, "password": f"guess-{guess}"})
        assert wrong.status_code == 401 and "Email or password is wrong." in wrong.text
    waiting = client.post("/login", data={"email": email, "password": PASSWORD})
    assert waiting.status_code == 429
    assert "Too many failed sign-ins: try again in 30 seconds." in waiting.text
    clock.advance(FIRST_WAIT_S)
    signed_in = client.post("/login", data={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 303

    with fleet_ctx.sessions() as s:
        staff_id = s.scalars(select(User.id).where(User.email == email)).one()
        failures = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.login_failed")
        ).all()
    assert len(failures) == FREE_FAILURES
    assert {(f.target_type, f.target_id, f.borough_id) for f in failures} == {
        ("user", str(staff_id), None)
    }
    assert all(f.actor == "sign-in from testclient" and f.detail is None for f in failures)
    client.post("/login", data={"email": "guess-123@example.org", "password": "x" * 12})
    with fleet_ctx.sessions() as s:
        unknown = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "user.login_failed")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert unknown is not None and (unknown.target_type, unknown.target_id) == (None, None)
