"""What a load run sent, kept so loss and duplicates can be counted against the database."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleet.loadgen.payloads import READINGS_PER_PACK


@dataclass
class DeviceLog:
    # Base times (ms precision) of telemetry packs the broker acknowledged: each must end up
    # as READINGS_PER_PACK readings, exactly once.
    confirmed: list[float] = field(default_factory=list)
    # Sent but never acknowledged before the run ended: may or may not be stored.
    unconfirmed: list[float] = field(default_factory=list)
    # Base times of health packs the broker acknowledged: one snapshot each, exactly once.
    health: list[float] = field(default_factory=list)
    bad: int = 0
    ota: int = 0
    connects: int = 0
    errors: int = 0


@dataclass
class Manifest:
    devices: dict[str, DeviceLog] = field(default_factory=dict)
    readings_per_pack: int = READINGS_PER_PACK
    started_at: float = 0.0
    finished_at: float = 0.0
    # Connections each reconnect storm dropped: every one of them must come back.
    storm_drops: list[int] = field(default_factory=list)

    def device(self, device_id: str) -> DeviceLog:
        log = self.devices.get(device_id)
        if log is None:
            log = self.devices[device_id] = DeviceLog()
        return log

    @property
    def packs(self) -> int:
        return sum(len(d.confirmed) for d in self.devices.values())

    @property
    def readings(self) -> int:
        return self.packs * self.readings_per_pack

    def totals(self) -> dict[str, float]:
        logs = self.devices.values()
        elapsed = max(self.finished_at - self.started_at, 1e-9)
        return {
            "devices": len(self.devices),
            "packs": self.packs,
            "readings": self.readings,
            "unconfirmed": sum(len(d.unconfirmed) for d in logs),
            "bad": sum(d.bad for d in logs),
            "health": sum(len(d.health) for d in logs),
            "ota": sum(d.ota for d in logs),
            "connects": sum(d.connects for d in logs),
            "errors": sum(d.errors for d in logs),
            "elapsed_s": round(elapsed, 3),
            "packs_per_s": round(self.packs / elapsed, 1),
        }

    def save(self, path: Path) -> None:
        doc = {
            "readings_per_pack": self.readings_per_pack,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "devices": {k: asdict(v) for k, v in self.devices.items()},
        }
        path.write_text(json.dumps(doc))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        doc = json.loads(path.read_text())
        return cls(
            devices={k: DeviceLog(**v) for k, v in doc["devices"].items()},
            readings_per_pack=doc["readings_per_pack"],
            started_at=doc["started_at"],
            finished_at=doc["finished_at"],
        )
