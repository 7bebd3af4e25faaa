"""MQTT 3.1.1 packets the intake client sends and the stream parser that reads many at once.

Only what a subscriber that also publishes commands needs: CONNECT, SUBSCRIBE, UNSUBSCRIBE,
PUBLISH, PUBACK, PINGREQ and DISCONNECT out; CONNACK, SUBACK, UNSUBACK, PUBLISH, PUBACK and
PINGRESP in.
"""

from __future__ import annotations

from typing import NamedTuple

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82  # the reserved flag bits of SUBSCRIBE are 0b0010
SUBACK = 0x90
UNSUBSCRIBE = 0xA2  # reserved flag bits 0b0010, as for SUBSCRIBE
UNSUBACK = 0xB0
PINGREQ = b"\xc0\x00"
PINGRESP = 0xD0
DISCONNECT = b"\xe0\x00"

MAX_REMAINING_LENGTH = 268_435_455  # four length bytes (MQTT 3.1.1 §2.2.3)
SUBACK_FAILURE = 0x80

CONNACK_REASONS = {
    1: "the broker does not speak MQTT 3.1.1",
    2: "the broker refused the client id",
    3: "the broker is unavailable",
    4: "the broker refused the username or password",
    5: "the broker says this client is not authorised",
}


class ProtocolError(Exception):
    """The broker sent bytes that are not MQTT 3.1.1; the connection cannot continue."""


class Delivery(NamedTuple):
    topic: str
    payload: bytes
    mid: int  # 0 for QoS 0
    qos: int
    dup: bool = False  # the broker sent it before (a redelivery after a lost connection)
    retained: bool = False  # the broker's stored copy, sent because we (re)subscribed


class Will(NamedTuple):
    """A last will: what the broker publishes for a client that vanishes without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Control(NamedTuple):
    """Any packet other than an incoming PUBLISH: its type nibble and its body."""

    kind: int
    body: bytes


def _length(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"an MQTT packet body of {n} bytes is out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string is at most 65,535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _length(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive_s: int,
    clean_session: bool,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
) -> bytes:
    if password is not None and username is None:
        raise ValueError("MQTT 3.1.1 sends a password only with a username")
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _string(will.payload)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    header = _string("MQTT") + bytes((4, flags)) + keepalive_s.to_bytes(2, "big")
    return _packet(CONNECT, header + payload)


def subscribe(mid: int, topic_filter: str, qos: int) -> bytes:
    return _packet(SUBSCRIBE, mid.to_bytes(2, "big") + _string(topic_filter) + bytes((qos,)))


def unsubscribe(mid: int, topic_filters: list[str]) -> bytes:
    if not topic_filters:
        raise ValueError("an UNSUBSCRIBE names at least one topic filter")
    body = mid.to_bytes(2, "big") + b"".join(_string(f) for f in topic_filters)
    return _packet(UNSUBSCRIBE, body)


def publish(
    topic: str, payload: bytes, *, qos: int, mid: int = 0, retain: bool = False, dup: bool = False
) -> bytes:
    first = PUBLISH | (dup << 3) | (qos << 1) | retain
    body = _string(topic) + (mid.to_bytes(2, "big") if qos else b"") + payload
    return _packet(first, body)


def pubacks(mids: list[int]) -> bytes:
    """PUBACK packets for many message ids in one buffer, to be written at once."""
    return b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)


def parse(buf: bytearray, limit: int, publishes: list[Delivery], controls: list[Control]) -> int:
    """Parse whole packets from the front of `buf`, at most `limit` PUBLISHes.

    Appends to `publishes` and `controls` in arrival order per list and returns how many
    bytes were consumed; a partial packet at the end stays for the next read.
    """
    pos = 0
    end_of_data = len(buf)
    taken = 0
    while pos + 2 <= end_of_data:
        first = buf[pos]
        # Remaining length: 1 to 4 bytes, 7 bits each, least significant first.
        i = pos + 1
        length = 0
        shift = 0
        while True:
            if i >= end_of_data:
                return pos
            byte = buf[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("a packet length is longer than four bytes")
        end = i + length
        if end > end_of_data:
            return pos
        kind = first & 0xF0
        if kind == PUBLISH:
            if taken >= limit:
                return pos
            qos = (first >> 1) & 3
            if qos == 3 or length < 2:
                raise ProtocolError("a PUBLISH packet is malformed")
            topic_end = i + 2 + (buf[i] << 8 | buf[i + 1])
            start = topic_end + 2 if qos else topic_end
            if start > end:
                raise ProtocolError("a PUBLISH topic runs past the end of its packet")
            mid = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
            topic = buf[i + 2 : topic_end].decode("utf-8", "replace")
            payload = bytes(buf[start:end])
            publishes.append(
                Delivery(topic, payload, mid, qos, bool(first & 0x08), bool(first & 0x01))
            )
            taken += 1
        else:
            controls.append(Control(kind, bytes(buf[i:end])))
        pos = end
    return pos
