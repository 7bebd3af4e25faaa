"""422 answers that say what was wrong without repeating a secret back.

FastAPI's default answer echoes each failing input, and for a missing field the whole
request body: a Wi-Fi password or a user's password would come back in the response, in
any proxy log of it, and in the client's error output.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

HIDDEN = "(hidden)"
_SECRET_WORDS = ("password", "secret", "passphrase", "token", "private")


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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [scrub_error(e) for e in exc.errors()]
        return JSONResponse(
            {"detail": jsonable_encoder(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_ENTITY
        )
