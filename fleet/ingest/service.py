"""`fleet ingest`: one ingest worker process and nothing else (no HTTP, no embedded broker).

Run N of these with the same FLEET_INGEST_SHARE_GROUP and distinct, stable client ids: the
broker splits device traffic between them, and a restarted worker resumes its own persistent
session. With TLS client certificates the client id is the certificate's CN, so each worker
has its own certificate (fleet-ingest-0, -1, ...: a StatefulSet pod name selects it).
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from fleet.core.context import FleetContext, build_context
from fleet.core.mqtt_identity import MqttIdentityError, check_ca_file
from fleet.core.settings import Settings
from fleet.ingest.handler import IngestHandler
from fleet.ingest.worker import IngestWorker
from fleet.observability.metrics import build_registry

log = logging.getLogger(__name__)


class IngestConfigError(Exception):
    """The settings cannot run a standalone ingest worker; the message says what to set."""


def run_ingest(settings: Settings, *, connect_timeout_s: float = 30.0) -> None:
    """Run until SIGTERM or SIGINT, then finish the current batch and disconnect."""
    broker = settings.broker_address()
    if broker is None:
        raise IngestConfigError(
            "`fleet ingest` needs an external broker: set FLEET_MQTT_URL "
            "(the embedded broker lives inside `fleet serve`)"
        )
    try:
        identity = settings.ingest_identity()
        check_ca_file(broker)
    except MqttIdentityError as exc:
        raise IngestConfigError(str(exc)) from exc
    ctx = build_context(settings)
    worker = IngestWorker(
        IngestHandler(ctx.sessions, max_payload_bytes=settings.max_payload_bytes),
        identity.on(broker),
        client_id=identity.client_id,
        share_group=settings.ingest_share_group,
        queue_size=settings.ingest_queue_size,
        batch_size=settings.ingest_batch_size,
        writers=settings.ingest_writers,
        inflight=settings.ingest_inflight,
    )
    metrics = _serve_metrics(settings, ctx, worker)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the ingest worker", signum)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _stop)  # a closed terminal: stop as cleanly as on Ctrl-C
    # What start-up made (modules, ORM metadata, the migration run's objects) lives as long
    # as the process; frozen, the collector stops walking it on every full collection that
    # the ingest's short-lived batch objects trigger (~6 % of the CPU per message).
    gc.collect()
    gc.freeze()
    worker.start()
    try:
        if not worker.connected.wait(connect_timeout_s) and not done.is_set():
            log.warning("no broker at %s yet; still trying", broker.url)
        log.info("ingest worker %s running on %s", identity.client_id, worker.filter)
        while not done.wait(1.0):
            pass
    finally:
        worker.stop()
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        ctx.close()
        c = worker.counters
        log.info(
            "ingest stopped: %d received, %d stored, %d rejected, %d readings, %d batches",
            c.received,
            c.stored,
            c.rejected,
            c.readings,
            c.batches,
        )


def _serve_metrics(
    settings: Settings, ctx: FleetContext, worker: IngestWorker
) -> WSGIServer | None:
    """The worker's own /metrics (ingest outcomes, lag, broker connection): in a scaled-out
    fleet no API process holds these counters."""
    port = settings.ingest_metrics_port
    if port is None:
        return None
    try:
        server, _ = start_http_server(
            port, addr=settings.http_host, registry=build_registry(ctx, worker)
        )
    except OSError as exc:
        ctx.close()
        raise IngestConfigError(
            f"cannot serve metrics on {settings.http_host}:{port} ({exc.strerror or exc}): "
            "choose another FLEET_INGEST_METRICS_PORT"
        ) from exc
    log.info("ingest metrics on http://%s:%d/metrics", settings.http_host, port)
    return server
