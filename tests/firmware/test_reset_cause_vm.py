"""The reason a node gives for a deliberate reset is reported by the next boot only: a
later panic or soft reset (RTC memory kept, as on the chip) reports its own cause."""

from __future__ import annotations

import json

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

BOOT = """
import json
from cs import config
from cs.board import Board
from cs.node import Node

cfg = config.validate({"schema": 1, "version": 1, "device_id": "cs-reset-test",
    "board": "devkitc-sht41", "wifi": {"ssid": "sim"}, "mqtt": {"host": "127.0.0.1"}})
profile = config.load_board_profile("devkitc-sht41")
node = Node(cfg, profile, Board(profile))
print("RESULT", json.dumps(node.reset_cause))
if RESTART:
    node.restart("command")
"""


def _boot(vm: VM, restart: bool = False) -> str:
    proc = vm.popen(BOOT.replace("RESTART", str(restart)))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == (100 if restart else 0), out
    (cause,) = vm.results(out)
    return str(cause)


@pytest.mark.parametrize(("code", "cause"), [(2, "hard"), (5, "soft"), (3, "watchdog")])
def test_a_deliberate_reset_is_reported_once(vm: VM, code: int, cause: str) -> None:
    assert _boot(vm, restart=True) == "power_on"  # ...and it resets itself by command
    assert _boot(vm) == "command"
    # RTC memory survives the next reset; the reason in it must not.
    assert "why" not in json.loads((vm.device_dir / "rtc_memory.bin").read_bytes() or b"{}")
    # A panic, a technician's soft reset or the watchdog: not the command again.
    (vm.device_dir / ".sim_reset").write_text(f"{code} 0 0")
    assert _boot(vm) == cause
