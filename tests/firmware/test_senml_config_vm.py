"""SenML packs, topics and config validation, run in the VM."""

from __future__ import annotations

import json

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

GOOD = {
    "schema": 1,
    "version": 3,
    "device_id": "cs-3c71bf0a12f4",
    "board": "devkitc-sht41",
    "wifi": {"ssid": "sim", "password": "sim"},
    "mqtt": {
        "host": "127.0.0.1",
        "port": 1883,
        "tls": False,
        "username": None,
        "password": None,
        "keepalive": 60,
    },
    "sample_interval_s": 900,
    "health_interval_s": 3600,
}


def test_pack_follows_the_profile(vm: VM) -> None:
    code = """
from cs.senml import Pack, CEL, RH
from cs import topics
p = Pack("cs-3c71bf0a12f4", 1763850000)
p.add("temperature", 21.4349, CEL)
p.add("humidity", 55.2, RH)
p.add("temperature", 21.4, CEL, 900)
p.add("uptime", 12, "s")
p.add("fw_version", "0.1.0")
p.add("clock_synced", True)
print("RESULT", p.encode().decode())
print("RESULT", topics.status_payload(topics.STATE_OFFLINE).decode())
print("RESULT", '"%s"' % topics.device_topic("cs-3c71bf0a12f4", topics.UP))
"""
    pack, status, topic = vm.results(vm.run(code))
    assert pack[0] == {
        "bn": "urn:dev:cs:cs-3c71bf0a12f4:",
        "bt": 1763850000,
        "sv": 1,
        "n": "temperature",
        "u": "Cel",
        "v": 21.43,
    }
    assert pack[1] == {"n": "humidity", "u": "%RH", "v": 55.2}
    assert pack[2] == {"n": "temperature", "u": "Cel", "v": 21.4, "t": 900}
    assert pack[3] == {"n": "uptime", "u": "s", "v": 12}
    assert pack[4] == {"n": "fw_version", "vs": "0.1.0"}
    assert pack[5] == {"n": "clock_synced", "vb": True}
    assert status == {"sv": 1, "state": "offline"}
    assert topic == "cs/v1/d/cs-3c71bf0a12f4/up"


def test_empty_pack_is_refused(vm: VM) -> None:
    out = vm.run(
        "from cs.senml import Pack\ntry:\n    Pack('cs-abc', 1).encode()\n"
        "except ValueError as e:\n    print('RESULT', '\"%s\"' % e)\n"
    )
    assert vm.results(out) == ["empty SenML pack"]


def _validate(vm: VM, cfg: object) -> str:
    (vm.device_dir / "config.json").write_text(json.dumps(cfg))
    code = """
import json
from cs import config
try:
    cfg, profile = config.load(), None
    profile = config.load_board_profile(cfg["board"])
    print("RESULT", json.dumps({"ok": True, "i2c": profile["i2c"], "cfg": cfg}))
except config.ConfigError as e:
    print("RESULT", json.dumps({"ok": False, "error": str(e)}))
"""
    (res,) = vm.results(vm.run(code))
    return res


def test_good_config_loads_with_defaults(vm: VM) -> None:
    res = _validate(vm, GOOD)
    assert res["ok"], res
    assert res["i2c"]["sda"] == 21 and res["i2c"]["scl"] == 22
    assert res["cfg"]["mqtt"]["clean_session"] is False


def _with(path: str, value: object) -> dict:
    cfg = json.loads(json.dumps(GOOD))
    *parents, leaf = path.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return cfg


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("schema", 2, "unsupported schema 2"),
        ("device_id", "CS_BAD", "'device_id' must match"),
        ("device_id", KeyError, "missing 'device_id'"),
        ("mqtt.port", 70000, "'mqtt.port' must be between"),
        ("mqtt.port", "1883", "'port' must be int"),
        ("mqtt.tls", True, "'tls' needs 'ca'"),
        ("mqtt.keepalive", 5, "'mqtt.keepalive' must be between"),
        ("sample_interval_s", 0, "'sample_interval_s' must be between"),
        ("wifi", KeyError, "missing 'wifi'"),
        ("board", "../etc", "plain profile name"),
        ("board", "nosuchboard", "board profile not found"),
        ("version", True, "'version' must be int"),
    ],
)
def test_bad_config_is_refused_with_a_reason(vm: VM, path: str, value: object, reason: str) -> None:
    res = _validate(vm, _with(path, value))
    assert not res["ok"]
    assert reason in res["error"]


def test_main_stops_with_status_2_on_bad_config(vm: VM) -> None:
    (vm.device_dir / "config.json").write_text("{not json")
    proc = vm.popen("from cs import config\nconfig.load_or_exit()\n")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "config error" in out and "not valid JSON" in out
