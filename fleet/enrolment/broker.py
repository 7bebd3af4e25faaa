"""Which broker address enrolled devices are told to use."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fleet.core.settings import Settings


@dataclass(frozen=True)
class DeviceBroker:
    host: str
    port: int
    tls: bool


def device_broker(settings: Settings) -> DeviceBroker:
    """FLEET_DEVICE_MQTT_URL, else FLEET_MQTT_URL, else the embedded broker (plain MQTT)."""
    url = settings.device_mqtt_url or settings.mqtt_url
    if url is None:
        return DeviceBroker(settings.embedded_broker_host, settings.embedded_broker_port, False)
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return DeviceBroker(parts.hostname or "", parts.port or (8883 if tls else 1883), tls)
