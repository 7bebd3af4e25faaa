"""Sensor drivers: each takes a bus object, never builds one (the board layer does).

Every driver raises `SensorError` with a short `kind` ("nack", "crc", "range", ...)
that health reports as `<sensor>:<kind>`.
"""


class SensorError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def crc8(data, start: int = 0, end: int = 2) -> int:
    """Sensirion CRC-8 (poly 0x31, init 0xFF) over data[start:end]."""
    crc = 0xFF
    for i in range(start, end):
        crc ^= data[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def words(buf, n: int, who: str) -> list:
    """Split a Sensirion reply into `n` 16-bit words, verifying each word's CRC."""
    out = []
    for off in range(0, 3 * n, 3):
        want = crc8(buf, off, off + 2)
        if want != buf[off + 2]:
            raise SensorError(
                "crc",
                "%s CRC mismatch in word %d (got 0x%02x, want 0x%02x): noisy bus or loose wiring"
                % (who, off // 3, buf[off + 2], want),
            )
        out.append((buf[off] << 8) | buf[off + 1])
    return out
