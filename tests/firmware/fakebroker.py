"""A scripted MQTT broker for firmware tests: a TCP listener in the test process that
sends the exact bytes a test chooses, to provoke what a real Mosquitto never does
(a malformed length, a refused CONNECT, a silent broker, one byte per segment).

The test drives it step by step: `accept()` a connection, `packet()` reads one whole
packet the device sent, `send()` writes raw bytes. Every wait is bounded.
"""

from __future__ import annotations

import socket
import struct
import time

from tests.conftest import DEADLINE_SCALE

CONNACK_OK = b"\x20\x02\x00\x00"


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def mqtt_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def publish(
    topic: str | bytes, payload: bytes, qos: int = 0, pid: int = 0, dup: bool = False
) -> bytes:
    head = 0x30 | qos << 1 | (0x08 if dup else 0)
    body = mqtt_str(topic) + (struct.pack("!H", pid) if qos else b"") + payload
    return bytes((head,)) + remaining_length(len(body)) + body


def puback(pid: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", pid)


def suback(pid: int, code: int) -> bytes:
    return b"\x90\x03" + struct.pack("!H", pid) + bytes((code,))


class Conn:
    """One accepted connection, read a whole packet at a time."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self._buf = b""

    def _need(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # closed with our bytes unread: a close all the same
                chunk = b""
            if not chunk:
                raise EOFError("the device closed the connection")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def packet(self) -> tuple[int, bytes]:
        """(first byte, body) of the next packet from the device."""
        head = self._need(1)[0]
        n = shift = 0
        while True:
            b = self._need(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return head, self._need(n)

    def expect(self, kind: int) -> bytes:
        """The body of the next packet, which must be of `kind` (upper nibble)."""
        head, body = self.packet()
        assert head & 0xF0 == kind, f"expected packet type {kind:#x}, got {head:#x} {body!r}"
        return body

    def packets_until_closed(self) -> list[tuple[int, bytes]]:
        """Every packet the device sends until it closes the connection."""
        out = []
        while True:
            try:
                out.append(self.packet())
            except EOFError:
                return out

    def closed_by_device(self) -> bool:
        """True once the device closed its end (EOF), within the timeout."""
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except OSError:
            return True

    def send(self, data: bytes, one_byte_at_a_time: bool = False) -> None:
        if not one_byte_at_a_time:
            self.sock.sendall(data)
            return
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            time.sleep(0.002)  # lets each byte leave as a segment of its own

    def close(self) -> None:
        self.sock.close()


class FakeBroker:
    def __init__(self, timeout: float = 20, rcvbuf: int = 0) -> None:
        self.timeout = timeout * DEADLINE_SCALE
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:  # a small window: a device's socket fills after a few KB unread
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(self.timeout)
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[Conn] = []

    def accept(self) -> Conn:
        sock, _ = self.listener.accept()
        conn = Conn(sock, self.timeout)
        self.conns.append(conn)
        return conn

    def accept_connect(self, connack: bytes = CONNACK_OK) -> tuple[Conn, bytes]:
        """Accept, read the CONNECT (body returned) and answer `connack`."""
        conn = self.accept()
        body = conn.expect(0x10)
        if connack:
            conn.send(connack)
        return conn, body

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.listener.close()
