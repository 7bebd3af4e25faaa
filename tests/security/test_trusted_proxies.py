"""Behind an Ingress the API sees the proxy's address: FLEET_TRUSTED_PROXIES says whose
X-Forwarded-For to believe, so one guesser does not lock the whole borough out of signing in,
and the audit names the guesser's address, not the proxy's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from fleet.access.throttle import ADDRESS_FREE_FAILURES
from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.core.settings import Settings
from fleet.models import AuditEntry
from fleet.serve import http_server_config
from tests.fleet.conftest import PASSWORD, World, fleet_ctx, world  # noqa: F401

PROXY = "10.1.2.3"  # the Ingress controller's pod
GUESSER, COLLEAGUE = "198.51.100.7", "198.51.100.8"


@contextmanager
def _through_proxy(ctx: FleetContext, trusted: str) -> Iterator[TestClient]:
    """The app as uvicorn serves it, reached from the proxy's address."""
    settings = ctx.settings.model_copy(update={"trusted_proxies": trusted})
    config = http_server_config(create_app(ctx), settings)
    config.load()
    with TestClient(config.loaded_app, client=(PROXY, 40000), follow_redirects=False) as c:
        yield c


def _login(client: TestClient, email: str, password: str, address: str) -> int:
    answer = client.post(
        "/login",
        data={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )
    return answer.status_code


def _failed_from(ctx: FleetContext) -> set[str]:
    with ctx.sessions() as s:
        actors = s.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "user.login_failed")
        ).all()
    return set(actors)


def test_one_guesser_behind_the_proxy_does_not_lock_out_the_borough(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with _through_proxy(fleet_ctx, "10.0.0.0/8") as client:
        for n in range(ADDRESS_FREE_FAILURES):
            assert _login(client, f"guess-{n}@example.org", "x" * 12, GUESSER) == 401
        assert _login(client, "guess-more@example.org", "x" * 12, GUESSER) == 429
        assert _login(client, "staff_hackney@example.org", PASSWORD, COLLEAGUE) == 303
    assert _failed_from(fleet_ctx) == {f"sign-in from {GUESSER}"}


def test_an_untrusted_sender_cannot_choose_its_address(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with _through_proxy(fleet_ctx, "127.0.0.1") as client:
        assert _login(client, "guess@example.org", "x" * 12, GUESSER) == 401
    assert _failed_from(fleet_ctx) == {f"sign-in from {PROXY}"}


@pytest.mark.parametrize("value", ["10.0.0.0/33", "ingress", "10.0.0.1, *"])
def test_a_proxy_that_is_not_an_address_is_named(value: str) -> None:
    with pytest.raises(ValidationError, match="FLEET_TRUSTED_PROXIES"):
        Settings(trusted_proxies=value)
