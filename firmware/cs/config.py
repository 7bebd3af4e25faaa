"""Device configuration (`config.json`, written by provisioning) and board profiles.

Every field is checked on load; a bad file is refused with a reason naming the
field, so a technician can fix it over the REPL instead of guessing.
"""

import json

SCHEMA = 1


class ConfigError(Exception):
    pass


def _get(obj: dict, key: str, kind, where: str, default=None, required: bool = True):
    if key not in obj:
        if required:
            raise ConfigError("%s: missing '%s'" % (where, key))
        return default
    value = obj[key]
    if value is None and not required:
        return default
    # bool is not an int here; a stray true/false for a number is a mistake.
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError("%s: '%s' must be %s, got %r" % (where, key, kind.__name__, value))
    return value


def _range(value: int, lo: int, hi: int, name: str) -> int:
    if not lo <= value <= hi:
        raise ConfigError("'%s' must be between %d and %d, got %d" % (name, lo, hi, value))
    return value


def valid_device_id(device_id: str) -> bool:
    if not 3 <= len(device_id) <= 64:
        return False
    for ch in device_id:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True


def _mqtt(raw: dict) -> dict:
    w = "mqtt"
    host = _get(raw, "host", str, w)
    if not host:
        raise ConfigError("mqtt: 'host' is empty")
    m = {
        "host": host,
        "port": _range(_get(raw, "port", int, w, 1883, False), 1, 65535, "mqtt.port"),
        "tls": _get(raw, "tls", bool, w, False, False),
        "username": _get(raw, "username", str, w, None, False),
        "password": _get(raw, "password", str, w, None, False),
        "keepalive": _range(_get(raw, "keepalive", int, w, 60, False), 10, 65535, "mqtt.keepalive"),
        "clean_session": _get(raw, "clean_session", bool, w, False, False),
        # Paths on the device filesystem (PEM or DER).
        "ca": _get(raw, "ca", str, w, None, False),
        "cert": _get(raw, "cert", str, w, None, False),
        "key": _get(raw, "key", str, w, None, False),
    }
    if m["tls"] and not m["ca"]:
        # No system trust store on the device: an unverified TLS link is refused outright.
        raise ConfigError("mqtt: 'tls' needs 'ca' (path to the broker CA certificate)")
    if (m["cert"] is None) != (m["key"] is None):
        raise ConfigError("mqtt: 'cert' and 'key' must be given together")
    if m["password"] is not None and m["username"] is None:
        raise ConfigError("mqtt: 'password' given without 'username'")
    return m


def validate(raw) -> dict:
    """Return the config with defaults filled in, or raise ConfigError naming the field.

    A plain dict (not a class) so this module can be unloaded after boot.
    """
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a JSON object")
    schema = _get(raw, "schema", int, "config")
    if schema != SCHEMA:
        raise ConfigError("unsupported schema %d (this firmware reads %d)" % (schema, SCHEMA))
    device_id = _get(raw, "device_id", str, "config")
    if not valid_device_id(device_id):
        raise ConfigError("'device_id' must match [a-z0-9-]{3,64}, got %r" % device_id)
    board = _get(raw, "board", str, "config")
    if not board or "/" in board or "." in board:
        raise ConfigError("'board' must be a plain profile name, got %r" % board)
    wifi = _get(raw, "wifi", dict, "config")
    return {
        "schema": schema,
        "version": _range(_get(raw, "version", int, "config"), 1, 2**31 - 1, "version"),
        "device_id": device_id,
        "board": board,
        "wifi": {"ssid": _get(wifi, "ssid", str, "wifi"), "password": _get(wifi, "password", str, "wifi", "", False)},
        "mqtt": _mqtt(_get(raw, "mqtt", dict, "config")),
        "sample_interval_s": _range(
            _get(raw, "sample_interval_s", int, "config", 900, False), 1, 86400, "sample_interval_s"
        ),
        "health_interval_s": _range(
            _get(raw, "health_interval_s", int, "config", 3600, False), 1, 86400, "health_interval_s"
        ),
        # Battery boards: connect every Nth wake, or at once when RH rises above the limit.
        "uplink_every": _range(_get(raw, "uplink_every", int, "config", 4, False), 1, 96, "uplink_every"),
        "rh_uplink_above": _range(
            _get(raw, "rh_uplink_above", int, "config", 85, False), 50, 101, "rh_uplink_above"
        ),
        # Flash queue bound (2 KB segments): the oldest segment is evicted, and counted, when full.
        "queue_segments": _range(_get(raw, "queue_segments", int, "config", 32, False), 2, 256, "queue_segments"),
    }


# What the fleet may change (docs/wire-format.md, "Settings from the fleet"). Everything
# else (identity, Wi-Fi, broker, queue size) changes only by provisioning: a wrong broker
# or access point would cut the device off from the fleet that could correct it.
_REMOTE = ("version", "sample_interval_s", "health_interval_s", "uplink_every", "rh_uplink_above")


def update(current: dict, desired) -> dict:
    """The running config with `desired` laid over it, validated; raises ConfigError."""
    if not isinstance(desired, dict):
        raise ConfigError("config must be a JSON object")
    for k, v in desired.items():
        if k in _REMOTE:
            continue
        cur = current.get(k)
        if isinstance(v, dict) and isinstance(cur, dict):  # part of a section: the rest as it runs
            section = dict(cur)
            section.update(v)
            v = section
        if v != cur:  # a field repeated with its running value changes nothing: let through
            raise ConfigError("'%s' cannot be changed remotely (only by provisioning the sensor again)" % k)
    merged = dict(current)
    for k in _REMOTE:
        if k in desired:
            merged[k] = desired[k]
    new = validate(merged)
    if new["version"] <= current["version"]:
        raise ConfigError("version %d is not newer than %d" % (new["version"], current["version"]))
    return new


def _read_json(path: str, what: str):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise ConfigError("%s not found at '%s'" % (what, path))
    except ValueError as e:
        raise ConfigError("%s '%s' is not valid JSON (%s)" % (what, path, e))


def load(path: str = "config.json") -> dict:
    return validate(_read_json(path, "config"))


def _i2c_profile(raw: dict) -> dict:
    w = "board.i2c"
    for key in ("sda", "scl"):
        _range(_get(raw, key, int, w), 0, 48, "i2c." + key)
    _range(_get(raw, "freq", int, w, 100000, False), 10000, 1000000, "i2c.freq")
    return raw


_I2C_SENSORS = ("sht4x", "scd4x", "bme280")
_PIN_SENSORS = ("ds18b20", "battery")


def _sensor(raw) -> dict:
    w = "board.sensors"
    if not isinstance(raw, dict):
        raise ConfigError("board.sensors: each entry must be an object")
    kind = _get(raw, "type", str, w)
    out = {"type": kind}
    if kind in _I2C_SENSORS:
        out["addr"] = _range(_get(raw, "addr", int, w), 0x08, 0x77, "sensors.addr")
        if kind == "scd4x":
            out["t_offset"] = _get(raw, "t_offset", float, w, 4.0, False)
    elif kind in _PIN_SENSORS:
        out["pin"] = _range(_get(raw, "pin", int, w), 0, 48, "sensors.pin")
        if kind == "battery":
            out["divider"] = _get(raw, "divider", float, w)
    else:
        raise ConfigError("board.sensors: unknown sensor type %r" % kind)
    return out


def load_board_profile(name: str, folder: str = "boards") -> dict:
    """Board profile JSON from hardware/boards/, copied next to the code on the device."""
    raw = _read_json(folder + "/" + name + ".json", "board profile")
    if not isinstance(raw, dict):
        raise ConfigError("board profile: top level must be a JSON object")
    if _get(raw, "name", str, "board") != name:
        raise ConfigError("board profile '%s' names itself %r" % (name, raw.get("name")))
    sensors = [_sensor(s) for s in _get(raw, "sensors", list, "board")]
    i2c = _get(raw, "i2c", dict, "board", None, False)
    if i2c is not None:
        _i2c_profile(i2c)
    elif [s for s in sensors if s["type"] in _I2C_SENSORS]:
        raise ConfigError("board: I2C sensors need an 'i2c' bus")
    for key in ("led", "maintenance_pin"):
        pin = _get(raw, key, dict, "board", None, False)
        if pin is not None:
            _range(_get(pin, "pin", int, "board." + key), 0, 48, key + ".pin")
    power = _get(_get(raw, "power", dict, "board", {}, False), "source", str, "board.power", "mains", False)
    if power not in ("mains", "battery"):
        raise ConfigError("board.power: 'source' must be mains or battery, got %r" % power)
    # Only what the firmware uses stays in RAM; descriptions and BOM are for people.
    return {
        "name": name, "i2c": i2c, "sensors": sensors, "led": raw.get("led"),
        "maintenance_pin": raw.get("maintenance_pin"), "power": power,
    }


def load_or_exit(path: str = "config.json") -> tuple:
    """(config, board profile), or print the reason and stop with exit status 2.

    Stopping leaves the REPL free for a technician to fix the file.
    """
    try:
        cfg = load(path)
        return cfg, load_board_profile(cfg["board"])
    except ConfigError as e:
        print("config error:", e)
        raise SystemExit(2)
