"""Sensirion SHT4x (SHT40/41/45) temperature and humidity sensor over I2C.

Datasheet facts: single-byte commands; replies are 16-bit words each followed
by a CRC-8 (poly 0x31, init 0xFF). T = -45 + 175*S/65535 degC,
RH = -6 + 125*S/65535 %RH, clipped to 0..100 (out-of-range values are
physically possible near saturation and are not errors).
"""

import time

from micropython import const

ADDR_A = const(0x44)
ADDR_B = const(0x45)

HIGH = const(0xFD)
MEDIUM = const(0xF6)
LOW = const(0xE0)
_SERIAL = const(0x89)
_SOFT_RESET = const(0x94)



class SHT4xError(Exception):
    """The sensor did not answer (NACK) or answered with corrupt data.

    `kind` is a short code ("nack" or "crc") used in health reports.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def crc8(data, start: int = 0, end: int = 2) -> int:
    crc = 0xFF
    for i in range(start, end):
        crc ^= data[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def check_words(buf) -> tuple:
    """Split a 6-byte reply into its two words, verifying both CRCs."""
    for off in (0, 3):
        if crc8(buf, off, off + 2) != buf[off + 2]:
            raise SHT4xError(
                "crc",
                "SHT4x CRC mismatch in word %d (got 0x%02x, want 0x%02x): noisy bus or loose wiring"
                % (off // 3, buf[off + 2], crc8(buf, off, off + 2)),
            )
    return (buf[0] << 8) | buf[1], (buf[3] << 8) | buf[4]


def to_celsius(word: int) -> float:
    return -45.0 + 175.0 * word / 65535.0


def to_rh(word: int) -> float:
    rh = -6.0 + 125.0 * word / 65535.0
    return 0.0 if rh < 0.0 else 100.0 if rh > 100.0 else rh


class SHT4x:
    def __init__(self, i2c, addr: int = ADDR_A) -> None:
        self._i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)

    def _command(self, cmd: int, wait_ms: int) -> bytearray:
        try:
            self._i2c.writeto(self.addr, bytes((cmd,)))
            time.sleep_ms(wait_ms)
            self._i2c.readfrom_into(self.addr, self._buf)
        except OSError as e:
            # MicroPython has no exception chaining; keep the cause in the message.
            raise SHT4xError(
                "nack",
                "SHT4x at 0x%02x did not acknowledge command 0x%02x (%r): check wiring and power"
                % (self.addr, cmd, e),
            )
        return self._buf

    def measure(self, precision: int = HIGH) -> tuple:
        """Return (temperature degC, relative humidity %)."""
        # Worst-case conversion times from the datasheet, rounded up.
        wait_ms = 10 if precision == HIGH else 5 if precision == MEDIUM else 2 if precision == LOW else -1
        if wait_ms < 0:
            raise ValueError("precision must be HIGH, MEDIUM or LOW")
        t_word, rh_word = check_words(self._command(precision, wait_ms))
        return to_celsius(t_word), to_rh(rh_word)

    def serial_number(self) -> int:
        hi, lo = check_words(self._command(_SERIAL, 1))
        return (hi << 16) | lo

    def soft_reset(self) -> None:
        try:
            self._i2c.writeto(self.addr, bytes((_SOFT_RESET,)))
        except OSError as e:
            raise SHT4xError("nack", "SHT4x at 0x%02x did not acknowledge soft reset (%r)" % (self.addr, e))
        time.sleep_ms(1)
