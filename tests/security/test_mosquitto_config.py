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
    render_conf,
    write_broker_config,
)

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
    for key in ("allow_anonymous", "require_certificate", "acl_file", "cafile", "crlfile"):
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
        write_broker_config(tmp_path, _files(tmp_path), template_dir=tmp_path / "nowhere")


def _acl() -> dict[str, list[tuple[str, str]]]:
    """User -> [(access, topic)]; '*' holds the pattern lines that apply to everyone."""
    rules: dict[str, list[tuple[str, str]]] = {"*": []}
    user = "*"
    for key, value in _settings((SHIPPED / ACL_FILE).read_text()):
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
