"""Classify MQTT topics of the `cs/v1` tree."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.profile import DEVICE_ID_RE, TOPIC_ROOT


class Upstream(StrEnum):
    """What a device sends; the fleet ingests these."""

    TELEMETRY = "up"
    HEALTH = "health"
    STATUS = "status"
    COMMAND_ACK = "cmd/ack"
    OTA_PROGRESS = "ota/progress"  # decoded by fleet.ota.progress


# What the fleet itself publishes; seen by a wildcard subscription and skipped.
DOWNSTREAM_LEAVES = frozenset({"cmd", "config", "ota"})


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    device_id: str
    kind: Upstream | None  # None: a downstream topic the ingest ignores


# A fleet's topics repeat with every message; a bad topic raises and is never cached.
@functools.lru_cache(maxsize=65536)
def parse_topic(topic: str) -> DeviceTopic:
    prefix = f"{TOPIC_ROOT}/d/"
    if not topic.startswith(prefix):
        raise Rejected(RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is outside {prefix}")
    device_id, _, leaf = topic[len(prefix) :].partition("/")
    if not DEVICE_ID_RE.match(device_id):
        raise Rejected(
            RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} has an invalid device id {device_id!r}"
        )
    if leaf in DOWNSTREAM_LEAVES:
        return DeviceTopic(device_id, None)
    try:
        return DeviceTopic(device_id, Upstream(leaf))
    except ValueError:
        known = ", ".join(u.value for u in Upstream)
        raise Rejected(
            RejectReason.UNKNOWN_TOPIC,
            f"topic {topic!r}: {leaf!r} is not a device topic (expected one of {known})",
        ) from None
