"""Sensirion SHT4x (SHT40/41/45) temperature and humidity sensor over I2C.

Datasheet facts: single-byte commands; replies are 16-bit words each followed
by a CRC-8 (poly 0x31, init 0xFF). T = -45 + 175*S/65535 degC,
RH = -6 + 125*S/65535 %RH, clipped to 0..100 (out-of-range RH is physically
possible near saturation and is not an error; a temperature outside the
chip's -40..125 degC is).
"""

import time

from micropython import const

from cs.drivers import SensorError, crc8, words

ADDR_A = const(0x44)
ADDR_B = const(0x45)

HIGH = const(0xFD)
MEDIUM = const(0xF6)
LOW = const(0xE0)
HEAT_200MW_100MS = const(0x32)
_SERIAL = const(0x89)
_SOFT_RESET = const(0x94)

SHT4xError = SensorError  # older name, kept for callers
_ = crc8  # re-exported: sht4x.crc8 is part of this module's API


def check_words(buf) -> tuple:
    """Split a 6-byte reply into its two words, verifying both CRCs."""
    w = words(buf, 2, "SHT4x")
    return w[0], w[1]


def to_celsius(word: int) -> float:
    return -45.0 + 175.0 * word / 65535.0


def to_rh(word: int) -> float:
    rh = -6.0 + 125.0 * word / 65535.0
    return 0.0 if rh < 0.0 else 100.0 if rh > 100.0 else rh


class SHT4x:
    def __init__(self, i2c, addr: int = ADDR_A, nap=None) -> None:
        """`nap(ms)` waits out a measurement (a battery board light-sleeps through it)."""
        self._i2c = i2c
        self._nap = nap or time.sleep_ms
        self.addr = addr
        self._buf = bytearray(6)
        self.raw = 0  # last (T, RH) words as one int: lets the caller spot a stuck chip

    def _command(self, cmd: int, wait_ms: int) -> bytearray:
        try:
            self._i2c.writeto(self.addr, bytes((cmd,)))
            self._nap(wait_ms)
            self._i2c.readfrom_into(self.addr, self._buf)
        except OSError as e:
            # MicroPython has no exception chaining; keep the cause in the message.
            raise SensorError(
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
        t = to_celsius(t_word)
        if not -40.0 <= t <= 125.0:
            raise SensorError("range", "SHT4x temperature %.1f degC is outside -40..125" % t)
        self.raw = (t_word << 16) | rh_word
        return t, to_rh(rh_word)

    def read(self) -> dict:
        t, rh = self.measure()
        return {"temperature": t, "humidity": rh}

    def heat(self) -> None:
        """A short 200 mW heater pulse: evaporates condensate after near-saturated air,
        so a wet sensor does not report 100 %RH for hours. The reply is discarded (the
        die is hot)."""
        self._command(HEAT_200MW_100MS, 120)

    def serial_number(self) -> int:
        hi, lo = check_words(self._command(_SERIAL, 1))
        return (hi << 16) | lo

    def soft_reset(self) -> None:
        try:
            self._i2c.writeto(self.addr, bytes((_SOFT_RESET,)))
        except OSError as e:
            raise SensorError("nack", "SHT4x at 0x%02x did not acknowledge soft reset (%r)" % (self.addr, e))
        time.sleep_ms(1)
