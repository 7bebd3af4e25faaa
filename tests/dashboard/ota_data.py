"""Releases and rollouts for the update pages, made through the OTA service layer."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext
from fleet.models import Borough, Device
from fleet.models.ota import RolloutDevice
from fleet.ota import bundle, rollout, service, signing
from fleet.ota.package import ReleaseFile
from fleet.registry.devices import register_device

FILES = {"cs/app.mpy": b"M\x06app", "cs/__init__.mpy": b"M\x06init"}


class Recorder:
    """Stands in for the broker connection: keeps what would be published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        self.sent.append((topic, payload, retain))
        return True

    def withdrawn(self) -> set[str]:
        return {t.split("/")[3] for t, p, retain in self.sent if retain and p == b""}


def publish_release(ctx: FleetContext, keys: Path, version: str = "0.2.0") -> int:
    key = signing.generate(keys)
    built = ReleaseFile.from_built(bundle.build_app(version, files=FILES))
    built.sign(key)
    with ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        return service.publish_release(s, SYSTEM, built, "damp threshold fix").id


def hackney_rollout(
    ctx: FleetContext, release_id: int, *, extra_devices: int = 3, soak_s: int = 600
) -> int:
    """A rollout in two waves ([2, "100%"]) over Hackney's devices, all on 0.1.0."""
    with ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough.id).where(Borough.code == "hackney")).one()
        for i in range(extra_devices):
            register_device(s, device_id=f"cs-hackney-1{i:03d}", borough_id=hackney)
        s.flush()
        for d in s.scalars(select(Device)):
            d.fw_version = "0.1.0"
        r = rollout.create_rollout(
            s,
            SYSTEM,
            release_id=release_id,
            target={"borough_id": hackney},
            waves=[2, "100%"],
            soak_s=soak_s,
            failure_threshold=0.5,
        )
        return r.id


def jobs(ctx: FleetContext, rollout_id: int) -> dict[str, str]:
    """{device id: job id} of the devices offered so far."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(Device.device_id, RolloutDevice.job_id)
            .join(RolloutDevice, RolloutDevice.device_pk == Device.id)
            .where(RolloutDevice.rollout_id == rollout_id)
        ).all()
    return {d: j for d, j in rows}


def report(ctx: FleetContext, device_id: str, job: str, state: str, **extra: object) -> None:
    """What ingest does with a device's `ota/progress` message."""
    doc = {"sv": 1, "id": job, "state": state, "app": "0.1.0", "version": "0.2.0", **extra}
    with ctx.sessions.begin() as s:
        pk = s.scalars(select(Device.id).where(Device.device_id == device_id)).one()
        service.record_progress(s, pk, doc)
