"""`fleet release keygen|sign|trust|upload` against a running fleet; unsigned and untrusted
releases are refused, a published blob is served with HTTP Range."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fleet.core.context import FleetContext
from fleet.ota import bundle
from fleet.ota.cli import release_app
from fleet.ota.package import ReleaseFile
from tests.fleet.server import RunningFleet, running_fleet


@pytest.fixture
def fleet(fleet_ctx: FleetContext) -> Iterator[RunningFleet]:
    with running_fleet(fleet_ctx) as running:
        yield running


def test_keygen_sign_trust_upload(fleet: RunningFleet, tmp_path: Path) -> None:
    runner = CliRunner()
    api = ["--api", fleet.base_url, "--token", fleet.ctx.admin_token]
    made = runner.invoke(release_app, ["keygen", "--keys", str(tmp_path / "k")])
    assert made.exit_code == 0, made.output
    kid, public = made.output.split()
    path = tmp_path / "r.zip"
    built = bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06" + bytes(40000)})
    ReleaseFile.from_built(built).save(path)
    unsigned = runner.invoke(release_app, ["upload", str(path), *api])
    assert unsigned.exit_code == 1 and "unsigned" in unsigned.output
    signed = runner.invoke(
        release_app, ["sign", str(path), "--key", str(tmp_path / "k" / f"{kid}.pem")]
    )
    assert signed.exit_code == 0, signed.output
    untrusted = runner.invoke(release_app, ["upload", str(path), *api])
    assert untrusted.exit_code == 1 and "trusted key" in untrusted.output
    assert runner.invoke(release_app, ["trust", public, *api]).exit_code == 0
    ok = runner.invoke(release_app, ["upload", str(path), *api])
    assert ok.exit_code == 0 and f"signed by {kid}" in ok.output
    with fleet.ctx.sessions() as s:
        from sqlalchemy import select

        from fleet.models.ota import Release

        blob_path = s.scalars(select(Release.blob_path)).one()
    url = f"{fleet.base_url}/ota/blobs/{blob_path}"
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == built.blob[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(built.blob)}"
    tail = httpx.get(url, headers={"Range": f"bytes={len(built.blob) - 5}-"})
    assert tail.content == built.blob[-5:]
    assert httpx.get(url, headers={"Range": f"bytes={len(built.blob)}-"}).status_code == 416
    assert httpx.get(url[:-3] + "xyz").status_code == 404
