"""Bad configuration is refused at start with the variable named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleet.core.settings import Settings


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
