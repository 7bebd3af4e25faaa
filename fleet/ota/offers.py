"""Offers on each device's retained `cs/v1/d/{id}/ota` topic: what is published, and
restating them all from the database when the broker may have lost or kept a stale one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.models import Device
from fleet.models.ota import Release, Rollout, RolloutDevice


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool: ...


def offer_topic(device_id: str) -> str:
    return f"cs/v1/d/{device_id}/ota"


def publish_offer(publisher: Publisher, device_id: str, payload: bytes) -> bool:
    """An offer, or its withdrawal when empty: the retained message on the device's topic,
    so a device that is away finds it when it comes back."""
    return publisher.publish(offer_topic(device_id), payload, qos=1, retain=True)


def offer_payload(release: Release, job_id: str, url: str) -> bytes:
    body = {
        "sv": 1,
        "id": job_id,
        "kind": release.kind,
        "version": release.version,
        "manifest": release.manifest,
        "sigs": release.sigs,
        "url": url,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def restate_offers(
    session: Session, publisher: Publisher, blob_url: Callable[[Release], str]
) -> tuple[int, int, bool]:
    """Publish again the retained offer each device should find, from the database: the
    broker may have lost it (a crash of the embedded broker, or of Mosquitto between its
    autosaves) or missed a withdrawal sent while the fleet's connection was down.

    Only a device's newest rollout membership counts, as only the newest offer is retained
    on its topic: an older rollout's offer must never come back after a newer one. Returns
    (offers, withdrawals, all published)."""
    # Ranked in the database: only the newest membership on each topic comes back. A topic is
    # a hardware id, which a retired device shares with the device enrolled after it.
    rank = (
        func.row_number()
        .over(
            partition_by=Device.device_id,
            order_by=(RolloutDevice.offered_at.desc(), RolloutDevice.id.desc()),
        )
        .label("rank")
    )
    newest = (
        select(RolloutDevice.id, rank).join(Device, Device.id == RolloutDevice.device_pk).subquery()
    )
    rows = session.execute(
        select(RolloutDevice.state, RolloutDevice.job_id, Rollout.state, Rollout.release_id)
        .add_columns(Device.device_id)
        .join(newest, newest.c.id == RolloutDevice.id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(newest.c.rank == 1, RolloutDevice.state.in_(("offered", "withdrawn")))
    ).all()
    release_ids = {row.release_id for row in rows}
    releases = {
        r.id: r for r in session.scalars(select(Release).where(Release.id.in_(release_ids)))
    }
    offers = withdrawals = 0
    ok = True
    for member_state, job_id, rollout_state, release_id, device_id in rows:
        if member_state == "withdrawn":
            payload = b""
            withdrawals += 1
        elif rollout_state in ("running", "completed"):
            release = releases[release_id]
            payload = offer_payload(release, job_id, blob_url(release))
            offers += 1
        else:
            continue  # an offer of a rollout no longer open is withdrawn when it closes
        ok = publish_offer(publisher, device_id, payload) and ok
    return offers, withdrawals, ok
