"""The fleet API as the technician's laptop sees it, with every refusal mapped to our errors.

Enrolment is idempotent on the fleet side, so transport failures are retried a few times:
the repeat can never create a second device.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from provisioning.errors import (
    BoroughNotPermitted,
    EnrolledElsewhere,
    FleetRefused,
    FleetUnreachable,
    ProvisionError,
    TokenRejected,
    WifiProfileMissing,
)

API = "/api/v1"


class FleetClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 15.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise TokenRejected(
                "no API token given",
                remedy="create one signed in as a technician (POST /api/v1/tokens) and "
                "pass --token or set PROVISION_TOKEN",
            )
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = exc
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff_s * 2**attempt)
        raise FleetUnreachable(
            f"cannot reach the fleet at {self.base_url} ({last})",
            remedy="check the laptop's network (mobile hotspot?) and --fleet-url / "
            "PROVISION_FLEET_URL; nothing was changed on the fleet, so just run again",
        ) from last

    def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        raise refusal(response)

    def enrol(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self._request("POST", f"{API}/enrolments", json=payload)
        )
        return result

    def rotate(self, device_id: str, *, force: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self._request("POST", f"{API}/enrolments/{device_id}/rotate", json={"force": force})
        )
        return result

    def device(self, device_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self._request("GET", f"{API}/devices/{device_id}"))
        return result


def _detail(response: httpx.Response) -> tuple[str, str]:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return "", response.text[:200]
    if isinstance(detail, dict):
        return str(detail.get("code", "")), str(detail.get("message", ""))
    return "", str(detail)


def refusal(response: httpx.Response) -> ProvisionError:
    """The ProvisionError for a non-2xx answer of the fleet."""
    code, message = _detail(response)
    status = response.status_code
    if status == 401:
        return TokenRejected(
            f"the fleet rejected the API token ({message})",
            remedy="the token is wrong, expired or revoked: create a new one (POST /api/v1/tokens) "
            "and pass it with --token or PROVISION_TOKEN",
        )
    if code == "borough_not_permitted":
        return BoroughNotPermitted(
            message,
            remedy="check the borough code in your CSV/arguments; if it is right, ask an admin "
            "to add that borough to your account",
        )
    if status == 403:
        return TokenRejected(
            f"the token may not do this ({message})",
            remedy="use a technician token (it carries the devices:enrol permission)",
        )
    if code == "already_enrolled_elsewhere":
        return EnrolledElsewhere(
            message,
            remedy="check you have the right sensor and place; if the sensor really moved, "
            "borough staff must re-place it first (PUT /api/v1/devices/<id>/placement)",
        )
    if code == "wifi_profile_missing":
        return WifiProfileMissing(
            message,
            remedy="ask borough staff to add the site's Wi-Fi profile (see "
            "docs/provisioning.md), or pass --wifi-profile with an existing profile name",
        )
    if code == "rotation_not_due":
        return FleetRefused(
            message, remedy="nothing to do yet; pass --force only if the key may have leaked"
        )
    if status == 404:
        return FleetRefused(message or "not found", remedy="check the device id; enrol it first")
    return FleetRefused(
        f"the fleet refused the request (HTTP {status}): {message}",
        remedy="run again; if it persists, send the message above to the fleet's operator",
    )
