"""Security fixtures: a PKI from `bootstrap` and Mosquitto started from the shipped config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.identity import CAStore, CertificateAuthority
from fleet.identity.bootstrap import BootstrapResult, bootstrap
from tests.conftest import free_port, missing_service, wait_for_port
from tests.fleet.conftest import fleet_ctx  # noqa: F401
from tests.security.clients import Identity, TlsClient

HOST = "127.0.0.1"
DEVICE_A = "cs-aaaaaaaaaaaa"
DEVICE_B = "cs-bbbbbbbbbbbb"
# The identities `bootstrap` issues for two ingest workers and one API replica.
INGEST_0 = "fleet-ingest-0"
INGEST_1 = "fleet-ingest-1"
API_0 = "fleet-api-0"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        missing_service("the mosquitto binary is not installed (apt-get install mosquitto)")
    return str(found)


@dataclass
class Pki:
    root: Path
    result: BootstrapResult
    ca: CertificateAuthority
    devices: dict[str, Identity] = field(default_factory=dict)

    @property
    def store(self) -> CAStore:
        return CAStore(self.result.ca_dir)

    def service(self, name: str) -> Identity:
        cert, key = self.result.services[name]
        return Identity(self.result.services_dir / "ca.crt", cert, key)

    def add_device(self, device_id: str) -> Identity:
        issued = self.ca.issue_device(device_id)
        folder = self.root / "devices"
        issued.write(folder / f"{device_id}.crt", folder / f"{device_id}.key")
        identity = Identity(
            self.result.services_dir / "ca.crt",
            folder / f"{device_id}.crt",
            folder / f"{device_id}.key",
        )
        self.devices[device_id] = identity
        return identity


def make_pki(root: Path, port: int) -> Pki:
    result = bootstrap(
        root / "pki",
        broker_hosts=["localhost", HOST],
        ingest_workers=2,
        api_replicas=1,
        port=port,
        bind_address=HOST,
        # As root Mosquitto would drop to `mosquitto`, which cannot read a 0700 temp folder.
        run_as="root" if os.geteuid() == 0 else None,
    )
    pki = Pki(root, result, CAStore(result.ca_dir).load())
    pki.add_device(DEVICE_A)
    pki.add_device(DEVICE_B)
    return pki


class Broker:
    """A Mosquitto process running the rendered production configuration."""

    def __init__(self, pki: Pki, port: int) -> None:
        self.pki, self.host, self.port = pki, HOST, port
        self.log_path = pki.root / "mosquitto.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(pki.result.mosquitto_conf)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(HOST, port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start:\n{self.log_text()}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def reload(self, timeout: float = 10.0) -> None:
        """SIGHUP, then wait until Mosquitto logs the reload (it is single-threaded, so the
        next connection is handled with the new configuration)."""
        before = self.log_text().count("Reloading config")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log_text().count("Reloading config") == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto did not reload:\n{self.log_text()}")
            time.sleep(0.02)

    def client(
        self, client_id: str, identity: Identity, *, clean_session: bool = True
    ) -> TlsClient:
        return TlsClient(client_id, identity, self.host, self.port, clean_session=clean_session)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def _start(root: Path) -> Iterator[Broker]:
    mosquitto_binary()
    port = free_port()
    broker = Broker(make_pki(root, port), port)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Shared by the ACL tests of one module; tests that change broker state use fresh_broker."""
    yield from _start(tmp_path_factory.mktemp("broker"))


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[Broker]:
    yield from _start(tmp_path)


@pytest.fixture
def connect(broker: Broker) -> Iterator[Callable[[str, Identity], TlsClient]]:
    """Connect clients to the shared broker; all are closed after the test."""
    opened: list[TlsClient] = []

    def _connect(client_id: str, identity: Identity) -> TlsClient:
        client = broker.client(client_id, identity)
        opened.append(client)
        if not client.connect():
            raise AssertionError(f"{client_id} was refused:\n{broker.log_text()[-2000:]}")
        return client

    yield _connect
    for client in opened:
        client.close()


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:  # noqa: F811
    """The fleet's HTTP app; redirects are answers to check, not to follow."""
    with TestClient(create_app(fleet_ctx), follow_redirects=False) as c:
        yield c
