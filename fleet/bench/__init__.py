"""Benchmarks: each is a function returning a flat dict of figures, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Benchmark = Callable[..., dict[str, Any]]

_REGISTRY: dict[str, tuple[str, str]] = {
    # name -> (module, description); imported lazily so one benchmark's deps never slow another
    "senml": ("fleet.bench.senml", "SenML decode and validation throughput on the ingest path"),
    "dashboard": ("fleet.bench.dashboard", "Overview at 10,000 devices and a year of chart data"),
    "ingest": (
        "fleet.bench.ingest",
        "Devices → Mosquitto → ingest → PostgreSQL: throughput, loss, latency, 10k connections",
    ),
    "provision": ("fleet.bench.provision", "Technician time per device: enrol + install + verify"),
    "risk": ("fleet.bench.risk", "Mould index and threshold rules: incremental and bulk cost"),
    "firmware": (
        "fleet.bench.firmware",
        "Firmware in the VM: heap, awake time, bytes, battery life",
    ),
    "ota": (
        "fleet.bench.ota",
        "OTA rollout to 50 VM devices: wall time, bytes per device, Ed25519 check on device",
    ),
    "feed": (
        "fleet.bench.feed",
        "SensorThings Observations paging ($top=1000) and CSV export on PostgreSQL, 1 year",
    ),
}


def names() -> dict[str, str]:
    return {name: desc for name, (_, desc) in _REGISTRY.items()}


def load(name: str) -> Benchmark:
    import importlib

    try:
        module_name, _ = _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no benchmark {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None
    module = importlib.import_module(module_name)
    run: Benchmark = module.run
    return run


def takes_devices(run: Benchmark) -> bool:
    """Does the benchmark size itself by a device count (`fleet bench NAME --devices N`)?"""
    import inspect

    return "devices" in inspect.signature(run).parameters
