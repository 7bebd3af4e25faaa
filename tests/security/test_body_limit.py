"""Request bodies are bounded before anything parses them, declared or chunked; a signed
release may be larger."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from fleet.api.body_limit import BODY_LIMIT
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401


def _json_of(size: int) -> bytes:
    return b'{"email": "' + b"a" * (size - 20) + b'", "x": 1}'


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    big = _json_of(BODY_LIMIT + 1024)
    declared = client.post(
        "/api/v1/users", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and "larger than 1024 KB" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    chunked = client.post(
        "/api/v1/users", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413

    small = client.post(
        "/api/v1/users", content=_json_of(4096), headers={"content-type": "application/json"}
    )
    assert small.status_code == 401  # read, then refused for who is asking


def test_a_chunked_body_within_the_bound_reaches_the_route_whole(
    client: TestClient,
    world: World,  # noqa: F811
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "sent in '
        yield b'pieces", "scopes": ["devices:read"]}'

    made = client.post(
        "/api/v1/tokens",
        content=chunks(),
        headers={"content-type": "application/json", **world.headers("staff_hackney")},
    )
    assert made.status_code == 201 and made.json()["name"] == "sent in pieces"


def test_a_release_may_carry_a_firmware_image(client: TestClient, world: World) -> None:  # noqa: F811
    image = _json_of(3 * BODY_LIMIT)
    sent = client.post(
        "/api/v1/releases",
        content=image,
        headers={"content-type": "application/json", **world.headers("admin")},
    )
    assert sent.status_code == 422  # parsed (and refused as no release), not 413
