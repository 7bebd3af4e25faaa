"""The node's clock in the VM (real Node and Board, simulated RTC and NTP server): NTP is due
until it answers, then again once the last sync is old; only the first sync of a power-on
period dates the readings taken before it, and a later correction of a drifted RTC leaves
queued readings as they were stamped and never repeats a stamp."""

from __future__ import annotations

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

SCRIPT = """
import json, time
from simdev import state
from cs import clock, config
from cs.board import Board
from cs.node import Node

cfg = config.validate({"schema": 1, "version": 1, "device_id": "cs-clock-test",
    "board": "devkitc-sht41", "wifi": {"ssid": "sim"}, "mqtt": {"host": "127.0.0.1"}})
profile = config.load_board_profile("devkitc-sht41")
node = Node(cfg, profile, Board(profile))
out = {}

def sample():
    # The simulated room barely changes within a second: identical raw words from the
    # chip several times in a row would be a stuck sensor, which is not under test here.
    node.sensors.state.clear()
    assert node.sample()

def dates():
    return [node.fix.date(ts, gen) for (ts, gen, _), _ in node.store.peek(6)]

out["first_try"] = node.sync_clock()  # the NTP server is away (sim.json)
out["due_unset"] = node.clock_due()
sample()  # a reading before the clock is set: dated once NTP answers
out["undated"] = dates()
state.sim()["ntp"] = {"fail": False}  # the server is back
out["set"] = node.sync_clock()
offset = node.fix.offset
first = dates()[0]
out["first_err"] = first - time.true_time()
out["due_after_set"] = node.clock_due()

# A day later (as far as the schedule knows) the RTC runs 600 s fast.
time.set_rtc(time.true_time() + 600)
node.rtc["ntp"] -= 86400
sample()  # stamped with the drifted clock, which is all the node knows
stamped = dates()[1]
out["due_drifted"] = node.clock_due()
out["corrected"] = node.sync_clock()
out["clock_err"] = clock.unix_time() - time.true_time()
out["offset_kept"] = node.fix.offset == offset
out["dates_kept"] = dates() == [first, stamped]
out["stamped_ahead"] = stamped - time.true_time()
n = len(node.store)
sample()  # its stamp is among those the fast clock has used already
out["repeat_queued"] = len(node.store) - n
time.set_rtc(time.true_time() + 700)  # the clock has passed the last stamp used
sample()
out["later_queued"] = len(node.store) - n
out["later_after_all"] = dates()[-1] > stamped

# Seven hours after a sync: not due on mains (daily), due on battery (deep sleep drifts more).
node.rtc["ntp"] = clock.unix_time() - 7 * 3600
out["mains_due_7h"] = node.clock_due()
node.battery = True
out["battery_due_7h"] = node.clock_due()
print("RESULT", json.dumps(out))
"""


def test_ntp_is_retried_then_repeated_and_corrections_keep_queued_stamps(vm: VM) -> None:
    vm.write_sim(ntp={"fail": True})
    (r,) = vm.results(vm.run(SCRIPT))
    assert r["first_try"] is False and r["due_unset"] is True
    assert r["undated"] == [None]  # held until the clock is set
    assert r["set"] is True and r["due_after_set"] is False
    assert abs(r["first_err"]) <= 2  # the early reading got the room's time
    assert r["due_drifted"] is True
    assert r["corrected"] is True
    assert abs(r["clock_err"]) <= 1  # drift gone
    assert r["offset_kept"] is True  # a correction is not a first sync
    assert r["dates_kept"] is True  # queued readings: neither lost nor moved
    assert 598 <= r["stamped_ahead"] <= 601
    assert r["repeat_queued"] == 0  # no reading may carry a stamp used before the step
    assert r["later_queued"] == 1 and r["later_after_all"] is True
    assert r["mains_due_7h"] is False and r["battery_due_7h"] is True
