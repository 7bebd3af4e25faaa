"""Parse a device's JSON payload: fast for the valid ones, a clear reject for the rest."""

from __future__ import annotations

import json
from typing import Any

import orjson

from fleet.ingest.errors import Rejected, RejectReason


def parse_json(payload: bytes, what: str) -> Any:
    """The document, or Rejected(MALFORMED_JSON) saying why it is not one.

    orjson parses about four times as fast as the standard library. Only what it refuses
    goes to Python's parser, which also reads NaN, Infinity and integers past 64 bits: those
    then get the specific reject the validation gives them ("v must be finite"), and a
    genuinely broken payload keeps the error message operators already know. A payload
    nested too deeply for either parser is refused too, instead of raising out of the
    ingest (a RecursionError there would drop the broker connection, and the broker would
    redeliver the same payload for ever).
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(RejectReason.MALFORMED_JSON, f"{what} is not JSON: {exc}") from exc
    except RecursionError:
        raise Rejected(
            RejectReason.MALFORMED_JSON, f"{what} nests arrays or objects too deeply"
        ) from None
