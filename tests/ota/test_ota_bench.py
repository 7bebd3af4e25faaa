"""`fleet bench ota --json` at a small scale: real VMs, a real rollout, sane figures.
Timing is not asserted (that is what the benchmark reports), only that the figures add up."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from fleet.cli import app

pytestmark = pytest.mark.vm


def test_bench_ota_reports_the_rollout_bytes_and_signature_check() -> None:
    result = CliRunner().invoke(app, ["bench", "ota", "--devices", "3", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["benchmark"] == "ota" and figures["devices"] == 3
    assert figures["devices_updated"] == 3
    assert figures["rollout_s"] > 0
    assert 0 < figures["device_update_p50_s"] <= figures["device_update_max_s"]
    # The blob is the compressed bundle; every device fetches all of it, in 16 KB ranges.
    blob, files = figures["blob_bytes"], figures["bundle_files_bytes"]
    assert 0 < blob < files
    assert figures["compression_ratio"] == round(files / blob, 2)
    assert blob <= figures["downloaded_bytes_per_device"] < 2 * blob
    assert figures["range_requests_per_device"] >= math.ceil(blob / 16384)
    assert 0 < figures["offer_bytes"] < 2000
    per_device = (figures["downloaded_bytes_per_device"] + figures["offer_bytes"]) / files
    assert figures["bytes_per_device_vs_files"] == pytest.approx(per_device, abs=0.002)
    # The ESP32 figure is the VM's, scaled by the stated factor.
    vm_ms, factor = figures["ed25519_verify_vm_ms"], figures["esp32_cpu_factor"]
    assert vm_ms > 0 and factor > 1
    assert abs(figures["ed25519_verify_esp32_est_ms"] - vm_ms * factor) <= factor * 0.05 + 0.5


def test_devices_is_refused_by_a_benchmark_without_devices() -> None:
    result = CliRunner().invoke(app, ["bench", "senml", "--devices", "3"])
    assert result.exit_code == 2 and "does not take --devices" in result.output
