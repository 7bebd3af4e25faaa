"""`provision flash`: esptool in-process against a stand-in ESP32 on a pty, and offline checks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioning import flashing, serial_ports
from provisioning.cli import main
from provisioning.errors import ExitCode, NoSerialPort, PortPermissionDenied
from tests.provisioning.conftest import synthetic_image
from tests.provisioning.fake_rom import ESP32S2_MAGIC, FakeEsp32


def test_flash_erases_and_writes_the_image_at_0x1000(
    esp32_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeEsp32("3c:71:bf:0a:12:f4") as chip:
        assert main(["flash", "--image", str(esp32_image), "--port", chip.port]) == 0
        data = esp32_image.read_bytes()
        assert chip.erased
        assert chip.writes == [(0x1000, len(data))]
        assert chip.flash[0x1000 : 0x1000 + len(data)] == data
        assert chip.flash[0x1000 + len(data)] == 0xFF  # erased beyond the image
    assert "cs-3c71bf0a12f4" in capsys.readouterr().err


def test_dry_run_checks_but_never_touches_the_chip(esp32_image: Path) -> None:
    with FakeEsp32() as chip:
        assert main(["flash", "--dry-run", "--image", str(esp32_image), "--port", chip.port]) == 0
        assert not chip.erased and chip.writes == []


def test_probe_reads_chip_and_mac() -> None:
    with FakeEsp32("24:0a:c4:00:00:01") as chip:
        info = flashing.probe(chip.port, baud=115200)
    assert (info.chip, info.mac, info.device_id) == (
        "ESP32",
        "24:0a:c4:00:00:01",
        "cs-240ac4000001",
    )


def test_wrong_chip_is_refused_before_erasing(
    esp32_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeEsp32(magic=ESP32S2_MAGIC) as chip:
        code = main(["flash", "--image", str(esp32_image), "--port", chip.port])
        assert code == ExitCode.WRONG_CHIP and not chip.erased
    err = capsys.readouterr().err
    assert "ESP32-S2" in err and "fix:" in err


def test_a_board_not_in_download_mode_is_reported(
    esp32_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeEsp32(silent=True) as chip:
        code = main(["flash", "--image", str(esp32_image), "--port", chip.port])
    assert code == ExitCode.DEVICE_NOT_RESPONDING
    assert "BOOT" in capsys.readouterr().err  # the remedy: hold BOOT, press EN


@pytest.mark.parametrize("kind", ["esp32s3", "corrupt", "missing"])
def test_image_is_checked_offline(tmp_path: Path, esp32_image: Path, kind: str) -> None:
    if kind == "esp32s3":
        image = synthetic_image(tmp_path / "s3.bin", chip="esp32s3")
    elif kind == "corrupt":
        data = bytearray(esp32_image.read_bytes())
        data[100] ^= 0xFF
        image = tmp_path / "corrupt.bin"
        image.write_bytes(bytes(data))
    else:
        image = tmp_path / "nothing.bin"
    assert main(["flash", "--image", str(image), "--port", "/dev/null"]) == ExitCode.IMAGE_INVALID


def test_no_serial_port_found(
    esp32_image: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(serial_ports.list_ports, "comports", lambda: [])
    assert main(["flash", "--image", str(esp32_image)]) == ExitCode.NO_SERIAL_PORT
    assert "data-capable USB cable" in capsys.readouterr().err
    with pytest.raises(NoSerialPort):
        serial_ports.find_port("/dev/ttyUSB-not-there")


def test_the_single_usb_bridge_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = [
        SimpleNamespace(device="/dev/ttyS0", description="16550", vid=None),
        SimpleNamespace(device="/dev/null", description="CP2102", vid=0x10C4),
    ]
    assert serial_ports.find_port(None, lister=lambda: ports, opener=lambda p: None) == "/dev/null"
    two = [*ports, SimpleNamespace(device="/dev/zero", description="CH340", vid=0x1A86)]
    with pytest.raises(Exception, match="several serial ports"):
        serial_ports.find_port(None, lister=lambda: two)


def test_permission_denied_names_the_group(
    esp32_image: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def denied(path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    with pytest.raises(PortPermissionDenied) as info:
        serial_ports.check_access("/dev/null", opener=denied)
    assert "usermod -aG root" in info.value.remedy  # /dev/null belongs to group root
    monkeypatch.setattr(serial_ports, "_try_open", denied)
    assert main(["flash", "--image", str(esp32_image), "--port", "/dev/null"]) == (
        ExitCode.PORT_PERMISSION
    )
    assert "usermod" in capsys.readouterr().err


def test_tracebacks_only_with_verbose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.bin")
    main(["flash", "--image", missing, "--port", "/dev/null"])
    assert "Traceback" not in capsys.readouterr().err
    main(["flash", "--verbose", "--image", missing, "--port", "/dev/null"])
    assert "Traceback" in capsys.readouterr().err
