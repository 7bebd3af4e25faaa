"""Refusals: JSON for the APIs, a page in the dashboard; neither repeats a secret back.

FastAPI's default 422 answer echoes each failing input, and for a missing field the whole
request body: a Wi-Fi password or a user's password would come back in the response, in
any proxy log of it, and in the client's error output.

Programs (paths in `fleet.dashboard.web.MACHINE_PREFIXES`) keep FastAPI's JSON shape; a person
in the dashboard gets a page in its layout with the reason, the text they typed for a refused
field (so a long note is not lost) and a link back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from fleet.dashboard.errors import Problem, error_page
from fleet.dashboard.web import is_page

HIDDEN = "(hidden)"
_SECRET_WORDS = ("password", "secret", "passphrase", "token", "private")
# Where a refused value came from, as FastAPI names it; a person only needs the field's name.
_SOURCES = ("body", "query", "path", "header", "cookie")


def _secret(name: object) -> bool:
    return isinstance(name, str) and any(w in name.lower() for w in _SECRET_WORDS)


def scrub(value: Any) -> Any:
    """`value` with every secret-named field's value hidden, at any depth."""
    if isinstance(value, dict):
        return {k: HIDDEN if _secret(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def scrub_error(error: dict[str, Any]) -> dict[str, Any]:
    out = dict(error)
    if "input" in out:
        out["input"] = HIDDEN if any(map(_secret, out.get("loc", ()))) else scrub(out["input"])
    return out


def problem(error: dict[str, Any]) -> Problem:
    """A scrubbed validation error for a person: the field, the message and any text typed."""
    loc = [str(part) for part in error.get("loc", ())]
    field = " ".join(loc[1:] if loc and loc[0] in _SOURCES else loc) or "the request"
    typed = error.get("input")
    # Only a form's text is worth keeping; an address can be edited where it is.
    kept = loc[:1] == ["body"] and isinstance(typed, str) and typed != HIDDEN and typed.strip()
    shown = typed if kept else None
    return Problem(field=field, message=str(error.get("msg", "not accepted")), typed=shown)


def detail_text(detail: Any) -> str:
    """An error's detail as a sentence (some APIs answer `{"code", "message"}`)."""
    if isinstance(detail, dict) and "message" in detail:
        return str(detail["message"])
    return str(detail)


async def answer(
    request: Request, status_code: int, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    """A refusal as `{"detail": …}` for programs, or as a page for a person."""
    if is_page(request.url.path):
        return await error_page(request, status_code, detail_text(detail), headers=headers)
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [scrub_error(e) for e in exc.errors()]
        if is_page(request.url.path):
            return await error_page(
                request,
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "The address asks for something that is not accepted."
                if request.method == "GET"
                else "Nothing was saved: part of the form is not accepted.",
                problems=[problem(e) for e in errors],
            )
        return JSONResponse(
            {"detail": jsonable_encoder(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )

    @app.exception_handler(HTTPException)
    async def _refused(request: Request, exc: HTTPException) -> Response:
        if is_page(request.url.path):
            return await error_page(
                request, exc.status_code, detail_text(exc.detail), headers=exc.headers
            )
        return await http_exception_handler(request, exc)
