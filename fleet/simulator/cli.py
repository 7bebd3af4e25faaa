"""`fleet sim`: virtual devices for a fleet that is already running elsewhere."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
from rich.console import Console

from fleet.broker.url import BrokerAddress
from fleet.simulator.fleet import VirtualFleet
from fleet.simulator.identity import folder_seed
from fleet.simulator.paths import SimulatorError


def _token(token: str | None, fleet_data_dir: Path) -> str | None:
    if token:
        return token
    path = fleet_data_dir / "admin-token"
    return path.read_text().strip() if path.exists() else None


def register_over_api(
    fleet_url: str, token: str, device_ids: list[str], *, interval: int, console: Console
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=fleet_url, headers=headers, timeout=10) as client:
        for device_id in device_ids:
            r = client.post(
                "/api/v1/devices",
                json={
                    "device_id": device_id,
                    "name": "Virtual device",
                    "report_interval_s": interval,
                },
            )
            if r.status_code == 409:
                continue  # registered by an earlier run
            if r.status_code in (401, 403):
                raise SimulatorError(
                    f"the fleet refused the token ({r.status_code}): pass --token with a token "
                    "that has the devices:write scope"
                )
            if r.status_code != 201:
                raise SimulatorError(
                    f"the fleet refused to register {device_id} ({r.status_code}): {r.text[:300]}"
                )
            console.print(f"registered {device_id}")


def run_sim(
    *,
    devices: int,
    broker_url: str,
    fleet_url: str,
    token: str | None,
    heapsize: str,
    interval: int,
    data_dir: Path,
    console: Console,
) -> int:
    try:
        broker = BrokerAddress.parse(broker_url)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    try:
        base_seed = folder_seed(data_dir)
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot use {data_dir}: {exc}[/red]")
        return 2
    fleet = VirtualFleet(
        devices,
        data_dir,
        broker_host=broker.host,
        broker_port=broker.port,
        heapsize=heapsize,
        sample_interval_s=interval,
        health_interval_s=max(interval * 3, 30),
        base_seed=base_seed,
    )
    api_token = _token(token, data_dir.parent)
    try:
        if api_token is None:
            console.print(
                "[yellow]no admin token given: devices are not registered and the fleet will "
                "refuse their messages until they are (pass --token)[/yellow]"
            )
        else:
            register_over_api(
                fleet_url, api_token, fleet.device_ids, interval=interval, console=console
            )
        fleet.start()
    except SimulatorError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the fleet at {fleet_url}: {exc}[/red]")
        return 3
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: stop.set())  # the terminal was closed
    console.print(f"{devices} virtual devices running on {broker.url}; Ctrl-C stops them")
    stop.wait()
    console.print("stopping virtual devices...")
    fleet.stop()
    return 0
