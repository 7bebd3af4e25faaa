"""The main command and the simulator command, run as a user would, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fleet.ota import bundle, signing
from fleet.ota.cli import release_app
from fleet.ota.package import ReleaseFile
from fleet.ota.sim import read_files
from tests.conftest import free_port
from tests.firmware.conftest import wait_until

pytestmark = [pytest.mark.vm]
FLEET = str(Path(sys.executable).with_name("fleet"))


def _micropython_pids(data_dir: Path) -> list[int]:
    """VM processes whose working directory is inside this run's device folders."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if "micropython" not in (proc / "comm").read_text():
                continue
            if str(data_dir) in os.readlink(proc / "cwd"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FLEET, *args], env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _interrupt(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=30)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_demo_stopped_by_a_signal_saves_its_state_and_leaves_no_devices_running(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """SIGHUP is what a closed terminal sends."""
    data = tmp_path / "data"
    env = {"FLEET_DATA_DIR": str(data), "FLEET_EMBEDDED_BROKER_PORT": "0"}
    log = tmp_path / "demo.log"
    port = str(free_port())
    proc = _start(["demo", "--devices", "2", "--interval", "3", "--port", port], env, log)
    try:
        wait_until(lambda: len(_micropython_pids(data)) == 2, 60, "two virtual devices running")
    finally:
        code = _interrupt(proc, stop)
    assert code == 0, log.read_text()[-3000:]
    assert _micropython_pids(data) == []
    assert (data / "broker-state.json").exists(), log.read_text()[-3000:]


def test_demo_killed_leaves_no_devices_running_and_starts_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"FLEET_DATA_DIR": str(data), "FLEET_EMBEDDED_BROKER_PORT": "0"}
    args = ["demo", "--devices", "2", "--interval", "3", "--port", str(free_port())]
    proc = _start(args, env, tmp_path / "killed.log")
    try:
        wait_until(lambda: len(_micropython_pids(data)) == 2, 60, "two virtual devices running")
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: _micropython_pids(data) == [], 10, "the devices gone with the demo")
    log = tmp_path / "again.log"
    proc = _start(args, env, log)
    try:
        wait_until(lambda: len(_micropython_pids(data)) == 2, 60, "the devices running again")
        # The restart found its demo flats and placed nobody twice.
        wait_until(lambda: _healthy(int(args[-1])), 30, "the dashboard")
        base = f"http://127.0.0.1:{args[-1]}"
        headers = {"Authorization": f"Bearer {(data / 'admin-token').read_text().strip()}"}
        flats = httpx.get(
            f"{base}/api/v1/boroughs/demo/properties", headers=headers, timeout=30
        ).json()
        assert [f["reference"] for f in flats] == ["DEMO-001", "DEMO-002"]
        for flat in flats:
            url = f"{base}/api/v1/properties/{flat['id']}/placements"
            assert len(httpx.get(url, headers=headers, timeout=30).json()) == 1
    finally:
        code = _interrupt(proc)
    assert code == 0, log.read_text()[-3000:]


def test_a_second_service_refuses_a_taken_data_folder_or_port(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {"FLEET_DATA_DIR": str(data), "FLEET_EMBEDDED_BROKER_PORT": "0"}
    log = tmp_path / "demo.log"
    demo = _start(["demo", "--devices", "1", "--interval", "3", "--port", str(port)], env, log)
    try:
        wait_until(lambda: _healthy(port) and len(_micropython_pids(data)) == 1, 60, "the demo")
        same_folder = _run(["serve", "--port", str(free_port())], env)
        assert same_folder.returncode == 1
        assert f"{data} is in use by another fleet service" in same_folder.stdout
        assert f"pid {demo.pid}" in same_folder.stdout
        assert "broker listening" not in same_folder.stdout  # refused before starting

        other = tmp_path / "other"
        same_port = _run(["serve", "--port", str(port)], {**env, "FLEET_DATA_DIR": str(other)})
        assert same_port.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in same_port.stdout
        assert not (other / "fleet.sqlite3").exists()  # refused before starting

        fleet_url = f"http://127.0.0.1:{port}"
        devices = _run(
            ["sim", "-n", "1", "--data-dir", str(data / "devices"), "--fleet-url", fleet_url], {}
        )
        assert devices.returncode == 2
        assert "is already running from another process" in devices.stdout
        assert len(_micropython_pids(data)) == 1 and _healthy(port)
    finally:
        code = _interrupt(demo)
    assert code == 0, log.read_text()[-3000:]


def test_a_data_folder_that_cannot_be_made_is_refused_with_the_reason(tmp_path: Path) -> None:
    taken = tmp_path / "data"
    taken.write_text("a file where the folder should be")
    result = _run(["serve", "--port", str(free_port())], {"FLEET_DATA_DIR": str(taken)})
    assert result.returncode == 1
    assert f"cannot use the data folder {taken} (File exists)" in result.stdout
    assert "Traceback" not in result.stdout


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run to the end, output and errors together; a wide terminal keeps rich's messages
    on one line each."""
    return subprocess.run(
        [FLEET, *args],
        env={**os.environ, "COLUMNS": "400", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def test_demo_shows_devices_online_with_changing_readings(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {"FLEET_DATA_DIR": str(data), "FLEET_EMBEDDED_BROKER_PORT": "0"}
    log = tmp_path / "demo.log"
    proc = _start(["demo", "--devices", "5", "--interval", "3", "--port", str(port)], env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        token = wait_until(
            lambda: (data / "admin-token").exists() and (data / "admin-token").read_text().strip(),
            30,
            "the admin token",
        )
        headers = {"Authorization": f"Bearer {token}"}

        def devices() -> list[dict]:
            try:
                return httpx.get(f"{base}/api/v1/devices", headers=headers, timeout=30).json()[
                    "items"
                ]
            except (httpx.HTTPError, KeyError, ValueError):
                return []

        first = wait_until(
            lambda: (
                (d := devices())
                and len(d) == 5
                and all(x["state"] == "online" and x["latest"] for x in d)
                and d
            ),
            60,
            "five devices online with readings",
        )
        before = {d["device_id"]: d["latest"]["humidity"]["t"] for d in first}
        wait_until(
            lambda: all(d["latest"]["humidity"]["t"] > before[d["device_id"]] for d in devices()),
            30,
            "newer readings from every device",
        )
        assert "admin@demo.local" in log.read_text()
        assert len(_micropython_pids(data)) == 5
        # Each device is in a flat of the demo estate, so the registry and risk pages show
        # homes: five flats, one placement each, every device at its own.
        flats = httpx.get(
            f"{base}/api/v1/boroughs/demo/properties", headers=headers, timeout=30
        ).json()
        assert sorted(f["reference"] for f in flats) == [f"DEMO-{i:03d}" for i in range(1, 6)]
        placed = {
            p["id"]
            for f in flats
            for p in httpx.get(
                f"{base}/api/v1/properties/{f['id']}/placements", headers=headers, timeout=30
            ).json()
        }
        assert {d["placement_id"] for d in devices()} == placed and len(placed) == 5
        # Registered with the cadence their config.json runs, as provisioning records it.
        assert {(d["sample_interval_s"], d["health_interval_s"]) for d in devices()} == {(3, 30)}
        # The demo's release key is trusted: a release signed with it is published.
        (pem,) = (data / "release-keys").glob("*.pem")
        key = signing.load(pem)
        release = ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/x.mpy": b"M"}))
        release.sign(key)
        release.save(tmp_path / "r.zip")
        args = ["upload", str(tmp_path / "r.zip"), "--api", base, "--token", token]
        uploaded = CliRunner().invoke(release_app, args)
        assert uploaded.exit_code == 0, uploaded.output
        assert "fleet release sign app-0.2.0.zip --keys" in log.read_text()
    finally:
        code = _interrupt(proc)
    assert code == 0, log.read_text()[-3000:]
    assert _micropython_pids(data) == []
    # ...and every virtual device accepts releases signed with it.
    for device_dir in (data / "devices").glob("cs-*"):
        trust = read_files(device_dir, ("ota/trust.json",))["ota/trust.json"]
        assert trust == {"keys": {key.kid: key.public_hex}, "floor": "0.0.0"}


@pytest.mark.mosquitto
def test_sim_registers_devices_and_stops_cleanly(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    data = tmp_path / "fleet"
    env = {"FLEET_DATA_DIR": str(data), "FLEET_MQTT_URL": mosquitto.url}
    service = _start(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    sim_log = tmp_path / "sim.log"
    sim = None
    try:
        token = wait_until(
            lambda: (data / "admin-token").exists() and (data / "admin-token").read_text().strip(),
            30,
            "the admin token",
        )
        wait_until(lambda: _healthy(port), 30, "the fleet API")
        sim = _start(
            [
                "sim",
                "--devices",
                "3",
                "--broker",
                mosquitto.url,
                "--fleet-url",
                f"http://127.0.0.1:{port}",
                "--token",
                token,
                "--interval",
                "3",
                "--data-dir",
                str(tmp_path / "devices"),
            ],
            {},
            sim_log,
        )
        headers = {"Authorization": f"Bearer {token}"}
        wait_until(
            lambda: (
                sum(
                    d["state"] == "online"
                    for d in httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/devices", headers=headers, timeout=30
                    ).json()["items"]
                )
                == 3
            ),
            60,
            "three simulated devices online",
        )
        assert _interrupt(sim) == 0, sim_log.read_text()
        sim = None
        assert _micropython_pids(tmp_path / "devices") == []
    finally:
        if sim is not None:
            _interrupt(sim)
        _interrupt(service)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    except httpx.HTTPError:
        return False
