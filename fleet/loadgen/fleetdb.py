"""The database side of a load run: register the simulated devices, then count what arrived."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from fleet.loadgen.manifest import Manifest
from fleet.models import Device, HealthSnapshot, Reading, RejectedMessage

_CHUNK = 1000


def register_devices(
    sessions: sessionmaker[Session], device_ids: Sequence[str], *, report_interval_s: int = 900
) -> int:
    """Register the devices that are not yet known, in bulk; returns how many were added."""
    added = 0
    with sessions.begin() as session:
        for i in range(0, len(device_ids), _CHUNK):
            chunk = device_ids[i : i + _CHUNK]
            known = set(
                session.scalars(select(Device.device_id).where(Device.current_among(chunk)))
            )
            rows = [
                {"device_id": d, "name": f"load {d}", "report_interval_s": report_interval_s}
                for d in chunk
                if d not in known
            ]
            if rows:
                session.execute(insert(Device), rows)
                added += len(rows)
    return added


@dataclass(frozen=True)
class Tally:
    """Sent against stored, per reading and per health snapshot."""

    expected: int  # readings in packs the broker acknowledged
    stored: int  # readings rows of the run's devices
    lost: int  # acknowledged readings that are not in the database
    duplicates: int  # rows beyond one per (device, metric, time)
    unexpected: int  # stored readings no acknowledged (or pending) pack explains
    rejects: int  # rejected messages recorded for the run's devices
    health_lost: int = 0  # acknowledged health packs without their snapshot
    health_duplicates: int = 0  # snapshots beyond one per (device, time sampled)

    @property
    def ok(self) -> bool:
        missing = self.lost + self.health_lost
        return missing == 0 and self.duplicates + self.health_duplicates + self.unexpected == 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def count_against_db(sessions: sessionmaker[Session], manifest: Manifest) -> Tally:
    """Compare every acknowledged pack with the rows it must have produced, exactly once."""
    per_pack = manifest.readings_per_pack
    lost = duplicates = unexpected = stored = rejects = health_lost = health_duplicates = 0
    ids = sorted(manifest.devices)
    with sessions() as session:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = session.execute(
                select(Device.device_id, Reading.ts, func.count())
                .join(Reading, Reading.device_pk == Device.id)
                .where(Device.current_among(chunk))
                .group_by(Device.device_id, Reading.ts)
            ).all()
            seen: dict[str, dict[float, int]] = {}
            for device_id, ts, n in rows:
                seen.setdefault(device_id, {})[round(ts.timestamp(), 3)] = int(n)
                stored += int(n)
            for device_id in chunk:
                log = manifest.devices[device_id]
                have = seen.get(device_id, {})
                pending = {round(t, 3) for t in log.unconfirmed}
                for t in log.confirmed:
                    n = have.pop(round(t, 3), 0)
                    lost += max(0, per_pack - n)
                    duplicates += max(0, n - per_pack)
                for t, n in have.items():
                    if t in pending:
                        duplicates += max(0, n - per_pack)
                    else:
                        unexpected += n
            snapshots = _health_counts(session, chunk)
            for device_id in chunk:
                have = snapshots.get(device_id, {})
                health_lost += sum(
                    round(t, 3) not in have for t in manifest.devices[device_id].health
                )
                health_duplicates += sum(n - 1 for n in have.values())
            rejects += int(
                session.scalar(
                    select(func.count())
                    .select_from(RejectedMessage)
                    .where(RejectedMessage.device_id.in_(chunk))
                )
                or 0
            )
    return Tally(
        expected=manifest.readings,
        stored=stored,
        lost=lost,
        duplicates=duplicates,
        unexpected=unexpected,
        rejects=rejects,
        health_lost=health_lost,
        health_duplicates=health_duplicates,
    )


def _health_counts(session: Session, device_ids: Sequence[str]) -> dict[str, dict[float, int]]:
    rows = session.execute(
        select(Device.device_id, HealthSnapshot.sampled_at, func.count())
        .join(HealthSnapshot, HealthSnapshot.device_pk == Device.id)
        .where(Device.current_among(device_ids))
        .group_by(Device.device_id, HealthSnapshot.sampled_at)
    ).all()
    counts: dict[str, dict[float, int]] = {}
    for device_id, sampled_at, n in rows:
        if sampled_at is not None:  # a snapshot without the device's time matches no pack
            counts.setdefault(device_id, {})[round(sampled_at.timestamp(), 3)] = int(n)
    return counts
