"""A scaled-out ingest worker (`fleet ingest`) serves its own Prometheus metrics: no API
process holds its counters, and the documented alerts (lag, DB errors, broker connection)
need them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt

from fleet.broker.url import BrokerAddress
from tests.conftest import DEADLINE_SCALE, free_port, wait_for_port


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _publish_bad_pack(broker: BrokerAddress) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-device")
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish("cs/v1/d/cs-0a0b0c0d0e0f/up", b"not senml", qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def _wait_for(condition: object, what: str, port: int, attempts: int = 200) -> dict[str, float]:
    # Polls a live process until it reports the state (bounded), then returns the metrics.
    for _ in range(int(attempts * DEADLINE_SCALE)):
        metrics = _scrape(port)
        if condition(metrics):  # type: ignore[operator]
            return metrics
        time.sleep(0.05)
    raise AssertionError(f"ingest never reported {what}: {metrics}")


def test_fleet_ingest_serves_its_counters_and_broker_state(
    mosquitto: BrokerAddress, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FLEET_DATA_DIR": str(tmp_path / "data"),
        "FLEET_MQTT_URL": f"mqtt://127.0.0.1:{mosquitto.port}",
        "FLEET_INGEST_CLIENT_ID": "fleet-ingest-0",
        "FLEET_INGEST_METRICS_PORT": str(port),
        "FLEET_HTTP_HOST": "127.0.0.1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from fleet.cli import main; main()", "ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port)
        _wait_for(lambda m: m.get("fleet_broker_connected") == 1.0, "a connection", port)
        _publish_bad_pack(mosquitto)
        metrics = _wait_for(
            lambda m: m.get('fleet_ingest_messages_total{outcome="rejected"}') == 1.0,
            "the rejected pack",
            port,
        )
        assert metrics['fleet_ingest_messages_total{outcome="stored"}'] == 0.0
        assert metrics["fleet_ingest_db_errors_total"] == 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "1 rejected" in output


def test_a_metrics_port_in_use_is_a_clear_error(mosquitto: BrokerAddress, tmp_path: Path) -> None:
    taken = free_port()
    with socket.create_server(("127.0.0.1", taken)):
        done = subprocess.run(
            [sys.executable, "-c", "from fleet.cli import main; main()", "ingest"],
            env={
                **os.environ,
                "FLEET_DATA_DIR": str(tmp_path / "data"),
                "FLEET_MQTT_URL": f"mqtt://127.0.0.1:{mosquitto.port}",
                "FLEET_INGEST_CLIENT_ID": "fleet-ingest-0",
                "FLEET_INGEST_METRICS_PORT": str(taken),
                "FLEET_HTTP_HOST": "127.0.0.1",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FLEET_INGEST_METRICS_PORT" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
