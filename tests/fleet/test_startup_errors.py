"""Start-up in a container and with wrong settings: a process writes to its data folder only
when it has something to keep there, and a data folder, database or setting that cannot work
ends every command with one line naming the variable and exit code 2, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from fleet.core.context import ConfigurationError, build_context
from fleet.core.settings import Settings
from fleet.runtime import StartError
from fleet.serve import run_service

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
_SECRETS = {
    "FLEET_ADMIN_TOKEN": "a" * 8 + "-production-admin-token",
    "FLEET_SECRET_KEY": "k" * 8 + "-production-secret-key-of-32-chars",
}


def _fleet(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `fleet` command, as an operator runs it, with only these FLEET_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    return subprocess.run(
        [sys.executable, "-c", "from fleet.cli import main; main()", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def uncreatable(tmp_path: Path) -> Path:
    """A data folder no one can make, root included: its parent is a file (in the image the
    working folder /app is root's and the service runs as the fleet user)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return blocker / "data"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("0.0.0.0", 0)) as sock:
        yield int(sock.getsockname()[1])


# --- the data folder ---------------------------------------------------------------------


def test_a_process_on_an_external_database_needs_no_data_folder(
    tmp_path: Path, uncreatable: Path
) -> None:
    settings = Settings(
        environment="test",
        data_dir=uncreatable,
        database_url=f"sqlite:///{tmp_path / 'external.sqlite3'}",
        admin_token="t" * 32,
    )
    build_context(settings).close()
    assert not uncreatable.exists()


def test_the_embedded_database_still_gets_its_folder(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    build_context(Settings(environment="test", data_dir=data)).close()
    assert (data / "fleet.sqlite3").is_file() and (data / "admin-token").is_file()


def test_an_api_replica_on_an_external_broker_writes_nothing_to_its_data_folder(
    tmp_path: Path, taken_port: int
) -> None:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        mqtt_url="mqtt://127.0.0.1:1883",
        http_port=taken_port,
        ingest_enabled=False,
    )
    with pytest.raises(StartError, match="cannot listen"):  # past the data folder
        run_service(settings)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "code", "prefix"),
    [
        (["migrate"], 2, "configuration error"),
        (["user", "list"], 2, "configuration error"),
        (["serve", "--port", "0"], 1, "cannot start"),  # as a folder in use or a taken port
    ],
)
def test_a_data_folder_that_cannot_be_made_is_one_line_naming_fleet_data_dir(
    tmp_path: Path, uncreatable: Path, args: list[str], code: int, prefix: str
) -> None:
    result = _fleet(args, {"FLEET_DATA_DIR": str(uncreatable)}, tmp_path)
    line = _one_line(result, code)
    assert line.startswith(f"{prefix}: cannot use the data folder {uncreatable}")
    assert "FLEET_DATA_DIR" in line


def test_a_generated_admin_token_that_cannot_be_written_names_the_variables(
    tmp_path: Path, uncreatable: Path
) -> None:
    settings = Settings(
        environment="test",
        data_dir=uncreatable,
        database_url=f"sqlite:///{tmp_path / 'external.sqlite3'}",
    )
    with pytest.raises(ConfigurationError, match="FLEET_DATA_DIR") as info:
        build_context(settings)
    assert "FLEET_ADMIN_TOKEN" in str(info.value)


def test_the_image_gives_its_user_a_data_folder() -> None:
    dockerfile = (DEPLOY / "compose" / "Dockerfile").read_text()
    assert "install -d -o fleet -m 700 /app/data" in dockerfile
    assert "FLEET_DATA_DIR=/app/data" in dockerfile
    assert dockerfile.index("install -d -o fleet") < dockerfile.index("USER fleet")


# --- the database ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["migrate"], ["user", "list"], ["ingest"], ["serve", "--no-ingest", "--port", "0"]]
)
def test_an_unreachable_database_is_one_line_with_the_password_masked(
    tmp_path: Path, closed_port: int, args: list[str]
) -> None:
    url = f"postgresql+psycopg://fleet:hunter2-secret@127.0.0.1:{closed_port}/fleet"
    env = {
        "FLEET_DATABASE_URL": url,
        "FLEET_MQTT_URL": f"mqtt://127.0.0.1:{closed_port}",
        "FLEET_DATA_DIR": str(tmp_path / "data"),
        "FLEET_ADMIN_TOKEN": "t" * 32,
    }
    line = _one_line(_fleet(args, env, tmp_path))
    assert line.startswith(
        f"configuration error: cannot use the database at "
        f"postgresql+psycopg://fleet:***@127.0.0.1:{closed_port}/fleet: "
    )
    assert "Connection refused" in line and "FLEET_DATABASE_URL" in line
    assert "hunter2" not in line


def test_the_ingest_module_is_the_ingest_command(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql+psycopg://fleet:hunter2-secret@127.0.0.1:{closed_port}/fleet"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    result = subprocess.run(
        [sys.executable, "-m", "fleet.ingest"],
        env={
            **clean,
            "FLEET_DATABASE_URL": url,
            "FLEET_MQTT_URL": f"mqtt://127.0.0.1:{closed_port}",
            "FLEET_DATA_DIR": str(tmp_path / "data"),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = _one_line(result)
    assert "FLEET_DATABASE_URL" in line and "hunter2" not in line


def test_an_ingest_worker_without_a_broker_is_one_line(tmp_path: Path) -> None:
    env = {"FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.db'}"}
    line = _one_line(_fleet(["ingest"], env, tmp_path))
    assert "FLEET_MQTT_URL" in line


def test_verbose_adds_the_traceback(tmp_path: Path, closed_port: int) -> None:
    env = {"FLEET_DATABASE_URL": f"postgresql+psycopg://fleet@127.0.0.1:{closed_port}/fleet"}
    result = _fleet(["migrate", "--verbose"], env, tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "OperationalError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("configuration error: cannot use")


@pytest.mark.postgres
def test_a_missing_database_is_named(postgres_server: str, tmp_path: Path) -> None:
    url = postgres_server.rsplit("/", 1)[0] + "/fleet_no_such_database"
    line = _one_line(_fleet(["migrate"], {"FLEET_DATABASE_URL": url}, tmp_path))
    assert 'database "fleet_no_such_database" does not exist' in line
    assert "FLEET_DATABASE_URL" in line


def test_an_unreadable_database_url_is_named_without_repeating_it(tmp_path: Path) -> None:
    env = {"FLEET_DATABASE_URL": "postgresql+psycopg://fleet:hunter2@db:notaport/fleet"}
    line = _one_line(_fleet(["migrate"], env, tmp_path))
    assert "FLEET_DATABASE_URL is not a database URL" in line and "hunter2" not in line


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"FLEET_HTTP_PORT": "abc"}, "FLEET_HTTP_PORT=abc: Input should be a valid integer"),
        ({"FLEET_INGEST_WRITERS": "0"}, "FLEET_INGEST_WRITERS=0: Input should be greater"),
        ({"FLEET_FEED_ENABLED": "maybe"}, "FLEET_FEED_ENABLED=maybe: Input should be a valid"),
        (
            {"FLEET_MQTT_URL": "tcp://fleet:hunter2@broker"},
            "FLEET_MQTT_URL=tcp://fleet:***@broker: FLEET_MQTT_URL 'tcp://fleet:***@broker' is "
            "not a broker URL",
        ),
    ],
)
def test_a_bad_setting_is_named_by_its_variable(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    line = _one_line(_fleet(["migrate"], {"FLEET_DATA_DIR": str(tmp_path / "d"), **env}, tmp_path))
    assert line.startswith(f"configuration error: {said}")
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "name",
    [
        "FLEET_MQTT_CA_FILE",
        "FLEET_MQTT_CERT_FILE",
        "FLEET_MQTT_KEY_FILE",
        "FLEET_FEED_MQTT_CERT_FILE",
        "FLEET_FEED_MQTT_KEY_FILE",
    ],
)
def test_an_empty_file_variable_is_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "")
    settings = Settings()
    assert getattr(settings, name.removeprefix("FLEET_").lower()) is None


def test_an_empty_file_does_not_hide_its_missing_partner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert = tmp_path / "fleet-feed.crt"
    cert.write_text("")
    monkeypatch.setenv("FLEET_FEED_MQTT_CERT_FILE", str(cert))
    monkeypatch.setenv("FLEET_FEED_MQTT_KEY_FILE", " ")
    with pytest.raises(ValidationError, match="set both FLEET_FEED_MQTT_CERT_FILE"):
        Settings()


# --- public URLs -------------------------------------------------------------------------


def _api_replica(tmp_path: Path, port: int, **overrides: object) -> Settings:
    return Settings(
        environment="production",
        data_dir=tmp_path / "data",
        mqtt_url="mqtt://127.0.0.1:1883",
        ingest_enabled=False,
        http_port=port,
        admin_token=_SECRETS["FLEET_ADMIN_TOKEN"],
        secret_key=_SECRETS["FLEET_SECRET_KEY"],
        **overrides,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_production_on_a_wildcard_address_needs_public_urls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken_port: int, host: str
) -> None:
    monkeypatch.delenv("FLEET_OTA_PUBLIC_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        run_service(_api_replica(tmp_path, taken_port, http_host=host))
    said = str(info.value)
    assert f"FLEET_HTTP_HOST={host} is a wildcard bind address" in said
    assert "set FLEET_FEED_PUBLIC_URL and FLEET_OTA_PUBLIC_URL" in said


def test_a_replica_without_the_feed_needs_only_the_ota_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken_port: int
) -> None:
    monkeypatch.delenv("FLEET_OTA_PUBLIC_URL", raising=False)
    settings = _api_replica(tmp_path, taken_port, http_host="0.0.0.0", feed_enabled=False)
    with pytest.raises(ConfigurationError, match="; set FLEET_OTA_PUBLIC_URL to the address"):
        run_service(settings)


@pytest.mark.parametrize(
    ("environment", "host", "public"),
    [
        ("production", "0.0.0.0", True),  # both set
        ("production", "127.0.0.1", False),  # a definite address is what links use
        ("development", "0.0.0.0", False),
    ],
)
def test_other_bindings_start(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    taken_port: int,
    environment: str,
    host: str,
    public: bool,
) -> None:
    if public:
        monkeypatch.setenv("FLEET_OTA_PUBLIC_URL", "https://fleet.example.org")
    else:
        monkeypatch.delenv("FLEET_OTA_PUBLIC_URL", raising=False)
    settings = _api_replica(tmp_path, taken_port, http_host=host).model_copy(
        update={
            "environment": environment,
            "feed_public_url": "https://fleet.example.org" if public else None,
        }
    )
    # The port is taken: getting as far as binding it means the start-up checks passed.
    with pytest.raises(StartError, match="cannot listen"):
        run_service(settings)


def test_the_deployments_name_the_public_urls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken_port: int
) -> None:
    (config,) = [
        d
        for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "10-config.yaml").read_text())
        if d and d["kind"] == "ConfigMap"
    ]
    for name, value in {**config["data"], **_SECRETS}.items():
        if name.endswith("_FILE"):  # mounted from a secret: stand it in
            value = str(tmp_path / Path(value).name)
            Path(value).touch()
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("FLEET_HTTP_PORT", str(taken_port))
    monkeypatch.setenv("FLEET_HTTP_HOST", "0.0.0.0")
    settings = Settings(ingest_enabled=False, data_dir=tmp_path / "data")
    with pytest.raises(StartError, match="cannot listen"):
        run_service(settings)

    services = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())["services"]
    for api in ("api-0", "api-1"):
        env = services[api]["environment"]
        assert {"FLEET_OTA_PUBLIC_URL", "FLEET_FEED_PUBLIC_URL"} <= set(env), api
