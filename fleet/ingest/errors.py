"""Why a message was refused; each reason is a stable code stored with the reject."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    NOT_SENML = "not_senml"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    BASE_NAME_MISMATCH = "base_name_mismatch"
    UNKNOWN_METRIC = "unknown_metric"
    UNIT_MISMATCH = "unit_mismatch"
    BAD_VALUE = "bad_value"
    BAD_TIME = "bad_time"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_STATUS = "bad_status"
    DECODE_FAILED = "decode_failed"  # the decoder itself failed on it (reported as a bug)
    STORE_FAILED = "store_failed"  # valid to the decoder, refused by the database


class Rejected(Exception):
    """A message that does not follow the profile; `detail` tells the sender what to fix."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
