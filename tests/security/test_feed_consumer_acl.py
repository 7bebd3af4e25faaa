"""The ACL's downstream consumer blocks, uncommented as an operator would, on a real Mosquitto.

An open-data consumer must receive only the public feed; a borough's consumer also its own
borough's full feed and no other borough's. Non-delivery is shown with a marker published
last (see test_broker_acl.py).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

from fleet.identity import FEED_ACCOUNT, CAStore
from fleet.identity.bootstrap import bootstrap
from fleet.identity.mosquitto import ACL_FILE, default_template_dir
from tests.conftest import free_port
from tests.security.clients import TlsClient
from tests.security.conftest import HOST, Broker, Pki, mosquitto_binary

pytestmark = pytest.mark.mosquitto

OPEN_DATA = "fleet-feed-datastore"
BOROUGH = "fleet-feed-hackney"
CONSUMER_SECTION = "# --- Downstream feed consumers"


def consumer_blocks(template: str) -> str:
    """The commented example rules of the consumer section, uncommented."""
    section = template[template.index(CONSUMER_SECTION) :]
    rules = re.findall(r"^# ((?:user|topic) .+)$", section, flags=re.MULTILINE)
    return "\n".join(rules) + "\n"


def test_the_template_has_both_consumer_examples() -> None:
    rules = consumer_blocks((default_template_dir() / ACL_FILE).read_text())
    assert f"user {OPEN_DATA}" in rules and f"user {BOROUGH}" in rules
    # No consumer may be handed every borough's full topics.
    assert "cs/v1/feed/#" not in rules


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    mosquitto_binary()
    root = tmp_path_factory.mktemp("consumers")
    port = free_port()
    result = bootstrap(
        root / "pki",
        broker_hosts=["localhost", HOST],
        services=[OPEN_DATA, BOROUGH],
        port=port,
        bind_address=HOST,
        run_as="root" if os.geteuid() == 0 else None,
    )
    acl = result.broker_files.acl_file
    acl.write_text(acl.read_text() + "\n" + consumer_blocks(acl.read_text()))
    running = Broker(Pki(root, result, CAStore(result.ca_dir).load()), port)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clients(broker: Broker) -> Iterator[dict[str, TlsClient]]:
    opened: dict[str, TlsClient] = {}
    for name in (FEED_ACCOUNT, OPEN_DATA, BOROUGH):
        client = broker.client(f"{name}-{uuid.uuid4().hex[:6]}", broker.pki.service(name))
        assert client.connect(), broker.log_text()[-2000:]
        opened[name] = client
    yield opened
    for client in opened.values():
        client.close()


def _publish_every_level(feed: TlsClient) -> tuple[str, bytes]:
    feed.publish("cs/v1/feed/full/hackney/ds/3", b"hackney battery")
    feed.publish("cs/v1/feed/full/camden/ds/6", b"camden battery")
    feed.publish("v1.1/Datastreams(1)/Observations", b"observation")
    marker = ("cs/v1/feed/public/ds/1", b"public pack")
    feed.publish(*marker)
    return marker


def test_open_data_consumer_reads_only_the_public_feed(clients: dict[str, TlsClient]) -> None:
    consumer = clients[OPEN_DATA]
    consumer.subscribe("#")

    marker = _publish_every_level(clients[FEED_ACCOUNT])

    assert consumer.receive_until(*marker) == [
        ("v1.1/Datastreams(1)/Observations", b"observation"),
        marker,
    ]


def test_borough_consumer_reads_its_own_boroughs_full_feed_only(
    clients: dict[str, TlsClient],
) -> None:
    consumer = clients[BOROUGH]
    consumer.subscribe("cs/v1/feed/#")

    marker = _publish_every_level(clients[FEED_ACCOUNT])

    assert consumer.receive_until(*marker) == [
        ("cs/v1/feed/full/hackney/ds/3", b"hackney battery"),
        marker,
    ]


def test_consumers_cannot_publish_to_the_feed(
    broker: Broker, clients: dict[str, TlsClient]
) -> None:
    watcher = clients[FEED_ACCOUNT]
    watcher.subscribe("cs/v1/feed/#")
    clients[OPEN_DATA].publish("cs/v1/feed/public/ds/1", b"forged")
    clients[BOROUGH].publish("cs/v1/feed/full/hackney/ds/3", b"forged")
    marker = ("cs/v1/feed/public/ds/2", b"genuine")
    watcher.publish(*marker)

    assert watcher.receive_until(*marker) == [marker]
