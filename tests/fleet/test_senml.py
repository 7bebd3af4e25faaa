"""The SenML profile decoder: accepted shapes, refused shapes, and that it never crashes."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.ingest.batch import decode
from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.senml import decode_health, decode_telemetry
from tests.fleet.packs import telemetry

# Fixed, not the clock: test ids embed it, and every parallel worker must collect the same.
NOW = 1_790_000_000.0  # 2026-09-21
DEV = "cs-test-0001"
BN = f"urn:dev:cs:{DEV}:"


def test_decodes_samples_with_relative_times() -> None:
    bt = NOW - 1800
    samples = decode_telemetry(
        telemetry(DEV, bt, [(0, 21.5, 55.0), (900, 21.7, 56.5)]), DEV, now=NOW
    )
    assert [(s.metric, s.ts.timestamp(), s.value, s.unit) for s in samples] == [
        ("temperature", bt, 21.5, "Cel"),
        ("humidity", bt, 55.0, "%RH"),
        ("temperature", bt + 900, 21.7, "Cel"),
        ("humidity", bt + 900, 56.5, "%RH"),
    ]


def test_base_time_may_change_mid_pack() -> None:
    pack = [
        {"bn": BN, "bt": NOW - 100, "sv": 1, "n": "temperature", "u": "Cel", "v": 20.0},
        {"bt": NOW - 50, "n": "temperature", "u": "Cel", "v": 20.5},
    ]
    samples = decode_telemetry(json.dumps(pack).encode(), DEV, now=NOW)
    assert [s.ts.timestamp() for s in samples] == [NOW - 100, NOW - 50]


def pack_with(**changes: object) -> bytes:
    rec = {"bn": BN, "bt": NOW, "sv": 1, "n": "temperature", "u": "Cel", "v": 20.0}
    rec.update(changes)
    return json.dumps([{k: v for k, v in rec.items() if v is not None}]).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", RejectReason.MALFORMED_JSON),
        (b"\xff\xfe", RejectReason.MALFORMED_JSON),
        (b"[]", RejectReason.NOT_SENML),
        (b'{"n": "temperature"}', RejectReason.NOT_SENML),
        (b"[1, 2]", RejectReason.NOT_SENML),
        (pack_with(sv=None), RejectReason.UNSUPPORTED_SCHEMA),
        (pack_with(sv=99), RejectReason.UNSUPPORTED_SCHEMA),
        (pack_with(bn="urn:dev:cs:someone-else:"), RejectReason.BASE_NAME_MISMATCH),
        (pack_with(bn=None), RejectReason.BASE_NAME_MISMATCH),
        (pack_with(n="radon"), RejectReason.UNKNOWN_METRIC),
        (pack_with(u="Far"), RejectReason.UNIT_MISMATCH),
        (pack_with(v="21"), RejectReason.BAD_VALUE),
        (pack_with(v=400.0), RejectReason.BAD_VALUE),
        (pack_with(v=None, vs="warm"), RejectReason.BAD_VALUE),
        (pack_with(bt=1000), RejectReason.BAD_TIME),
        (pack_with(bt=946684800 + 3600), RejectReason.BAD_TIME),  # ESP32 epoch never converted
        (pack_with(bt=NOW + 86400), RejectReason.BAD_TIME),
        (pack_with(bt="now"), RejectReason.BAD_TIME),
    ],
)
def test_refuses_with_a_reason(payload: bytes, reason: RejectReason) -> None:
    with pytest.raises(Rejected) as info:
        decode_telemetry(payload, DEV, now=NOW)
    assert info.value.reason == reason
    assert info.value.detail  # always tells the sender what to fix


# Past any JSON parser's nesting limit (Python's recursion limit is 1,000), within 64 KB.
DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.mark.parametrize("decoder", [decode_telemetry, decode_health])
def test_a_payload_nested_too_deeply_is_refused_not_raised(decoder: Callable[..., object]) -> None:
    with pytest.raises(Rejected) as info:
        decoder(DEEP, DEV, now=NOW)
    assert info.value.reason == RejectReason.MALFORMED_JSON
    assert "too deeply" in info.value.detail


def test_an_integer_past_64_bits_gets_the_value_reject_not_a_parse_error() -> None:
    with pytest.raises(Rejected) as info:
        decode_telemetry(pack_with(v=10**30), DEV, now=NOW)
    assert info.value.reason == RejectReason.BAD_VALUE


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("v", math.nan, RejectReason.BAD_VALUE),
        ("v", math.inf, RejectReason.BAD_VALUE),
        ("v", -math.inf, RejectReason.BAD_VALUE),
        ("t", math.nan, RejectReason.BAD_TIME),
        ("t", math.inf, RejectReason.BAD_TIME),
        ("t", -math.inf, RejectReason.BAD_TIME),
        ("bt", math.nan, RejectReason.BAD_TIME),
    ],
)
def test_non_finite_numbers_refused(field: str, value: float, reason: RejectReason) -> None:
    rec = {"bn": BN, "bt": NOW, "sv": 1, "n": "temperature", "u": "Cel", "v": 20.0}
    payload = json.dumps([{**rec, field: value}]).encode()  # json writes NaN and Infinity
    with pytest.raises(Rejected) as info:
        decode_telemetry(payload, DEV, now=NOW)
    assert info.value.reason == reason
    assert "finite" in info.value.detail


def test_health_pack_flattens_to_newest_values() -> None:
    pack = [
        {"bn": BN, "bt": NOW, "sv": 1, "n": "uptime", "u": "s", "v": 120},
        {"n": "fw_version", "vs": "0.1.0"},
        {"n": "clock_synced", "vb": True},
        {"n": "uptime", "u": "s", "v": 60, "t": -60},  # an older value does not win
    ]
    snap = decode_health(json.dumps(pack).encode(), DEV, now=NOW)
    assert snap.values == {"uptime": 120.0, "fw_version": "0.1.0", "clock_synced": True}
    assert snap.sampled_at == NOW


# The ESP32's clock counts from 2000-01-01 until NTP sets it.
UNSET_CLOCK = 946_684_800 + 125


def test_health_from_a_clock_never_set_is_dated_on_receipt() -> None:
    pack = [
        {"bn": BN, "bt": UNSET_CLOCK, "sv": 1, "n": "uptime", "u": "s", "v": 125},
        {"n": "clock_synced", "vb": False},
        {"n": "heap_free", "u": "B", "v": 40000, "t": -60},  # older: does not win
        {"n": "heap_free", "u": "B", "v": 38000},
    ]
    snap = decode_health(json.dumps(pack).encode(), DEV, now=NOW)
    assert snap.sampled_at == NOW
    assert snap.values == {"uptime": 125.0, "clock_synced": False, "heap_free": 38000.0}


def test_health_in_times_relative_to_receipt_is_dated_on_receipt() -> None:
    pack = [{"bn": BN, "sv": 1, "n": "uptime", "u": "s", "v": 9}, {"n": "rssi", "v": -70}]
    assert decode_health(json.dumps(pack).encode(), DEV, now=NOW).sampled_at == NOW


@pytest.mark.parametrize(
    "pack",
    [
        # A clock said to be set, yet before 2020: a fault worth refusing, not hiding.
        [{"bn": BN, "bt": UNSET_CLOCK, "sv": 1, "n": "clock_synced", "vb": True}],
        # An undated record beside a dated one.
        [
            {"bn": BN, "bt": NOW, "sv": 1, "n": "uptime", "v": 5},
            {"bt": UNSET_CLOCK, "n": "clock_synced", "vb": False},
        ],
    ],
)
def test_health_with_an_impossible_time_is_still_refused(pack: list[dict[str, object]]) -> None:
    with pytest.raises(Rejected) as info:
        decode_health(json.dumps(pack).encode(), DEV, now=NOW)
    assert info.value.reason == RejectReason.BAD_TIME


def test_readings_from_a_clock_never_set_are_still_refused() -> None:
    pack = [
        {"bn": BN, "bt": UNSET_CLOCK, "sv": 1, "n": "temperature", "u": "Cel", "v": 20.0},
        {"n": "clock_synced", "vb": False},
    ]
    with pytest.raises(Rejected) as info:
        decode_telemetry(json.dumps(pack).encode(), DEV, now=NOW)
    assert info.value.reason == RejectReason.BAD_TIME


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["bn", "bt", "sv", "n", "u", "v", "vs", "t", "x"]), children, max_size=6
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_arbitrary_json_is_accepted_or_rejected_never_crashes(doc: object) -> None:
    payload = json.dumps(doc).encode()
    try:
        decode_telemetry(payload, DEV, now=NOW)
    except Rejected as exc:
        assert exc.detail


# Every upstream topic, and keys the other payloads use: a crash while decoding would drop
# the ingest's broker connection, and the same payload would come back on every reconnect.
any_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
# Status and OTA progress documents with a supported version, so the other fields get checked.
other_docs = st.fixed_dictionaries(
    {"sv": st.just(1)},
    optional={
        k: any_value | st.text(max_size=12)
        for k in ("state", "app", "pct", "id", "version", "reason", "step", "retry")
    },
)


@settings(max_examples=300)
@given(st.sampled_from(["up", "health", "status", "ota/progress"]), json_values | other_docs)
def test_every_upstream_payload_is_decoded_or_refused_by_the_checks(kind: str, doc: object) -> None:
    msg = decode(f"cs/v1/d/{DEV}/{kind}", json.dumps(doc).encode(), now=NOW, max_payload_bytes=4096)
    # decode_failed is the safety net for a check that raised: a bug, not a refusal.
    assert msg.rejected is None or msg.rejected.reason != RejectReason.DECODE_FAILED
    assert msg.rejected is None or msg.rejected.detail


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(payload: bytes) -> None:
    with contextlib.suppress(Rejected):
        decode_telemetry(payload, DEV, now=NOW)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 86400),
            st.floats(-40, 125, allow_nan=False),
            st.floats(0, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=20,
        unique_by=lambda s: s[0],
    )
)
def test_valid_packs_round_trip(samples: list[tuple[int, float, float]]) -> None:
    bt = NOW - 90000
    decoded = decode_telemetry(
        telemetry(DEV, bt, [(float(t), a, b) for t, a, b in samples]), DEV, now=NOW
    )
    assert len(decoded) == 2 * len(samples)
    for (t, temp, rh), (s_t, s_rh) in zip(
        samples, zip(decoded[::2], decoded[1::2], strict=True), strict=True
    ):
        assert s_t.ts.timestamp() == pytest.approx(bt + t)
        assert (s_t.value, s_rh.value) == (temp, rh)
