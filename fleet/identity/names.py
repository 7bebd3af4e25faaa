"""Which names may become certificate subjects, and why some are reserved."""

from __future__ import annotations

import ipaddress
import re

from fleet.identity.errors import InvalidNameError
from fleet.ingest.profile import DEVICE_ID_RE  # the wire format's (docs/wire-format.md)

DEVICE_URN_PREFIX = "urn:dev:cs:"
SERVICE_URN_PREFIX = "urn:cs:service:"

# Service accounts live in their own namespace. Mosquitto's ACL `pattern` lines apply to every
# user, so a device whose id equalled a service name would inherit that service's rights:
# the CA therefore never issues a device certificate inside this namespace.
SERVICE_PREFIX = "fleet-"
SERVICE_NAME_RE = re.compile(r"^fleet-[a-z0-9][a-z0-9-]{1,56}$")
# Service roles. The broker binds each connection's client id to its certificate's CN, so two
# processes sharing a certificate would close each other's connections: every ingest worker and
# every API replica has an identity of its own, `<role>-<n>` (n from 0, like the StatefulSet
# pod names that select them). The feed publisher runs once per fleet: one identity.
INGEST_ACCOUNT = "fleet-ingest"
API_ACCOUNT = "fleet-api"
FEED_ACCOUNT = "fleet-feed"
# The roles whose rights the shipped ACL template grants, per identity.
SERVICE_ROLES = (INGEST_ACCOUNT, API_ACCOUNT, FEED_ACCOUNT)

_HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_device_id(device_id: str) -> str:
    if not DEVICE_ID_RE.match(device_id):
        raise InvalidNameError(
            f"device id {device_id!r} is not valid: use 3-64 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit (e.g. cs-3c71bf0a12f4)"
        )
    if device_id.startswith(SERVICE_PREFIX):
        raise InvalidNameError(
            f"device id {device_id!r} starts with {SERVICE_PREFIX!r}, which is reserved for "
            "service accounts; choose another id"
        )
    return device_id


def check_service_name(name: str) -> str:
    if not SERVICE_NAME_RE.match(name):
        raise InvalidNameError(
            f"service account {name!r} is not valid: use {SERVICE_PREFIX!r} followed by "
            "a-z, 0-9 and '-' (e.g. fleet-ingest), at most 63 characters"
        )
    return name


def numbered(role: str, count: int) -> list[str]:
    """The identities of `count` members of a role: fleet-ingest-0, fleet-ingest-1, ..."""
    if count < 0:
        raise InvalidNameError(f"the number of {role} identities must be 0 or more, not {count}")
    return [check_service_name(f"{role}-{n}") for n in range(count)]


def service_roles(*, ingest_workers: int, api_replicas: int) -> dict[str, list[str]]:
    """Each role's identities, as the ACL grants them and the bootstrap issues them."""
    return {
        INGEST_ACCOUNT: numbered(INGEST_ACCOUNT, ingest_workers),
        API_ACCOUNT: numbered(API_ACCOUNT, api_replicas),
        FEED_ACCOUNT: [FEED_ACCOUNT],
    }


def device_urn(device_id: str) -> str:
    return f"{DEVICE_URN_PREFIX}{device_id}"


def service_urn(name: str) -> str:
    return f"{SERVICE_URN_PREFIX}{name}"


def split_hosts(hosts: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Split server names into (DNS names, IP addresses), refusing anything else."""
    if not hosts:
        raise InvalidNameError("the broker certificate needs at least one host name or IP address")
    dns: list[str] = []
    ips: list[str] = []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_HOSTNAME_LABEL_RE.match(label) for label in labels):
            raise InvalidNameError(
                f"{host!r} is neither a DNS name nor an IP address; "
                "pass names like mqtt.example.org or 192.0.2.10"
            )
        dns.append(host.rstrip(".").lower())
    return dns, ips
