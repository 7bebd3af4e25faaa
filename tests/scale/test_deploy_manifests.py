"""The shipped deployments (compose, Kubernetes, EMQX, Mosquitto) name only settings,
commands and topics the product has, so a typo fails here instead of in a borough's cluster.

Settings ignore unknown FLEET_* variables; a misspelt one in a manifest would silently fall
back to a default (an embedded SQLite database in production, say).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from fleet.api.routes import enrolment
from fleet.cli import app
from fleet.core.settings import Settings
from fleet.ingest.profile import TOPIC_ROOT
from fleet.ingest.topics import DOWNSTREAM_LEAVES, Upstream
from fleet.ota.engine import OtaSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _k8s_containers() -> Iterator[dict[str, Any]]:
    for doc in _k8s_docs():
        template = doc.get("spec", {}).get("template", {})
        if doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        for container in template.get("spec", {}).get("containers", []):
            command = container.get("command", [None])
            if command == ["sh", "-c"]:
                # A shell wrapper that sets variables, then `exec fleet ...`.
                script = " ".join(container["args"])
                command = script[script.index("exec fleet ") + len("exec ") :].split()
                container = {**container, "command": command}
            if command[0] == "fleet":
                yield container


def _compose_services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def _fleet_config() -> dict[str, str]:
    (config,) = [
        d
        for d in _k8s_docs()
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fleet-config"
    ]
    return {k: str(v) for k, v in config["data"].items()}


def _fleet_variables() -> dict[str, set[str]]:
    """Every FLEET_* name the deployments set, with where it is set."""
    found: dict[str, set[str]] = {}
    for name in _fleet_config():
        found.setdefault(name, set()).add("kubernetes ConfigMap")
    for container in _k8s_containers():
        for env in container.get("env", []):
            found.setdefault(env["name"], set()).add(f"kubernetes {container['name']}")
    # The secrets are created by hand from the commands in the ConfigMap's header.
    for name in re.findall(r"--from-literal=(FLEET_\w+)", (K8S / "10-config.yaml").read_text()):
        found.setdefault(name, set()).add("kubernetes fleet-secrets")
    for service, spec in _compose_services().items():
        for name in spec.get("environment", {}) or {}:
            found.setdefault(name, set()).add(f"compose {service}")
    return {k: v for k, v in found.items() if k.startswith("FLEET_")}


def test_every_fleet_variable_is_a_setting() -> None:
    variables = _fleet_variables()
    assert "FLEET_DATABASE_URL" in variables and "FLEET_MQTT_URL" in variables
    known = {f"FLEET_{f.upper()}" for f in Settings.model_fields}
    known |= {f"FLEET_OTA_{f.upper()}" for f in OtaSettings.model_fields}
    unknown = {name: sorted(where) for name, where in variables.items() if name not in known}
    assert unknown == {}, f"not settings of the fleet (ignored at run time): {unknown}"


def test_the_kubernetes_configuration_is_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in _fleet_config().items():
        # The client certificate comes from a mounted secret; stand it in with empty files.
        if name.endswith("_FILE"):
            value = str(tmp_path / Path(value).name)
            Path(value).touch()
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLEET_DATABASE_URL", "postgresql+psycopg://fleet:x@db.example/fleet")
    monkeypatch.setenv("FLEET_ADMIN_TOKEN", "t" * 32)
    monkeypatch.setenv("FLEET_SECRET_KEY", "k" * 32)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.ingest_share_group == "ingest"
    broker = settings.broker_address()
    assert broker is not None and broker.tls and broker.port == 8883


def _fleet_commands() -> list[tuple[str, list[str]]]:
    commands = [(f"kubernetes {c['name']}", list(c["command"])) for c in _k8s_containers()]
    assert len(commands) >= 3
    commands += [
        (f"compose {name}", list(spec["command"]))
        for name, spec in _compose_services().items()
        if spec.get("command", [None])[0] == "fleet"
    ]
    return [(where, cmd) for where, cmd in commands if cmd and cmd[0] == "fleet"]


def test_every_container_runs_a_real_fleet_command() -> None:
    commands = _fleet_commands()
    assert {cmd[1] for _, cmd in commands} >= {"ingest", "serve", "migrate"}
    runner = CliRunner()
    for where, cmd in commands:
        # --help after the given options: typer parses them all, then prints usage.
        result = runner.invoke(app, [*cmd[1:], "--help"])
        assert result.exit_code == 0, f"{where}: `{' '.join(cmd)}` fails: {result.output}"


def test_ingest_workers_have_their_own_persistent_sessions() -> None:
    ids = [
        cmd[cmd.index("--client-id") + 1]
        for where, cmd in _fleet_commands()
        if where.startswith("compose") and cmd[1] == "ingest"
    ]
    assert len(ids) >= 2 and len(set(ids)) == len(ids)
    (ingest,) = [c for c in _k8s_containers() if c["command"][1:2] == ["ingest"]]
    (client_id,) = [e for e in ingest["env"] if e["name"] == "FLEET_INGEST_CLIENT_ID"]
    assert client_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    (stateful,) = [
        d for d in _k8s_docs() if d["kind"] == "StatefulSet" and "ingest" in d["metadata"]["name"]
    ]
    assert stateful["spec"]["replicas"] >= 2


def _emqx_rules(user: str, action: str) -> list[str]:
    """Topics allowed to `user`, by exact name or by a `{re, ...}` username pattern."""
    rules = re.findall(
        r'\{allow, \{username, (?:"([^"]+)"|\{re, "([^"]+)"\})\}, (\w+), \[([^\]]*)\]\}',
        (DEPLOY / "emqx" / "acl.conf").read_text(),
    )
    return [
        t.strip().strip('"')
        for name, pattern, a, topics in rules
        if a == action and (name == user or (pattern and re.fullmatch(pattern, user)))
        for t in topics.split(",")
    ]


def _mosquitto_rules(user: str, access: str) -> set[str]:
    rules: set[str] = set()
    current = None
    for line in (DEPLOY / "mosquitto" / "acl").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["user"]:
            current = parts[1]
        elif current == user and parts[:2] == ["topic", access]:
            rules.add(parts[2])
    return rules


def test_broker_acls_give_the_ingest_exactly_the_device_tree() -> None:
    group = _fleet_config()["FLEET_INGEST_SHARE_GROUP"]
    shared = _emqx_rules("fleet-ingest-0", "subscribe")
    assert f"$share/+/{TOPIC_ROOT}/d/#" in shared, f"EMQX refuses $share/{group}/...: {shared}"
    downstream = {f"{TOPIC_ROOT}/d/+/{leaf}" for leaf in DOWNSTREAM_LEAVES}
    upstream = {f"{TOPIC_ROOT}/d/+/{leaf.value}" for leaf in Upstream}
    for worker in ("fleet-ingest-0", "fleet-ingest-12"):
        assert set(_emqx_rules(worker, "publish")) == downstream
    assert set(_emqx_rules("fleet-api-3", "publish")) == downstream
    assert _emqx_rules("fleet-api-3", "subscribe") == []
    # The certificate earlier versions shared between processes has no rights.
    assert _emqx_rules("fleet-ingest", "subscribe") == _emqx_rules("fleet-ingest", "publish") == []
    assert _mosquitto_rules("fleet-ingest", "write") == downstream
    assert _mosquitto_rules("fleet-ingest", "read") == upstream


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_every_kubernetes_pod_connects_with_a_certificate_of_its_own() -> None:
    """The broker makes the client id the certificate's CN: two pods with one certificate
    would close each other's connections, so the pod name selects the certificate."""
    assert "FLEET_MQTT_CERT_FILE" not in _fleet_config()
    for role, id_variable in (
        ("ingest", "FLEET_INGEST_CLIENT_ID"),
        ("serve", "FLEET_API_CLIENT_ID"),
    ):
        (container,) = [c for c in _k8s_containers() if c["command"][1] == role]
        env = _env(container)
        assert env[id_variable] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["FLEET_MQTT_CERT_FILE"] == f"/etc/fleet/mqtt/$({id_variable}).crt"
        assert env["FLEET_MQTT_KEY_FILE"] == f"/etc/fleet/mqtt/$({id_variable}).key"
    stateful = {d["metadata"]["name"] for d in _k8s_docs() if d["kind"] == "StatefulSet"}
    assert {"fleet-ingest", "fleet-api"} <= stateful  # pod names fleet-ingest-0, fleet-api-0
    (api,) = [c for c in _k8s_containers() if c["command"][1] == "serve"]
    # One feed publisher per fleet: only fleet-api-0 keeps FLEET_FEED_ENABLED.
    assert 'if [ "$FLEET_API_CLIENT_ID" != fleet-api-0 ]; then export FLEET_FEED_ENABLED=false' in (
        " ".join(api["args"])
    )


def test_compose_services_have_distinct_client_ids() -> None:
    ids = []
    for spec in _compose_services().values():
        command = spec.get("command") or []
        if command[:2] == ["fleet", "ingest"]:
            ids.append(command[command.index("--client-id") + 1])
        elif command[:2] == ["fleet", "serve"]:
            ids.append(spec["environment"]["FLEET_API_CLIENT_ID"])
    assert len(ids) >= 4 and len(set(ids)) == len(ids)
    feeds = [
        name
        for name, spec in _compose_services().items()
        if (spec.get("command") or [])[:2] == ["fleet", "serve"]
        and spec["environment"].get("FLEET_FEED_ENABLED") != "false"
    ]
    assert len(feeds) == 1


def test_emqx_binds_the_client_id_to_the_certificate() -> None:
    conf = (DEPLOY / "emqx" / "emqx.conf").read_text()
    listener = conf[conf.index("listeners.ssl.default {") :]
    listener = listener[: listener.index("\n}\n")]
    assert re.search(r"^\s*peer_cert_as_username = cn$", listener, re.MULTILINE)
    assert re.search(r"^\s*peer_cert_as_clientid = cn$", listener, re.MULTILINE)


def test_emqx_checks_revocation_against_the_crl_the_fleet_serves() -> None:
    """EMQX fetches the CRL from the URL in each client certificate: the ConfigMap's
    FLEET_CRL_URL must name the API Service's /pki/crl.pem, and the API pods must hold the CA
    that signs it."""
    conf = (DEPLOY / "emqx" / "emqx.conf").read_text()
    listener = conf[conf.index("listeners.ssl.default {") :]
    assert re.search(r"^\s*enable_crl_check = true$", listener[: listener.index("\n}\n")], re.M)
    config = _fleet_config()
    url = urlsplit(config["FLEET_CRL_URL"])
    (service,) = [
        d for d in _k8s_docs() if d["kind"] == "Service" and d["metadata"]["name"] == "fleet-api"
    ]
    assert url.hostname == "fleet-api.fleet.svc.cluster.local"
    assert (url.port or 80) == service["spec"]["ports"][0]["port"]
    assert url.path in {getattr(r, "path", None) for r in enrolment.public.routes}
    (api,) = [c for c in _k8s_containers() if c["command"][1] == "serve"]
    mounts = {m["mountPath"]: m["name"] for m in api["volumeMounts"]}
    assert mounts[config["FLEET_CA_DIR"]] == "ca"
    (stateful,) = [
        d
        for d in _k8s_docs()
        if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "fleet-api"
    ]
    volumes = {v["name"]: v for v in stateful["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ca"]["secret"]["secretName"] == "fleet-ca"
    for name in ("api-0", "api-1"):
        spec = _compose_services()[name]
        assert spec["environment"]["FLEET_CA_DIR"] == "/etc/fleet/ca"
        assert any(v.endswith(":/etc/fleet/ca:ro") for v in spec["volumes"])
