"""Topic classification table."""

from __future__ import annotations

import pytest

from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.topics import Upstream, parse_topic


@pytest.mark.parametrize(
    ("topic", "device", "kind"),
    [
        ("cs/v1/d/cs-abc-001/up", "cs-abc-001", Upstream.TELEMETRY),
        ("cs/v1/d/cs-abc-001/health", "cs-abc-001", Upstream.HEALTH),
        ("cs/v1/d/cs-abc-001/status", "cs-abc-001", Upstream.STATUS),
        ("cs/v1/d/cs-abc-001/cmd/ack", "cs-abc-001", Upstream.COMMAND_ACK),
        ("cs/v1/d/cs-abc-001/cmd", "cs-abc-001", None),
        ("cs/v1/d/cs-abc-001/config", "cs-abc-001", None),
    ],
)
def test_known_topics(topic: str, device: str, kind: Upstream | None) -> None:
    parsed = parse_topic(topic)
    assert (parsed.device_id, parsed.kind) == (device, kind)


@pytest.mark.parametrize(
    "topic",
    [
        "cs/v1/d/cs-abc-001/telemetry",
        "cs/v1/d/cs-abc-001",
        "cs/v1/d/cs-abc-001/up/extra",
        "cs/v1/d/CS-UPPER/up",
        "cs/v1/d//up",
        "cs/v2/d/cs-abc-001/up",
        "cs/v1/x/cs-abc-001/up",
        "elsewhere",
    ],
)
def test_wrong_topics_rejected(topic: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_topic(topic)
    assert info.value.reason == RejectReason.UNKNOWN_TOPIC
