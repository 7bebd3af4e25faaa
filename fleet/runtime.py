"""Start and stop the fleet's moving parts: broker (embedded or external) and ingest worker."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from fleet.broker.embedded import EmbeddedBroker
from fleet.broker.url import BrokerAddress
from fleet.commands.send import Publisher
from fleet.core.context import FleetContext
from fleet.core.lease import Lease
from fleet.core.mqtt_identity import MqttIdentityError, check_ca_file
from fleet.feed.live import FeedPublisher
from fleet.feed.stewardship import purge_committed
from fleet.health.retention import Retention
from fleet.health.sweep import HealthSweeper
from fleet.ingest.handler import IngestHandler
from fleet.ingest.publisher import CommandPublisher
from fleet.ingest.worker import IngestWorker
from fleet.ota.engine import OtaSettings, RolloutEngine
from fleet.risk.service.settings import get_risk_settings
from fleet.risk.service.sweep import RiskWorker

log = logging.getLogger(__name__)

# Kubernetes kills a pod 30 s after SIGTERM; the HTTP server takes up to 3 s of it first.
STOP_BUDGET_S = 20.0


class StartError(RuntimeError):
    """The service cannot start; the message says what to change."""


@dataclass
class FleetRuntime:
    ctx: FleetContext
    broker: BrokerAddress | None = None
    embedded: EmbeddedBroker | None = None
    ingest: IngestWorker | None = None
    publisher: CommandPublisher | None = None
    sweeper: HealthSweeper | None = None
    risk: RiskWorker | None = None
    feed: FeedPublisher | None = None
    ota: RolloutEngine | None = None
    lease: Lease | None = None
    _started: list[str] = field(default_factory=list)

    def start(self, *, ingest_timeout: float = 20.0) -> BrokerAddress:
        settings = self.ctx.settings
        try:  # before anything starts: a wrong certificate is a configuration error
            main = (
                settings.ingest_identity() if settings.ingest_enabled else settings.api_identity()
            )
            feed = settings.feed_identity() if settings.feed_enabled else None
        except MqttIdentityError as exc:
            raise StartError(str(exc)) from exc
        external = settings.broker_address()
        if external is not None:
            try:
                check_ca_file(external)
            except MqttIdentityError as exc:
                raise StartError(str(exc)) from exc
            self.broker = external
        else:
            if settings.exposes_open_broker:
                log.warning(
                    "the embedded broker listens on %s with no TLS, authentication or topic "
                    "ACLs: anyone who reaches it can publish as any device and command them; "
                    "for devices on a network use Mosquitto (deploy/mosquitto). Production "
                    "refuses this setting.",
                    settings.embedded_broker_host,
                )
            self.embedded = EmbeddedBroker(
                settings.embedded_broker_host,
                settings.embedded_broker_port,
                state_path=settings.data_dir / "broker-state.json",
            )
            self.broker = self.embedded.start()
        if settings.ingest_enabled:
            self._start_ingest(main.on(self.broker), main.client_id, ingest_timeout)
        else:
            # API-only process: ingest runs elsewhere (`fleet ingest`); commands still go out.
            self.publisher = CommandPublisher(main.on(self.broker), client_id=main.client_id)
            self.publisher.start()
        # Replicas share one database: only the lease holder runs the background jobs.
        self.lease = Lease(self.ctx.engine)
        self.sweeper = HealthSweeper(
            self.ctx.sessions,
            interval_s=settings.health_sweep_s,
            retention=Retention(
                health_days=settings.health_retention_days,
                rejects_days=settings.rejects_retention_days,
            ),
            gate=self.lease.held,
        )
        self.sweeper.start()
        self.risk = RiskWorker(self.ctx.sessions, get_risk_settings(), gate=self.lease.held)
        self.risk.start()
        # One feed publisher per fleet (FLEET_FEED_ENABLED on one process): it follows
        # committed readings, so it works whether ingest runs here or in `fleet ingest` workers.
        if feed is not None:
            public_api = (
                settings.feed_public_url or f"http://{settings.http_host}:{settings.http_port}"
            )
            self.feed = FeedPublisher(
                self.ctx.sessions,
                feed.on(self.broker),
                client_id=feed.client_id,
                purge=purge_committed,
                service_root=f"{public_api.rstrip('/')}/sta/v1.1",
            )
            self.feed.start()
        ota = OtaSettings()
        self.ota = RolloutEngine(
            self.ctx.sessions,
            lambda: self.commands,
            ota.public_url or f"http://{settings.http_host}:{settings.http_port}",
            interval_s=ota.tick_s,
            restate_s=ota.restate_s,
            stall_s=ota.stall_min * 60,
            gate=self.lease.held,
        )
        self.ota.start()
        return self.broker

    @property
    def commands(self) -> Publisher | None:
        """Where API requests publish commands: the ingest connection or a publish-only one."""
        return self.ingest if self.ingest is not None else self.publisher

    def _start_ingest(self, broker: BrokerAddress, client_id: str, timeout: float) -> None:
        settings = self.ctx.settings
        handler = IngestHandler(self.ctx.sessions, max_payload_bytes=settings.max_payload_bytes)
        self.ingest = IngestWorker(
            handler,
            broker,
            client_id=client_id,
            share_group=settings.ingest_share_group,
            queue_size=settings.ingest_queue_size,
            batch_size=settings.ingest_batch_size,
            writers=settings.ingest_writers,
            inflight=settings.ingest_inflight,
        )
        self.ingest.start()
        if not self.ingest.connected.wait(timeout):
            self.stop()
            raise StartError(
                f"the ingest worker could not reach the broker at {broker.url}; "
                "check FLEET_MQTT_URL and that the broker is running"
            )

    def stop(self, budget_s: float = STOP_BUDGET_S) -> None:
        """Stop the parts all at once, not one after another, so the slowest one sets the
        time and not their sum (a sweep pass in its UPDATE, a feed snapshot load, an ingest
        batch committing). A part still busy after `budget_s` is left to the process exit
        (its threads are daemons): the database rolls back its open transaction, and the
        ingest acknowledges a message only after its commit, so the broker delivers whatever
        was not acknowledged again."""
        parts = [
            part
            for part in (self.ota, self.feed, self.risk, self.sweeper, self.ingest, self.publisher)
            if part is not None
        ]
        stopping = [
            threading.Thread(target=part.stop, name=f"stop-{type(part).__name__}", daemon=True)
            for part in parts
        ]
        for thread in stopping:
            thread.start()
        deadline = time.monotonic() + budget_s
        for thread in stopping:
            thread.join(max(0.0, deadline - time.monotonic()))
        late = [thread.name.removeprefix("stop-") for thread in stopping if thread.is_alive()]
        if late:
            log.warning("still stopping after %.0f s, not waiting: %s", budget_s, ", ".join(late))
        self.ota = self.feed = self.risk = self.sweeper = None
        self.ingest = self.publisher = None
        # The broker last: the ingest's final acknowledgements go out through it.
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None
