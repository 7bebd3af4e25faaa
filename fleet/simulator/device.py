"""One virtual device: the real firmware in the MicroPython unix VM, in its own folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from fleet.core.folder_lock import FolderInUse, FolderLock
from fleet.simulator.build import build_firmware
from fleet.simulator.identity import device_id_for_seed, mac_for_seed
from fleet.simulator.paths import (
    BOARDS_DIR,
    DEFAULT_HEAPSIZE,
    FROZEN_PATH,
    SimulatorError,
    find_micropython,
)

# Exit codes of the simulated board (hardware/sim/simdev/state.py).
EXIT_RESET = 100
EXIT_DEEPSLEEP = 101
RESET_FILE = ".sim_reset"
RTC_FILE = "rtc_memory.bin"
WAKE_FILE = ".sim_wake"  # the room time a deep sleep ends at (hardware/sim/time.py)
CLOCK_FILE = ".sim_clock"  # "offset skew": room time = host * speed + offset; RTC = room + skew
FIRMWARE_LINK = "fw"  # the build, linked into the device folder (see VirtualDevice.firmware_link)
WDT_FILE = ".sim_wdt"  # the watchdog timeout (ms), rewritten on every feed
RADIO_FILE = "sim_radio.log"
POWER_CUT_FILE = ".sim_power_cut"  # left by hardware/sim/simdev/flash.py when it cuts the power
LOCK_FILE = ".lock"  # held by the launcher and its VM: one running device per folder
WDT_RESET_CAUSE = 3
# A watchdog never fires within this much host time: at `speed` 1440 a 30 s timeout is
# 21 ms of host time, which a busy host's scheduling alone can exceed while the device is
# healthy. Matches WDT_HOST_FLOOR_MS in hardware/sim/simdev/power.py.
WDT_HOST_FLOOR_S = 1.0

# Config fields the launcher owns; anything else in an existing config.json is kept.
_LAUNCHER_FIELDS = ("mqtt.host", "mqtt.port", "sample_interval_s", "health_interval_s")


def _die_with_launcher() -> list[str]:
    setpriv = shutil.which("setpriv")  # util-linux; without it a VM outlives a killed launcher
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


_DIE_WITH_LAUNCHER = _die_with_launcher()


class VirtualDevice:
    """A sensor running `firmware/main.py` under `micropython -X heapsize=...`.

    The device folder is `data_dir / device_id`; it is the VM's working
    directory (the device's root filesystem) and holds config.json, sim.json,
    the board profile, RTC/NVS files, `device.log` and `sim_readings.jsonl`.
    """

    def __init__(
        self,
        device_id: str | None = None,
        data_dir: Path | str = "data/sim",
        broker_host: str = "127.0.0.1",
        broker_port: int = 1883,
        heapsize: str = DEFAULT_HEAPSIZE,
        sample_interval_s: int = 900,
        health_interval_s: int = 3600,
        seed: int | None = None,
        board: str = "devkitc-sht41",
        room: dict[str, Any] | None = None,
        faults: dict[str, Any] | None = None,
        build_dir: Path | None = None,
        time_scale: float = 1.0,
        clock_start: float | None = None,
        config: dict[str, Any] | None = None,
        speed: float = 1.0,
    ) -> None:
        """`time_scale` > 1 makes deep sleeps (and simulated chip conversions) that much
        shorter in real time while the device's clock and the room advance in full.
        `speed` > 1 makes the room's clock run that much faster than the host's all the
        time, awake too: the firmware's ticks, sleeps and timeouts follow it, so an hour
        of a mains device takes 3600 / speed seconds. It is fixed at the first start.
        `clock_start` puts the room's UTC time there at first power-on (e.g. a day ago,
        so an accelerated day ends near now). `config` is merged into config.json."""
        if seed is None:
            seed = _seed_from(device_id) if device_id else int.from_bytes(os.urandom(4), "big")
        self.seed = seed
        self.device_id = device_id or device_id_for_seed(seed)
        self.data_dir = Path(data_dir)
        self.device_dir = self.data_dir / self.device_id
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.heapsize = heapsize
        self.sample_interval_s = sample_interval_s
        self.health_interval_s = health_interval_s
        self.board = board
        self.room = room
        self.faults = faults
        self._build_dir = build_dir
        if time_scale < 1:
            raise ValueError("time_scale must be >= 1")
        self.time_scale = time_scale
        if speed < 1:
            raise ValueError("speed must be >= 1")
        self.speed = speed
        self.clock_start = clock_start
        self.config_overrides = config or {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._folder_lock = FolderLock(
            self.device_dir / LOCK_FILE, f"the launcher with pid {os.getpid()} and its VM"
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.returncode: int | None = None
        self.boots = 0

    # -- files -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.device_dir / "config.json"

    @property
    def sim_path(self) -> Path:
        return self.device_dir / "sim.json"

    @property
    def log_path(self) -> Path:
        return self.device_dir / "device.log"

    @property
    def readings_path(self) -> Path:
        return self.device_dir / "sim_readings.jsonl"

    def prepare(self) -> None:
        """Create the device folder: config.json, sim.json and the board profile."""
        self.device_dir.mkdir(parents=True, exist_ok=True)
        profile = BOARDS_DIR / f"{self.board}.json"
        if not profile.is_file():
            raise SimulatorError(f"unknown board '{self.board}': no {profile}")
        (self.device_dir / "boards").mkdir(exist_ok=True)
        shutil.copyfile(profile, self.device_dir / "boards" / profile.name)
        self._write_config()
        if not self.sim_path.exists():
            sim: dict[str, Any] = {
                "seed": self.seed,
                "mac": mac_for_seed(self.seed),
                "room": self.room or {},
                "faults": self.faults or {},
                "wifi": {"rssi": -55 - self.seed % 30},
                "sensors": _sim_sensors(json.loads(profile.read_text()), self.seed),
                "time_scale": self.time_scale,
                "speed": self.speed,
            }
            _write_json(self.sim_path, sim)
        else:
            self.update_sim(time_scale=self.time_scale)
            self.speed = float(json.loads(self.sim_path.read_text()).get("speed", 1))
            if self.faults is not None:
                self.set_faults(self.faults)
        if self.clock_start is not None and not (self.device_dir / CLOCK_FILE).exists():
            offset = self.clock_start - time.time() * self.speed
            (self.device_dir / CLOCK_FILE).write_text(repr(offset))

    def _write_config(self) -> None:
        wanted: dict[str, Any] = {
            "schema": 1,
            "version": 1,
            "device_id": self.device_id,
            "board": self.board,
            "wifi": {"ssid": "sim", "password": "sim"},
            "mqtt": {
                "host": self.broker_host,
                "port": self.broker_port,
                "tls": False,
                "username": None,
                "password": None,
                "keepalive": 60,
            },
            "sample_interval_s": self.sample_interval_s,
            "health_interval_s": self.health_interval_s,
        }
        wanted.update(self.config_overrides)
        if not self.config_path.exists():
            _write_json(self.config_path, wanted)
            return
        current = json.loads(self.config_path.read_text())
        changed = False
        for field in _LAUNCHER_FIELDS:
            src: dict[str, Any] = wanted
            dst: dict[str, Any] = current
            *parents, leaf = field.split(".")
            for p in parents:
                src, dst = src[p], dst.setdefault(p, {})
            if dst.get(leaf) != src[leaf]:
                dst[leaf] = src[leaf]
                changed = True
        if changed:  # a changed config is a new config version, as provisioning would make it
            current["version"] = int(current.get("version", 0)) + 1
            _write_json(self.config_path, current)

    def set_faults(self, faults: dict[str, Any]) -> None:
        """Replace sim.json "faults" (e.g. {"sht4x": "crc"}); the running sim picks it up."""
        self.update_sim(faults=faults)

    def set_room(self, room: dict[str, Any]) -> None:
        """Replace sim.json "room" (see hardware/sim/simdev/room.py), e.g. a lower rh_base and
        smaller moisture events once ventilation is improved; readings from then on follow it."""
        self.room = room
        self.update_sim(room=room)

    def update_sim(self, **fields: Any) -> None:
        """Change top-level sim.json fields (e.g. wifi={"fail": True}) while running."""
        seen = int(self.sim_path.stat().st_mtime)
        sim = json.loads(self.sim_path.read_text())
        sim.update(fields)
        _write_json(self.sim_path, sim)
        # The sim notices a change by sim.json's mtime in whole seconds (all MicroPython's
        # stat gives), so a second change within a second would go unseen: move it on.
        if int(self.sim_path.stat().st_mtime) <= seen:
            os.utime(self.sim_path, (seen + 1, seen + 1))

    def radio_uses(self) -> int:
        """How many times the device associated with the access point (radio switched on)."""
        path = self.device_dir / RADIO_FILE
        return len(path.read_text().splitlines()) if path.exists() else 0

    def room_time(self) -> float:
        """The simulated UTC time (the host clock unless speed, time_scale or clock_start)."""
        path = self.device_dir / CLOCK_FILE
        offset = float(path.read_text().split()[0]) if path.exists() else 0.0
        return time.time() * self.speed + offset

    def readings(self) -> list[dict[str, Any]]:
        """Every measurement the simulated sensor served (see hardware/sim/simdev/sht4x.py)."""
        if not self.readings_path.exists():
            return []
        lines = self.readings_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # -- process -----------------------------------------------------------------------
    def build_dir(self) -> Path:
        if self._build_dir is None:
            self._build_dir = build_firmware(self.data_dir / ".build")
        return self._build_dir

    def firmware_link(self) -> str:
        """The device folder's short relative name for the build: each module's `__file__`
        is interned in the VM's heap for good, as `/cs/app.mpy` would be on a device, and a
        long host path would cost the heap a few KB the device does not spend."""
        link = self.device_dir / FIRMWARE_LINK
        target = self.build_dir().resolve()
        if not link.is_symlink() or link.resolve() != target:
            tmp = link.with_name(FIRMWARE_LINK + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target, target_is_directory=True)
            os.replace(tmp, link)
        return FIRMWARE_LINK

    def command(self) -> list[str]:
        main = f"{self.firmware_link()}/main.py"  # run from the device folder (cwd)
        return [str(find_micropython()), "-X", f"heapsize={self.heapsize}", main]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Compiled firmware and sim first, then the unix port's frozen asyncio.
        env["MICROPYPATH"] = os.pathsep.join([self.firmware_link(), FROZEN_PATH])
        return env

    def start(self) -> None:
        """Power the device on: a fresh boot (reset cause power-on, RTC memory cleared)."""
        with self._lock:
            if self.is_running:
                return
            self._lock_folder()
            try:
                self.prepare()
                cmd = self.command()
                for name in (RESET_FILE, RTC_FILE, WDT_FILE):
                    (self.device_dir / name).unlink(missing_ok=True)
                self._power_on_clock()
                self._stop.clear()
                self.returncode = None
                booted = threading.Event()
                failed: list[BaseException] = []
                self._thread = threading.Thread(
                    target=self._supervise,
                    args=(cmd, booted, failed),
                    name=f"vdev-{self.device_id}",
                    daemon=True,
                )
                self._thread.start()
                booted.wait()
                if failed:
                    self._thread.join()
                    self._thread = None
                    raise failed[0]
            except BaseException:
                self._folder_lock.release()
                raise

    def _lock_folder(self) -> None:
        try:
            self._folder_lock.acquire()
        except FolderInUse as exc:
            raise SimulatorError(
                f"virtual device {self.device_id} is already running from another process "
                f"({exc.holder}) in {self.device_dir}; stop that one first, or give this one "
                "another data folder (--data-dir)"
            ) from None

    def _spawn(self, cmd: list[str]) -> None:
        # Always called from the supervising thread: the VM gets SIGKILL when the thread
        # that started it ends (`setpriv --pdeathsig`), i.e. when its launcher dies, even by
        # `kill -9`, so no VM is left running on a folder nobody watches.
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [*_DIE_WITH_LAUNCHER, *cmd],
                cwd=self.device_dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches every child
                pass_fds=(self._folder_lock.fd,),  # the folder stays locked while the VM runs
            )
        self.boots += 1

    def _power_on_clock(self) -> None:
        # Power-on: the room's time runs on, the RTC forgets (starts at 2000 again).
        (self.device_dir / WAKE_FILE).unlink(missing_ok=True)
        path = self.device_dir / CLOCK_FILE
        if path.exists():
            path.write_text(path.read_text().split()[0])

    def _advance_clock(self, seconds: float) -> None:
        path = self.device_dir / CLOCK_FILE
        parts = path.read_text().split() if path.exists() else ["0"]
        parts[0] = repr(float(parts[0]) + seconds)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(" ".join(parts))
        os.replace(tmp, path)

    def _wait(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for the VM to exit, playing its watchdog timer meanwhile."""
        wdt = self.device_dir / WDT_FILE
        while True:
            try:
                return proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            try:
                timeout_ms = int(wdt.read_text() or 0)
                stale = time.time() - wdt.stat().st_mtime
            except (OSError, ValueError):
                continue
            # Empty while the VM rewrites it (a busy host can pause the VM in between).
            timeout_s = timeout_ms and max(timeout_ms / 1000.0 / self.speed, WDT_HOST_FLOOR_S)
            if timeout_s and stale > timeout_s:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
                (self.device_dir / RESET_FILE).write_text(f"{WDT_RESET_CAUSE} 0 0")
                with open(self.log_path, "ab") as log:
                    log.write(f"WDT: not fed for {stale:.1f} s, resetting\n".encode())
                return EXIT_RESET

    def _supervise(
        self, cmd: list[str], booted: threading.Event, failed: list[BaseException]
    ) -> None:
        # Plays the part of the chip: machine.reset() and deepsleep() end the process
        # with agreed exit codes, and the device boots again; a watchdog that is not
        # fed resets it.
        try:
            self._spawn(cmd)
        except BaseException as exc:
            failed.append(exc)
            return
        finally:
            booted.set()
        while True:
            proc = self._proc
            if proc is None:
                return
            code = self._wait(proc)
            if self._stop.is_set():
                return
            (self.device_dir / WDT_FILE).unlink(missing_ok=True)  # a reset stops the watchdog
            if code == EXIT_DEEPSLEEP:
                sleep_s = self._sleep_seconds()
                real = sleep_s / self.time_scale / self.speed
                if self._stop.wait(real):
                    return
                if sleep_s > real * self.speed:
                    self._advance_clock(sleep_s - real * self.speed)
            else:  # only a deep sleep's end sets the next boot's clock
                (self.device_dir / WAKE_FILE).unlink(missing_ok=True)
            if code not in (EXIT_DEEPSLEEP, EXIT_RESET) and not self._power_cut():
                self.returncode = code
                return
            with self._lock:
                if self._stop.is_set():
                    return
                self._spawn(cmd)

    def _power_cut(self) -> bool:
        """The sim cut the power (sim.json fault "power_cut_at_write"): boot as after power-on."""
        marker = self.device_dir / POWER_CUT_FILE
        if not marker.exists():
            return False
        marker.unlink()
        for name in (RESET_FILE, RTC_FILE):
            (self.device_dir / name).unlink(missing_ok=True)
        self._power_on_clock()
        return True

    def _sleep_seconds(self) -> float:
        try:
            parts = (self.device_dir / RESET_FILE).read_text().split()
            return int(parts[2]) / 1000.0
        except (OSError, IndexError, ValueError):
            return 0.0

    @property
    def is_running(self) -> bool:
        """True while the device is powered (running, or asleep between boots)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def kill(self) -> None:
        """Pull the plug: SIGKILL, no clean MQTT disconnect (the broker sends the will)."""
        self._terminate(signal.SIGKILL, timeout=0)

    def stop(self, timeout: float = 5.0) -> None:
        """Power off: SIGTERM, then SIGKILL after `timeout` seconds; no process is left behind."""
        self._terminate(signal.SIGTERM, timeout)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc, sig)
            try:
                proc.wait(timeout=timeout if timeout > 0 else None)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._folder_lock.release()
        if proc is not None:
            self.returncode = proc.returncode

    def __enter__(self) -> VirtualDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"VirtualDevice({self.device_id!r}, {state}, dir={str(self.device_dir)!r})"


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _sim_sensors(profile: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The simulated chips of a board profile (hardware/sim answers their protocols)."""
    out: list[dict[str, Any]] = []
    for s in profile.get("sensors", []):
        chip = {k: s[k] for k in ("type", "addr", "pin", "divider") if k in s}
        if s["type"] == "ds18b20":
            body = bytes([0x28]) + seed.to_bytes(6, "big")
            chip["rom"] = (body + bytes([_dallas_crc8(body)])).hex()
        elif s["type"] == "battery":
            chip["volts"] = 3.2
        out.append(chip)
    return out


def _dallas_crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def _seed_from(device_id: str) -> int:
    return int.from_bytes(device_id.encode()[-8:].rjust(8, b"\0"), "big") & 0x7FFFFFFF


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
