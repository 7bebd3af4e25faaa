"""Failed sign-ins slow guessing down per account and per address, and are audited; the
right password is not even checked while an account waits."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.access.throttle import FIRST_WAIT_S, FREE_FAILURES, MAX_WAIT_S, SignInThrottle
from fleet.core.context import FleetContext
from fleet.models import AuditEntry, User
from tests.fleet.conftest import PASSWORD, World, fleet_ctx, world  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waits_double_up_to_a_cap_and_a_success_clears_them() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for _ in range(FREE_FAILURES - 1):
        throttle.failed("Ana@Borough.gov.uk", "10.0.0.1")
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.1") == 0.0
    throttle.failed("ana@borough.gov.uk ", "10.0.0.1")
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.2") == FIRST_WAIT_S
    clock.now += FIRST_WAIT_S
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.2") == 0.0
    throttle.failed("ana@borough.gov.uk", "10.0.0.2")
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.3") == 2 * FIRST_WAIT_S
    for _ in range(20):
        throttle.failed("ana@borough.gov.uk", "10.0.0.2")
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.3") == MAX_WAIT_S
    throttle.succeeded("ANA@borough.gov.uk")
    assert throttle.wait_s("ana@borough.gov.uk", "10.0.0.3") == 0.0
    # One address spraying many accounts waits too.
    assert throttle.wait_s("someone-else@borough.gov.uk", "10.0.0.2") > 0


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
    clock.now += FIRST_WAIT_S
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
