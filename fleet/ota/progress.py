"""Device reports on `cs/v1/d/{device_id}/ota/progress` (docs/schemas/ota-progress.schema.json)."""

from __future__ import annotations

from typing import Any

from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.jsondoc import parse_json

IN_PROGRESS = frozenset({"downloading", "verifying", "installing", "rebooting"})
TERMINAL = frozenset({"succeeded", "failed"})
STATES = IN_PROGRESS | TERMINAL


def decode_progress(payload: bytes) -> dict[str, Any]:
    """The report as a dict; Rejected (with a reason) if it breaks the schema."""
    doc = parse_json(payload, "ota/progress")
    if not isinstance(doc, dict):
        raise Rejected(RejectReason.MALFORMED_JSON, "ota/progress must be a JSON object")
    if doc.get("sv") != 1:
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA, f"ota/progress sv={doc.get('sv')!r}")
    state = doc.get("state")
    if not isinstance(state, str) or state not in STATES:  # a list or dict is unhashable
        raise Rejected(
            RejectReason.MALFORMED_JSON,
            f"ota/progress state {doc.get('state')!r} is not one of {', '.join(sorted(STATES))}",
        )
    if not isinstance(doc.get("app"), str):
        raise Rejected(RejectReason.MALFORMED_JSON, "ota/progress needs the running 'app' version")
    pct = doc.get("pct")
    if pct is not None and (type(pct) is not int or not 0 <= pct <= 100):
        raise Rejected(
            RejectReason.MALFORMED_JSON, f"ota/progress pct {pct!r} is not a whole 0 to 100"
        )
    return doc
