"""`fleet release keygen|build|sign|trust|upload`: release files and the fleet API."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import httpx
import typer

from fleet.ota import bundle, signing
from fleet.ota.errors import OtaError
from fleet.ota.package import ReleaseFile, check_writable

release_app = typer.Typer(help="Build, sign and publish OTA releases.", no_args_is_help=True)
KeyDir = Annotated[Path, typer.Option(help="Folder for private signing keys (mode 0600).")]
Api = Annotated[str, typer.Option(help="Fleet base URL.")]
Token = Annotated[str, typer.Option(envvar="FLEET_ADMIN_TOKEN", help="API token, releases:write")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@release_app.command()
def keygen(keys: KeyDir = Path("release-keys")) -> None:
    """Make a signing key; prints its id and public key (give that to `fleet release trust`)."""
    try:
        key = signing.generate(keys)
    except OtaError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{key.kid} {key.public_hex}")


@release_app.command()
def build(
    version: str,
    out: Annotated[Path, typer.Option(help="Release file to write.")],
    floor: Annotated[str | None, typer.Option(help="Anti-rollback floor once confirmed.")] = None,
    notes: str = "",
) -> None:
    """Build an app release from firmware/ (unsigned)."""
    try:
        check_writable(out)
        built = bundle.build_app(version, floor=floor, notes=notes)
        ReleaseFile.from_built(built).save(out)
    except OtaError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{out}: app {version}, {len(built.blob)} bytes ({built.raw_size} uncompressed)")


def _key_file(key: str | None, keys: Path) -> Path:
    """`--key` as a file, or a key id in the keys folder; without it, the folder's only key."""
    if key is not None:
        path = Path(key)
        return path if path.suffix == ".pem" or path.exists() else keys / f"{key}.pem"
    found = sorted(keys.glob("*.pem"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise OtaError(f"no signing key in {keys}/; make one with `fleet release keygen`")
    kids = ", ".join(p.stem for p in found)
    raise OtaError(f"{keys}/ holds {len(found)} keys ({kids}); choose one with --key")


def _post(
    api: str, path: str, token: str, body: dict[str, object], timeout: float
) -> httpx.Response:
    if not token.strip():
        raise _fail("no API token: pass --token or set FLEET_ADMIN_TOKEN (releases:write)")
    try:
        return httpx.post(
            f"{api}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the fleet at {api} ({exc}); check --api") from exc


@release_app.command()
def sign(
    release: Path,
    key: Annotated[
        str | None,
        typer.Option(help="Key id or private key file (<kid>.pem); default: the only key."),
    ] = None,
    keys: KeyDir = Path("release-keys"),
) -> None:
    """Add (or replace) this key's signature on a release file."""
    try:
        rel = ReleaseFile.load(release)
        signer = signing.load(_key_file(key, keys))
    except OtaError as exc:
        raise _fail(str(exc)) from exc
    rel.sign(signer)
    try:
        rel.save(release)
    except OtaError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{release}: signed by {signer.kid}")


@release_app.command()
def trust(public_hex: str, api: Api = "http://127.0.0.1:8000", token: Token = "") -> None:
    """Make the fleet accept releases signed by this public key."""
    r = _post(api, "/api/v1/release-keys", token, {"public_hex": public_hex}, 30)
    if r.status_code != 201:
        raise _fail(f"the fleet refused the key ({r.status_code}): {r.text[:300]}")
    typer.echo(f"trusted {r.json()['kid']}")


@release_app.command()
def upload(release: Path, api: Api = "http://127.0.0.1:8000", token: Token = "") -> None:
    """Publish a signed release; the fleet refuses unsigned or untrusted ones."""
    try:
        rel = ReleaseFile.load(release)
    except OtaError as exc:
        raise _fail(str(exc)) from exc
    if not rel.sigs:
        raise _fail("the release is unsigned; run `fleet release sign` first")
    body = {
        "manifest": rel.manifest.decode(),
        "sigs": rel.sigs,
        "blob_b64": base64.b64encode(rel.blob).decode(),
        "raw_size": rel.raw_size,
    }
    r = _post(api, "/api/v1/releases", token, body, 120)
    if r.status_code != 201:
        raise _fail(f"the fleet refused the release ({r.status_code}): {r.text[:300]}")
    out = r.json()
    typer.echo(f"release {out['id']}: {out['kind']} {out['version']} signed by {out['signer_kid']}")
