"""Decode SenML (RFC 8428) packs under the `cs-senml/1` profile into typed samples."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.jsondoc import parse_json
from fleet.ingest.profile import (
    EARLIEST_VALID_TIME,
    MAX_FUTURE_SKEW_S,
    MAX_RECORDS_PER_PACK,
    METRIC_RANGES,
    METRIC_UNITS,
    SUPPORTED_SCHEMA_VERSIONS,
    base_name,
    supported_version,
)

_VALUE_KEYS = ("v", "vs", "vb", "vd")
_VALUE_OR_SUM = frozenset((*_VALUE_KEYS, "s"))
# One lookup per reading: a metric's unit and possible range together.
_METRICS = {name: (unit, *METRIC_RANGES[name]) for name, unit in METRIC_UNITS.items()}


# A resolved record: name relative to the device, absolute time, unit, one value. A plain
# tuple: records are made per reading on the ingest's hot path, and a tuple costs a fraction
# of a class instance's Python-level __init__.
Record = tuple[str, float, str | None, float | str | bool]


# Samples are created per reading too; a frozen dataclass costs about five times as much to
# construct, so this is a plain slotted one, never mutated.
@dataclass(slots=True)
class Sample:
    metric: str
    t: float  # UTC seconds; the ingest's hot path works on these, not on datetimes
    value: float
    unit: str

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def load_pack(payload: bytes) -> list[dict[str, Any]]:
    pack = parse_json(payload, "payload")
    if not isinstance(pack, list) or not pack:
        raise Rejected(RejectReason.NOT_SENML, "a SenML pack is a non-empty JSON array of records")
    if len(pack) > MAX_RECORDS_PER_PACK:
        raise Rejected(
            RejectReason.NOT_SENML, f"pack has {len(pack)} records; at most {MAX_RECORDS_PER_PACK}"
        )
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise Rejected(RejectReason.NOT_SENML, f"record {i} is not a JSON object")
    return pack


def resolve(
    pack: list[dict[str, Any]], device_id: str, *, now: float, undated: bool = False
) -> list[Record]:
    """Apply base fields (which may change mid-pack, RFC 8428 §4.5) and check identity and time.

    `undated`: times before 2020 are let through (the caller dates them).
    """
    version = pack[0].get("sv")
    if not supported_version(version):
        raise Rejected(
            RejectReason.UNSUPPORTED_SCHEMA,
            f"schema version sv={version!r} is not supported "
            f"(supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})",
        )
    expected_bn = base_name(device_id)
    latest = now + MAX_FUTURE_SKEW_S
    bn: str | None = None
    bt = 0.0
    bu: str | None = None
    records: list[Record] = []
    for i, rec in enumerate(pack):
        if "bn" in rec:
            bn = rec["bn"]
            if bn != expected_bn:
                raise Rejected(
                    RejectReason.BASE_NAME_MISMATCH,
                    f"record {i} has bn={bn!r} but the topic names device {device_id!r} "
                    f"(expected {expected_bn!r})",
                )
        if "bt" in rec:
            bt = _number(rec["bt"], i, "bt", RejectReason.BAD_TIME)
        if "bu" in rec:
            bu = rec["bu"] if isinstance(rec["bu"], str) else None
        if bn is None:
            raise Rejected(RejectReason.BASE_NAME_MISMATCH, "the first record must carry bn")
        if "v" not in rec and rec.keys().isdisjoint(_VALUE_OR_SUM):
            continue  # a base-only record
        name = rec.get("n", "")
        if type(name) is not str:
            raise Rejected(RejectReason.NOT_SENML, f"record {i}: n must be a string")
        t = rec.get("t")
        if t is None:
            when = bt
        else:
            when = bt + (t if type(t) is float else _number(t, i, "t", RejectReason.BAD_TIME))
        if (when < EARLIEST_VALID_TIME and not undated) or when > latest or when != when:
            _bad_time(when, i, now)
        # The usual record: a finite "v" and no other value, checked inline (a float from
        # JSON is finite unless the pack said NaN or Infinity).
        if "v" in rec and "vs" not in rec and "vb" not in rec and "vd" not in rec:
            value = rec["v"]
            if type(value) is not float or value - value != 0.0:
                value = _number(value, i, "v", RejectReason.BAD_VALUE)
        else:
            value = _value(rec, i)
        records.append((name, when, rec.get("u", bu), value))
    return records


def _bad_time(when: float, index: int, now: float) -> NoReturn:
    if not math.isfinite(when):
        raise Rejected(RejectReason.BAD_TIME, f"record {index}: t must be finite")
    if when < 2**28:
        raise Rejected(
            RejectReason.BAD_TIME,
            f"record {index}: time {when} is relative to 'now'; devices must send UTC times "
            "(set the clock by NTP before sending)",
        )
    if when < EARLIEST_VALID_TIME:
        raise Rejected(
            RejectReason.BAD_TIME,
            f"record {index}: time {_iso(when)} is before 2020: the device clock was not set",
        )
    if when > now + MAX_FUTURE_SKEW_S:
        raise Rejected(RejectReason.BAD_TIME, f"record {index}: time {_iso(when)} is in the future")
    raise AssertionError("a valid time was reported as bad")


def telemetry_samples(records: list[Record]) -> list[Sample]:
    samples: list[Sample] = []
    for i, (name, when, unit, value) in enumerate(records):
        metric = _METRICS.get(name)
        if metric is None:
            raise Rejected(
                RejectReason.UNKNOWN_METRIC,
                f"record {i}: metric {name!r} is not in the profile "
                f"(known: {', '.join(sorted(METRIC_UNITS))})",
            )
        expected_unit, low, high = metric
        if unit != expected_unit:
            raise Rejected(
                RejectReason.UNIT_MISMATCH,
                f"record {i}: {name} must be in {expected_unit!r}, got {unit!r}",
            )
        if type(value) is not float:  # resolve made every number a float; bool is not one
            raise Rejected(RejectReason.BAD_VALUE, f"record {i}: {name} needs a numeric v")
        if not low <= value <= high:
            raise Rejected(
                RejectReason.BAD_VALUE,
                f"record {i}: {name}={value} is outside the possible range {low}..{high}",
            )
        samples.append(Sample(name, when, value, expected_unit))
    return samples


def decode_telemetry(payload: bytes, device_id: str, *, now: float) -> list[Sample]:
    return telemetry_samples(resolve(load_pack(payload), device_id, now=now))


@dataclass(frozen=True, slots=True)
class Health:
    sampled_at: float | None  # the newest record's time; None for a pack without values
    values: dict[str, Any]  # the newest value per name


def decode_health(payload: bytes, device_id: str, *, now: float) -> Health:
    """A health pack becomes a flat snapshot of its newest value per name.

    A device whose clock was never set (NTP blocked, say) stamps its health before 2020, or
    sends times relative to receipt (RFC 8428 §4.5.3); such a pack is dated as received,
    since that is when staff most need to see it (`clock_synced` false raises the clock
    alert). Readings keep the strict rule: their time is what the risk engine runs on.
    """
    pack = load_pack(payload)
    try:
        records = resolve(pack, device_id, now=now)
    except Rejected as exc:
        if exc.reason is not RejectReason.BAD_TIME or not _clock_unset(pack):
            raise
        records = resolve(pack, device_id, now=now, undated=True)
        newest = max((r[1] for r in records), default=now)
        if not math.isfinite(newest) or newest >= EARLIEST_VALID_TIME:
            raise  # a dated record beside an undated one: not a clock that was never set
        records = [(n, now + (t - newest), u, v) for n, t, u, v in records]
    records.sort(key=lambda r: r[1])
    return Health(records[-1][1] if records else None, {r[0]: r[3] for r in records})


def _clock_unset(pack: list[dict[str, Any]]) -> bool:
    """The pack says its clock was never set, or gives only times relative to receipt."""
    if any(r.get("n") == "clock_synced" and r.get("vb") is False for r in pack):
        return True
    times = [r[k] for r in pack for k in ("bt", "t") if k in r]
    return all(type(t) in (int, float) and abs(t) < 2**28 for t in times)


def _number(value: Any, index: int, label: str, reason: RejectReason) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(reason, f"record {index}: {label} must be a number")
    if not math.isfinite(value):
        raise Rejected(reason, f"record {index}: {label} must be finite")
    return float(value)


def _value(rec: dict[str, Any], index: int) -> float | str | bool:
    """A record's value when it is not the usual lone "v" (see resolve)."""
    present = [k for k in _VALUE_KEYS if k in rec]
    if len(present) != 1:
        raise Rejected(
            RejectReason.NOT_SENML,
            f"record {index}: exactly one of v, vs, vb, vd is required, got {present or 'none'}",
        )
    key = present[0]
    value = rec[key]
    if key == "vb":
        if not isinstance(value, bool):
            raise Rejected(RejectReason.BAD_VALUE, f"record {index}: vb must be true or false")
        return value
    if not isinstance(value, str):
        raise Rejected(RejectReason.BAD_VALUE, f"record {index}: {key} must be a string")
    return value


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(ts)
