"""The CA folder on disk: permissions, passphrases, revocation register and CRL."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from fleet.identity import (
    CRL_VALIDITY_DAYS,
    CAExistsError,
    CAMissingError,
    CAStore,
    PassphraseRequiredError,
    RevocationStoreError,
    WrongPassphraseError,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _crl(store: CAStore) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(store.crl_path.read_bytes())


def test_ca_key_is_private_and_certificate_public(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    store.create(now=NOW)
    assert _mode(store.key_path) == 0o600
    assert _mode(store.cert_path) == 0o644


def test_issued_key_is_written_0600(tmp_path: Path) -> None:
    ca = CAStore(tmp_path / "ca").create(now=NOW)
    issued = ca.issue_device("cs-000000000001", now=NOW)
    issued.write(tmp_path / "d.crt", tmp_path / "d.key")
    assert _mode(tmp_path / "d.key") == 0o600
    assert _mode(tmp_path / "d.crt") == 0o644
    assert b"PRIVATE KEY" in (tmp_path / "d.key").read_bytes()


def test_encrypted_ca_round_trips_with_its_passphrase(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    created = store.create(passphrase="correct horse", now=NOW)
    assert b"ENCRYPTED PRIVATE KEY" in store.key_path.read_bytes()
    loaded = store.load(passphrase="correct horse")
    assert loaded.certificate == created.certificate


def test_wrong_or_missing_passphrase_says_so(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    store.create(passphrase="correct horse", now=NOW)
    with pytest.raises(WrongPassphraseError, match="does not decrypt"):
        store.load(passphrase="battery staple")
    with pytest.raises(PassphraseRequiredError, match="FLEET_CA_PASSPHRASE"):
        store.load()


def test_passphrase_for_an_unencrypted_key_is_refused(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    store.create(now=NOW)
    with pytest.raises(WrongPassphraseError, match="not encrypted"):
        store.load(passphrase="anything")


def test_missing_ca_files_say_what_to_do(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    with pytest.raises(CAMissingError, match="bootstrap"):
        store.load()
    store.create(now=NOW)
    store.key_path.unlink()
    with pytest.raises(CAMissingError, match=r"CA key missing.*restore"):
        store.load()


def test_existing_ca_is_never_overwritten(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    first = store.create(now=NOW)
    with pytest.raises(CAExistsError):
        store.create(now=NOW)
    assert store.load().certificate == first.certificate


def test_new_ca_has_an_empty_valid_crl(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    ca = store.create(now=NOW)
    crl = _crl(store)
    assert len(crl) == 0
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc == NOW + timedelta(days=CRL_VALIDITY_DAYS)


def test_revoked_serial_is_in_the_crl(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    ca = store.create(now=NOW)
    keep = ca.issue_device("cs-000000000001", now=NOW)
    lost = ca.issue_device("cs-000000000002", now=NOW)

    store.revoke(ca, lost.serial, reason=x509.ReasonFlags.key_compromise, now=NOW)

    crl = _crl(store)
    entry = crl.get_revoked_certificate_by_serial_number(lost.serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.get_revoked_certificate_by_serial_number(keep.serial) is None
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc is not None and crl.next_update_utc > NOW


def test_revocations_survive_reload_and_crl_number_increases(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    ca = store.create(now=NOW)
    serial = ca.issue_device("cs-000000000001", now=NOW).serial
    store.revoke(ca, serial, now=NOW)
    store.revoke(ca, serial, now=NOW)  # idempotent
    first = _crl(store).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    reopened = CAStore(tmp_path / "ca")
    reopened.write_crl(reopened.load(), now=NOW + timedelta(days=1), next_update_days=7)

    crl = _crl(reopened)
    assert [r.serial for r in reopened.revocations()] == [serial]
    assert [r.serial_number for r in crl] == [serial]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > first
    assert crl.next_update_utc == NOW + timedelta(days=8)


def test_crl_can_be_published_to_the_broker(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    ca = store.create(now=NOW)
    target = tmp_path / "broker" / "crl.pem"
    store.revoke(ca, 1234, now=NOW, publish_to=target)
    assert target.read_bytes() == store.crl_path.read_bytes()


def test_corrupt_register_is_not_silently_reset(tmp_path: Path) -> None:
    store = CAStore(tmp_path / "ca")
    ca = store.create(now=NOW)
    store.register_path.write_text("{not json")
    with pytest.raises(RevocationStoreError, match="restore it from backup"):
        store.revoke(ca, 99, now=NOW)
