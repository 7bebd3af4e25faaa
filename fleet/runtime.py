"""Start and stop the fleet's moving parts: broker (embedded or external) and ingest worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fleet.broker.embedded import EmbeddedBroker
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.health.sweep import HealthSweeper
from fleet.ingest.handler import IngestHandler
from fleet.ingest.worker import IngestWorker

log = logging.getLogger(__name__)


@dataclass
class FleetRuntime:
    ctx: FleetContext
    broker: BrokerAddress | None = None
    embedded: EmbeddedBroker | None = None
    ingest: IngestWorker | None = None
    sweeper: HealthSweeper | None = None
    _started: list[str] = field(default_factory=list)

    def start(self, *, ingest_timeout: float = 20.0) -> BrokerAddress:
        settings = self.ctx.settings
        external = settings.broker_address()
        if external is not None:
            self.broker = external
        else:
            self.embedded = EmbeddedBroker(
                settings.embedded_broker_host, settings.embedded_broker_port
            )
            self.broker = self.embedded.start()
        handler = IngestHandler(self.ctx.sessions, max_payload_bytes=settings.max_payload_bytes)
        self.ingest = IngestWorker(
            handler,
            self.broker,
            client_id=settings.ingest_client_id,
            share_group=settings.ingest_share_group,
        )
        self.ingest.start()
        if not self.ingest.connected.wait(ingest_timeout):
            self.stop()
            raise RuntimeError(
                f"the ingest worker could not reach the broker at {self.broker.url}; "
                "check FLEET_MQTT_URL and that the broker is running"
            )
        self.sweeper = HealthSweeper(self.ctx.sessions, interval_s=settings.health_sweep_s)
        self.sweeper.start()
        return self.broker

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
