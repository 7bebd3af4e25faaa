"""`python -m fleet.identity`: bootstrap the broker PKI, issue, revoke and re-sign CRLs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from cryptography import x509
from rich.console import Console

from fleet.identity.ca import LEAF_VALIDITY_DAYS, check_crl_url
from fleet.identity.errors import IdentityError
from fleet.identity.mosquitto import DEFAULT_PORT
from fleet.identity.rotation import ROTATE_BEFORE_DAYS, needs_rotation
from fleet.identity.store import CRL_VALIDITY_DAYS, CAStore

app = typer.Typer(
    help="Device CA and broker identities: bootstrap, issue, revoke, CRL.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long

P = ParamSpec("P")
R = TypeVar("R")


def _crl_url(value: str | None) -> str | None:
    try:
        return check_crl_url(value) if value else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


CrlUrl = Annotated[
    str | None,
    typer.Option(
        "--crl-url",
        callback=_crl_url,
        help="URL brokers fetch the CRL from (the fleet's /pki/crl.pem), written into client "
        "certificates; EMQX needs it to check revocation (FLEET_CRL_URL).",
    ),
]
CaDir = Annotated[Path, typer.Option("--ca-dir", help="Folder holding ca.crt and ca.key.")]
Days = Annotated[int, typer.Option("--days", min=1, help="Certificate validity in days.")]
PassphraseOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        envvar="FLEET_CA_PASSPHRASE",
        help="CA key passphrase; prefer the FLEET_CA_PASSPHRASE variable or --passphrase-file.",
        show_default=False,
    ),
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help="File whose first line is the CA key passphrase."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]


def _handled(func: Callable[P, R]) -> Callable[P, R]:
    """Map identity errors to a one-line message and exit code 2; tracebacks with --verbose."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        verbose = bool(kwargs.get("verbose"))
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        try:
            return func(*args, **kwargs)
        except IdentityError as exc:
            if verbose:
                raise
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None

    return wrapper


def _passphrase(value: str | None, file: Path | None) -> str | None:
    if file is not None:
        lines = file.read_text().splitlines()
        return lines[0] if lines else ""
    return value or None


def _parse_serial(text: str) -> int:
    cleaned = text.strip().lower().replace(":", "")
    try:
        return int(cleaned, 16) if not cleaned.startswith("0x") else int(cleaned, 0)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a hexadecimal serial (e.g. 4f:1a:...)") from None


def _parse_reason(text: str) -> x509.ReasonFlags:
    """Accept the Python name (key_compromise) or the RFC 5280 name (keyCompromise)."""
    for flag in x509.ReasonFlags:
        if text in (flag.name, flag.value):
            return flag
    choices = ", ".join(flag.name for flag in x509.ReasonFlags)
    raise typer.BadParameter(f"unknown reason {text!r}; use one of {choices}")


@app.command()
@_handled
def bootstrap(
    out: Annotated[Path, typer.Option(help="Folder to create ca/, broker/ and services/ in.")],
    broker_host: Annotated[
        list[str], typer.Option("--broker-host", help="DNS name or IP of the broker (repeat).")
    ],
    ingest_workers: Annotated[
        int,
        typer.Option(
            min=0, help="Ingest worker identities to issue: fleet-ingest-0 .. fleet-ingest-N-1."
        ),
    ] = 1,
    api_replicas: Annotated[
        int,
        typer.Option(
            min=0,
            help="API replica identities (`fleet serve --no-ingest`): fleet-api-0 .. M-1.",
        ),
    ] = 0,
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="Extra service account, e.g. a feed consumer (repeat)."),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="TLS listener port.")] = DEFAULT_PORT,
    bind: Annotated[str | None, typer.Option(help="Listener bind address (default: all).")] = None,
    run_as: Annotated[str | None, typer.Option(help="User Mosquitto drops to.")] = None,
    broker_dir: Annotated[Path | None, typer.Option(help="Broker files (OUT/broker).")] = None,
    persistence_dir: Annotated[
        Path | None, typer.Option(help="Mosquitto persistence folder (OUT/broker/data).")
    ] = None,
    template_dir: Annotated[
        Path | None, typer.Option(help="Folder with mosquitto.conf and acl templates.")
    ] = None,
    days: Days = LEAF_VALIDITY_DAYS,
    crl_url: CrlUrl = None,
    passphrase: PassphraseOpt = None,
    passphrase_file: PassphraseFile = None,
    verbose: Verbose = False,
) -> None:
    """Create the device CA, broker certificate, service certificates, empty CRL and config."""
    from fleet.identity.bootstrap import bootstrap as run_bootstrap

    result = run_bootstrap(
        out,
        broker_hosts=broker_host,
        ingest_workers=ingest_workers,
        api_replicas=api_replicas,
        services=service or (),
        passphrase=_passphrase(passphrase, passphrase_file),
        port=port,
        bind_address=bind,
        run_as=run_as,
        broker_dir=broker_dir,
        persistence_dir=persistence_dir,
        template_dir=template_dir,
        validity_days=days,
        crl_url=crl_url,
    )
    console.print(f"CA (keep offline):  {result.ca_dir}")
    console.print(f"broker files:       {result.broker_dir}")
    console.print(f"service accounts:   {result.services_dir} ({', '.join(result.services)})")
    console.print(f"start the broker:   mosquitto -c {result.mosquitto_conf}")


@app.command()
@_handled
def acl(
    out: Annotated[Path, typer.Option(help="ACL file to write (the broker's acl_file).")],
    ingest_workers: Annotated[int, typer.Option(min=0, help="fleet-ingest-0 .. N-1.")] = 1,
    api_replicas: Annotated[int, typer.Option(min=0, help="fleet-api-0 .. M-1.")] = 0,
    template_dir: Annotated[
        Path | None, typer.Option(help="Folder with the acl template (deploy/mosquitto).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite `user` blocks above the local-additions line that this command "
            "does not render (the old file is kept as <out>.bak).",
        ),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Re-render the broker ACL for more or fewer ingest workers or API replicas, keeping
    the blocks below its "Local additions" line; issue the new identities with
    issue-service, then reload the broker."""
    from fleet.identity.mosquitto import write_acl
    from fleet.identity.names import service_roles

    roles = service_roles(ingest_workers=ingest_workers, api_replicas=api_replicas)
    written = write_acl(out, roles, template_dir=template_dir, force=force)
    names = ", ".join(name for members in roles.values() for name in members)
    console.print(f"ACL {out} grants {names}.")
    if written.kept_lines:
        console.print(f"Kept the local additions ({written.kept_lines} lines).")
    if written.backup is not None:
        console.print(
            f"[yellow]Overwrote blocks it does not render; the old file is "
            f"{written.backup}[/yellow]"
        )
    console.print("Reload the broker: kill -HUP <pid>")


def _issue(
    kind: str,
    ca_dir: Path,
    name: str,
    out: Path,
    days: int,
    passphrase: str | None,
    crl_url: str | None,
) -> None:
    ca = CAStore(ca_dir).load(passphrase=passphrase, crl_url=crl_url)
    issued = (
        ca.issue_device(name, validity_days=days)
        if kind == "device"
        else (ca.issue_service(name, validity_days=days))
    )
    cert_path, key_path = out / f"{name}.crt", out / f"{name}.key"
    issued.write(cert_path, key_path)
    console.print(f"{cert_path} (serial {issued.serial:x}), key {key_path}")


@app.command("issue-device")
@_handled
def issue_device(
    ca_dir: CaDir,
    device_id: Annotated[str, typer.Option(help="Device id, e.g. cs-3c71bf0a12f4.")],
    out: Annotated[Path, typer.Option(help="Folder for <id>.crt and <id>.key.")],
    days: Days = LEAF_VALIDITY_DAYS,
    crl_url: CrlUrl = None,
    passphrase: PassphraseOpt = None,
    passphrase_file: PassphraseFile = None,
    verbose: Verbose = False,
) -> None:
    """Issue a device client certificate and key."""
    _issue(
        "device", ca_dir, device_id, out, days, _passphrase(passphrase, passphrase_file), crl_url
    )


@app.command("issue-service")
@_handled
def issue_service(
    ca_dir: CaDir,
    name: Annotated[
        str, typer.Option(help="Account name, e.g. fleet-ingest-3 or fleet-feed-datastore.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for <name>.crt and <name>.key.")],
    days: Days = LEAF_VALIDITY_DAYS,
    crl_url: CrlUrl = None,
    passphrase: PassphraseOpt = None,
    passphrase_file: PassphraseFile = None,
    verbose: Verbose = False,
) -> None:
    """Issue a service-account client certificate and key."""
    _issue("service", ca_dir, name, out, days, _passphrase(passphrase, passphrase_file), crl_url)


@app.command()
@_handled
def revoke(
    ca_dir: CaDir,
    serial: Annotated[str | None, typer.Option(help="Serial in hex (colons allowed).")] = None,
    cert: Annotated[Path | None, typer.Option(help="Revoke this certificate file.")] = None,
    reason: Annotated[
        str, typer.Option(help="RFC 5280 reason, e.g. key_compromise, superseded.")
    ] = "unspecified",
    publish: Annotated[Path | None, typer.Option(help="Also copy the CRL here.")] = None,
    passphrase: PassphraseOpt = None,
    passphrase_file: PassphraseFile = None,
    verbose: Verbose = False,
) -> None:
    """Revoke a certificate and write a new CRL; then send Mosquitto SIGHUP."""
    if (serial is None) == (cert is None):
        raise typer.BadParameter("give exactly one of --serial or --cert")
    number = (
        _parse_serial(serial)
        if serial is not None
        else x509.load_pem_x509_certificate(Path(str(cert)).read_bytes()).serial_number
    )
    flag = _parse_reason(reason)
    store = CAStore(ca_dir)
    ca = store.load(passphrase=_passphrase(passphrase, passphrase_file))
    path = store.revoke(ca, number, reason=flag, publish_to=publish)
    console.print(f"revoked {number:x}; CRL {publish or path}. Reload the broker: kill -HUP <pid>")


@app.command()
@_handled
def crl(
    ca_dir: CaDir,
    days: Annotated[int, typer.Option(min=1, help="Days until next update.")] = CRL_VALIDITY_DAYS,
    publish: Annotated[Path | None, typer.Option(help="Also copy the CRL here.")] = None,
    passphrase: PassphraseOpt = None,
    passphrase_file: PassphraseFile = None,
    verbose: Verbose = False,
) -> None:
    """Re-sign the CRL before its next update passes (run daily from a timer)."""
    store = CAStore(ca_dir)
    ca = store.load(passphrase=_passphrase(passphrase, passphrase_file))
    path = store.write_crl(ca, next_update_days=days, publish_to=publish)
    console.print(f"CRL {path} valid for {days} days")


@app.command("needs-rotation")
@_handled
def needs_rotation_cmd(
    cert: Annotated[Path, typer.Option(help="Certificate to check.")],
    before_days: Annotated[int, typer.Option(min=0)] = ROTATE_BEFORE_DAYS,
    verbose: Verbose = False,
) -> None:
    """Exit 1 when the certificate expires within --before-days, 0 otherwise (2: unreadable)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        # Not 1: a renewal timer must not read "cannot tell" as "renew now".
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        console.print(f"[red]error:[/red] cannot read certificate {cert}: {reason}")
        raise typer.Exit(2) from None
    due = needs_rotation(certificate, datetime.now(UTC), before_days)
    console.print(f"expires {certificate.not_valid_after_utc:%Y-%m-%d}; rotate: {due}")
    raise typer.Exit(1 if due else 0)


def main() -> None:
    app()
