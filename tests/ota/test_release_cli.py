"""`fleet release keygen|sign|trust|upload` against a running fleet; unsigned and untrusted
releases are refused, a published blob is served with HTTP Range."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext
from fleet.models import Device
from fleet.models.ota import RolloutDevice
from fleet.ota import bundle, service, signing
from fleet.ota.cli import release_app
from fleet.ota.package import ReleaseFile
from tests.conftest import free_port
from tests.firmware.conftest import wait_until
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
        from fleet.models.ota import Release

        blob_path = s.scalars(select(Release.blob_path)).one()
    url = f"{fleet.base_url}/ota/blobs/{blob_path}"
    part = httpx.get(url, headers={"Range": "bytes=10-99"}, timeout=30)
    assert part.status_code == 206 and part.content == built.blob[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(built.blob)}"
    tail = httpx.get(url, headers={"Range": f"bytes={len(built.blob) - 5}-"}, timeout=30)
    assert tail.content == built.blob[-5:]
    assert (
        httpx.get(url, headers={"Range": f"bytes={len(built.blob)}-"}, timeout=30).status_code
        == 416
    )
    assert httpx.get(url[:-3] + "xyz", timeout=30).status_code == 404


def test_a_rollout_made_through_the_api_is_offered_at_once(
    fleet_ctx: FleetContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An hour between ticks: only the API's wake-up can make the engine act within the test.
    monkeypatch.setenv("FLEET_OTA_TICK_S", "3600")
    key = signing.generate(tmp_path / "keys")
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-now-001", fw_version="0.1.0", state="online"))
        service.trust_key(s, SYSTEM, key.public_hex)
        rel = ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06a"}))
        rel.sign(key)
        release_id = service.publish_release(s, SYSTEM, rel).id
    with running_fleet(fleet_ctx) as fleet:
        made = httpx.post(
            f"{fleet.base_url}/api/v1/rollouts",
            headers={"Authorization": f"Bearer {fleet.ctx.admin_token}"},
            json={
                "release_id": release_id,
                "target": {"device_ids": ["cs-now-001"]},
                "waves": ["100%"],
                "soak_s": 0,
            },
            timeout=30,
        )
        assert made.status_code == 201, made.text

        def offered() -> bool:
            with fleet_ctx.sessions() as s:
                return s.scalar(select(RolloutDevice.state)) == "offered"

        wait_until(offered, 30, "the new rollout's device to be offered the release")


def test_sign_finds_its_key_by_id_or_as_the_only_one(tmp_path: Path) -> None:
    runner = CliRunner()
    keys = ["--keys", str(tmp_path / "k")]
    path = tmp_path / "r.zip"
    ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06a"})).save(path)

    none = runner.invoke(release_app, ["sign", str(path), *keys])
    assert none.exit_code == 1 and "fleet release keygen" in none.output

    first = runner.invoke(release_app, ["keygen", *keys]).output.split()[0]
    only = runner.invoke(release_app, ["sign", str(path), *keys])
    assert only.exit_code == 0 and f"signed by {first}" in only.output

    second = runner.invoke(release_app, ["keygen", *keys]).output.split()[0]
    several = runner.invoke(release_app, ["sign", str(path), *keys])
    assert several.exit_code == 1 and "--key" in several.output
    assert first in several.output and second in several.output
    by_id = runner.invoke(release_app, ["sign", str(path), "--key", second, *keys])
    assert by_id.exit_code == 0 and f"signed by {second}" in by_id.output
    assert sorted(kid for kid, _ in ReleaseFile.load(path).sigs) == sorted([first, second])


def test_an_unreachable_fleet_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    key = signing.generate(tmp_path / "k")
    path = tmp_path / "r.zip"
    rel = ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06a"}))
    rel.sign(key)
    rel.save(path)
    closed = f"http://127.0.0.1:{free_port()}"
    for args in (["trust", key.public_hex], ["upload", str(path)]):
        result = runner.invoke(release_app, [*args, "--api", closed, "--token", "t"])
        assert result.exit_code == 1, result.output
        assert f"cannot reach the fleet at {closed}" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_mistakes_are_errors_with_the_fix_not_tracebacks(tmp_path: Path) -> None:
    runner = CliRunner()
    key = signing.generate(tmp_path / "k")
    path = tmp_path / "r.zip"
    rel = ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06a"}))
    rel.sign(key)
    rel.save(path)
    for args in (["trust", key.public_hex], ["upload", str(path)]):
        result = runner.invoke(release_app, args, env={"FLEET_ADMIN_TOKEN": ""})
        assert result.exit_code == 1, result.output
        assert "no API token: pass --token or set FLEET_ADMIN_TOKEN" in result.output

    missing = tmp_path / "nodir" / "x.zip"
    result = runner.invoke(release_app, ["build", "0.7.0", "--out", str(missing)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"folder {missing.parent} does not exist" in result.output

    result = runner.invoke(release_app, ["keygen", "--keys", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"{path} is a file; --keys names the folder" in result.output

    result = runner.invoke(release_app, ["build", "0.4.0", "--floor", "0.5.0", "--out", "x.zip"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "the floor 0.5.0 is above the release's own version 0.4.0" in result.output
