"""enroll → install → verify against a virtual board, a TLS Mosquitto and the fleet.

The board is the MicroPython VM with its REPL on a pty; real mpremote writes the compiled
firmware, config and credentials into its filesystem. `verify` resets it (the VM exits) and
the launcher boots the installed files, which connect over TLS with the device certificate
the fleet issued, until the fleet shows the device online with a first reading.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select

from fleet.access.principal import SYSTEM
from fleet.models import Device, DeviceCertificate
from fleet.ota import service as ota_service
from fleet.ota import signing
from provisioning.cli import main
from provisioning.errors import ExitCode
from provisioning.virtual_board import VirtualBoard
from tests.conftest import REPO_ROOT
from tests.provisioning.conftest import HOST, InstalledDevice, TlsFleet, boot_after_reset

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

DEVICE = "cs-02a1b2c3d4e5"
TLS_CONTEXT = REPO_ROOT / "firmware" / "cs" / "tlsctx.py"


def _firmware_tls_usable() -> None:
    # MicroPython's `tls.SSLContext.load_verify_locations` takes its CA positionally (only
    # the `ssl` wrapper has `cadata=`): firmware calling it by keyword can never connect
    # over TLS, on the VM or on an ESP32. Reported to the firmware; remove once fixed.
    if "load_verify_locations(cadata=" in TLS_CONTEXT.read_text():
        pytest.xfail("firmware/cs/tlsctx.py calls tls load_verify_locations(cadata=...)")


def _args(fleet: TlsFleet, work: Path, *extra: str) -> list[str]:
    return [*extra, "--fleet-url", fleet.url, "--token", fleet.token(), "--work-dir", str(work)]


def test_enroll_install_verify_over_tls(
    tmp_path: Path, tls_fleet: TlsFleet, virtual_board: Callable[[str], VirtualBoard]
) -> None:
    tls_fleet.set_wifi()
    release_key = signing.generate(tmp_path / "release-keys")
    with tls_fleet.running.ctx.sessions.begin() as s:
        ota_service.trust_key(s, SYSTEM, release_key.public_hex)
    work = tmp_path / "work"
    place = ["--borough", "hackney", "--property", "HACKNEY-0100", "--room", "bedroom 1"]
    enroll = ["enroll", "--device-id", DEVICE, *place, "--sample-interval", "1"]
    assert main(_args(tls_fleet, work, *enroll, "--health-interval", "2")) == 0

    board = virtual_board(DEVICE)
    assert (
        main(["install", "--device-id", DEVICE, "--port", board.port, "--work-dir", str(work)]) == 0
    )
    root = board.root
    config = json.loads((root / "config.json").read_text())
    assert config["mqtt"] == {
        "host": HOST,
        "port": tls_fleet.broker.port,
        "tls": True,
        "ca": "certs/ca.der",
        "cert": "certs/device.der",
        "key": "certs/device-key.der",
        "keepalive": 60,
    }
    assert config["wifi"] == {"ssid": "HackneyTenants", "password": "damp-free-homes"}
    cert = x509.load_der_x509_certificate((root / "certs/device.der").read_bytes())
    assert cert.subject.rfc4514_string() == f"CN={DEVICE}"
    assert (root / "cs" / "app.mpy").is_file() and not (root / "cs" / "app.py").exists()
    assert (root / "boards" / "devkitc-sht41.json").is_file()
    assert not (root / "maintenance").exists()
    # The release keys the fleet trusts, so the sensor accepts signed updates.
    assert json.loads((root / "ota" / "trust.json").read_text()) == {
        "keys": {release_key.kid: release_key.public_hex},
        "floor": "0.0.0",
    }

    _firmware_tls_usable()
    device = InstalledDevice(
        device_id=DEVICE,
        data_dir=root.parent,
        broker_host=HOST,
        broker_port=tls_fleet.broker.port,
        sample_interval_s=1,
        health_interval_s=2,
        # TLS (mbedTLS buffers) on top of the firmware does not fit 128K of this 64-bit VM's
        # heap; 32-bit pointers make the same objects about half the size on an ESP32.
        heapsize="192K",
    )
    watcher = boot_after_reset(board, device)
    try:
        code = main(
            [
                "verify",
                "--device-id",
                DEVICE,
                "--port",
                board.port,
                "--timeout",
                "60",
                "--fleet-url",
                tls_fleet.url,
                "--token",
                tls_fleet.token(),
            ]
        )
        assert code == 0, device.log_path.read_text() if device.log_path.exists() else "no log"
    finally:
        watcher.join(5)
        device.stop()
    # The launcher kept the provisioned config as it was (same broker, same intervals).
    assert json.loads((root / "config.json").read_text())["version"] == config["version"]
    assert f"u'{DEVICE}'" in tls_fleet.broker.log_text()  # authenticated by its certificate
    with tls_fleet.running.ctx.sessions() as s:
        row = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        assert row.latest and {"temperature", "humidity"} <= set(row.latest)
        certs = s.scalar(select(func.count()).select_from(DeviceCertificate))
        assert certs == 1


def test_second_install_skips_unchanged_files(
    tmp_path: Path,
    tls_fleet: TlsFleet,
    virtual_board: Callable[[str], VirtualBoard],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tls_fleet.set_wifi()
    work = tmp_path / "work"
    enroll = [
        "enroll",
        "--device-id",
        DEVICE,
        "--borough",
        "hackney",
        "--property",
        "P1",
        "--room",
        "kitchen",
    ]
    assert main(_args(tls_fleet, work, *enroll)) == 0
    board = virtual_board(DEVICE)
    install = ["install", "--device-id", DEVICE, "--port", board.port, "--work-dir", str(work)]
    assert main(install) == 0
    first = capsys.readouterr().err
    assert main(install) == 0
    second = capsys.readouterr().err
    assert "0 already up to date" in first.replace("\n", " ")
    assert "0 files written" in second.replace("\n", " ")


def test_install_refuses_a_port_without_a_repl(tmp_path: Path) -> None:
    # A pty nobody answers on: like a board stuck in its app or in the ROM bootloader.
    import os

    master, slave = os.openpty()
    try:
        work = tmp_path / "work"
        (work / DEVICE / "files").mkdir(parents=True)
        (work / DEVICE / "enrolment.json").write_text("{}")
        code = main(
            ["install", "--device-id", DEVICE, "--port", os.ttyname(slave), "--work-dir", str(work)]
        )
        assert code == ExitCode.DEVICE_NOT_RESPONDING
    finally:
        os.close(master)
        os.close(slave)


def test_revoked_device_certificate_is_refused_by_the_broker(
    tmp_path: Path, tls_fleet: TlsFleet
) -> None:
    import httpx

    from tests.security.clients import Identity, TlsClient

    tls_fleet.set_wifi()
    work = tmp_path / "work"
    enroll = [
        "enroll",
        "--device-id",
        DEVICE,
        "--borough",
        "hackney",
        "--property",
        "P9",
        "--room",
        "hall",
    ]
    assert main(_args(tls_fleet, work, *enroll)) == 0
    files = work / DEVICE / "files" / "certs"
    pem = tmp_path / "pem"
    pem.mkdir()
    cert = x509.load_der_x509_certificate((files / "device.der").read_bytes())
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_private_key((files / "device-key.der").read_bytes(), None)
    (pem / "d.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pem / "d.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (pem / "ca.crt").write_bytes(
        x509.load_der_x509_certificate((files / "ca.der").read_bytes()).public_bytes(
            serialization.Encoding.PEM
        )
    )
    identity = Identity(pem / "ca.crt", pem / "d.crt", pem / "d.key")
    broker = tls_fleet.broker

    before = TlsClient(DEVICE, identity, broker.host, broker.port)
    assert before.connect(), broker.log_text()[-2000:]
    before.close()
    r = httpx.post(
        f"{tls_fleet.url}/api/v1/enrolments/certificates/{cert.serial_number:x}/revoke",
        json={"reason": "key_compromise"},
        headers=tls_fleet.world.headers("admin"),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    broker.reload()  # the operator's `systemctl reload mosquitto`
    after = TlsClient(DEVICE, identity, broker.host, broker.port)
    assert not after.connect()
    after.close()
