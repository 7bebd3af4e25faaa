"""The board's sensors: build drivers from the profile, sample them, track their faults.

A sensor whose bus does not start, that NACKs, fails its CRC, reads out of range or
repeats the exact same raw words (stuck) is flagged `<type>:<kind>` ("sht4x:bus",
"sht4x:nack", ...) and its values are left out; it is retried with backoff (skip 1, 2,
4, 8 samples) and the flag clears on the first good reading. Nothing here raises to the
caller: a faulty sensor never stops the node. State that must survive deep sleep is a
plain list per sensor (see `state`).
"""

from cs.drivers import SensorError
from cs.log import log
from cs.senml import CODES, number

# Identical raw readings in a row that mean "stuck". Only for chips returning several
# 16-bit words, where sensor noise makes an exact repeat implausible; a 1-Wire probe
# on a slowly changing wall legitimately repeats its 12-bit value for hours.
STUCK_AFTER = {"sht4x": 4, "scd4x": 4, "bme280": 4}
HEAT_ABOVE_RH = 95.0  # near condensation: pulse the SHT4x heater after the reading
HEAT_EVERY = 8  # samples between heater pulses at most

# per-sensor state: [fault kind or "", consecutive failures, samples to skip, last raw, repeats, since heat]
_FAULT, _FAILS, _SKIP, _RAW, _REP, _HEAT = range(6)


def make(board, s: dict, battery: bool):
    """The driver for one profile sensor, whose type cs.config has checked (its module loads
    only when the board has one). Raises what the board raises when its bus does not start."""
    kind = s["type"]
    # A battery board light-sleeps while a chip converts (the radio is off then); a mains
    # board keeps its connection serviced instead.
    nap = board.light_sleep if battery else None
    if kind == "sht4x":
        from cs.drivers.sht4x import SHT4x

        return SHT4x(board.i2c(), s["addr"], nap)
    if kind == "scd4x":
        from cs.drivers.scd4x import SCD4x

        # Battery boards take one single shot per wake; mains boards keep it measuring.
        return SCD4x(board.i2c(), s["addr"], not battery, s.get("t_offset", 4.0))
    if kind == "ds18b20":
        from cs.drivers.ds18b20 import DS18B20

        return DS18B20(board.onewire(s["pin"]), None, nap)
    if kind == "bme280":
        from cs.drivers.bme280 import BME280

        return BME280(board.i2c(), s["addr"])
    from cs.drivers.battery import Battery

    return Battery(board.adc_uv(s["pin"]), s["divider"])


class Sensors:
    def __init__(self, board, profile: dict, battery: bool, state: dict) -> None:
        self._board = board
        self._battery = battery
        # [name, driver, profile entry]: a driver is made at its sensor's first sample, so
        # a bus that does not start (an I2C driver install failing) is a fault of its
        # sensors, retried with their backoff, instead of a node that cannot boot.
        self.drivers = [[s["type"], None, s] for s in profile["sensors"]]
        self.state = state  # name -> list (see above); kept in RTC memory on battery boards

    def faults(self) -> str:
        return ",".join(sorted(k + ":" + v[_FAULT] for k, v in self.state.items() if v[_FAULT]))

    def sample(self, now: bool = False) -> dict:
        """{metric: value} from every sensor that answered sensibly. `now` asks every sensor,
        even one being backed off: the backoff (kept in RTC memory) may predate a repair, and
        an update's self-test must judge the sensors as they are."""
        out: dict = {}
        for entry in self.drivers:
            name, drv = entry[0], entry[1]
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = ["", 0, 0, 0, 0, HEAT_EVERY]
            if st[_SKIP] > 0 and not now:
                st[_SKIP] -= 1  # backing off a failing sensor: the flag stays
                continue
            if drv is None:
                try:
                    drv = entry[1] = make(self._board, entry[2], self._battery)
                except OSError as e:  # e.g. ESP_FAIL: the bus driver did not install
                    self._failed(name, st, "bus", repr(e))
                    continue
                except Exception as e:  # e.g. no heap to load the driver: not the wiring
                    self._failed(name, st, "error", repr(e))
                    continue
            try:
                values = drv.read()
                limit = STUCK_AFTER.get(name)
                if limit and values and drv.raw == st[_RAW]:
                    st[_REP] += 1
                    if st[_REP] >= limit - 1:
                        raise SensorError("stuck", "%s returns identical raw data" % name)
                elif values:
                    st[_RAW], st[_REP] = drv.raw, 0
            except SensorError as e:
                self._failed(name, st, e.kind, e)
                continue
            except Exception as e:  # a driver bug must not stop the node either
                self._failed(name, st, "error", e)
                continue
            st[_FAULT], st[_FAILS] = "", 0
            if name == "sht4x":
                self._maybe_heat(drv, st, values)
            for k, v in values.items():
                out[k] = v
        return out

    def _failed(self, name: str, st: list, kind: str, e) -> None:
        if st[_FAULT] != kind:
            log("sensor fault:", name, kind, e)
        st[_FAULT] = kind
        st[_FAILS] += 1
        st[_SKIP] = min(1 << (st[_FAILS] - 1), 8) - 1 if st[_FAILS] > 1 else 0
        try:
            getattr(self._driver(name), "soft_reset", lambda: None)()  # often clears a latched bus
        except Exception:
            pass

    def _driver(self, name: str):
        for n, d, _ in self.drivers:
            if n == name:
                return d
        return None

    def _maybe_heat(self, drv, st: list, values: dict) -> None:
        st[_HEAT] += 1
        if values.get("humidity", 0) >= HEAT_ABOVE_RH and st[_HEAT] >= HEAT_EVERY:
            st[_HEAT] = 0
            try:
                drv.heat()
            except SensorError:
                pass


def encode(values: dict) -> str:
    """Metric text as stored on flash: "t21.43 h55.2" (see cs.senml.METRICS)."""
    return " ".join(CODES[k] + number(v) for k, v in values.items() if k in CODES)
