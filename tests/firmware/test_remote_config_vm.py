"""Which config fields the fleet may change (docs/wire-format.md, "Settings from the fleet"),
checked by the firmware itself: Wi-Fi, broker, identity and queue size change only by
provisioning, since a wrong one would cut the sensor off from the fleet that could correct
it. Run in the VM as a table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

CURRENT = {
    "schema": 1,
    "version": 3,
    "device_id": "cs-3c71bf0a12f4",
    "board": "devkitc-sht41",
    "wifi": {"ssid": "flat-12", "password": "secret"},
    "mqtt": {"host": "broker.example", "port": 8883, "tls": True, "ca": "ca.pem"},
}

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # (case, desired, refused field or None when applied)
    ("interval", {"version": 4, "sample_interval_s": 300}, None),
    (
        "all settable",
        {"version": 4, "health_interval_s": 600, "uplink_every": 2, "rh_uplink_above": 90},
        None,
    ),
    (
        "same broker repeated",
        {"version": 4, "mqtt": {"host": "broker.example"}, "sample_interval_s": 60},
        None,
    ),
    ("broker host", {"version": 4, "mqtt": {"host": "10.255.255.1"}}, "mqtt"),
    ("broker tls off", {"version": 4, "mqtt": {"tls": False}}, "mqtt"),
    ("wifi ssid", {"version": 4, "wifi": {"ssid": "typo"}}, "wifi"),
    ("wifi replaced", {"version": 4, "wifi": "open"}, "wifi"),
    ("queue size", {"version": 4, "queue_segments": 256}, "queue_segments"),
    ("identity", {"version": 4, "device_id": "cs-someone-else"}, "device_id"),
    ("board", {"version": 4, "board": "firebeetle-sht41-ds18b20-2aa"}, "board"),
    ("unknown field", {"version": 4, "ntp_server": "evil.example"}, "ntp_server"),
]

SCRIPT = """
import json
from cs import config
current = config.validate(json.loads(%r))
for name, desired in json.loads(%r):
    try:
        new = config.update(current, desired)
        print("RESULT", json.dumps([name, True, new]))
    except config.ConfigError as e:
        print("RESULT", json.dumps([name, False, str(e)]))
"""


def test_only_the_settings_the_fleet_may_change_are_taken(vm: VM) -> None:
    code = SCRIPT % (json.dumps(CURRENT), json.dumps([(c[0], c[1]) for c in CASES]))
    got = {name: (ok, detail) for name, ok, detail in vm.results(vm.run(code))}
    for name, desired, refused in CASES:
        ok, detail = got[name]
        if refused is None:
            assert ok, (name, detail)
            for key, value in desired.items():
                if not isinstance(value, dict):
                    assert detail[key] == value
            # Connection settings stay exactly as provisioned.
            assert detail["mqtt"]["tls"] is True and detail["mqtt"]["ca"] == "ca.pem"
            assert detail["mqtt"]["port"] == 8883 and detail["wifi"]["ssid"] == "flat-12"
        else:
            assert not ok, (name, detail)
            assert f"'{refused}'" in detail and "provisioning" in detail, (name, detail)


CLEARED = """
import asyncio, json
from cs import commands

class Client:
    def __init__(self):
        self.sent = []

    async def publish(self, topic, msg, retain=False, qos=0):
        self.sent.append([topic, msg.decode()])

class Node:
    device_id = "cs-3c71bf0a12f4"
    cfg = {"version": 3}
    rtc = {}

    def save_rtc(self):
        pass

client = Client()
asyncio.run(commands.handle(Node(), client, "cs/v1/d/cs-3c71bf0a12f4/config", b""))
asyncio.run(commands.handle(Node(), client, "cs/v1/d/cs-3c71bf0a12f4/config", b"{"))
print("RESULT", json.dumps(client.sent))
"""


def test_a_cleared_config_is_ignored_and_a_broken_one_answered(vm: VM) -> None:
    (sent,) = vm.results(vm.run(CLEARED))
    # Only the broken message is answered: an empty one is the fleet clearing the topic.
    assert len(sent) == 1 and "unreadable" in sent[0][1], sent
