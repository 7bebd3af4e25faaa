"""Which requests are the dashboard's (people in a browser), and what every page answer carries."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Paths that answer programs (the JSON and SensorThings APIs, firmware downloads, the open-data
# feed, metrics) or serve files; every other path is a page someone reads.
MACHINE_PREFIXES = (
    "/api/",
    "/sta/",
    "/ota/",
    "/feed/",
    "/static/",
    "/metrics",
    "/healthz",
    "/openapi.json",
    "/docs",
    "/redoc",
)


def is_page(path: str) -> bool:
    return not path.startswith(MACHINE_PREFIXES)


# Pages run only the fleet's own scripts (no inline script or handler: a name with a quote in
# it can never become code) and cannot be framed by another site (clickjacking). Inline
# styles stay allowed: the printable evidence carries its print rules in the page.
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class PageHeaders:
    """What every page answer carries. `Cache-Control: no-store`: pages show tenants' homes,
    readings and cases, and on a shared office PC the browser must not show them again
    (Back) after someone signs out. Every answer, page or not, says `nosniff`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = is_page(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if page:
                    for name, value in PAGE_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
