"""One validated settings object for the fleet service, read from `FLEET_*` variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet.broker.url import BrokerAddress
from fleet.core.mqtt_identity import MqttIdentity, MqttIdentityError, resolve_identity
from fleet.identity.ca import check_crl_url


class Settings(BaseSettings):
    """Service configuration; every field has an embedded default that runs on one laptop."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=None, extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(default=Path("data"), description="Where the embedded defaults live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in data_dir"
    )
    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://[user:pass@]host:port of an external broker; unset: embedded",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_cert_file: Path | None = Field(default=None, description="Client certificate (mqtts)")
    mqtt_key_file: Path | None = Field(default=None, description="Client key (mqtts)")
    embedded_broker_host: str = "127.0.0.1"
    embedded_broker_port: int = Field(default=1883, ge=0, le=65535)
    ingest_client_id: str | None = Field(
        default=None,
        description="MQTT client id of the ingest worker; default: the CN of "
        "FLEET_MQTT_CERT_FILE (which it must equal), else fleet-ingest",
    )
    api_client_id: str | None = Field(
        default=None,
        description="MQTT client id of an API-only process (`fleet serve --no-ingest`); default: "
        "the CN of FLEET_MQTT_CERT_FILE (which it must equal), else fleet-api-<pid>",
    )
    feed_enabled: bool = Field(
        default=True, description="Publish the live feed from this process (one per fleet)"
    )
    feed_mqtt_cert_file: Path | None = Field(
        default=None,
        description="The feed publisher's own client certificate (mqtts; fleet-feed); "
        "needed whenever FLEET_MQTT_CERT_FILE is set",
    )
    feed_mqtt_key_file: Path | None = Field(default=None, description="Its key")
    ingest_share_group: str | None = Field(
        default=None, description="Shared-subscription group, so several ingest workers split load"
    )
    ingest_queue_size: int = Field(
        default=5000, ge=1, description="Messages buffered between MQTT and the database writer"
    )
    ingest_batch_size: int = Field(
        default=500, ge=1, description="Most messages committed in one ingest transaction"
    )
    ingest_writers: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Ingest writer threads, each with its own database connection and devices "
        "(one on SQLite)",
    )
    ingest_inflight: int = Field(
        default=1000, ge=1, description="Unacknowledged QoS 1 messages the ingest may publish"
    )
    ingest_enabled: bool = Field(
        default=True, description="Run the ingest worker in `fleet serve` (false: API only)"
    )
    ingest_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port where `fleet ingest` serves Prometheus metrics at /metrics, bound to "
        "FLEET_HTTP_HOST (`fleet serve` has them on its HTTP port); off when unset",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or one JSON object a line for collectors"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    admin_token: str | None = Field(
        default=None, description="Bearer token for write endpoints; generated in development"
    )
    max_payload_bytes: int = Field(default=64 * 1024, gt=0)
    cookie_secure: bool | None = Field(
        default=None, description="Secure cookies; default on outside development"
    )
    # Behind an Ingress or load balancer every request comes from the proxy: without trusting
    # its X-Forwarded-For, sign-in throttling would count the whole borough as one address
    # and the audit log would record the proxy's.
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, "
        "comma-separated, or * (only when nothing else can reach the API)",
    )
    health_sweep_s: float = Field(default=30.0, gt=0, description="Liveness and alert sweep")
    # The alert rules read a day of health history; a week is the shortest that still leaves
    # the device page's charts and an investigation something to look at.
    health_retention_days: int = Field(
        default=90, ge=7, description="Days of device health snapshots kept"
    )
    rejects_retention_days: int = Field(
        default=30, ge=1, description="Days of rejected-message records kept"
    )
    ca_dir: Path | None = Field(
        default=None, description="Device CA folder (ca.crt, ca.key); default data_dir/ca"
    )
    ca_passphrase: str | None = Field(default=None, description="Passphrase of the CA key")
    crl_publish_path: Path | None = Field(
        default=None, description="Where revocations copy the CRL for the broker (its crlfile)"
    )
    crl_url: str | None = Field(
        default=None,
        description="URL brokers fetch the CRL from (http://fleet-api/pki/crl.pem), written into "
        "every device certificate as its CRL distribution point; EMQX needs it to check "
        "revocation",
    )
    device_mqtt_url: str | None = Field(
        default=None,
        description="Broker address written into enrolled devices (mqtts://host:8883); "
        "default: FLEET_MQTT_URL, else the embedded broker",
    )
    feed_public_url: str | None = Field(
        default=None,
        description="Base URL consumers reach the API at (https://data.example.org); links in "
        "live feed messages use it; default http://FLEET_HTTP_HOST:FLEET_HTTP_PORT",
    )
    feed_mqtt_url: str | None = Field(
        default=None,
        description="Broker address the SensorThings service root gives feed consumers "
        "(mqtts://host:8883); default: FLEET_MQTT_URL without credentials, else the embedded "
        "broker",
    )
    secret_key: str | None = Field(
        default=None, description="Encrypts secrets at rest (Wi-Fi passwords); generated in dev"
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0]
        if not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"FLEET_DATABASE_URL scheme {scheme!r} is not supported: "
                "use sqlite:///path or postgresql+psycopg://user@host/db"
            )
        if scheme == "postgresql" or scheme == "postgres":
            raise ValueError("use postgresql+psycopg://... so the psycopg 3 driver is used")
        return value

    @field_validator("ca_passphrase")
    @classmethod
    def _blank_passphrase_is_none(cls, value: str | None) -> str | None:
        # Deployments pass an unset passphrase through as "" (compose's ${VAR:-}).
        return value or None

    @field_validator(
        "mqtt_ca_file",
        "mqtt_cert_file",
        "mqtt_key_file",
        "feed_mqtt_cert_file",
        "feed_mqtt_key_file",
        mode="before",
    )
    @classmethod
    def _blank_file_is_unset(cls, value: object) -> object:
        # Templated manifests pass an unset file through as ""; as a Path that would be ".".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        entries = [e.strip() for e in value.split(",") if e.strip()]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"FLEET_TRUSTED_PROXIES: {entry!r} is not an address or network "
                    "(e.g. 10.0.0.0/8, 127.0.0.1)"
                ) from None
        return ",".join(entries)

    @field_validator("crl_url")
    @classmethod
    def _fetchable_crl_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return check_crl_url(value)
        except ValueError as exc:
            raise ValueError(f"FLEET_CRL_URL: {exc}") from exc

    @field_validator("mqtt_url", "device_mqtt_url", "feed_mqtt_url")
    @classmethod
    def _known_broker(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            variable = f"FLEET_{(info.field_name or 'mqtt_url').upper()}"
            raise ValueError(
                f"{variable} {value!r} is not a broker URL: use mqtt://host:1883 or mqtts://host:8883"
            )
        return value

    @model_validator(mode="after")
    def _tls_files_exist(self) -> Settings:
        for label, path in (
            ("FLEET_MQTT_CA_FILE", self.mqtt_ca_file),
            ("FLEET_MQTT_CERT_FILE", self.mqtt_cert_file),
            ("FLEET_MQTT_KEY_FILE", self.mqtt_key_file),
            ("FLEET_FEED_MQTT_CERT_FILE", self.feed_mqtt_cert_file),
            ("FLEET_FEED_MQTT_KEY_FILE", self.feed_mqtt_key_file),
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{label} points to {path}, which is not a readable file")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("set both FLEET_MQTT_CERT_FILE and FLEET_MQTT_KEY_FILE, or neither")
        if (self.feed_mqtt_cert_file is None) != (self.feed_mqtt_key_file is None):
            raise ValueError(
                "set both FLEET_FEED_MQTT_CERT_FILE and FLEET_FEED_MQTT_KEY_FILE, or neither"
            )
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            if not self.admin_token or len(self.admin_token) < 24:
                raise ValueError(
                    "FLEET_ADMIN_TOKEN must be set to at least 24 characters in production"
                )
            if self.admin_token.lower() in {"changeme", "change-me", "secret", "admin"}:
                raise ValueError("FLEET_ADMIN_TOKEN is a placeholder: generate a random one")
            if not self.secret_key or len(self.secret_key) < 32:
                raise ValueError(
                    "FLEET_SECRET_KEY must be set to at least 32 random characters in production "
                    "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            if self.secret_key.lower().startswith(("changeme", "change-me", "secret")):
                raise ValueError("FLEET_SECRET_KEY is a placeholder: generate a random one")
        return self

    @model_validator(mode="after")
    def _embedded_broker_stays_local(self) -> Settings:
        # It has no TLS, no device identities and no topic ACLs: reachable from a network,
        # anyone could publish as any device or send devices commands and update offers.
        if self.environment == "production" and self.exposes_open_broker:
            raise ValueError(
                f"FLEET_EMBEDDED_BROKER_HOST={self.embedded_broker_host} would open the "
                "embedded broker, which has no TLS, authentication or topic ACLs, to the "
                "network: for devices on a network run Mosquitto (deploy/mosquitto) and set "
                "FLEET_MQTT_URL, or keep the embedded broker on 127.0.0.1"
            )
        return self

    @property
    def exposes_open_broker(self) -> bool:
        """The embedded broker listens beyond this machine."""
        if self.mqtt_url is not None or self.embedded_broker_host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.embedded_broker_host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return True

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fleet.sqlite3').resolve()}"

    @property
    def resolved_ca_dir(self) -> Path:
        return self.ca_dir if self.ca_dir is not None else self.data_dir / "ca"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    def broker_address(self) -> BrokerAddress | None:
        """The external broker with its TLS files, or None for the embedded one."""
        if self.mqtt_url is None:
            return None
        base = BrokerAddress.parse(self.mqtt_url)
        return replace(
            base,
            ca_file=str(self.mqtt_ca_file) if self.mqtt_ca_file else None,
            cert_file=str(self.mqtt_cert_file) if self.mqtt_cert_file else None,
            key_file=str(self.mqtt_key_file) if self.mqtt_key_file else None,
        )

    def ingest_identity(self) -> MqttIdentity:
        """The ingest worker's client id and certificate; raises MqttIdentityError."""
        return resolve_identity(
            configured=self.ingest_client_id,
            configured_variable="FLEET_INGEST_CLIENT_ID",
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
            cert_variable="FLEET_MQTT_CERT_FILE",
            default="fleet-ingest",
        )

    def api_identity(self) -> MqttIdentity:
        """The command publisher's of an API-only process; raises MqttIdentityError."""
        return resolve_identity(
            configured=self.api_client_id,
            configured_variable="FLEET_API_CLIENT_ID",
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
            cert_variable="FLEET_MQTT_CERT_FILE",
            default=f"fleet-api-{os.getpid()}",
        )

    def feed_identity(self) -> MqttIdentity:
        """The feed publisher's; raises MqttIdentityError."""
        if self.mqtt_cert_file is not None and self.feed_mqtt_cert_file is None:
            # With the process's own certificate the feed would take over its connection.
            raise MqttIdentityError(
                "the feed publisher needs a certificate of its own: set "
                "FLEET_FEED_MQTT_CERT_FILE and FLEET_FEED_MQTT_KEY_FILE to the fleet-feed "
                "certificate (python -m fleet.identity bootstrap issues it), or "
                "FLEET_FEED_ENABLED=false where another process publishes the feed"
            )
        return resolve_identity(
            configured=None,
            configured_variable="",
            cert_file=self.feed_mqtt_cert_file,
            key_file=self.feed_mqtt_key_file,
            cert_variable="FLEET_FEED_MQTT_CERT_FILE",
            default="fleet-feed",
        )

    @property
    def uses_embedded_broker(self) -> bool:
        return self.mqtt_url is None


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
