"""The provisioning steps, shared by the single-device commands, `device` and `batch`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioning import bundle, checks, device_fs, flashing, label
from provisioning.bundle import Intervals
from provisioning.errors import (
    FleetRefused,
    ProvisionError,
    UsageError,
    VerifyFailed,
    WifiProfileMissing,
)
from provisioning.fleet_client import WIFI_REMEDY, FleetClient
from provisioning.serial_ports import find_port
from provisioning.ui import Ui
from provisioning.verify import Verified, baseline, wait_online

# How a dry run names a sensor whose id only flashing would tell (it reads the MAC).
ID_FROM_CHIP = "the sensor (its id is read from the chip while flashing)"


@dataclass
class Context:
    """What every step needs: where the fleet is, who we are, where files go."""

    ui: Ui
    work_dir: Path
    fleet_url: str | None
    token: str | None
    dry_run: bool = False
    intervals: Intervals = field(default_factory=Intervals)

    def client(self) -> FleetClient:
        if not self.fleet_url:
            # No guessed default: a laptop's own address would fail as "unreachable".
            raise UsageError(
                "no fleet address given (PROVISION_FLEET_URL is not set)",
                remedy="export PROVISION_FLEET_URL=https://fleet.example.org (your fleet's "
                "address; http://127.0.0.1:8000 for a local `fleet serve`), or pass --fleet-url",
            )
        return FleetClient(self.fleet_url, self.token, on_retry=lambda r: self.ui.warn(str(r)))

    def device_dir(self, device_id: str) -> Path:
        return self.work_dir / device_id


@dataclass(frozen=True)
class Place:
    borough: str
    property_reference: str
    room: str
    position: str | None = None
    board: str = "devkitc-sht41"
    wifi_profile: str = "default"

    def check(self) -> None:
        """Refuses what the fleet would refuse, before anything is flashed or sent."""
        for name in checks.PLACE_LIMITS:
            checks.place_field(name, getattr(self, name))
        bundle.board_profile(self.board)


def check_with_fleet(ctx: Context, place: Place) -> None:
    """Ask the fleet, changing nothing, what would make it refuse the enrolment: the token,
    the borough (and that the token covers it) and the borough's Wi-Fi profile. Run before
    a chip is erased, so a typo does not cost a flash."""
    place.check()
    with ctx.client() as client:
        if place.wifi_profile not in client.wifi_profiles(place.borough):
            raise WifiProfileMissing(
                f"borough {place.borough} has no Wi-Fi profile {place.wifi_profile!r}",
                remedy=WIFI_REMEDY,
            )


def already_flashed(exc: ProvisionError, device_id: str, *, go_on: str) -> ProvisionError:
    """`exc`, saying that the sensor was flashed before it happened and how to carry on
    without erasing it again."""
    return type(exc)(
        f"{exc} ({device_id} is already flashed)",
        remedy=f"{exc.remedy}; then {go_on}",
    )


def flash(
    ctx: Context,
    *,
    port: str | None,
    image: Path,
    baud: int,
    erase: bool = True,
    expect: str | None = None,
) -> flashing.ChipInfo | None:
    """Check the image offline, find the board, check its chip (and that it is the `expect`ed
    device, when one is named), erase and write."""
    info = flashing.check_image(image)
    ctx.ui.ok(f"image {image.name}: {info.chip}, {info.size} bytes, sha256 {info.sha256[:12]}…")
    found = find_port(port)
    if ctx.dry_run:
        ctx.ui.dry(
            f"would detect the chip on {found}, erase it and write {image} "
            f"at {flashing.FLASH_OFFSET:#x}"
        )
        return None
    with ctx.ui.progress(f"connecting to {found}") as tick:
        chip = flashing.probe(found, baud=baud)
        tick(1, 1)
    ctx.ui.ok(f"{chip.chip} with MAC {chip.mac} → device id {chip.device_id}")
    if expect is not None and chip.device_id != expect:
        raise UsageError(
            f"the sensor on {found} is {chip.device_id}, not {expect}; nothing was erased",
            remedy="plug in the sensor that was named, or correct the device id or MAC",
        )
    if erase:
        with ctx.ui.progress("erasing flash") as tick:
            flashing.erase(found, baud=baud)
            tick(1, 1)
    with ctx.ui.progress("writing firmware") as tick:
        flashing.write(found, info, baud=baud, progress=tick)
    ctx.ui.ok(f"flashed {chip.device_id}")
    return chip


def resolve_device_id(device_id: str | None, mac: str | None) -> str:
    if device_id:
        return checks.device_id(device_id)
    if mac:
        return flashing.device_id_for_mac(mac)
    raise UsageError(
        "which device? no --device-id or --mac given",
        remedy="pass --mac from the sticker or `provision flash` output, or --device-id",
    )


def enrol(ctx: Context, *, device_id: str, place: Place) -> dict[str, Any] | None:
    """Register the device with the fleet and stage its files in the work folder."""
    payload = {
        "device_id": device_id,
        "borough": place.borough,
        "property_reference": place.property_reference,
        "room": place.room,
        "position": place.position,
        "board": place.board,
        "wifi_profile": place.wifi_profile,
        # So the fleet knows how often to expect the sensor (a battery one sleeps between).
        "power_mode": bundle.power_source(place.board),
        "sample_interval_s": ctx.intervals.sample_s,
        "health_interval_s": ctx.intervals.health_s,
    }
    if ctx.dry_run:
        check_with_fleet(ctx, place)
        ctx.ui.dry(
            f"would enrol {device_id} at {place.borough}/{place.property_reference}/{place.room}"
        )
        return None
    place.check()
    # The client first: a missing token is refused before any progress bar is drawn.
    with ctx.client() as client, ctx.ui.progress(f"enrolling {device_id}") as tick:
        result = client.enrol(payload)
        tick(1, 2)
        bundle.stage_device_files(ctx.device_dir(device_id), result, intervals=ctx.intervals)
        tick(2, 2)
    again = "" if result["created"] else " (already enrolled here: fresh certificate)"
    ctx.ui.ok(
        f"enrolled {device_id} at {result['property_reference']}, {result['room']}{again}; "
        f"certificate {result['certificate']['serial']} valid until "
        f"{result['certificate']['not_after'][:10]}"
    )
    _warn_also_here(ctx, device_id, result)
    if not result.get("release_keys"):
        ctx.ui.warn(
            "the fleet trusts no release signing key yet, so this sensor will refuse every "
            "update: have an admin run `fleet release trust`, then run `enroll` and `install` again"
        )
    return result


def _warn_also_here(ctx: Context, device_id: str, result: dict[str, Any]) -> None:
    """Two sensors in one room can be meant; a replaced one left in service is not, and a
    technician cannot decommission it: only borough staff can."""
    for other in result.get("also_here") or []:
        ctx.ui.warn(
            f"{other['device_id']} ({other.get('status', 'unknown')}) is also in service at "
            f"{result['property_reference']}, {result['room']}: if {device_id} replaces it, ask "
            f"borough staff to decommission {other['device_id']} (its readings are kept)"
        )


def install(ctx: Context, *, port: str | None, device_id: str) -> device_fs.InstallResult | None:
    """Copy the compiled firmware and the device's files over the serial REPL."""
    device_dir = ctx.device_dir(device_id)
    bundle.load_enrolment_summary(device_dir)
    files = device_dir / "files"
    found = find_port(port)
    if not ctx.dry_run:
        # Seconds to ask the port, a minute or more to compile: ask first.
        wanted = bundle.mpy_cross_version()
        with ctx.ui.progress(f"checking the MicroPython on {found}") as tick:
            has = device_fs.device_mpy_version(found)
            tick(1, 1)
        if has is not None and has != wanted:
            raise ProvisionError(
                f"the device runs .mpy v{has[0]}.{has[1]} but this provision compiles "
                f"v{wanted[0]}.{wanted[1]}",
                remedy="flash the pinned MicroPython image first (`provision flash`)",
            )
    with ctx.ui.progress("compiling firmware (mpy-cross)") as tick:
        firmware = bundle.build_firmware(ctx.work_dir / ".cache")
        tick(1, 1)
    if ctx.dry_run:
        count = sum(1 for p in [*firmware.rglob("*"), *files.rglob("*")] if p.is_file())
        ctx.ui.dry(f"would copy {count} files to {found} (unchanged ones are skipped)")
        return None
    with ctx.ui.progress(f"installing on {found}") as tick:
        result = device_fs.install(found, [firmware, files], progress=tick)
    ctx.ui.ok(f"installed: {result.copied} files written, {result.unchanged} already up to date")
    return result


def verify(
    ctx: Context,
    *,
    port: str | None,
    device_id: str,
    reset: bool,
    timeout_s: float,
    poll_s: float = 1.0,
) -> Verified | None:
    """Reset the device and wait until the fleet sees it online with a reading sent after
    the reset (older ones prove nothing: the fleet keeps the last ones for ever)."""
    found = find_port(port) if reset else None
    with ctx.client() as client:
        since = baseline(client, device_id)  # an unknown device fails now, not at the timeout
        if ctx.dry_run:
            ctx.ui.dry(
                f"would {'reset ' + device_id + ' and ' if reset else ''}wait up to "
                f"{timeout_s:.0f} s for it online with a new reading"
            )
            return None
        if found is not None:
            if device_fs.maintenance_pending(found):
                raise VerifyFailed(
                    f"the last install on {found} did not finish: the sensor still has its "
                    f"`{device_fs.MAINTENANCE_FILE}` file, so its app does not start",
                    remedy=f"run `provision install --device-id {device_id} --port {found}` again "
                    "(it copies only what is missing), then verify",
                )
            device_fs.reset(found)
            ctx.ui.step("device reset")
        said: list[str] = []

        def news(state: str) -> None:  # each change once, not every poll
            if said[-1:] != [state]:
                said.append(state)
                ctx.ui.step(state)

        # The wait says once that the fleet is unreachable; a retry line per poll is noise.
        client.on_retry = None
        with ctx.ui.progress(f"waiting for {device_id} online", total=None):
            verified = wait_online(
                client,
                device_id,
                since=since,
                after_reset=reset,
                timeout_s=timeout_s,
                poll_s=poll_s,
                tick=news,
            )
    values = ", ".join(
        f"{k} {v.get('v')} {v.get('u', '')}".strip() for k, v in verified.readings.items()
    )
    ctx.ui.ok(f"PASS: {device_id} online after {verified.seconds:.1f} s; {values}")
    return verified


def rotate(
    ctx: Context, *, device_id: str, force: bool, port: str | None = None
) -> dict[str, Any] | None:
    """Ask the fleet for a new certificate (due within 30 days of expiry, or forced), and
    install it when a port is given."""
    device_dir = ctx.device_dir(device_id)
    summary = bundle.load_enrolment_summary(device_dir)  # the files to update must be here
    found = find_port(port) if port else None  # a bad port stops us before a certificate
    if ctx.dry_run:
        with ctx.client() as client:
            client.device(device_id)  # the token, and that the fleet knows the device
        if not force:
            _refuse_if_not_due(summary)
        where = f" and install it on {found}" if found else ""
        ctx.ui.dry(f"would request a new certificate for {device_id}{where}")
        return None
    with ctx.ui.progress(f"rotating the certificate of {device_id}") as tick, ctx.client() as c:
        certificate = c.rotate(device_id, force=force)
        bundle.replace_certificate(device_dir, certificate)
        tick(1, 1)
    ctx.ui.ok(
        f"new certificate {certificate['serial']} valid until {certificate['not_after'][:10]}"
    )
    if found is not None:
        try:
            install(ctx, port=found, device_id=device_id)
        except ProvisionError as exc:
            raise type(exc)(
                f"{exc} (the new certificate is already staged in {device_dir})",
                remedy=f"{exc.remedy}; then put it on the sensor with `provision install "
                f"--device-id {device_id} --port {found}` (rotating again would issue yet "
                "another certificate)",
            ) from exc
    return certificate


def _refuse_if_not_due(summary: dict[str, Any]) -> None:
    """What the fleet would answer: no new certificate before the rotation window."""
    from fleet.identity.rotation import ROTATE_BEFORE_DAYS

    not_after = datetime.fromisoformat(summary["certificate"]["not_after"])
    not_after = not_after if not_after.tzinfo else not_after.replace(tzinfo=UTC)
    due = not_after - timedelta(days=ROTATE_BEFORE_DAYS)
    if datetime.now(UTC) < due:
        raise FleetRefused(
            f"the certificate is valid until {not_after:%Y-%m-%d}; the fleet renews it from "
            f"{due:%Y-%m-%d}",
            remedy="nothing to do yet; pass --force only if the key may have leaked",
        )


def dry_run_rest(
    ctx: Context,
    *,
    port: str | None,
    device: str,
    verify_s: float | None,
    out: Path | None,
    install: bool = True,
) -> None:
    """The steps after enrolment, as a dry run tells them before the sensor is enrolled."""
    found = find_port(port)
    if install:
        ctx.ui.dry(
            f"would install the firmware, config.json and certificates of {device} on {found}"
        )
    if verify_s is not None:
        ctx.ui.dry(f"would reset it and wait up to {verify_s:.0f} s for it online with a reading")
    if out is not None:
        ctx.ui.dry(f"would write its label to {out}")


def make_label(ctx: Context, *, device_id: str, out: Path) -> Path | None:
    summary = bundle.load_enrolment_summary(ctx.device_dir(device_id))
    if ctx.dry_run:
        ctx.ui.dry(f"would write a label for {device_id} to {out}")
        return None
    path = label.write_label(
        out,
        device_id=device_id,
        property_reference=summary["property_reference"],
        room=summary.get("room", ""),
    )
    ctx.ui.ok(f"label written to {path}")
    return path
