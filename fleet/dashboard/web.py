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


class NoStoreMiddleware:
    """Pages say `Cache-Control: no-store`: they show tenants' homes, readings and cases, and on a
    shared office PC the browser must not show them again (Back) after someone signs out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_no_store)
