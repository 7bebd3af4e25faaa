"""One call that produces everything a fresh TLS broker installation needs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fleet.identity.ca import LEAF_VALIDITY_DAYS, CertificateAuthority, check_crl_url
from fleet.identity.files import write_public
from fleet.identity.keys import Passphrase
from fleet.identity.mosquitto import ACL_FILE, DEFAULT_PORT, BrokerFiles, write_broker_config
from fleet.identity.names import (
    API_ACCOUNT,
    INGEST_ACCOUNT,
    check_service_name,
    service_roles,
    split_hosts,
)
from fleet.identity.store import CAStore, publish_crl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootstrapResult:
    ca_dir: Path
    broker_dir: Path
    services_dir: Path
    mosquitto_conf: Path
    broker_files: BrokerFiles
    # service account name -> (certificate path, key path)
    services: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    # role (fleet-ingest, fleet-api, fleet-feed) -> its identities, as the ACL grants them
    roles: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ingest(self) -> list[str]:
        return self.roles[INGEST_ACCOUNT]

    @property
    def api(self) -> list[str]:
        return self.roles[API_ACCOUNT]


def bootstrap(
    out: Path,
    *,
    broker_hosts: Sequence[str],
    ingest_workers: int = 1,
    api_replicas: int = 0,
    services: Sequence[str] = (),
    passphrase: Passphrase | None = None,
    port: int = DEFAULT_PORT,
    bind_address: str | None = None,
    run_as: str | None = None,
    broker_dir: Path | None = None,
    persistence_dir: Path | None = None,
    template_dir: Path | None = None,
    validity_days: int = LEAF_VALIDITY_DAYS,
    crl_url: str | None = None,
    now: datetime | None = None,
) -> BootstrapResult:
    """Create a CA in OUT/ca and the broker's and services' files beside it.

    OUT/ca       ca.crt, ca.key (0600, encrypted with `passphrase`), revoked.json, crl.pem:
                 keep this folder offline; it issues device certificates and signs CRLs.
    OUT/broker   ca.crt, server.crt, server.key (0600), crl.pem, acl, mosquitto.conf, data/
    OUT/services <name>.crt and <name>.key (0600) per service identity, plus ca.crt:
                 fleet-ingest-0 .. fleet-ingest-<ingest_workers - 1>, fleet-api-0 ..
                 fleet-api-<api_replicas - 1>, fleet-feed, and any extra `services` (feed
                 consumers, say), which the ACL grants nothing until an operator adds them.

    The broker binds each connection's client id to its certificate, so every process that
    connects needs its own identity: one per ingest worker and per API replica.
    """
    split_hosts(list(broker_hosts))  # fail before anything is written
    roles = service_roles(ingest_workers=ingest_workers, api_replicas=api_replicas)
    names = [name for members in roles.values() for name in members]
    for name in services:
        check_service_name(name)
        if name not in names:
            names.append(name)
    out = Path(out).resolve()
    if crl_url:
        check_crl_url(crl_url)  # before anything is written
    store = CAStore(out / "ca")
    created = store.create(passphrase=passphrase, now=now)
    ca = CertificateAuthority(created.certificate, created.private_key, crl_url=crl_url)

    broker = Path(broker_dir).resolve() if broker_dir else out / "broker"
    files = BrokerFiles(
        cafile=broker / "ca.crt",
        certfile=broker / "server.crt",
        keyfile=broker / "server.key",
        crlfile=broker / "crl.pem",
        acl_file=broker / ACL_FILE,
        persistence_location=(
            Path(persistence_dir).resolve() if persistence_dir else broker / "data"
        ),
    )
    write_public(files.cafile, ca.certificate_pem())
    server = ca.issue_server(broker_hosts, validity_days=validity_days, now=now)
    server.write(files.certfile, files.keyfile)
    publish_crl(store.crl_path, files.crlfile)
    files.persistence_location.mkdir(parents=True, exist_ok=True)
    conf = write_broker_config(
        broker,
        files,
        identities=roles,
        port=port,
        bind_address=bind_address,
        run_as=run_as,
        template_dir=template_dir,
    )

    services_dir = out / "services"
    write_public(services_dir / "ca.crt", ca.certificate_pem())
    issued: dict[str, tuple[Path, Path]] = {}
    for name in names:
        cert_path, key_path = services_dir / f"{name}.crt", services_dir / f"{name}.key"
        ca.issue_service(name, validity_days=validity_days, now=now).write(cert_path, key_path)
        issued[name] = (cert_path, key_path)
    log.info("bootstrapped CA, broker and %d service accounts in %s", len(issued), out)
    return BootstrapResult(
        ca_dir=store.directory,
        broker_dir=broker,
        services_dir=services_dir,
        mosquitto_conf=conf,
        broker_files=files,
        services=issued,
        roles=roles,
    )
