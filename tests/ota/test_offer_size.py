"""Update offers fit the sensor's MQTT message limit: the signed manifest they carry is
bounded at build and at publish, so long release notes cannot make every sensor skip it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext
from fleet.ota import bundle, service, signing
from fleet.ota.bundle import MAX_MANIFEST_BYTES
from fleet.ota.errors import OtaError
from fleet.ota.offers import offer_payload
from fleet.ota.package import ReleaseFile

FILES = {"cs/x.mpy": b"M"}
MQTT = (Path(__file__).resolve().parents[2] / "firmware" / "cs" / "mqtt.py").read_text()
DEVICE_LIMIT = int(re.search(r"MAX_PACKET = const\((\d+)\)", MQTT).group(1))  # type: ignore[union-attr]


def _largest_notes() -> str:
    """The longest notes a build accepts; quotes and accents make JSON escape them."""
    low, high = 0, MAX_MANIFEST_BYTES
    while low < high:
        mid = (low + high + 1) // 2
        try:
            bundle.build_app("1.2.0", files=FILES, notes=('é"' * MAX_MANIFEST_BYTES)[:mid])
        except OtaError:
            high = mid - 1
        else:
            low = mid
    return ('é"' * MAX_MANIFEST_BYTES)[:low]


def test_notes_that_would_outgrow_an_offer_are_refused_at_build() -> None:
    with pytest.raises(OtaError, match="shorten the release notes"):
        bundle.build_app("1.2.0", files=FILES, notes="n" * MAX_MANIFEST_BYTES)


def test_the_largest_manifest_allowed_still_fits_the_sensors_limit(
    fleet_ctx: FleetContext, tmp_path: Path
) -> None:
    # A key rotation signs with several keys.
    keys = [signing.generate(tmp_path / "keys") for _ in range(3)]
    built = bundle.build_app("1.2.0", files=FILES, notes=_largest_notes())
    assert len(built.manifest) > MAX_MANIFEST_BYTES - 8
    release = ReleaseFile.from_built(built)
    for key in keys:
        release.sign(key)
    with fleet_ctx.sessions.begin() as s:
        for key in keys:
            service.trust_key(s, SYSTEM, key.public_hex)
        row = service.publish_release(s, SYSTEM, release)
        url = f"https://fleet.borough.example.gov.uk/ota/blobs/{row.blob_path}"
        payload = offer_payload(row, "rollout-123456-cs-0a0b0c0d0e0f", url)
    topic = "cs/v1/d/cs-0a0b0c0d0e0f/ota"
    packet = 2 + len(topic) + 2 + len(payload)  # topic length, topic, packet id, payload
    assert packet <= DEVICE_LIMIT, f"an offer of {packet} bytes would be skipped"
    assert json.loads(payload)["manifest"] == built.manifest.decode()


def test_an_oversized_manifest_built_elsewhere_is_refused_at_publish(
    fleet_ctx: FleetContext, tmp_path: Path
) -> None:
    key = signing.generate(tmp_path / "keys")
    fields = json.loads(bundle.build_app("1.2.0", files=FILES).manifest)
    fields["notes"] = "n" * MAX_MANIFEST_BYTES
    built = bundle.build_app("1.2.0", files=FILES)
    big = bundle.Built(json.dumps(fields).encode(), built.blob, built.raw_size)
    release = ReleaseFile.from_built(big)
    release.sign(key)
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        with pytest.raises(OtaError, match="over 2,048"):
            service.publish_release(s, SYSTEM, release)
