"""`fleet`: run the service, the demo, virtual devices and benchmarks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.access.cli import user_app
from fleet.cli_common import Verbose, configuration_error, configuration_errors_exit, console
from fleet.cli_common import settings_or_exit as _settings
from fleet.cli_common import setup_logging_or_exit as _setup_logging
from fleet.core.settings import Settings
from fleet.ota.cli import release_app
from fleet.simulator.paths import DEFAULT_HEAPSIZE

app = typer.Typer(
    help="City sensor fleet: provision, monitor and publish damp and mould sensors.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
device_app = typer.Typer(help="Manage the device registry.", no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(user_app, name="user")
app.add_typer(release_app, name="release")


def _run_service(settings: Settings, **devices: Any) -> None:
    from fleet.runtime import StartError
    from fleet.serve import run_service
    from fleet.simulator.paths import SimulatorError

    try:
        run_service(settings, **devices)
    except (StartError, SimulatorError) as exc:
        console.print(f"[red]cannot start:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="HTTP bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for embedded defaults.")] = None,
    ingest: Annotated[
        bool,
        typer.Option(
            "--ingest/--no-ingest",
            help="Run the ingest worker here; --no-ingest for API-only replicas "
            "(ingest then runs as `fleet ingest`).",
        ),
    ] = True,
    verbose: Verbose = False,
) -> None:
    """Run the fleet service: broker (embedded unless FLEET_MQTT_URL), ingest, API and dashboard."""
    _setup_logging(verbose)
    settings = _settings(
        http_host=host, http_port=port, data_dir=data_dir, ingest_enabled=None if ingest else False
    )
    _run_service(settings)


@app.command("ingest")
def ingest_command(
    client_id: Annotated[
        str | None,
        typer.Option(
            help="MQTT client id, stable per worker (FLEET_INGEST_CLIENT_ID); default and "
            "required with a client certificate: its CN."
        ),
    ] = None,
    share_group: Annotated[
        str | None, typer.Option(help="Shared-subscription group (FLEET_INGEST_SHARE_GROUP).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run only an ingest worker: MQTT (FLEET_MQTT_URL) into the database, acked after commit."""
    from fleet.ingest.service import IngestConfigError, run_ingest

    _setup_logging(verbose)
    settings = _settings(ingest_client_id=client_id, ingest_share_group=share_group)
    try:
        run_ingest(settings)
    except IngestConfigError as exc:
        configuration_error(str(exc))
        raise typer.Exit(2) from None


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=200, help="Virtual devices to start.")] = 5,
    interval: Annotated[int, typer.Option(min=2, help="Seconds between samples.")] = 10,
    heapsize: Annotated[str, typer.Option(help="MicroPython heap per device.")] = DEFAULT_HEAPSIZE,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for embedded defaults.")] = None,
    verbose: Verbose = False,
) -> None:
    """Fleet service, dashboard and virtual devices together: open http://127.0.0.1:8000."""
    _setup_logging(verbose)
    settings = _settings(http_port=port, data_dir=data_dir)
    _run_service(settings, virtual_devices=devices, sample_interval_s=interval, heapsize=heapsize)


@app.command()
def sim(
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=500)] = 3,
    broker: Annotated[str, typer.Option(help="Broker URL the devices connect to.")] = (
        "mqtt://127.0.0.1:1883"
    ),
    fleet_url: Annotated[
        str, typer.Option(help="Fleet API used to register the devices first.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(envvar="FLEET_ADMIN_TOKEN", help="Admin API token (default: data-dir file)."),
    ] = None,
    heapsize: Annotated[str, typer.Option(help="MicroPython heap, e.g. 160K.")] = DEFAULT_HEAPSIZE,
    interval: Annotated[int, typer.Option(min=2, help="Seconds between samples.")] = 10,
    data_dir: Annotated[Path, typer.Option(help="Per-device folders go here.")] = Path(
        "data/devices"
    ),
    verbose: Verbose = False,
) -> None:
    """Start N virtual devices (real firmware in the MicroPython VM) until Ctrl-C."""
    from fleet.simulator.cli import run_sim

    _setup_logging(verbose)
    code = run_sim(
        devices=devices,
        broker_url=broker,
        fleet_url=fleet_url,
        token=token,
        heapsize=heapsize,
        interval=interval,
        data_dir=data_dir,
        console=console,
    )
    raise typer.Exit(code)


@app.command()
def migrate(verbose: Verbose = False) -> None:
    """Apply database migrations to FLEET_DATABASE_URL (or the embedded SQLite file)."""
    from fleet.core.context import build_context

    _setup_logging(verbose)
    ctx = build_context(_settings())
    console.print(f"schema up to date on {ctx.engine.url.render_as_string(hide_password=True)}")
    ctx.close()


@device_app.command("add")
def device_add(
    device_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    board: Annotated[str, typer.Option()] = "devkitc-sht41",
) -> None:
    """Register a device directly in the database."""
    from fleet.core.context import build_context
    from fleet.registry.devices import DeviceExists, register_device

    ctx = build_context(_settings())
    try:
        with ctx.sessions.begin() as session:
            register_device(session, device_id=device_id, name=name, board=board)
    except DeviceExists as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from None
    finally:
        ctx.close()
    console.print(f"registered {device_id}")


@app.command()
def loadgen(
    broker: Annotated[str, typer.Option(help="Broker the simulated devices connect to.")] = (
        "mqtt://127.0.0.1:1883"
    ),
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=20000)] = 100,
    messages: Annotated[int, typer.Option(min=1, help="Telemetry packs per device.")] = 10,
    rate: Annotated[
        float, typer.Option(min=0, help="Packs per second over all devices; 0: as fast as acks.")
    ] = 100.0,
    health_every: Annotated[int, typer.Option(min=0, help="A health pack every N packs.")] = 10,
    ota_every: Annotated[int, typer.Option(min=0, help="An OTA progress report every N.")] = 0,
    bad_ratio: Annotated[float, typer.Option(min=0, max=1, help="Share of bad payloads.")] = 0.0,
    storm_at: Annotated[
        list[float] | None,
        typer.Option(
            help="Seconds after start of a reconnect storm (once every device has connected)."
        ),
    ] = None,
    hold: Annotated[float, typer.Option(min=0, help="Hold connections this long at the end.")] = 0,
    prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "cs-load",
    register: Annotated[
        bool, typer.Option(help="Register the devices in FLEET_DATABASE_URL first.")
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Count sent against stored in FLEET_DATABASE_URL afterwards.")
    ] = False,
    manifest: Annotated[Path | None, typer.Option(help="Write what was sent to this file.")] = None,
    verbose: Verbose = False,
) -> None:
    """Simulate up to 20,000 devices (asyncio MQTT clients) and count what arrived."""
    from fleet.broker.url import BrokerAddress
    from fleet.loadgen.run import LoadConfig, run_load

    _setup_logging(verbose)
    address = BrokerAddress.parse(broker)
    cfg = LoadConfig(
        host=address.host,
        port=address.port,
        devices=devices,
        messages=messages,
        rate=rate,
        health_every=health_every,
        ota_every=ota_every,
        bad_ratio=bad_ratio,
        storm_at=tuple(storm_at or ()),
        hold_s=hold,
        prefix=prefix,
    )
    ctx = None
    if register or verify:
        from fleet.core.context import build_context
        from fleet.loadgen.fleetdb import register_devices

        ctx = build_context(_settings())
        if register:
            added = register_devices(ctx.sessions, cfg.device_ids())
            console.print(f"registered {added} new devices")
    try:
        sent = run_load(cfg)
        if manifest is not None:
            sent.save(manifest)
        typer.echo(json.dumps(sent.totals(), indent=2))
        if ctx is not None and verify:
            from fleet.loadgen.fleetdb import count_against_db

            tally = count_against_db(ctx.sessions, sent)
            typer.echo(json.dumps(tally.as_dict(), indent=2))
            if not tally.ok:
                raise typer.Exit(1)
    finally:
        if ctx is not None:
            ctx.close()


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name; `fleet bench list` lists them.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices", min=1, help="Virtual devices, for benchmarks that run them (ota)."
        ),
    ] = None,
) -> None:
    """Run a benchmark and print its figures (JSON with --json)."""
    from fleet import bench as benchmarks

    if name == "list":
        for bench_name, desc in benchmarks.names().items():
            typer.echo(f"{bench_name:12} {desc}")
        return
    try:
        run = benchmarks.load(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None
    if devices is None:
        figures = run()
    elif benchmarks.takes_devices(run):
        figures = run(devices=devices)
    else:
        console.print(f"[red]benchmark {name!r} does not take --devices[/red]")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps({"benchmark": name, **figures}, indent=2))
        return
    table = Table(title=f"benchmark: {name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)


def main() -> None:
    try:
        with configuration_errors_exit(sys.argv[1:]):
            app()
    except KeyboardInterrupt:
        sys.exit(130)
