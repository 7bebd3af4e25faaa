"""`python -m fleet.identity`: bootstrap, issue, revoke and re-sign from the command line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from fleet.identity import CAStore
from fleet.identity.cli import app

runner = CliRunner()
PASS = {"FLEET_CA_PASSPHRASE": "correct horse battery"}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    result = runner.invoke(
        app,
        ["bootstrap", "--out", str(tmp_path / "pki"), "--broker-host", "mqtt.example.org"],
        env=PASS,
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "pki"


def test_bootstrap_writes_every_file(out: Path) -> None:
    expected = [
        "ca/ca.crt",
        "ca/ca.key",
        "ca/crl.pem",
        "ca/revoked.json",
        "broker/ca.crt",
        "broker/server.crt",
        "broker/server.key",
        "broker/crl.pem",
        "broker/acl",
        "broker/mosquitto.conf",
        "services/ca.crt",
        "services/fleet-ingest-0.crt",
        "services/fleet-ingest-0.key",
        "services/fleet-feed.crt",
        "services/fleet-feed.key",
    ]
    for name in expected:
        assert (out / name).is_file(), name
    for key in ("ca/ca.key", "broker/server.key", "services/fleet-ingest-0.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600, key
    assert b"ENCRYPTED" in (out / "ca/ca.key").read_bytes()
    conf = (out / "broker/mosquitto.conf").read_text()
    assert f"crlfile {out / 'broker/crl.pem'}" in conf
    assert f"acl_file {out / 'broker/acl'}" in conf


def test_bootstrap_issues_one_identity_per_worker_and_replica(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bootstrap",
            "--out",
            str(tmp_path / "pki"),
            "--broker-host",
            "mqtt.example.org",
            "--ingest-workers",
            "3",
            "--api-replicas",
            "2",
        ],
        env=PASS,
    )
    assert result.exit_code == 0, result.output
    services = tmp_path / "pki" / "services"
    issued = sorted(p.stem for p in services.glob("fleet-*.crt"))
    assert issued == [
        "fleet-api-0",
        "fleet-api-1",
        "fleet-feed",
        "fleet-ingest-0",
        "fleet-ingest-1",
        "fleet-ingest-2",
    ]
    for name in issued:
        cert = x509.load_pem_x509_certificate((services / f"{name}.crt").read_bytes())
        assert cert.subject.rfc4514_string() == f"CN={name}"
    users = [
        line.split()[1]
        for line in (tmp_path / "pki" / "broker" / "acl").read_text().splitlines()
        if line.startswith("user ")
    ]
    assert set(issued) <= set(users)


def test_acl_command_renders_more_identities(out: Path) -> None:
    acl = out / "broker" / "acl"
    result = runner.invoke(
        app, ["acl", "--out", str(acl), "--ingest-workers", "4", "--api-replicas", "1"]
    )
    assert result.exit_code == 0, result.output
    users = {line.split()[1] for line in acl.read_text().splitlines() if line.startswith("user ")}
    assert {"fleet-ingest-3", "fleet-api-0", "fleet-feed"} <= users


def test_bootstrap_refuses_to_replace_a_ca(out: Path) -> None:
    result = runner.invoke(
        app, ["bootstrap", "--out", str(out), "--broker-host", "mqtt.example.org"], env=PASS
    )
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_issue_and_revoke_a_device(out: Path, tmp_path: Path) -> None:
    ca_dir = str(out / "ca")
    issued = runner.invoke(
        app,
        [
            "issue-device",
            "--ca-dir",
            ca_dir,
            "--device-id",
            "cs-3c71bf0a12f4",
            "--out",
            str(tmp_path),
        ],
        env=PASS,
    )
    assert issued.exit_code == 0, issued.output
    cert = x509.load_pem_x509_certificate((tmp_path / "cs-3c71bf0a12f4.crt").read_bytes())

    revoked = runner.invoke(
        app,
        [
            "revoke",
            "--ca-dir",
            ca_dir,
            "--serial",
            f"{cert.serial_number:x}",
            "--reason",
            "key_compromise",
            "--publish",
            str(out / "broker/crl.pem"),
        ],
        env=PASS,
    )
    assert revoked.exit_code == 0, revoked.output
    crl = x509.load_pem_x509_crl((out / "broker/crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert [r.serial for r in CAStore(out / "ca").revocations()] == [cert.serial_number]


def test_wrong_passphrase_is_one_clear_line(out: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["issue-service", "--ca-dir", str(out / "ca"), "--name", "fleet-x", "--out", str(tmp_path)],
        env={"FLEET_CA_PASSPHRASE": "wrong"},
    )
    assert result.exit_code == 2
    assert "does not decrypt" in result.output
    assert "Traceback" not in result.output


def test_passphrase_file_is_accepted(out: Path, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASS["FLEET_CA_PASSPHRASE"] + "\n")
    result = runner.invoke(
        app, ["crl", "--ca-dir", str(out / "ca"), "--passphrase-file", str(secret), "--days", "7"]
    )
    assert result.exit_code == 0, result.output


def test_needs_rotation_exit_code(out: Path) -> None:
    fresh = runner.invoke(app, ["needs-rotation", "--cert", str(out / "broker/server.crt")])
    assert fresh.exit_code == 0, fresh.output
    due = runner.invoke(
        app,
        ["needs-rotation", "--cert", str(out / "broker/server.crt"), "--before-days", "400"],
    )
    assert due.exit_code == 1
    # A renewal timer must not take "cannot tell" for "due": unreadable is 2, with the reason.
    (out / "garbage.crt").write_text("not a certificate")
    for path in (out / "missing.crt", out / "garbage.crt"):
        result = runner.invoke(app, ["needs-rotation", "--cert", str(path)])
        assert result.exit_code == 2 and "cannot read certificate" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_crl_url_goes_into_every_client_certificate_and_is_checked(tmp_path: Path) -> None:
    url = "http://fleet-api.fleet.svc.cluster.local/pki/crl.pem"
    args = ["bootstrap", "--out", str(tmp_path / "pki"), "--broker-host", "mqtt.example.org"]
    refused = runner.invoke(app, [*args, "--crl-url", "/pki/crl.pem"], env=PASS)
    assert refused.exit_code == 2 and "--crl-url" in refused.output
    assert not (tmp_path / "pki").exists()  # nothing written before the check

    assert runner.invoke(app, [*args, "--crl-url", url], env=PASS).exit_code == 0
    issued = runner.invoke(
        app,
        [
            *("issue-device", "--ca-dir", str(tmp_path / "pki/ca")),
            *("--device-id", "cs-3c71bf0a12f4", "--out", str(tmp_path / "dev"), "--crl-url", url),
        ],
        env=PASS,
    )
    assert issued.exit_code == 0, issued.output
    for path in (
        tmp_path / "pki/services/fleet-ingest-0.crt",
        tmp_path / "dev/cs-3c71bf0a12f4.crt",
    ):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [n.value for p in points for n in p.full_name or []] == [url]
