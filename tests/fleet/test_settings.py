"""Bad configuration is refused at start with the variable named."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.runtime import FleetRuntime

_PRODUCTION = {
    "FLEET_ENVIRONMENT": "production",
    "FLEET_ADMIN_TOKEN": "a" * 8 + "-production-admin-token",
    "FLEET_SECRET_KEY": "k" * 8 + "-production-secret-key-of-32-chars",
}


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FLEET_DATABASE_URL": "mysql://x/y"}, "not supported"),
        ({"FLEET_DATABASE_URL": "postgresql://x/y"}, "psycopg"),
        ({"FLEET_MQTT_URL": "http://broker"}, "not a broker URL"),
        ({"FLEET_HTTP_PORT": "70000"}, "less than or equal"),
        ({"FLEET_HEALTH_RETENTION_DAYS": "3"}, "health_retention_days"),
        ({"FLEET_REJECTS_RETENTION_DAYS": "0"}, "rejects_retention_days"),
        ({"FLEET_ENVIRONMENT": "production"}, "FLEET_ADMIN_TOKEN"),
        ({"FLEET_ENVIRONMENT": "production", "FLEET_ADMIN_TOKEN": "changeme"}, "at least 24"),
        (
            {**_PRODUCTION, "FLEET_EMBEDDED_BROKER_HOST": "0.0.0.0"},
            "FLEET_EMBEDDED_BROKER_HOST=0.0.0.0 would open the embedded broker",
        ),
        ({**_PRODUCTION, "FLEET_EMBEDDED_BROKER_HOST": "fleet.example"}, "run Mosquitto"),
    ],
)
def test_bad_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert fragment in str(info.value)


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLEET_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.uses_embedded_broker
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'fleet.sqlite3'}"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The CLI points the root logger at the runner's stream, closed after the call: put the
    handlers back, or later tests' log lines fail and spill into their output."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_a_bad_log_format_is_refused_before_anything_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from fleet.cli import app

    env = {"FLEET_DATA_DIR": str(tmp_path), "FLEET_LOG_FORMAT": "JSON"}
    result = CliRunner().invoke(app, ["migrate"], env=env)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "FLEET_LOG_FORMAT 'JSON' is not a log format: use text or json" in said
    assert not list(tmp_path.iterdir())  # no database was created
    env["FLEET_LOG_FORMAT"] = "json"
    assert CliRunner().invoke(app, ["migrate"], env=env).exit_code == 0
    env["FLEET_LOG_FORMAT"] = "yaml"
    ingest = CliRunner().invoke(app, ["ingest"], env=env)
    assert ingest.exit_code == 2 and "FLEET_LOG_FORMAT 'yaml'" in ingest.output


@pytest.mark.parametrize(
    ("env", "open_"),
    [
        ({"FLEET_EMBEDDED_BROKER_HOST": "127.0.0.1"}, False),
        ({"FLEET_EMBEDDED_BROKER_HOST": "::1"}, False),
        ({"FLEET_EMBEDDED_BROKER_HOST": "localhost"}, False),
        ({"FLEET_EMBEDDED_BROKER_HOST": "0.0.0.0", "FLEET_MQTT_URL": "mqtt://broker"}, False),
        ({"FLEET_EMBEDDED_BROKER_HOST": "192.168.1.20"}, True),
    ],
)
def test_production_keeps_the_embedded_broker_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], open_: bool
) -> None:
    for key, value in {**_PRODUCTION, **env}.items():
        monkeypatch.setenv(key, value)
    if open_:
        with pytest.raises(ValidationError, match="no TLS, authentication or topic ACLs"):
            Settings()
    else:
        assert not Settings().exposes_open_broker


def test_an_embedded_broker_open_to_the_network_is_warned_about_in_development(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        environment="development",
        data_dir=tmp_path,
        embedded_broker_host="0.0.0.0",
        embedded_broker_port=0,
    )
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
    try:
        with caplog.at_level(logging.WARNING, logger="fleet.runtime"):
            runtime.start()
    finally:
        runtime.stop()
        ctx.close()
    assert "listens on 0.0.0.0 with no TLS, authentication or topic ACLs" in caplog.text
