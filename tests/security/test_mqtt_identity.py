"""The fleet's MQTT client ids come from the certificates its connections present."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.core.context import build_context
from fleet.core.mqtt_identity import MqttIdentityError
from fleet.core.settings import Settings
from fleet.identity import CertificateAuthority
from fleet.ingest.service import IngestConfigError, run_ingest
from fleet.runtime import FleetRuntime, StartError


def _issue(ca: CertificateAuthority, folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    ca.issue_service(name).write(cert, key)
    return cert, key


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    ca = CertificateAuthority.create()
    return {name: _issue(ca, tmp_path, name) for name in ("fleet-ingest-1", "fleet-feed")}


def test_client_ids_are_the_certificates_names(certs: dict[str, tuple[Path, Path]]) -> None:
    (cert, key), (feed_cert, feed_key) = certs["fleet-ingest-1"], certs["fleet-feed"]
    settings = Settings(
        mqtt_cert_file=cert,
        mqtt_key_file=key,
        feed_mqtt_cert_file=feed_cert,
        feed_mqtt_key_file=feed_key,
    )
    assert settings.ingest_identity().client_id == "fleet-ingest-1"
    assert settings.api_identity().client_id == "fleet-ingest-1"
    feed = settings.feed_identity()
    assert (feed.client_id, feed.cert_file) == ("fleet-feed", feed_cert)


def test_a_client_id_naming_another_certificate_is_refused(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    cert, key = certs["fleet-ingest-1"]
    settings = Settings(mqtt_cert_file=cert, mqtt_key_file=key, ingest_client_id="fleet-ingest-0")
    with pytest.raises(
        MqttIdentityError, match=r"issued to .fleet-ingest-1.*FLEET_INGEST_CLIENT_ID"
    ):
        settings.ingest_identity()
    matching = Settings(mqtt_cert_file=cert, mqtt_key_file=key, ingest_client_id="fleet-ingest-1")
    assert matching.ingest_identity().client_id == "fleet-ingest-1"


def test_the_feed_never_shares_the_process_certificate(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    cert, key = certs["fleet-ingest-1"]
    settings = Settings(mqtt_cert_file=cert, mqtt_key_file=key)
    with pytest.raises(MqttIdentityError, match=r"FLEET_FEED_MQTT_CERT_FILE.*FLEET_FEED_ENABLED"):
        settings.feed_identity()


def test_without_certificates_the_development_ids_stay() -> None:
    settings = Settings()
    assert settings.ingest_identity().client_id == "fleet-ingest"
    assert settings.feed_identity().client_id == "fleet-feed"
    assert settings.api_identity().client_id.startswith("fleet-api-")


def test_fleet_ingest_refuses_a_mismatched_client_id(
    certs: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    cert, key = certs["fleet-ingest-1"]
    settings = Settings(
        data_dir=tmp_path,
        mqtt_url="mqtts://127.0.0.1:1",
        mqtt_cert_file=cert,
        mqtt_key_file=key,
        ingest_client_id="fleet-ingest-0",
    )
    with pytest.raises(IngestConfigError, match="issued to 'fleet-ingest-1'"):
        run_ingest(settings)


def test_the_service_refuses_to_start_without_a_feed_certificate(
    certs: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    cert, key = certs["fleet-ingest-1"]
    settings = Settings(
        data_dir=tmp_path,
        mqtt_url="mqtts://127.0.0.1:1",
        mqtt_cert_file=cert,
        mqtt_key_file=key,
    )
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
    try:
        with pytest.raises(StartError, match="feed publisher needs a certificate of its own"):
            runtime.start()
        assert runtime.ingest is None and runtime.broker is None  # nothing was started
    finally:
        runtime.stop()
        ctx.close()


def test_a_key_that_is_not_the_certificates_stops_the_start(
    certs: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    """Not a connect loop retrying for ever: a wrong key never fixes itself."""
    (cert, _), (_, other_key) = certs["fleet-ingest-1"], certs["fleet-feed"]
    settings = Settings(data_dir=tmp_path, mqtt_cert_file=cert, mqtt_key_file=other_key)
    with pytest.raises(MqttIdentityError, match=r"FLEET_MQTT_KEY_FILE=.* is not the private key"):
        settings.ingest_identity()
    settings = Settings(data_dir=tmp_path, mqtt_url="mqtts://127.0.0.1:1", **_pair(certs))
    settings = settings.model_copy(update={"mqtt_key_file": other_key})
    with pytest.raises(IngestConfigError, match="FLEET_MQTT_KEY_FILE"):
        run_ingest(settings)


def test_a_ca_file_without_a_certificate_stops_the_start(
    certs: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.crt"
    bogus.write_text("this is not a certificate\n")
    settings = Settings(
        data_dir=tmp_path, mqtt_url="mqtts://127.0.0.1:1", mqtt_ca_file=bogus, **_pair(certs)
    )
    with pytest.raises(IngestConfigError, match=r"FLEET_MQTT_CA_FILE=.*holds no usable CA"):
        run_ingest(settings)
    ctx = build_context(settings.model_copy(update={"feed_enabled": False}))
    runtime = FleetRuntime(ctx)
    try:
        with pytest.raises(StartError, match="FLEET_MQTT_CA_FILE"):
            runtime.start()
        assert runtime.ingest is None and runtime.broker is None
    finally:
        runtime.stop()
        ctx.close()


def _pair(certs: dict[str, tuple[Path, Path]]) -> dict[str, Path]:
    cert, key = certs["fleet-ingest-1"]
    return {"mqtt_cert_file": cert, "mqtt_key_file": key}
