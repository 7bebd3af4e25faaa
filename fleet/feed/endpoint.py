"""Where downstream consumers reach the feed's MQTT broker, as a URL safe to publish.

The service root is public, so the URL never carries credentials: the fleet's own broker
account (`FLEET_MQTT_URL`'s `user:password@`) is not a consumer's. Consumers get their own
identities (deploy/mosquitto/acl).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fleet.broker.url import BrokerAddress
from fleet.core.settings import Settings


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def consumer_broker_url(
    settings: Settings, running: BrokerAddress | None, request_host: str | None
) -> str:
    """`FLEET_FEED_MQTT_URL`, else the broker the service uses, as `scheme://host:port`.

    ``running`` is the broker actually started (the embedded one moves to a free port when
    its own is taken); a broker bound to every interface is named by the host the caller
    reached the API on.
    """
    if settings.feed_mqtt_url is not None:
        address = BrokerAddress.parse(settings.feed_mqtt_url)
    else:
        address = (
            running
            or settings.broker_address()
            or BrokerAddress(settings.embedded_broker_host, settings.embedded_broker_port)
        )
    host = address.host
    if _unspecified(host) and request_host:
        host = request_host
    scheme = urlsplit(address.url).scheme
    return f"{scheme}://{_host_text(host)}:{address.port}"
