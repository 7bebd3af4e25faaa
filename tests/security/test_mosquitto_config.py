"""The shipped broker configuration and ACL, and how they are rendered for an installation."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.identity import TemplateError
from fleet.identity.mosquitto import (
    ACL_FILE,
    CONF_FILE,
    BrokerFiles,
    default_template_dir,
    render_acl,
    render_conf,
    write_broker_config,
)
from fleet.identity.names import service_roles

SHIPPED = default_template_dir()


def _settings(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            pairs.append((key, value.strip()))
    return pairs


def _files(root: Path) -> BrokerFiles:
    return BrokerFiles(
        cafile=root / "ca.crt",
        certfile=root / "server.crt",
        keyfile=root / "server.key",
        crlfile=root / "crl.pem",
        acl_file=root / "acl",
        persistence_location=root / "data",
    )


def test_shipped_config_is_a_tls_only_certificate_broker() -> None:
    settings = dict(_settings((SHIPPED / CONF_FILE).read_text()))
    listeners = [v for k, v in _settings((SHIPPED / CONF_FILE).read_text()) if k == "listener"]
    assert listeners == ["8883"]
    assert settings["per_listener_settings"] == "true"
    assert settings["allow_anonymous"] == "false"
    assert settings["require_certificate"] == "true"
    assert settings["use_identity_as_username"] == "true"
    # The client id is the certificate's CN too: no certificate can take another's session.
    assert settings["use_username_as_clientid"] == "true"
    for key in ("cafile", "certfile", "keyfile", "crlfile", "acl_file"):
        assert settings[key].startswith("/etc/mosquitto/")
    assert settings["persistence"] == "true"
    assert settings["tls_version"] == "tlsv1.2"


def test_shipped_config_sets_queue_limits_deliberately() -> None:
    settings = dict(_settings((SHIPPED / CONF_FILE).read_text()))
    assert int(settings["max_queued_messages"]) >= 100_000  # default 1000 drops QoS 1 silently
    assert int(settings["max_queued_bytes"]) > 0
    assert int(settings["max_inflight_messages"]) > 20
    assert "silently" in (SHIPPED / CONF_FILE).read_text()


def test_security_settings_follow_the_listener() -> None:
    """With per_listener_settings, anything before `listener` would apply to no listener."""
    keys = [k for k, _ in _settings((SHIPPED / CONF_FILE).read_text())]
    listener_at = keys.index("listener")
    for key in (
        "allow_anonymous",
        "require_certificate",
        "acl_file",
        "cafile",
        "crlfile",
        "use_identity_as_username",
        "use_username_as_clientid",
    ):
        assert keys.index(key) > listener_at, key


def test_render_replaces_only_paths_port_and_user(tmp_path: Path) -> None:
    template = (SHIPPED / CONF_FILE).read_text()
    rendered = render_conf(
        template, _files(tmp_path), port=18883, bind_address="127.0.0.1", run_as="root"
    )
    before, after = _settings(template), _settings(rendered)
    changed = {k: v for (k, v), (_, old) in zip(after, before, strict=True) if v != old}
    assert changed == {
        "user": "root",
        "persistence_location": f"{tmp_path / 'data'}/",
        "listener": "18883 127.0.0.1",
        "cafile": str(tmp_path / "ca.crt"),
        "crlfile": str(tmp_path / "crl.pem"),
        "certfile": str(tmp_path / "server.crt"),
        "keyfile": str(tmp_path / "server.key"),
        "acl_file": str(tmp_path / "acl"),
    }
    assert rendered.count("\n") == template.count("\n")


def test_render_refuses_a_template_missing_a_path(tmp_path: Path) -> None:
    template = (SHIPPED / CONF_FILE).read_text().replace("crlfile", "# crlfile")
    with pytest.raises(TemplateError, match="crlfile"):
        render_conf(template, _files(tmp_path))


def test_missing_template_dir_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="--template-dir"):
        write_broker_config(
            tmp_path, _files(tmp_path), identities={}, template_dir=tmp_path / "nowhere"
        )


def _acl(text: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """User -> [(access, topic)]; '*' holds the pattern lines that apply to everyone."""
    rules: dict[str, list[tuple[str, str]]] = {"*": []}
    user = "*"
    for key, value in _settings(text if text is not None else (SHIPPED / ACL_FILE).read_text()):
        if key == "user":
            user = value
            rules[user] = []
        elif key in ("topic", "pattern"):
            access, _, topic = value.partition(" ")
            assert key == "pattern" or user != "*", "topic lines before `user` are anonymous"
            rules["*" if key == "pattern" else user].append((access, topic))
    return rules


def test_acl_device_patterns() -> None:
    assert sorted(_acl()["*"]) == sorted(
        [
            ("write", "cs/v1/d/%u/up"),
            ("write", "cs/v1/d/%u/health"),
            ("write", "cs/v1/d/%u/status"),
            ("write", "cs/v1/d/%u/cmd/ack"),
            ("write", "cs/v1/d/%u/ota/progress"),
            ("read", "cs/v1/d/%u/cmd"),
            ("read", "cs/v1/d/%u/config"),
            ("read", "cs/v1/d/%u/ota"),
        ]
    )


def test_acl_ingest_writes_only_downstream_leaves() -> None:
    ingest = _acl()["fleet-ingest"]
    writes = sorted(t for a, t in ingest if a in ("write", "readwrite"))
    reads = sorted(t for a, t in ingest if a in ("read", "readwrite"))
    assert writes == ["cs/v1/d/+/cmd", "cs/v1/d/+/config", "cs/v1/d/+/ota"]
    assert reads == sorted(
        f"cs/v1/d/+/{leaf}" for leaf in ("up", "health", "status", "cmd/ack", "ota/progress")
    )


def test_acl_feed_account_stays_in_the_public_tree() -> None:
    feed = _acl()["fleet-feed"]
    assert sorted(t for a, t in feed if a != "deny") == ["cs/v1/feed/#", "v1.1/#"]
    assert ("deny", "cs/v1/d/#") in feed


def _rendered_acl(ingest_workers: int, api_replicas: int) -> dict[str, list[tuple[str, str]]]:
    roles = service_roles(ingest_workers=ingest_workers, api_replicas=api_replicas)
    return _acl(render_acl((SHIPPED / ACL_FILE).read_text(), roles))


def test_rendered_acl_has_one_block_per_service_identity() -> None:
    rules = _acl()
    ingest, api = rules["fleet-ingest"], rules["fleet-api"]
    rendered = _rendered_acl(ingest_workers=3, api_replicas=2)
    assert sorted(rendered) == sorted(
        [
            "*",
            "fleet-ingest-0",
            "fleet-ingest-1",
            "fleet-ingest-2",
            "fleet-ingest",
            "fleet-api-0",
            "fleet-api-1",
            "fleet-api",
            "fleet-feed",
        ]
    )
    for n in range(3):
        name = f"fleet-ingest-{n}"
        own = ("deny", f"cs/v1/d/{name}/#")
        assert rendered[name] == [
            own if r == ("deny", "cs/v1/d/fleet-ingest/#") else r for r in ingest
        ]
    for n in range(2):
        name = f"fleet-api-{n}"
        assert ("deny", f"cs/v1/d/{name}/#") in rendered[name]
        assert len(rendered[name]) == len(api)
    # The certificate earlier versions shared between all service processes gets nothing.
    assert rendered["fleet-ingest"] == [("deny", "#")]
    assert rendered["fleet-api"] == [("deny", "#")]
    assert rendered["fleet-feed"] == rules["fleet-feed"]
    assert rendered["*"] == rules["*"]


def test_api_replicas_write_only_downstream_leaves_and_read_nothing() -> None:
    api = _rendered_acl(ingest_workers=1, api_replicas=1)["fleet-api-0"]
    assert sorted(t for a, t in api if a == "write") == [
        "cs/v1/d/+/cmd",
        "cs/v1/d/+/config",
        "cs/v1/d/+/ota",
    ]
    assert [t for a, t in api if a in ("read", "readwrite")] == []


def test_render_acl_refuses_a_template_without_a_role() -> None:
    template = (SHIPPED / ACL_FILE).read_text().replace("user fleet-api\n", "# user fleet-api\n")
    with pytest.raises(TemplateError, match="fleet-api"):
        render_acl(template, service_roles(ingest_workers=1, api_replicas=1))
