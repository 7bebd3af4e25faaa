"""ESP-IDF app images (the MicroPython "app-only" .bin written to an OTA slot).

`image_version` reads esp_app_desc_t from a real image; `build_image` makes a small but
well-formed one (header, segments, checksum, appended SHA-256) for virtual devices, whose
bootloader stand-in verifies images the way ESP-IDF does (hardware/sim/simdev/partition.py).
"""

from __future__ import annotations

import hashlib
import struct

from fleet.ota.errors import OtaError

_MAGIC = 0xE9
_DESC_MAGIC = 0xABCD5432
DESC_OFFSET = 24 + 8  # image header, then the first segment's header


def image_version(image: bytes) -> str:
    if len(image) < DESC_OFFSET + 256 or image[0] != _MAGIC:
        raise OtaError("not an ESP32 app image (magic byte 0xE9 missing); use the app-only .bin")
    (magic,) = struct.unpack_from("<I", image, DESC_OFFSET)
    if magic != _DESC_MAGIC:
        raise OtaError("the image has no app description (esp_app_desc_t)")
    return image[DESC_OFFSET + 16 : DESC_OFFSET + 48].split(b"\0")[0].decode()


def build_image(version: str, *, project: str = "cs-sim", payload: bytes = b"") -> bytes:
    """A minimal valid app image. A project name ending in "+panic" makes the simulated
    board panic when it boots the image (to exercise rollback)."""
    desc = struct.pack(
        "<II8s32s32s16s16s32s32s20s",
        _DESC_MAGIC,
        0,
        b"",
        version.encode()[:31],
        project.encode()[:31],
        b"00:00:00",
        b"Jan  1 2026",
        b"v5.2",
        hashlib.sha256(payload).digest(),
        b"",
    )
    segments = [desc + b"\0" * (256 - len(desc)), payload or b"\0" * 16]
    out = bytearray(struct.pack("<BBBBI", _MAGIC, len(segments), 2, 0x20, 0x400D0000))
    out += bytes(15) + b"\x01"  # chip id, revisions ... hash_appended = 1 (byte 23)
    check = 0xEF
    for i, seg in enumerate(segments):
        if len(seg) % 4:
            seg = seg + b"\0" * (4 - len(seg) % 4)
        out += struct.pack("<II", 0x3F400020 + i * 0x10000, len(seg)) + seg
        for b in seg:
            check ^= b
    out += b"\0" * (15 - len(out) % 16) + bytes([check])
    out += hashlib.sha256(out).digest()
    return bytes(out)
