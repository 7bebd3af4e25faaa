"""Firmware-image updates on virtual devices: written to the next OTA slot, chosen with
set_boot, marked valid only after the self-test; a panicking image is rolled back by the
(simulated) bootloader."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleet.ota import bundle, signing
from fleet.ota.image import build_image
from tests.firmware.conftest import Broker, Subscriber
from tests.ota.rig import blob_server
from tests.ota.test_app_update_vm import Rig

pytestmark = pytest.mark.vm


@pytest.fixture
def rig(
    tmp_path: Path, test_broker: Broker, subscriber: Callable[..., Subscriber]
) -> Iterator[Rig]:
    with blob_server() as blobs:
        key = signing.generate(tmp_path / "keys")
        r = Rig(tmp_path, test_broker, subscriber, key, blobs)
        yield r
        r.dev.stop()


def _otadata(rig: Rig) -> dict[str, object]:
    return dict(json.loads((rig.dev.device_dir / "partitions" / "otadata.json").read_text()))


def test_image_update_boots_the_new_slot_and_marks_it_valid(rig: Rig) -> None:
    image = build_image("1.30.0", payload=b"\x5a" * 20000)
    rig.dev.start()
    rig.offer(bundle.build_image_release(image), "img-ok")
    result = rig.outcome("img-ok", timeout=90)
    assert result["state"] == "succeeded", result
    assert result["image"] == "1.30.0"
    otadata = _otadata(rig)
    assert otadata["running"] == "ota_1"
    assert otadata["state"] == {"ota_1": "valid"}


def test_an_image_that_panics_is_rolled_back(rig: Rig) -> None:
    image = build_image("1.31.0", project="cs-sim+panic", payload=b"\x11" * 8000)
    rig.dev.start()
    rig.offer(bundle.build_image_release(image), "img-panic")
    result = rig.outcome("img-panic", timeout=90)
    assert result["state"] == "failed"
    assert "rolled back" in result["reason"]
    otadata = _otadata(rig)
    assert otadata["running"] == "ota_0"
    assert otadata["state"] == {"ota_1": "aborted"}
    assert rig.running_version() == "0.1.0"  # the app keeps running
