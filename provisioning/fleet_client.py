"""The fleet API as the technician's laptop sees it, with every refusal mapped to our errors.

Enrolment is idempotent on the fleet side, so transport failures are retried a few times:
the repeat can never create a second device.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from provisioning.errors import (
    BoroughNotPermitted,
    EnrolledElsewhere,
    FleetRefused,
    FleetUnreachable,
    ProvisionError,
    TokenRejected,
    UsageError,
    WifiProfileMissing,
)

API = "/api/v1"
# What a web framework says for a path it has no route for (the fleet's own refusals say more).
NO_ROUTE = "Not Found"
URL_REMEDY = (
    "set --fleet-url / PROVISION_FLEET_URL to the fleet's address only, e.g. "
    "https://fleet.example.org (no path such as /dashboard)"
)
WIFI_REMEDY = (
    "ask borough staff to add it (dashboard: Registry, the borough, Set a Wi-Fi network), or "
    "choose an existing profile (--wifi-profile, or the wifi_profile column of a batch CSV)"
)
# Technicians make tokens on the dashboard; the tokens API needs a signed-in browser session.
TOKEN_REMEDY = (
    "make a new one on the dashboard's API tokens page (signed in as a technician) and set "
    "PROVISION_TOKEN"
)


def check_url(url: str) -> str:
    """The fleet address without a trailing slash; refuses one that is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"the fleet address {url!r} is not a web address",
            remedy="write it with http:// or https://, e.g. https://fleet.example.org "
            "(--fleet-url or PROVISION_FLEET_URL)",
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class Retry:
    """A failed attempt about to be repeated, for whoever shows progress."""

    reason: str  # why the fleet did not answer, without secrets
    attempt: int  # the attempt about to be made, counted from 1
    attempts: int
    delay_s: float

    def __str__(self) -> str:
        return (
            f"the fleet did not answer ({self.reason}); retrying "
            f"({self.attempt}/{self.attempts}) in {self.delay_s:g} s"
        )


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
        on_retry: Callable[[Retry], None] | None = None,
    ) -> None:
        """`on_retry` hears of every repeat before its wait, so a slow network is not silent."""
        if not token:
            raise TokenRejected(
                "no API token given (PROVISION_TOKEN is not set)",
                remedy="make one on the dashboard's API tokens page (signed in as a technician) "
                "and set PROVISION_TOKEN",
            )
        self.base_url = check_url(base_url)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.on_retry = on_retry
        self._token = token
        self._timeout = timeout
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
        last: httpx.TransportError | None = None
        for attempt in range(self.attempts):
            try:
                return self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = exc
                if attempt + 1 < self.attempts:
                    delay = self.backoff_s * 2**attempt
                    if self.on_retry is not None:
                        self.on_retry(Retry(self._why(exc), attempt + 2, self.attempts, delay))
                    time.sleep(delay)
        why = self._why(last) if last is not None else "no attempt made"
        raise FleetUnreachable(
            f"cannot reach the fleet at {self.base_url} ({why})",
            remedy="check the laptop's network (mobile hotspot?) and --fleet-url / "
            "PROVISION_FLEET_URL; nothing was changed on the fleet, so just run again",
        ) from last

    def _why(self, exc: httpx.TransportError) -> str:
        return _reason(exc, self._timeout).replace(self._token, "***")

    def _json(self, response: httpx.Response, kind: type = dict) -> Any:
        if response.is_success and _is_json(response, kind):
            return response.json()
        if _no_route(response):
            raise FleetUnreachable(
                f"{self.base_url} has no fleet API at {response.request.url.path} (HTTP 404)",
                remedy=URL_REMEDY,
            )
        if response.is_redirect or not _is_json(response, dict):
            # A hotel or hotspot sign-in page answering in the fleet's place (or redirecting
            # to one), or a proxy in front of a fleet that is down: not the fleet's API.
            answer = (
                f"redirected to {response.headers['location']}"
                if response.is_redirect
                else f"answered with {response.headers.get('content-type', 'something')}"
            )
            raise FleetUnreachable(
                f"{self.base_url} {answer} (HTTP {response.status_code}) instead of the "
                "fleet's API",
                remedy="if the network has a sign-in page (hotel, hotspot), sign in with a "
                f"browser and run again; else {URL_REMEDY}; if it persists, the fleet may be "
                "down: tell its operator",
            )
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
        """The device as the fleet sees it; a device it does not know is an error at once."""
        response = self._request("GET", f"{API}/devices/{device_id}")
        if response.status_code == 404 and not _no_route(response):
            raise FleetRefused(
                f"the fleet has no device {device_id} (or it is outside your boroughs)",
                remedy="check the device id or MAC (`provision flash` prints it); a sensor is "
                "known to the fleet once `provision enroll` has registered it",
            )
        result: dict[str, Any] = self._json(response)
        return result

    def wifi_profiles(self, borough: str) -> list[str]:
        """The names of a borough's Wi-Fi profiles (refused if the token lacks the borough)."""
        found = self._json(self._request("GET", f"{API}/enrolments/wifi-profiles/{borough}"), list)
        return [str(p.get("name")) for p in found if isinstance(p, dict)]


def _reason(exc: httpx.TransportError, timeout: float) -> str:
    """One short line on why a request failed: httpx's message, never a traceback."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    text = str(exc).strip().splitlines()
    # "[Errno 111] Connection refused" says no more to a technician than its words.
    line = re.sub(r"^\[Errno -?\d+\] ", "", text[0]) if text else type(exc).__name__
    return line if len(line) <= 120 else line[:119] + "…"


def _no_route(response: httpx.Response) -> bool:
    """A 404 for the path itself, not for something the fleet looked up."""
    if response.status_code != 404:
        return False
    return not _is_json(response, dict) or _detail(response) == ("", NO_ROUTE)


def _is_json(response: httpx.Response, kind: type) -> bool:
    try:
        return isinstance(response.json(), kind)
    except ValueError:
        return False


def _detail(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("code", "")), str(detail.get("message", ""))
    if isinstance(detail, list):  # the API's validation errors: one entry per bad field
        return "invalid", "; ".join(_invalid(e) for e in detail if isinstance(e, dict))
    return "", str(detail)


def _invalid(error: dict[str, Any]) -> str:
    # Only where and why: the rejected value ("input") may be a secret.
    where = [str(p) for p in error.get("loc", []) if p not in ("body", "query", "path")]
    return f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}"


def _fact(message: str) -> str:
    """A fleet message without the advice after its first ": ", for refusals whose remedy
    the CLI gives itself (in the CLI's terms: options, CSV columns)."""
    return message.split(": ", 1)[0]


def refusal(response: httpx.Response) -> ProvisionError:
    """The ProvisionError for a non-2xx answer of the fleet."""
    code, message = _detail(response)
    status = response.status_code
    if status == 401:
        # The fleet does not say whether the token was mistyped, expired or revoked.
        return TokenRejected(f"the fleet rejected the API token: {message}", remedy=TOKEN_REMEDY)
    if code == "borough_not_permitted":
        return BoroughNotPermitted(
            _fact(message),
            remedy="check the borough code in your CSV/arguments; if it is right, ask an admin "
            "to add that borough to your account",
        )
    if status == 403:
        return TokenRejected(
            f"the token may not do this ({message})",
            remedy="use a technician token (it carries the devices:enrol permission)",
        )
    if code == "already_enrolled_elsewhere":
        # The fleet's message already says who moves or decommissions the sensor.
        return EnrolledElsewhere(
            message, remedy="check you have the right sensor (its sticker) and the right place"
        )
    if code == "wifi_profile_missing":
        return WifiProfileMissing(_fact(message), remedy=WIFI_REMEDY)
    if code == "rotation_not_due":
        return FleetRefused(
            message, remedy="nothing to do yet; pass --force only if the key may have leaked"
        )
    if status == 422 and code == "invalid":
        return UsageError(
            f"the fleet refused these values: {message}",
            remedy="correct the values named above (in the arguments or the CSV) and run again",
        )
    if status == 404:
        return FleetRefused(
            message or "not found",
            remedy="check the device id and borough; a device must be enrolled first",
        )
    return FleetRefused(
        f"the fleet refused the request (HTTP {status}): {message}",
        remedy="run again; if it persists, send the message above to the fleet's operator",
    )
