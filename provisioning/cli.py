"""`provision`: flash, enrol, install, verify and label ESP32 damp and mould sensors.

One top-level handler turns every ProvisionError into a message, a remedy and the exit code
listed in `provision --help` (and docs/provisioning.md); tracebacks appear only with
--verbose.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from provisioning import __version__, steps
from provisioning.batch import Options as BatchOptions
from provisioning.batch import run_batch
from provisioning.bundle import Intervals
from provisioning.errors import BatchIncomplete, ExitCode, ProvisionError, UsageError
from provisioning.flashing import DEFAULT_BAUD
from provisioning.options import (
    Baud,
    Board,
    Borough,
    DeviceId,
    DryRun,
    FleetUrl,
    HealthS,
    Image,
    Mac,
    PortOpt,
    Position,
    PropertyRef,
    Room,
    SampleS,
    Token,
    Verbose,
    VerifyTimeout,
    WifiProfile,
    WorkDir,
)
from provisioning.ui import Ui

if TYPE_CHECKING:
    # typer 0.29+ hands its commands a context from its own copy of click.
    from typer._click import Context as ParseContext

# "\b" keeps click from re-wrapping the table.
EXIT_CODES = "\b\n" + "\n".join(
    f"{c.value:>4}  {c.name.lower().replace('_', ' ')}" for c in ExitCode
)


class AllMissingAtOnce(TyperCommand):
    """Names every missing required option in one run, not only the first (click's way), so a
    technician fixes the command line once."""

    def parse_args(self, ctx: ParseContext, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as exc:
            # Only click's refusal of a missing value (eager options such as --help have
            # already run by then); any other bad value keeps click's own message.
            if type(exc).__name__ != "MissingParameter":
                raise
            missing = self._missing(ctx, given)
            if not missing:
                raise
            raise _missing_error(ctx.command_path, missing) from exc

    #: (option, its parameter, the parameter that makes it unneeded): options the command
    #: checks itself when it runs, named here too when the line lacks others.
    needed_unless: tuple[tuple[str, str, str], ...] = ()

    def _missing(self, ctx: ParseContext, given: list[str]) -> list[str]:
        """The required parameters without a value from the command line or their env var."""
        opts, _, _ = self.make_parser(ctx).parse_args(args=given)
        missing = []
        values = {}
        for param in self.get_params(ctx):
            values[param.name] = value = param.consume_value(ctx, opts)[0]
            if param.required and param.value_is_missing(value):
                if param.param_type_name == "option":
                    missing.append(([o for o in param.opts if o.startswith("--")] or param.opts)[0])
                else:  # as the usage line shows it
                    missing.append((param.name or "argument").upper())
        for option, name, unless in self.needed_unless:
            if values.get(name) is None and not values.get(unless):
                missing.append(f"{option} (or --{unless.replace('_', '-')})")
        return missing


class FlashingCommand(AllMissingAtOnce):
    needed_unless = (("--image", "image", "skip_flash"),)


def _missing_error(command: str, names: list[str]) -> UsageError:
    options = [n for n in names if n.startswith("-")]
    arguments = [n for n in names if not n.startswith("-")]
    parts = [
        f"{kind}{'s' if len(found) > 1 else ''}: {', '.join(found)}"
        for kind, found in (("argument", arguments), ("option", options))
        if found
    ]
    listed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return UsageError(
        f"missing {'; '.join(parts)}",
        remedy=f"add {listed} to the command (`{command} --help` says what "
        f"{'each one takes' if len(names) > 1 else 'it takes'})",
    )


app = typer.Typer(
    name="provision",
    help=(
        "Provision ESP32 damp and mould sensors: flash MicroPython, enrol the sensor with the "
        "fleet (which issues its certificate), install the firmware and configuration, and "
        "check it reports.\n\n"
        "A whole sensor in one go:  provision device --port /dev/ttyUSB0 --image fw.bin "
        "--borough hackney --property HK-000123 --room bathroom\n\n"
        "Set PROVISION_FLEET_URL and PROVISION_TOKEN (a technician API token) once per shell. "
        "Every command takes --dry-run (show what would happen) and --verbose.\n\n"
        f"Exit codes:\n\n{EXIT_CODES}"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_WORK = Path("provision-work")


def _ctx(
    *,
    verbose: bool,
    dry_run: bool,
    fleet_url: str | None = None,
    token: str | None = None,
    work_dir: Path = DEFAULT_WORK,
    intervals: Intervals | None = None,
) -> steps.Context:
    return steps.Context(
        ui=Ui(verbose=verbose),
        work_dir=work_dir,
        fleet_url=fleet_url,
        token=token,
        dry_run=dry_run,
        intervals=intervals or Intervals(),
    )


@app.command(cls=AllMissingAtOnce)
def flash(
    image: Image,
    port: PortOpt = None,
    baud: Baud = DEFAULT_BAUD,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Erase the sensor and write MicroPython.

    Checks the image offline first (chip type, checksum), finds the serial port, checks the
    board has an ESP32 and prints its MAC and device id. Hold BOOT and press EN/RESET if the
    board does not answer.
    """
    steps.flash(_ctx(verbose=verbose, dry_run=dry_run), port=port, image=image, baud=baud)


@app.command(cls=AllMissingAtOnce)
def enroll(
    borough: Borough,
    property_reference: PropertyRef,
    room: Room,
    device_id: DeviceId = None,
    mac: Mac = None,
    position: Position = None,
    board: Board = "devkitc-sht41",
    wifi_profile: WifiProfile = "default",
    sample_interval: SampleS = 900,
    health_interval: HealthS = 3600,
    fleet_url: FleetUrl = None,
    token: Token = None,
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Register the sensor at a place and fetch its certificate, CA and Wi-Fi profile.

    Safe to repeat: enrolling the same sensor at the same place again gives a fresh
    certificate and never a second device. The bundle is kept in --work-dir for `install`.
    """
    ctx = _ctx(
        verbose=verbose,
        dry_run=dry_run,
        fleet_url=fleet_url,
        token=token,
        work_dir=work_dir,
        intervals=Intervals(sample_interval, health_interval),
    )
    place = steps.Place(borough, property_reference, room, position, board, wifi_profile)
    steps.enrol(ctx, device_id=steps.resolve_device_id(device_id, mac), place=place)


@app.command(cls=AllMissingAtOnce)
def install(
    device_id: DeviceId = None,
    mac: Mac = None,
    port: PortOpt = None,
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Write the compiled firmware, board profile, config.json and certificates.

    Files whose SHA-256 already matches are skipped, so repeating is quick.
    """
    ctx = _ctx(verbose=verbose, dry_run=dry_run, work_dir=work_dir)
    steps.install(ctx, port=port, device_id=steps.resolve_device_id(device_id, mac))


@app.command(cls=AllMissingAtOnce)
def verify(
    device_id: DeviceId = None,
    mac: Mac = None,
    port: PortOpt = None,
    reset: Annotated[
        bool, typer.Option("--reset/--no-reset", help="Reset the sensor first.")
    ] = True,
    timeout: VerifyTimeout = 120.0,
    fleet_url: FleetUrl = None,
    token: Token = None,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Reset the sensor and wait until the fleet shows it online with a valid reading.

    Only a status and readings sent after the reset count (with --no-reset: readings newer
    than the start). Prints PASS with the reading, or fails (exit 13) saying what to check.
    """
    ctx = _ctx(verbose=verbose, dry_run=dry_run, fleet_url=fleet_url, token=token)
    steps.verify(
        ctx,
        port=port,
        device_id=steps.resolve_device_id(device_id, mac),
        reset=reset,
        timeout_s=timeout,
    )


@app.command(cls=AllMissingAtOnce)
def rotate(
    device_id: DeviceId = None,
    mac: Mac = None,
    port: PortOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rotate even if not due (e.g. a leaked key).")
    ] = False,
    fleet_url: FleetUrl = None,
    token: Token = None,
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Renew the sensor's certificate before it expires, and install it with --port.

    The fleet issues a new one only within 30 days of expiry unless --force is given. The old
    certificate stays valid until it expires (an admin can revoke it).
    """
    ctx = _ctx(
        verbose=verbose, dry_run=dry_run, fleet_url=fleet_url, token=token, work_dir=work_dir
    )
    steps.rotate(ctx, device_id=steps.resolve_device_id(device_id, mac), force=force, port=port)


@app.command(cls=FlashingCommand)
def device(
    borough: Borough,
    property_reference: PropertyRef,
    room: Room,
    image: Annotated[
        Path | None, typer.Option("--image", help="Firmware image; required unless --skip-flash.")
    ] = None,
    port: PortOpt = None,
    device_id: DeviceId = None,
    mac: Mac = None,
    position: Position = None,
    board: Board = "devkitc-sht41",
    wifi_profile: WifiProfile = "default",
    skip_flash: Annotated[
        bool, typer.Option("--skip-flash", help="MicroPython is already on it.")
    ] = False,
    skip_verify: Annotated[
        bool, typer.Option("--skip-verify", help="Do not wait for the first reading.")
    ] = False,
    label: Annotated[
        Path | None, typer.Option("--label", help="Also write a label (.png or .pdf).")
    ] = None,
    baud: Baud = DEFAULT_BAUD,
    sample_interval: SampleS = 900,
    health_interval: HealthS = 3600,
    timeout: VerifyTimeout = 120.0,
    fleet_url: FleetUrl = None,
    token: Token = None,
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Everything for one sensor: flash, enroll, install, verify (and label)."""
    ctx = _ctx(
        verbose=verbose,
        dry_run=dry_run,
        fleet_url=fleet_url,
        token=token,
        work_dir=work_dir,
        intervals=Intervals(sample_interval, health_interval),
    )
    if skip_flash or device_id or mac:  # without flashing, only these name the sensor
        named: str | None = steps.resolve_device_id(device_id, mac)
    else:
        named = None
    place = steps.Place(borough, property_reference, room, position, board, wifi_profile)
    place.check()  # before the chip is erased
    found = named
    if not skip_flash:
        if image is None:
            raise UsageError(
                "--image is required unless --skip-flash is given",
                remedy="pass the MicroPython image with --image, or --skip-flash",
            )
        if not dry_run:  # a dry run asks the fleet at its enrol step
            steps.check_with_fleet(ctx, place)  # before the chip is erased, too
        chip = steps.flash(ctx, port=port, image=image, baud=baud, expect=named)
        found = chip.device_id if chip else named
    device_id = found or steps.ID_FROM_CHIP  # only a dry run has not read the chip
    if dry_run:
        steps.enrol(ctx, device_id=device_id, place=place)
        verify_s = None if skip_verify else timeout
        steps.dry_run_rest(ctx, port=port, device=device_id, verify_s=verify_s, out=label)
        return
    try:
        steps.enrol(ctx, device_id=device_id, place=place)
        steps.install(ctx, port=port, device_id=device_id)
        if not skip_verify:
            steps.verify(ctx, port=port, device_id=device_id, reset=True, timeout_s=timeout)
        if label is not None:
            steps.make_label(ctx, device_id=device_id, out=label)
    except ProvisionError as exc:
        if skip_flash:
            raise
        raise steps.already_flashed(
            exc,
            device_id,
            go_on=f"run the same command with --skip-flash --device-id {device_id} "
            "(flashing again would erase it)",
        ) from exc


@app.command(cls=AllMissingAtOnce)
def batch(
    csv_file: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns port, device_id, mac, borough, property_reference, room, "
            "position, board, wifi_profile."
        ),
    ],
    image: Annotated[
        Path | None, typer.Option("--image", help="Firmware image; required unless --skip-flash.")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Progress file (default: CSV name + .state.json)."),
    ] = None,
    skip_flash: Annotated[bool, typer.Option("--skip-flash")] = False,
    skip_verify: Annotated[bool, typer.Option("--skip-verify")] = False,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Folder for a PDF label per sensor.")
    ] = None,
    baud: Baud = DEFAULT_BAUD,
    sample_interval: SampleS = 900,
    health_interval: HealthS = 3600,
    timeout: VerifyTimeout = 120.0,
    fleet_url: FleetUrl = None,
    token: Token = None,
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """Provision every sensor listed in a CSV file; resumable.

    Progress is saved after every step: run the same command again after an interruption and
    it carries on, never enrolling a sensor twice. A summary table ends the run; exit 15 if
    some lines failed (fix them and run again: finished lines are skipped).
    """
    ctx = _ctx(
        verbose=verbose,
        dry_run=dry_run,
        fleet_url=fleet_url,
        token=token,
        work_dir=work_dir,
        intervals=Intervals(sample_interval, health_interval),
    )
    opts = BatchOptions(
        image=image,
        baud=baud,
        skip_flash=skip_flash,
        skip_verify=skip_verify,
        labels_dir=labels,
        verify_timeout_s=timeout,
    )
    state_path = state or csv_file.with_name(csv_file.name + ".state.json")
    ok, failed = run_batch(ctx, csv_file, state_path, opts)
    if failed:
        # A dry run saves no state: there is nothing to remember yet.
        remembered = "" if dry_run else f" ({state_path} remembers what is done)"
        raise BatchIncomplete(
            f"{failed} of {ok + failed} sensors failed",
            remedy=f"fix the causes shown above and run the same command again{remembered}",
        )


@app.command(cls=AllMissingAtOnce)
def label(
    out: Annotated[
        Path, typer.Argument(help="Output file, .png (QR code) or .pdf (QR code and text).")
    ],
    device_id: DeviceId = None,
    mac: Mac = None,
    property_reference: Annotated[
        str | None, typer.Option("--property", help="Default: from the enrolment in --work-dir.")
    ] = None,
    room: Annotated[str, typer.Option("--room")] = "",
    work_dir: WorkDir = DEFAULT_WORK,
    dry_run: DryRun = False,
    verbose: Verbose = False,
) -> None:
    """A label with a QR code of the device id and property reference."""
    from provisioning.label import write_label

    ctx = _ctx(verbose=verbose, dry_run=dry_run, work_dir=work_dir)
    dev = steps.resolve_device_id(device_id, mac)
    if property_reference is None:
        steps.make_label(ctx, device_id=dev, out=out)
        return
    if dry_run:
        ctx.ui.dry(f"would write a label for {dev} to {out}")
        return
    path = write_label(out, device_id=dev, property_reference=property_reference, room=room)
    ctx.ui.ok(f"label written to {path}")


@app.command(cls=AllMissingAtOnce)
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


# Bad arguments, unknown options and commands. typer 0.29+ parses with its own copy of click,
# whose errors derive from typer.TyperException rather than click.ClickException.
COMMAND_LINE_ERRORS: tuple[type[Exception], ...] = (
    click.ClickException,
    getattr(typer, "TyperException", click.ClickException),
)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to one message and one exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    console = Console(stderr=True)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="provision", standalone_mode=False)
    except ProvisionError as exc:
        if verbose:
            console.print(traceback.format_exc(), markup=False)
        # Plain text: messages quote rooms, patterns and server answers, which may hold "[".
        console.print(f"[red bold]error:[/] {escape(str(exc))}")
        console.print(f"[bold]fix:[/] {escape(exc.remedy)}")
        return int(exc.exit_code)
    except COMMAND_LINE_ERRORS as exc:
        cast(click.ClickException, exc).show()  # typer's own copy has the same method
        # No arguments at all shows the help, which is not a mistake.
        return int(ExitCode.OK if type(exc).__name__ == "NoArgsIsHelpError" else ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort, typer.Abort):
        return _interrupted(console)
    except Exception as exc:
        if verbose:
            console.print(traceback.format_exc(), markup=False)
        console.print(f"[red bold]unexpected error:[/] {escape(f'{type(exc).__name__}: {exc}')}")
        console.print("[bold]fix:[/] run again with --verbose and report the output")
        return int(ExitCode.FAILURE)
    if code == ExitCode.INTERRUPTED:
        # typer turns Ctrl-C inside a command into Exit(130), which standalone_mode=False
        # hands back as a plain return code: the except clause above never sees it.
        return _interrupted(console)
    return code if isinstance(code, int) else int(ExitCode.OK)


def _interrupted(console: Console) -> int:
    console.print("[yellow]interrupted[/]: run the same command again to continue")
    return int(ExitCode.INTERRUPTED)


def entry() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
