"""The background retention purge ends between boroughs when told to stop: a borough purged
stays purged with its audit entry, the others are untouched, and the next purge finishes
with what one purge never interrupted would have left."""

from __future__ import annotations

from datetime import timedelta

from fleet.feed import stewardship
from tests.feed.conftest import POINTS, T0, FeedWorld
from tests.feed.test_stewardship import audit, readings
from tests.fleet.stopping import stop_after

# Past the default 730-day retention of every metric.
NOW = T0 + timedelta(days=731)
ALL = {"temperature": POINTS, "humidity": POINTS, "battery": POINTS}


def _audited(world: FeedWorld) -> dict[str | None, object]:
    """Borough code -> the deletions its audit entry records."""
    out: dict[str | None, object] = {}
    for entry in audit(world, "feed.retention_purge"):
        assert entry.detail is not None
        out[entry.target_id] = entry.detail["deleted"]
    return out


def test_a_stopped_purge_keeps_its_first_borough_and_the_next_finishes(
    feed_world: FeedWorld,
) -> None:
    sessions = feed_world.ctx.sessions
    with stop_after(feed_world.ctx.engine, commits=1) as stop:
        first = stewardship.purge_committed(sessions, now=NOW, should_continue=stop)
    assert stop.tripped
    assert first == {"hackney": ALL}
    assert readings(feed_world, "cs-hackney-0001") == 0
    assert readings(feed_world, "cs-camden-0001") == 3 * POINTS
    assert _audited(feed_world) == {"hackney": ALL}

    rest = stewardship.purge_committed(sessions, now=NOW)
    assert rest == {"camden": ALL}
    # As one purge never interrupted: every expired reading gone, one audit entry a borough.
    assert readings(feed_world, "cs-hackney-0001") == 0
    assert readings(feed_world, "cs-camden-0001") == 0
    assert _audited(feed_world) == {"hackney": ALL, "camden": ALL}
    assert len(audit(feed_world, "feed.retention_purge")) == 2
    assert stewardship.purge_committed(sessions, now=NOW) == {}
