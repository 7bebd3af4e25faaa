"""Ingest many messages in one transaction: decode first, then a fixed number of statements.

Decoding and validation (the CPU-heavy part) happen before the transaction opens, so the
database sees a short transaction per batch. Inside it: one query loads (and locks) the
batch's devices, one bulk insert stores readings, each device is written once, and rejects
are recorded alongside. A database error rolls back the whole batch and propagates, so the
caller does not acknowledge any of its messages and retries them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleet.health.liveness import DEFAULT_POLICY, LivenessPolicy, derive_state
from fleet.ingest import store
from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.jsondoc import parse_json
from fleet.ingest.profile import STATUS_STATES, supported_version
from fleet.ingest.senml import Health, Sample, decode_health, decode_telemetry
from fleet.ingest.topics import Upstream, parse_topic
from fleet.risk.service.update import note_samples

log = logging.getLogger(__name__)


@dataclass(slots=True)  # one per message: not frozen, which costs ~1 µs per construction
class Outcome:
    action: str  # "stored" | "ignored" | "rejected"
    inserted: int = 0
    newest_sample_ts: float | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Decoded:
    """One message after decoding, before the database is involved (see `decode`)."""

    topic: str
    payload: bytes
    device_id: str | None = None
    kind: Upstream | None = None
    samples: list[Sample] | None = None
    health: Health | None = None
    status: str | None = None
    ota: dict[str, Any] | None = None
    ack: dict[str, Any] | None = None
    rejected: Rejected | None = None
    dup: bool = False  # a redelivery: its reject may be stored already
    # Replayed by the broker because the ingest (re)subscribed: the device's last retained
    # status, however old, so no sign that the device is there now.
    retained: bool = False


# Older than the risk worker's own late-data lookback (72 h by default), with a margin.
LATE_RISK_AFTER = timedelta(hours=48)


@dataclass(slots=True)
class _DeviceChange:
    row: store.DeviceRow
    values: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    health_sampled_at: float | None = None  # of the snapshot in `values`

    def seen(self, at: datetime) -> None:
        if self.row.last_seen_at is None or at > self.row.last_seen_at:
            self.row.last_seen_at = at
            self.values["last_seen_at"] = at


def decode(
    topic: str,
    payload: bytes,
    *,
    now: float,
    max_payload_bytes: int,
    dup: bool = False,
    retained: bool = False,
) -> Decoded:
    """Everything that can be checked without the database; never raises on bad input."""
    msg = Decoded(topic, payload, dup=dup, retained=retained)
    try:
        parsed = parse_topic(topic)
        msg.device_id, msg.kind = parsed.device_id, parsed.kind
        if parsed.kind is None:
            return msg
        if len(payload) > max_payload_bytes:
            raise Rejected(
                RejectReason.PAYLOAD_TOO_LARGE,
                f"{len(payload)} bytes; the limit is {max_payload_bytes}",
            )
        if parsed.kind is Upstream.TELEMETRY:
            msg.samples = decode_telemetry(payload, parsed.device_id, now=now)
        elif parsed.kind is Upstream.HEALTH:
            msg.health = decode_health(payload, parsed.device_id, now=now)
        elif parsed.kind is Upstream.STATUS:
            msg.status = status_state(payload)
        elif parsed.kind is Upstream.OTA_PROGRESS:
            from fleet.ota.progress import decode_progress

            # A malformed report is rejected; a valid one marks the device seen and is kept.
            msg.ota = decode_progress(payload)
        elif parsed.kind is Upstream.COMMAND_ACK:
            from fleet.commands.record import decode_ack

            msg.ack = decode_ack(payload)
    except Rejected as exc:
        msg.rejected = exc
    except Exception as exc:
        # A payload the checks above did not foresee. Raised here, on the intake thread, it
        # would drop the broker connection and come back with every redelivery; recorded as
        # a reject, it is acknowledged and shown to an operator with the error.
        log.exception("decoding a message on %s failed", topic)
        msg.rejected = Rejected(
            RejectReason.DECODE_FAILED, f"could not be decoded: {type(exc).__name__}: {exc}"
        )
    return msg


def write_batch(
    sessions: sessionmaker[Session],
    decoded: Sequence[Decoded],
    *,
    now: float,
    policy: LivenessPolicy = DEFAULT_POLICY,
    tolerate_conflicts: bool = False,
) -> list[Outcome]:
    """Store decoded messages atomically; returns one outcome per message, in order.

    `tolerate_conflicts`: see store.insert_readings."""
    received_at = datetime.fromtimestamp(now, UTC)
    wanted = {m.device_id for m in decoded if m.kind is not None and m.device_id is not None}
    with sessions.begin() as session:
        devices = store.load_devices(session, wanted)
        for m in decoded:
            if m.kind is not None and m.device_id not in devices:
                # Even over a decoding error: an unknown sender is what an operator must see.
                m.rejected = Rejected(
                    RejectReason.UNKNOWN_DEVICE,
                    f"device {m.device_id!r} is not registered; enrol it first",
                )
        changes: dict[str, _DeviceChange] = {}
        readings: dict[store.SampleKey, store.SampleData] = {}
        health_rows: dict[tuple[int, float] | int, dict[str, Any]] = {}
        rejects: list[dict[str, Any]] = []
        redelivered: list[dict[str, Any]] = []
        for seq, m in enumerate(decoded):
            if m.rejected is not None:  # logged by the caller after the commit (RejectLog)
                row = store.reject_row(
                    topic=m.topic,
                    device_id=m.device_id,
                    reason=m.rejected.reason.value,
                    detail=m.rejected.detail,
                    payload=m.payload,
                    received_at=received_at,
                )
                (redelivered if m.dup else rejects).append(row)
                continue
            if m.kind is None or m.device_id is None:
                continue
            change = changes.get(m.device_id)
            if change is None:
                change = changes[m.device_id] = _DeviceChange(devices[m.device_id])
            _apply(change, m, seq, received_at, readings, health_rows)
            if m.ota is not None:
                from fleet.ota.service import record_progress

                record_progress(session, change.row.pk, m.ota, received_at)
            if m.ack is not None:
                from fleet.commands.record import record_answer

                record_answer(session, change.row.pk, m.ack, received_at)
        added = store.insert_readings(
            session, readings, received_at, tolerate_conflicts=tolerate_conflicts
        )
        _keep_new_health(changes, store.insert_health(session, list(health_rows.values())))
        if redelivered:
            # Stored before a lost connection kept its acknowledgement from the broker.
            rejects += store.unrecorded_rejects(session, redelivered)
        store.insert_rejects(session, rejects)
        store.insert_state_changes(session, _refresh_states(changes, received_at, policy))
        store.update_devices(
            session, [{"pk": c.row.pk, **c.values} for c in changes.values() if c.values]
        )
        _flag_late_risk_hours(session, changes, received_at)
    return [_outcome(seq, m, added) for seq, m in enumerate(decoded)]


def _flag_late_risk_hours(
    session: Session, changes: dict[str, _DeviceChange], now: datetime
) -> None:
    """Readings that arrive days late (store-and-forward after an outage) reopen risk hours.

    The risk worker notices recent late data by itself; only older samples need flagging,
    which keeps this off the normal path.
    """
    horizon = (now - LATE_RISK_AFTER).timestamp()
    for change in changes.values():
        old = [s for s in change.samples if s.t < horizon]
        if old and change.row.placement_id is not None:
            note_samples(session, placement_id=change.row.placement_id, samples=old)


def _apply(
    change: _DeviceChange,
    m: Decoded,
    seq: int,
    at: datetime,
    readings: dict[store.SampleKey, store.SampleData],
    health_rows: dict[tuple[int, float] | int, dict[str, Any]],
) -> None:
    row = change.row
    # A message the broker replays because the ingest (re)subscribed is its stored copy,
    # however old: no sign that the device is there now. A dead battery device's last
    # "sleeping" would otherwise bring it back to life at every ingest restart.
    live = not m.retained
    if m.samples is not None:
        pk = row.pk
        for s in m.samples:
            # A pack repeated within one batch (a redelivery) is stored, and counted, once.
            readings.setdefault((pk, s.metric, s.t), (s.value, s.unit, seq))
        _update_latest(change, m.samples)
        change.samples.extend(m.samples)
        if live:
            change.seen(at)
    elif m.health is not None:
        _apply_health(change, m.health, seq, at, health_rows)
        if live:
            change.seen(at)
    elif m.status is not None:
        if not live:
            if row.status == "unknown":  # all there is to know (a new database)
                row.status = m.status
                change.values.update(status=m.status)
            return
        row.status = m.status
        change.values.update(status=m.status, status_at=at)
        if m.status != "offline":
            change.seen(at)
    elif live:
        change.seen(at)


def _apply_health(
    change: _DeviceChange,
    health: Health,
    seq: int,
    at: datetime,
    health_rows: dict[tuple[int, float] | int, dict[str, Any]],
) -> None:
    pk, t = change.row.pk, health.sampled_at
    sampled = None if t is None else datetime.fromtimestamp(t, UTC)
    # A snapshot repeated within one batch (a redelivery) is stored once; one without a
    # time cannot be told apart from a new one.
    key = seq if t is None else (pk, t)
    health_rows.setdefault(
        key, {"device_pk": pk, "at": at, "sampled_at": sampled, "data": health.values}
    )
    newest = change.health_sampled_at
    if t is not None and newest is not None and t < newest:
        return  # an older report arriving after a newer one in the same batch
    change.health_sampled_at = t
    change.values.update(health=health.values, health_at=at)
    fw = health.values.get("fw_version")
    if isinstance(fw, str):
        change.values["fw_version"] = fw[:32]


def _keep_new_health(changes: dict[str, _DeviceChange], stored: set[int]) -> None:
    # A device whose every snapshot was already stored sent nothing new: a redelivery must
    # not put an older snapshot back in place of one that arrived since.
    for change in changes.values():
        if "health" in change.values and change.row.pk not in stored:
            for column in ("health", "health_at", "fw_version"):
                change.values.pop(column, None)


def _update_latest(change: _DeviceChange, samples: list[Sample]) -> None:
    # A per-device cache of the newest value per metric keeps the overview off the readings
    # table. The dict is the row's own (loaded, or new for this batch), updated in place.
    row = change.row
    latest = row.latest
    if latest is None:
        latest = row.latest = {}
    newest = samples[0].t
    for s in samples:
        t = s.t
        current = latest.get(s.metric)
        if current is None or t >= current["t"]:
            latest[s.metric] = {"v": s.value, "u": s.unit, "t": t}
        if t > newest:
            newest = t
    change.values["latest"] = latest
    if row.latest_at is None or newest > row.latest_at.timestamp():
        row.latest_at = datetime.fromtimestamp(newest, UTC)
        change.values["latest_at"] = row.latest_at


def _refresh_states(
    changes: dict[str, _DeviceChange], now: datetime, policy: LivenessPolicy
) -> list[dict[str, Any]]:
    """Derived liveness once per touched device, each change recorded with its reason."""
    recorded: list[dict[str, Any]] = []
    for change in changes.values():
        row = change.row
        state, reason = derive_state(
            power_mode=row.power_mode,
            report_interval_s=row.report_interval_s,
            status=row.status,
            last_seen_at=row.last_seen_at,
            now=now,
            policy=policy,
        )
        if state == row.state:
            continue
        recorded.append(
            {
                "device_pk": row.pk,
                "at": now,
                "from_state": row.state,
                "to_state": state.value,
                "reason": reason,
            }
        )
        row.state = state.value
        change.values.update(state=state.value, state_at=now)
    return recorded


def _outcome(seq: int, m: Decoded, added: dict[int, int]) -> Outcome:
    if m.rejected is not None:
        return Outcome("rejected", reason=m.rejected.reason.value, detail=m.rejected.detail)
    if m.kind is None:
        return Outcome("ignored")
    newest = max(s.t for s in m.samples) if m.samples else None
    return Outcome("stored", inserted=added.get(seq, 0), newest_sample_ts=newest)


def status_state(payload: bytes) -> str:
    doc = parse_json(payload, "status")
    if not isinstance(doc, dict):
        raise Rejected(RejectReason.BAD_STATUS, "status must be a JSON object")
    if not supported_version(doc.get("sv")):
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA, f"status sv={doc.get('sv')!r}")
    state = doc.get("state")
    if not isinstance(state, str) or state not in STATUS_STATES:
        raise Rejected(
            RejectReason.BAD_STATUS,
            f"state {state!r} is not one of {', '.join(sorted(STATUS_STATES))}",
        )
    return str(state)
