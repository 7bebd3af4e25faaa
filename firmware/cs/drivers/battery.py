"""Battery voltage through a resistor divider on an ADC pin, and an estimated charge.

The board layer hands over a `read_uv()` callable (calibrated microvolts at the pin).
The charge estimate interpolates a discharge curve of (volts, percent) points; the
default is two AA lithium-iron-disulfide cells in series, whose voltage stays flat
for most of their life and falls steeply at the end.
"""

from cs.drivers import SensorError

LIFES2_2AA = ((3.30, 100), (3.10, 80), (2.95, 50), (2.80, 20), (2.60, 5), (2.40, 0))


def percent(volts: float, curve=LIFES2_2AA) -> int:
    if volts >= curve[0][0]:
        return 100
    for i in range(1, len(curve)):
        v1, p1 = curve[i]
        if volts >= v1:
            v0, p0 = curve[i - 1]
            return int(p1 + (p0 - p1) * (volts - v1) / (v0 - v1) + 0.5)
    return 0


class Battery:
    def __init__(self, read_uv, divider: float, curve=LIFES2_2AA) -> None:
        self._read_uv = read_uv
        self.divider = divider
        self.curve = curve
        self.raw = 0

    def read(self) -> dict:
        v = self._read_uv() * self.divider / 1e6
        if not 0.5 <= v <= 6.0:
            raise SensorError("range", "battery reads %.2f V: divider or ADC pin miswired" % v)
        return {"battery_voltage": v, "battery": percent(v, self.curve)}
