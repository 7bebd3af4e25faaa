"""Shared plumbing for the ingest benchmark and the fault tests: a throwaway PostgreSQL
database, ingest worker processes, persistent sessions and a discarding subscriber."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from fleet.broker.intake import IntakeCallbacks, IntakeClient
from fleet.broker.url import BrokerAddress
from fleet.broker.wire import Delivery
from fleet.models import Device, Reading

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def temporary_database(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards; yields its URL."""
    name = f"fleet_load_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def spawn_ingest(
    *,
    database_url: str,
    mqtt_url: str,
    client_id: str,
    data_dir: Path,
    share_group: str | None = None,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """An ingest worker as its own process (`python -m fleet.ingest`), as deployed."""
    env = {
        **os.environ,
        "FLEET_ENVIRONMENT": "test",
        "FLEET_DATABASE_URL": database_url,
        "FLEET_MQTT_URL": mqtt_url,
        "FLEET_INGEST_CLIENT_ID": client_id,
        "FLEET_DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    if share_group:
        env["FLEET_INGEST_SHARE_GROUP"] = share_group
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "fleet.ingest"], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def wait_until_subscribed(log_path: Path, timeout: float = 60.0) -> bool:
    """Whether a spawned ingest (logging to `log_path`) subscribed within `timeout`: load
    sent before that would measure its start-up, not the pipeline."""
    return wait_for(
        lambda: log_path.exists() and "subscribed to" in log_path.read_text(errors="replace"),
        timeout,
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prime_session(port: int, client_id: str, topic_filter: str) -> None:
    """Create a persistent session with its subscription, then leave: from now on the broker
    queues matching QoS 1 messages for `client_id` until it reconnects."""
    done = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    client.on_subscribe = lambda *args: done.set()
    client.on_connect = lambda c, *args: c.subscribe(topic_filter, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not done.wait(10):
            raise TimeoutError(f"could not subscribe {client_id} to {topic_filter}")
    finally:
        client.disconnect()
        client.loop_stop()


def drain(
    port: int,
    client_id: str,
    expected: int,
    *,
    topic_filter: str = "cs/v1/d/#",
    timeout: float = 120.0,
) -> tuple[int, float]:
    """Resume `client_id`'s session with the ingest's own MQTT client and discard messages
    (QoS 1, acked as they come) until `expected` arrived; returns (received, seconds from the
    start of the connection to the last one)."""
    count = 0
    last = 0.0
    finished = threading.Event()
    client: IntakeClient

    def on_batch(batch: list[Delivery], generation: int) -> None:
        nonlocal count, last
        count += len(batch)
        last = time.perf_counter()
        client.ack([d.mid for d in batch if d.qos], generation)
        if count >= expected:
            finished.set()

    client = IntakeClient(
        BrokerAddress("127.0.0.1", port),
        client_id=client_id,
        topic_filter=topic_filter,
        callbacks=IntakeCallbacks(on_batch=on_batch, room=lambda: 1_000_000),
    )
    first = time.perf_counter()
    client.start()
    try:
        finished.wait(timeout)
    finally:
        client.stop()
    return count, max(last - first, 1e-9)


def drain_paho(
    port: int, client_id: str, expected: int, timeout: float = 120.0
) -> tuple[int, float]:
    """As `drain`, with paho, the usual Python MQTT client: seconds from CONNACK."""
    count = 0
    first = last = 0.0
    finished = threading.Event()

    def on_connect(c: mqtt.Client, *args: object) -> None:
        nonlocal first
        first = time.perf_counter()

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count, last
        count += 1
        last = time.perf_counter()
        if count >= expected:
            finished.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        finished.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return count, max(last - first, 1e-9)


def count_readings(sessions: sessionmaker[Session], prefix: str) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Reading)
                .join(Device, Device.id == Reading.device_pk)
                .where(Device.device_id.startswith(prefix))
            )
            or 0
        )


def received_window(sessions: sessionmaker[Session], prefix: str) -> tuple[datetime, datetime]:
    """First and last batch times of a run's readings (when the ingest took them)."""
    with sessions() as session:
        low, high = session.execute(
            select(func.min(Reading.received_at), func.max(Reading.received_at))
            .join(Device, Device.id == Reading.device_pk)
            .where(Device.device_id.startswith(prefix))
        ).one()
    return low, high


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll a condition until it holds or the deadline passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
