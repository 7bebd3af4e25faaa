"""Taking a sensor out of service, the one way the API's DELETE and the dashboard's
Decommission button both use: certificates revoked, the device retired (or, for an admin,
erased with its readings), the act audited, and the broker's retained settings and update
offer for its hardware id cleared once the change is committed."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.commands.send import Publisher
from fleet.core.settings import Settings
from fleet.enrolment import certificates
from fleet.ingest.profile import device_topic
from fleet.models import Device
from fleet.ota.offers import offer_topic, publish_offer
from fleet.registry import devices as registry
from fleet.registry.retired import RETIRE_ACTION

log = logging.getLogger(__name__)

ERASE_ACTION = "device.erase"


def decommission(
    session: Session,
    device: Device,
    *,
    principal: Principal,
    settings: Settings,
    publisher: Publisher | None,
    erase_readings: bool = False,
) -> dict[str, object]:
    """Take ``device`` out of service and commit; what was done, as audited.

    Whether ``principal`` may (and may erase) is the caller's check.
    """
    device_id, borough_id = device.device_id, device.borough_id
    revoked = certificates.revoke_live(session, settings=settings, device=device)
    detail: dict[str, object] = {"certificates_revoked": revoked}
    if erase_readings:
        action = ERASE_ACTION
        detail["readings_deleted"] = registry.erase(session, device)
    else:
        action = RETIRE_ACTION
        retired = registry.retire(session, device)
        detail.update(
            readings_kept=retired.readings_kept,
            alerts_resolved=retired.alerts_resolved,
            offers_withdrawn=retired.offers_withdrawn,
        )
    audit.record(
        session,
        principal,
        action,
        target_type="device",
        target_id=device_id,
        borough_id=borough_id,
        detail=detail,
    )
    session.commit()
    clear_retained(publisher, device_id)
    return detail


def clear_retained(publisher: Publisher | None, device_id: str) -> None:
    """A sensor enrolled again under this hardware id must not find the retired device's
    settings or update offer retained on its topics (an empty retained message clears one)."""
    settings = device_topic(device_id, "config")
    topics = [settings, offer_topic(device_id)]
    cleared = publisher is not None and all(
        [
            publisher.publish(settings, b"", qos=1, retain=True),
            publish_offer(publisher, device_id, b""),  # the OTA engine's own withdrawal
        ]
    )
    if not cleared:
        log.warning(
            "broker not reached: clear the retained %s by hand before enrolling %s again",
            " and ".join(topics),
            device_id,
        )
