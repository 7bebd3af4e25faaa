"""A flood of bad messages writes a log line per reason and minute, not one per message;
every reject is still stored."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.ingest.reject_log import RejectLog
from fleet.models import RejectedMessage
from fleet.registry.devices import register_device

DEV = "cs-flood-0001"
TOPIC = f"cs/v1/d/{DEV}/up"


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def test_a_flood_of_bad_messages_logs_once_and_stores_every_reject(
    fleet_ctx: FleetContext, caplog: pytest.LogCaptureFixture
) -> None:
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=DEV)
    handler = IngestHandler(fleet_ctx.sessions)
    caplog.set_level(logging.INFO, logger="fleet")
    for _ in range(5):
        outcomes = handler.handle_batch([(TOPIC, b"not json")] * 40)
        assert {o.action for o in outcomes} == {"rejected"}
    (line,) = info_lines(caplog)
    assert line.startswith(f"rejected malformed_json on {TOPIC}: payload is not JSON")
    with fleet_ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RejectedMessage)) == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_rest_of_a_minute_is_summed_up_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rejects = RejectLog(logging.getLogger("fleet.test.rejects"), clock=clock)
    caplog.set_level(logging.INFO, logger="fleet.test.rejects")
    rejects.note([("bad_json", "t/a", "not JSON")] * 3 + [("unknown_device", "t/b", "enrol it")])
    assert info_lines(caplog) == [
        "rejected bad_json on t/a: not JSON",
        "rejected unknown_device on t/b: enrol it",
    ]
    caplog.clear()

    clock.now += 30
    rejects.note([("bad_json", "t/c", "not JSON either")])
    rejects.note([])
    assert info_lines(caplog) == []  # counted, not logged

    clock.now += 31  # a minute after the first: one line per reason that had more
    rejects.note([])
    assert info_lines(caplog) == [
        "rejected 3 more bad_json messages in the last 61 s (latest on t/c: not JSON either)"
    ]
    caplog.clear()

    clock.now += 10  # the flood goes on: still counted
    rejects.note([("bad_json", "t/a", "not JSON")])
    assert info_lines(caplog) == []
    clock.now += 60
    rejects.note([])
    assert info_lines(caplog) == [
        "rejected 1 more bad_json messages in the last 70 s (latest on t/a: not JSON)"
    ]
    caplog.clear()

    clock.now += 120  # a quiet minute ends the window: the next one is logged in full again
    rejects.note([])
    rejects.note([("bad_json", "t/d", "not JSON")])
    assert info_lines(caplog) == ["rejected bad_json on t/d: not JSON"]
