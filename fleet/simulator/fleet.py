"""A set of virtual devices started and stopped together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fleet.simulator.build import build_firmware
from fleet.simulator.device import VirtualDevice
from fleet.simulator.identity import device_id_for_seed
from fleet.simulator.paths import DEFAULT_HEAPSIZE


class VirtualFleet:
    """`count` devices seeded `base_seed .. base_seed+count-1`, in `data_dir/<device_id>/`."""

    def __init__(
        self,
        count: int,
        data_dir: Path | str,
        broker_host: str = "127.0.0.1",
        broker_port: int = 1883,
        heapsize: str = DEFAULT_HEAPSIZE,
        sample_interval_s: int = 900,
        health_interval_s: int = 3600,
        base_seed: int = 1,
    ) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        self.data_dir = Path(data_dir)
        self.devices = [
            VirtualDevice(
                device_id=device_id_for_seed(base_seed + i),
                data_dir=self.data_dir,
                broker_host=broker_host,
                broker_port=broker_port,
                heapsize=heapsize,
                sample_interval_s=sample_interval_s,
                health_interval_s=health_interval_s,
                seed=base_seed + i,
            )
            for i in range(count)
        ]

    def start(self) -> None:
        build = build_firmware(self.data_dir / ".build")  # once for all devices
        for dev in self.devices:
            dev._build_dir = build
        started: list[VirtualDevice] = []
        try:
            for dev in self.devices:
                dev.start()
                started.append(dev)
        except BaseException:
            for dev in started:
                dev.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        for dev in self.devices:
            dev.stop(timeout)

    @property
    def device_ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def running(self) -> list[VirtualDevice]:
        return [d for d in self.devices if d.is_running]

    def __iter__(self) -> Iterator[VirtualDevice]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def __enter__(self) -> VirtualFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
