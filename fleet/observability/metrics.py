"""Prometheus metrics of the service itself, on a registry per app (no global state)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, func, select

from fleet.core.context import FleetContext
from fleet.ingest.worker import IngestWorker
from fleet.models import Device, RejectedMessage
from fleet.observability.readiness import BrokerLink

DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class FleetCollector(Collector):
    """Reads counters and database state at scrape time."""

    def __init__(
        self, ctx: FleetContext, ingest: IngestWorker | None, broker: BrokerLink | None
    ) -> None:
        self._ctx = ctx
        self._ingest = ingest
        self._broker = broker

    def collect(self) -> Iterator[Any]:
        if self._ingest is not None:
            c = self._ingest.counters
            messages = CounterMetricFamily(
                "fleet_ingest_messages", "MQTT messages handled by outcome", labels=["outcome"]
            )
            for outcome, value in (
                ("stored", c.stored),
                ("rejected", c.rejected),
                ("ignored", c.ignored),
            ):
                messages.add_metric([outcome], value)
            yield messages
            yield CounterMetricFamily(
                "fleet_ingest_db_errors", "Database errors while ingesting", value=c.db_errors
            )
            lag = GaugeMetricFamily(
                "fleet_ingest_lag_seconds",
                "Age of the newest reading in the last stored message when it was stored",
            )
            lag.add_metric([], c.last_lag_s)
            yield lag
        if self._broker is not None:
            up = GaugeMetricFamily(
                "fleet_broker_connected", "1 when this process's broker connection is up"
            )
            up.add_metric([], 1.0 if self._broker.connected.is_set() else 0.0)
            yield up
        with self._ctx.sessions() as session:
            states = GaugeMetricFamily(
                "fleet_devices", "Devices by liveness state", labels=["state"]
            )
            for state, n in session.execute(
                select(Device.state, func.count()).where(Device.active()).group_by(Device.state)
            ):
                states.add_metric([state], n)
            yield states
            rejects = CounterMetricFamily(
                "fleet_rejected_messages", "Rejected messages stored, by reason", labels=["reason"]
            )
            for reason, n in session.execute(
                select(RejectedMessage.reason, func.count()).group_by(RejectedMessage.reason)
            ):
                rejects.add_metric([reason], n)
            yield rejects


def build_registry(
    ctx: FleetContext, ingest: IngestWorker | None, *, broker: BrokerLink | None = None
) -> CollectorRegistry:
    """`broker`: the process's broker connection when it is not `ingest`'s (an API replica's
    publish-only one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(ctx, ingest, broker if broker is not None else ingest))
    latency = Histogram(
        "fleet_db_query_seconds",
        "Database statement latency",
        registry=registry,
        buckets=DB_BUCKETS,
    )
    _time_statements(ctx.engine, latency)
    return registry


def _time_statements(engine: Engine, histogram: Histogram) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("fleet_query_start", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(conn, cursor, statement, parameters, context, executemany):
        stack = conn.info.get("fleet_query_start")
        if stack:
            histogram.observe(time.perf_counter() - stack.pop())
