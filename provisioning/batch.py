"""Many devices from a CSV file, resumable: a state file records each finished step.

A re-run skips finished steps, so an interrupted batch (flat laptop, lost connection, Ctrl-C)
continues where it stopped, and enrolment being idempotent means a step that was cut off
half-way is simply done again.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from provisioning import steps
from provisioning.errors import (
    ExitCode,
    FleetUnreachable,
    ProvisionError,
    TokenRejected,
    UsageError,
)

COLUMNS = (
    "port",
    "device_id",
    "mac",
    "borough",
    "property_reference",
    "room",
    "position",
    "board",
    "wifi_profile",
)
REQUIRED = ("borough", "property_reference", "room")
# Failures that would repeat on every row: stop instead of burning through the list.
STOP_BATCH = (FleetUnreachable, TokenRejected)


@dataclass
class Row:
    line: int
    port: str | None
    device_id: str | None
    place: steps.Place

    @property
    def key(self) -> str:
        p = self.place
        return "|".join([p.borough, p.property_reference, p.room, p.position or ""])


@dataclass
class RowState:
    device_id: str | None = None
    done: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: int | None = None


@dataclass
class Options:
    image: Path | None
    baud: int
    skip_flash: bool
    skip_verify: bool
    labels_dir: Path | None
    verify_timeout_s: float


def read_rows(path: Path) -> list[Row]:
    try:
        # utf-8-sig: spreadsheets' "CSV UTF-8" starts the file with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            unknown = set(reader.fieldnames or []) - set(COLUMNS)
            if unknown:
                raise UsageError(
                    f"{path}: unknown column(s) {', '.join(sorted(unknown))}",
                    remedy=f"use the columns {', '.join(COLUMNS)} (see docs/provisioning.md)",
                )
            rows = [_row(number, raw) for number, raw in enumerate(reader, start=2)]
    except UsageError as exc:
        where = "" if str(exc).startswith(str(path)) else f"{path} "
        raise UsageError(f"{where}{exc}", remedy=exc.remedy) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
            remedy='save it from the spreadsheet as "CSV UTF-8"',
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}", remedy="check the file name") from exc
    if not rows:
        raise UsageError(
            f"{path} lists no sensors: it has no lines below the header",
            remedy="add a line per sensor (see docs/provisioning.md), or check the file name",
        )
    keys = [r.key for r in rows]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise UsageError(
            f"{path}: the same place appears more than once ({', '.join(sorted(duplicates))})",
            remedy="give each sensor its own room or position",
        )
    return rows


def _row(number: int, raw: dict[str | None, str | None]) -> Row:
    values = {k: (v or "").strip() for k, v in raw.items() if k}
    missing = [c for c in REQUIRED if not values.get(c)]
    if missing:
        raise UsageError(
            f"line {number}: {', '.join(missing)} empty",
            remedy="fill in borough, property_reference and room on every line",
        )
    place = steps.Place(
        borough=values["borough"],
        property_reference=values["property_reference"],
        room=values["room"],
        position=values.get("position") or None,
        board=values.get("board") or "devkitc-sht41",
        wifi_profile=values.get("wifi_profile") or "default",
    )
    given, mac = values.get("device_id") or None, values.get("mac") or None
    try:
        place.check()
        # Neither: flashing reads the id from the chip.
        device_id = steps.resolve_device_id(given, mac) if given or mac else None
    except UsageError as exc:
        raise UsageError(f"line {number}: {exc}", remedy=exc.remedy) from exc
    return Row(line=number, port=values.get("port") or None, device_id=device_id, place=place)


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, RowState] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                self.rows = {k: RowState(**v) for k, v in raw["rows"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(
                    f"the batch state file {path} is damaged ({exc})",
                    remedy="move it away to start the batch afresh (enrolment is idempotent)",
                ) from exc

    def get(self, key: str) -> RowState:
        return self.rows.setdefault(key, RowState())

    def save(self) -> None:
        doc = {"version": 1, "rows": {k: v.__dict__ for k, v in self.rows.items()}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, self.path)  # a crash never leaves a half-written state file


def _run_row(
    ctx: steps.Context, row: Row, state: RowState, opts: Options, save: Callable[[], None]
) -> None:
    def finished(step: str) -> None:
        if step not in state.done:
            state.done.append(step)
        save()

    if ctx.dry_run:
        _plan_row(ctx, row, state, opts)
        return
    if _corrected(row, state):
        # The line now names another sensor: what was done, was done for the old one.
        ctx.ui.warn(
            f"line {row.line} now names {row.device_id} instead of {state.device_id}: "
            "doing this line again for it"
        )
        state.done = []
    if row.device_id:
        state.device_id = row.device_id
    flashed_now = False
    if not opts.skip_flash and "flash" not in state.done:
        if opts.image is None:
            raise UsageError("no --image given for flashing", remedy="pass --image or --skip-flash")
        if "enrol" not in state.done:
            steps.check_with_fleet(ctx, row.place)  # before the chip is erased
        chip = steps.flash(
            ctx, port=row.port, image=opts.image, baud=opts.baud, expect=row.device_id
        )
        if chip is not None:
            state.device_id = chip.device_id
        finished("flash")
        flashed_now = True
    try:
        _after_flash(ctx, row, state, opts, finished)
    except ProvisionError as exc:
        if not flashed_now or state.device_id is None:
            raise
        raise steps.already_flashed(
            exc,
            state.device_id,
            go_on="run the same batch command again: this line is not flashed again",
        ) from exc


def _after_flash(
    ctx: steps.Context,
    row: Row,
    state: RowState,
    opts: Options,
    finished: Callable[[str], None],
) -> None:
    if state.device_id is None:
        raise UsageError(
            "no device id (with --skip-flash nothing reads it from the chip)",
            remedy="fill in the line's device_id or mac column, or leave out --skip-flash",
        )
    if "enrol" not in state.done:
        steps.enrol(ctx, device_id=state.device_id, place=row.place)
        finished("enrol")
    if "install" not in state.done:
        steps.install(ctx, port=row.port, device_id=state.device_id)
        finished("install")
    if not opts.skip_verify and "verify" not in state.done:
        steps.verify(
            ctx,
            port=row.port,
            device_id=state.device_id,
            reset=True,
            timeout_s=opts.verify_timeout_s,
        )
        finished("verify")
    if opts.labels_dir is not None and "label" not in state.done:
        steps.make_label(
            ctx, device_id=state.device_id, out=opts.labels_dir / f"{state.device_id}.pdf"
        )
        finished("label")


def _corrected(row: Row, state: RowState) -> bool:
    return bool(row.device_id and state.device_id and row.device_id != state.device_id)


def _plan_row(ctx: steps.Context, row: Row, state: RowState, opts: Options) -> None:
    """What the real run would do with this line, checked as far as possible; saves nothing."""
    done = [] if _corrected(row, state) else state.done
    device_id = row.device_id or state.device_id
    if done:
        ctx.ui.step(f"already done: {', '.join(done)}")
    if not opts.skip_flash and "flash" not in done:
        if opts.image is None:
            raise UsageError("no --image given for flashing", remedy="pass --image or --skip-flash")
        steps.flash(ctx, port=row.port, image=opts.image, baud=opts.baud)
    elif device_id is None:
        raise UsageError(
            "no device id (with --skip-flash nothing reads it from the chip)",
            remedy="fill in the line's device_id or mac column, or leave out --skip-flash",
        )
    name = device_id or steps.ID_FROM_CHIP
    if "enrol" not in done:
        steps.enrol(ctx, device_id=name, place=row.place)
    label = None
    if opts.labels_dir is not None and "label" not in done:
        label = opts.labels_dir / f"{device_id or '<device id>'}.pdf"
    steps.dry_run_rest(
        ctx,
        port=row.port,
        device=name,
        install="install" not in done,
        verify_s=None if opts.skip_verify or "verify" in done else opts.verify_timeout_s,
        out=label,
    )


def run_batch(
    ctx: steps.Context, csv_path: Path, state_path: Path, opts: Options
) -> tuple[int, int]:
    """Provision every row; returns (succeeded, failed). Stops early on fleet-wide failures."""
    rows = read_rows(csv_path)
    state = StateFile(state_path)
    _check_image(rows, state, opts)
    ok = failed = 0
    checked: set[str] | None = set() if ctx.dry_run else None
    try:
        for row in rows:
            current = state.get(row.key)
            ctx.ui.console.rule(f"line {row.line}: {row.place.property_reference} {row.place.room}")
            try:
                _run_row(ctx, row, current, opts, state.save)
            except STOP_BATCH as exc:
                current.error, current.exit_code = str(exc), int(exc.exit_code)
                raise
            except ProvisionError as exc:
                current.error, current.exit_code = str(exc), int(exc.exit_code)
                ctx.ui.failed(f"✗ line {row.line}:", str(exc), exc.remedy)
                failed += 1
            else:
                current.error = current.exit_code = None
                ok += 1
                if checked is not None:
                    checked.add(row.key)
            if not ctx.dry_run:
                state.save()
    finally:
        if not ctx.dry_run:
            state.save()
        ctx.ui.console.print(summary(rows, state, required_steps(opts), checked=checked))
    return ok, failed


def _check_image(rows: list[Row], state: StateFile, opts: Options) -> None:
    """An image is needed while a line is still to be flashed: say so once, before any line
    starts, not once for every line."""
    if opts.skip_flash or opts.image is not None:
        return
    waiting = [r.line for r in rows if "flash" not in state.rows.get(r.key, RowState()).done]
    if waiting:
        listed = ", ".join(str(n) for n in waiting[:5]) + (", …" if len(waiting) > 5 else "")
        raise UsageError(
            f"no --image given, and {len(waiting)} line(s) still need flashing (line {listed})",
            remedy="pass the MicroPython image with --image, or --skip-flash if the sensors "
            "are flashed already",
        )


def required_steps(opts: Options) -> list[str]:
    """The steps a line needs, in order, before it counts as done with these options."""
    wanted = [] if opts.skip_flash else ["flash"]
    wanted += ["enrol", "install"]
    wanted += [] if opts.skip_verify else ["verify"]
    wanted += [] if opts.labels_dir is None else ["label"]
    return wanted


def summary(
    rows: list[Row], state: StateFile, required: list[str], *, checked: set[str] | None = None
) -> Table:
    """One line per row; `checked` (a dry run's) holds the rows it checked without fault."""
    dry_run = checked is not None
    table = Table(title="batch summary (dry run)" if dry_run else "batch summary")
    for column in ("line", "device", "place", "steps done", "result"):
        table.add_column(column)
    for row in rows:
        s = state.rows.get(row.key, RowState())
        place = f"{row.place.borough}/{row.place.property_reference}/{row.place.room}"
        missing = [step for step in required if step not in s.done]
        if s.error:
            result = f"[red]failed ({ExitCode(s.exit_code or 1).name.lower()})[/]"
        elif not missing:
            result = "[green]ok[/]"
        elif checked is not None:
            # As far as a dry run can check: the fleet may still refuse (e.g. exit 11).
            result = "checked" if row.key in checked else "not checked"
        elif s.done:
            # Interrupted half-way: a sensor may still hold its `maintenance` file.
            result = f"[yellow]incomplete ({missing[0]})[/]"
        else:
            result = "not started"
        cells = (str(row.line), s.device_id or "—", place, ", ".join(s.done) or "—")
        table.add_row(*(escape(c) for c in cells), result)
    return table
