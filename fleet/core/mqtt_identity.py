"""Which MQTT client id each of the fleet's broker connections uses, and with which certificate.

The production brokers make a connection's client id its certificate's common name
(Mosquitto `use_username_as_clientid`, EMQX `peer_cert_as_clientid`), so a client id that
differs from the CN is silently replaced, and two connections with one certificate close each
other. The fleet therefore takes each client id from the certificate it connects with, and
refuses to start when a configured client id names another identity.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from fleet.broker.url import BrokerAddress


class MqttIdentityError(ValueError):
    """A connection's client id and certificate do not belong together; the message says how
    to fix it."""


@dataclass(frozen=True)
class MqttIdentity:
    client_id: str
    cert_file: Path | None = None
    key_file: Path | None = None

    def on(self, broker: BrokerAddress) -> BrokerAddress:
        """`broker` with this identity's certificate (if any) for TLS client authentication."""
        if self.cert_file is None:
            return broker
        return replace(broker, cert_file=str(self.cert_file), key_file=str(self.key_file))


def certificate_cn(path: Path, *, variable: str) -> str:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MqttIdentityError(
            f"{variable}={path} is not a readable PEM certificate ({exc}): mount the "
            "certificate `python -m fleet.identity` issued for this process"
        ) from exc
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise MqttIdentityError(
            f"the certificate {path} ({variable}) has no common name, which the broker needs "
            "as the client id: use one issued by `python -m fleet.identity`"
        )
    return str(names[0].value)


def resolve_identity(
    *,
    configured: str | None,
    configured_variable: str,
    cert_file: Path | None,
    key_file: Path | None,
    cert_variable: str,
    default: str,
) -> MqttIdentity:
    """The certificate's CN when there is a certificate (a configured id must equal it);
    otherwise the configured id, else `default` (a broker without client certificates)."""
    if cert_file is None:
        return MqttIdentity(configured or default)
    cn = certificate_cn(cert_file, variable=cert_variable)
    if configured is not None and configured != cn:
        raise MqttIdentityError(
            f"{configured_variable} is {configured!r} but {cert_variable} ({cert_file}) is "
            f"issued to {cn!r}, and the broker uses the certificate's name as the client id: "
            f"leave {configured_variable} unset, or give this process the certificate issued "
            f"to {configured!r} (python -m fleet.identity issue-service --name {configured})"
        )
    if key_file is not None:
        _check_key_pair(cert_file, key_file, cert_variable)
    return MqttIdentity(cn, cert_file, key_file)


def _check_key_pair(cert_file: Path, key_file: Path, cert_variable: str) -> None:
    # At start, not in the connect loop: a wrong key never fixes itself by retrying.
    key_variable = cert_variable.replace("_CERT_FILE", "_KEY_FILE")
    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise MqttIdentityError(
            f"{key_variable}={key_file} is not the private key of {cert_variable}={cert_file} "
            f"({getattr(exc, 'reason', None) or exc}): mount the key issued with that "
            "certificate"
        ) from exc


def check_ca_file(broker: BrokerAddress, *, variable: str = "FLEET_MQTT_CA_FILE") -> None:
    """Load the CA bundle a TLS connection verifies the broker with, so a file that holds no
    certificate stops the service at start instead of failing every connection attempt."""
    if not broker.tls or broker.ca_file is None:
        return
    try:
        ssl.create_default_context(cafile=broker.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MqttIdentityError(
            f"{variable}={broker.ca_file} holds no usable CA certificate "
            f"({getattr(exc, 'reason', None) or exc}): mount the ca.crt of the broker's CA"
        ) from exc
