"""The intake client's MQTT 3.1.1 packets: exact bytes, and a parser that takes a stream cut
anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.broker import wire
from fleet.broker.wire import Control, Delivery

topics = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=80,
)
deliveries = st.builds(
    Delivery,
    topic=topics,
    payload=st.binary(max_size=400),
    mid=st.integers(1, 0xFFFF),
    qos=st.sampled_from([0, 1]),
    dup=st.booleans(),
    retained=st.booleans(),
).map(lambda d: d._replace(mid=d.mid if d.qos else 0, dup=d.dup and d.qos > 0))


def _feed(stream: bytes, cuts: list[int], limit: int = 10**9) -> tuple[list[Delivery], bytearray]:
    """Deliver `stream` in pieces cut at `cuts`, as socket reads would."""
    buf = bytearray()
    got: list[Delivery] = []
    controls: list[Control] = []
    start = 0
    for end in [*sorted(cuts), len(stream)]:
        buf += stream[start:end]
        start = end
        del buf[: wire.parse(buf, limit, got, controls)]
    return got, buf


@given(st.lists(deliveries, max_size=30), st.lists(st.integers(0, 20_000), max_size=12))
def test_publishes_survive_any_split_of_the_stream(msgs: list[Delivery], cuts: list[int]) -> None:
    stream = b"".join(
        wire.publish(d.topic, d.payload, qos=d.qos, mid=d.mid, dup=d.dup, retain=d.retained)
        for d in msgs
    )
    got, rest = _feed(stream, [c for c in cuts if c <= len(stream)])
    assert got == msgs
    assert rest == b""


def test_parse_stops_at_the_limit_and_keeps_the_rest() -> None:
    stream = b"".join(wire.publish(f"t/{i}", b"x", qos=1, mid=i + 1) for i in range(5))
    buf = bytearray(stream + wire.PINGREQ[:1])
    got: list[Delivery] = []
    used = wire.parse(buf, 3, got, [])
    assert [d.mid for d in got] == [1, 2, 3]
    del buf[:used]
    used = wire.parse(buf, 10, got, [])
    assert [d.mid for d in got] == [1, 2, 3, 4, 5]
    assert bytes(buf[used:]) == b"\xc0"  # half a packet waits for the next read


def test_control_packets_come_out_with_their_bodies() -> None:
    stream = b"\x20\x02\x01\x00" + b"\x90\x03\x00\x01\x01" + b"\xd0\x00" + b"\x40\x02\x12\x34"
    controls: list[Control] = []
    assert wire.parse(bytearray(stream), 10, [], controls) == len(stream)
    assert controls == [
        Control(wire.CONNACK, b"\x01\x00"),
        Control(wire.SUBACK, b"\x00\x01\x01"),
        Control(wire.PINGRESP, b""),
        Control(wire.PUBACK, b"\x12\x34"),
    ]


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x36\x03\x00\x01t", "malformed"),  # QoS 3
        (b"\x32\x04\x00\x09ab", "past the end"),  # topic length beyond the packet
    ],
)
def test_malformed_streams_are_protocol_errors(stream: bytes, problem: str) -> None:
    with pytest.raises(wire.ProtocolError, match=problem):
        wire.parse(bytearray(stream), 10, [], [])


def test_packets_have_the_exact_bytes_of_mqtt_3_1_1() -> None:
    assert wire.connect("ingest-1", keepalive_s=60, clean_session=False) == (
        b"\x10\x14\x00\x04MQTT\x04\x00\x00\x3c\x00\x08ingest-1"
    )
    assert wire.connect("c", keepalive_s=5, clean_session=True, username="u", password="p") == (
        b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x05\x00\x01c\x00\x01u\x00\x01p"
    )
    assert wire.subscribe(1, "cs/v1/d/#", 1) == b"\x82\x0e\x00\x01\x00\x09cs/v1/d/#\x01"
    assert wire.publish("a/b", b"hi", qos=1, mid=258, retain=True) == (
        b"\x33\x09\x00\x03a/b\x01\x02hi"
    )
    assert wire.pubacks([1, 513]) == b"\x40\x02\x00\x01\x40\x02\x02\x01"


def test_long_packets_use_multi_byte_lengths() -> None:
    packet = wire.publish("t", b"x" * 200, qos=0)
    assert packet[:3] == b"\x30\xcb\x01"  # 203 = 0x4b + 1 * 128
    got: list[Delivery] = []
    wire.parse(bytearray(packet), 1, got, [])
    assert got == [Delivery("t", b"x" * 200, 0, 0)]


def test_a_password_needs_a_username() -> None:
    with pytest.raises(ValueError, match="username"):
        wire.connect("c", keepalive_s=5, clean_session=True, password="p")


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_matches_the_spec_table(n: int, encoded: bytes) -> None:
    assert wire._length(n) == encoded


def test_connect_carries_the_last_will_and_session_flag() -> None:
    packet = wire.connect(
        "cs-abc-001",
        keepalive_s=60,
        clean_session=False,
        will=wire.Will("cs/v1/d/cs-abc-001/status", b'{"sv":1,"state":"offline"}'),
    )
    assert packet[0] == 0x10
    body = packet[2:]
    assert body[:6] == b"\x00\x04MQTT" and body[6] == 4
    # will flag, will QoS 1, will retain; clean session off
    assert body[7] == 0x04 | 0x08 | 0x20
    assert body[8:10] == b"\x00\x3c"
    assert body.endswith(b'{"sv":1,"state":"offline"}')


def test_publish_qos1_has_a_packet_id_and_dup_on_resend() -> None:
    first = wire.publish("a/b", b"xy", qos=1, mid=7)
    again = wire.publish("a/b", b"xy", qos=1, mid=7, dup=True)
    assert first == b"\x32\x09\x00\x03a/b\x00\x07xy"
    assert again[0] == 0x3A and again[1:] == first[1:]
