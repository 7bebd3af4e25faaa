"""MQTT topic tree and status payloads (docs/wire-format.md, profile cs-senml/1).

Build topics with `device_topic(device_id, UP)` and friends; the leaf names
are the named constants below.
"""

ROOT = "cs/v1"
SCHEMA_VERSION = 1

UP = "up"
HEALTH = "health"
STATUS = "status"
CMD = "cmd"
CMD_ACK = "cmd/ack"
CONFIG = "config"
OTA = "ota"  # update offers (retained); progress goes to OTA_PROGRESS
OTA_PROGRESS = "ota/progress"

STATE_ONLINE = "online"
STATE_SLEEPING = "sleeping"
STATE_OFFLINE = "offline"


def device_topic(device_id: str, leaf: str) -> str:
    return ROOT + "/d/" + device_id + "/" + leaf


def status_payload(state: str) -> bytes:
    # Built by hand: MicroPython dicts do not keep insertion order.
    return ('{"sv":%d,"state":"%s"}' % (SCHEMA_VERSION, state)).encode()
