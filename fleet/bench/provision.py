"""Technician time per device for the host-side steps: enrol + install + verify.

Virtual boards (the MicroPython VM on a pty) stand in for USB-attached sensors; real
mpremote installs onto them; after `verify` resets a board, the launcher boots the installed
files against the fleet's embedded broker (plain MQTT: TLS costs the device, not the
technician). The flash write is excluded (it is bounded by the serial link, ~20 s at
460800 baud for a 1.6 MB image).
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from fleet.access import accounts
from fleet.access.roles import ROLE_SCOPES, Role
from fleet.api.app import create_app
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.enrolment import wifi
from fleet.enrolment.secrets import SecretBox
from fleet.registry import places
from fleet.runtime import FleetRuntime
from fleet.simulator import VirtualDevice, find_micropython
from fleet.simulator.build import build_firmware
from fleet.simulator.paths import FROZEN_PATH

DEVICES = 3


class _InstalledDevice(VirtualDevice):
    """Boots what provisioning installed in the device folder, the simulated board after it."""

    def command(self) -> list[str]:
        return [str(find_micropython()), "-X", f"heapsize={self.heapsize}", "main.py"]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["MICROPYPATH"] = os.pathsep.join([str(self.device_dir.resolve()), env["MICROPYPATH"]])
        return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run() -> dict[str, Any]:
    from provisioning import steps
    from provisioning.bundle import Intervals
    from provisioning.ui import Ui
    from provisioning.virtual_board import VirtualBoard

    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
        root = Path(tmp)
        ctx = build_context(
            Settings(environment="test", data_dir=root / "data", embedded_broker_port=0)
        )
        with ctx.sessions.begin() as s:
            borough = places.create_borough(s, code="bench", name="Bench")
            wifi.set_profile(
                s,
                box=SecretBox.from_settings(ctx.settings),
                borough=borough,
                ssid="w",
                password="password",
            )
            user = accounts.create_user(
                s,
                email="tech@bench.org",
                name="tech",
                role=Role.TECHNICIAN,
                borough_codes=["bench"],
            )
            token, _ = accounts.issue_api_token(
                s, user, name="bench", scopes=ROLE_SCOPES[Role.TECHNICIAN]
            )
        runtime = FleetRuntime(ctx)
        broker = runtime.start()
        ctx.settings.device_mqtt_url = f"mqtt://{broker.host}:{broker.port}"
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        sim_build = build_firmware(root / "sim-build")
        context = steps.Context(
            ui=Ui(),
            work_dir=root / "work",
            fleet_url=f"http://127.0.0.1:{port}",
            token=token,
            intervals=Intervals(sample_s=1, health_s=5),
        )
        times: dict[str, list[float]] = {"enrol": [], "install": [], "reinstall": [], "verify": []}
        compile_s = 0.0
        try:
            for i in range(DEVICES):
                device_id = f"cs-be0c{i:08x}"
                board = VirtualBoard(
                    root / "devices" / device_id,
                    micropython=find_micropython(),
                    micropypath=[sim_build, Path(FROZEN_PATH)],
                )
                board.start()
                place = steps.Place("bench", f"BENCH-{i:04d}", "bedroom")
                t0 = time.perf_counter()
                steps.enrol(context, device_id=device_id, place=place)
                t1 = time.perf_counter()
                if i == 0:  # compile once, outside the per-device figures
                    from provisioning.bundle import build_firmware as compile_firmware

                    compile_firmware(context.work_dir / ".cache")
                    compile_s = time.perf_counter() - t1
                    t1 = time.perf_counter()
                steps.install(context, port=board.port, device_id=device_id)
                t2 = time.perf_counter()
                steps.install(context, port=board.port, device_id=device_id)
                t3 = time.perf_counter()
                device = _InstalledDevice(
                    device_id=device_id,
                    data_dir=board.root.parent,
                    broker_host=broker.host,
                    broker_port=broker.port,
                    sample_interval_s=1,
                    health_interval_s=5,
                )

                def boot(b: VirtualBoard = board, d: VirtualDevice = device) -> None:
                    b.wait(60)
                    d.start()

                watcher = threading.Thread(target=boot, daemon=True)
                watcher.start()
                try:
                    steps.verify(
                        context,
                        port=board.port,
                        device_id=device_id,
                        reset=True,
                        timeout_s=60,
                        poll_s=0.1,
                    )
                    t4 = time.perf_counter()
                finally:
                    watcher.join(5)
                    device.stop()
                    board.stop()
                times["enrol"].append(t1 - t0)
                times["install"].append(t2 - t1)
                times["reinstall"].append(t3 - t2)
                times["verify"].append(t4 - t3)
        finally:
            server.should_exit = True
            thread.join(10)
            runtime.stop()
            ctx.close()
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "devices": DEVICES,
        "enrol_s_p50": round(median["enrol"], 3),
        "install_s_p50": round(median["install"], 3),
        "reinstall_unchanged_s_p50": round(median["reinstall"], 3),
        "verify_s_p50": round(median["verify"], 3),
        "per_device_s_p50": round(median["enrol"] + median["install"] + median["verify"], 3),
        "firmware_compile_once_s": round(compile_s, 3),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpu",
    }
