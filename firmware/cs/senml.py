"""SenML (RFC 8428) JSON packs in the cs-senml/1 profile (docs/wire-format.md).

The first record carries bn/bt/sv; later records carry `t` relative to bt.
Records are rendered to bytes as they are added, so a pack holds one short
block per record; the MQTT client copies them straight into the packet, so the
whole pack never needs a block of its own on the device's small heap.
"""

import json

from cs.topics import SCHEMA_VERSION

BN_PREFIX = "urn:dev:cs:"
CEL = "Cel"
RH = "%RH"

# Stored records name metrics by one letter (flash and heap are small): code -> (name, unit).
METRICS = {
    "t": ("temperature", CEL),
    "h": ("humidity", RH),
    "s": ("surface_temperature", CEL),
    "c": ("co2", "ppm"),
    "p": ("pressure", "Pa"),
    "v": ("battery_voltage", "V"),
    "b": ("battery", "%EL"),
}
CODES = {name: code for code, (name, _) in METRICS.items()}


def base_name(device_id: str) -> str:
    return BN_PREFIX + device_id + ":"


def number(value, decimals: int = 2) -> str:
    """JSON number text; floats get fixed decimals (ESP32 floats are single precision,
    so their repr is noisy) with trailing zeros removed."""
    if isinstance(value, int):
        return str(value)
    text = ("%." + str(decimals) + "f") % value
    return text.rstrip("0").rstrip(".") if "." in text else text


class Pack:
    def __init__(self, device_id: str, bt: int) -> None:
        self.bt = bt
        head = '[{"bn":%s,"bt":%d,"sv":%d,' % (json.dumps(base_name(device_id)), bt, SCHEMA_VERSION)
        self.records = [head.encode()]

    def add(self, name: str, value, unit=None, t: int = 0, raw: bool = False) -> None:
        """Add one record; the type of `value` picks the field: vb (bool), vs (str) or v.
        With raw=True `value` is number text already (as stored on flash)."""
        if raw:
            v = '"v":' + value
        elif isinstance(value, bool):  # test first: bool is an int on CPython
            v = '"vb":' + ("true" if value else "false")
        elif isinstance(value, str):
            v = '"vs":' + json.dumps(value)
        else:
            v = '"v":' + number(value)
        rec = '"n":"%s",%s%s%s}' % (name, '"u":"%s",' % unit if unit else "", v, ',"t":%d' % t if t else "")
        # The head record is still open ("...,"); later ones need their own brace.
        self.records.append((rec if len(self.records) == 1 else ",{" + rec).encode())

    def parts(self) -> list:
        """The pack as byte strings whose concatenation is the JSON (what publish takes)."""
        if len(self.records) < 2:
            raise ValueError("empty SenML pack")
        return self.records + [b"]"]

    def encode(self) -> bytes:
        return b"".join(self.parts())
