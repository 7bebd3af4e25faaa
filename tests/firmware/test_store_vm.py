"""The flash queue (cs.store) in the VM: crash consistency under SIGKILL at random points,
torn writes, bounded size with counted evictions."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

WORKER = """
import sys
from cs.store import Store
s = Store("q", seg_bytes=160, max_segs=1000)
start = {start}
for i in range(start, start + 400):
    s.append(1763850000 + i, 1, "t%d" % i)
    print("A", i)
    if i % 3 == 0:
        recs = s.peek(4)
        if recs:
            print("S", " ".join(r[0][2][1:] for r in recs))
            s.ack(recs[-1][1], len(recs))
            print("K")
"""

DRAIN = """
from cs.store import Store
s = Store("q", seg_bytes=160, max_segs=1000)
print("N", len(s), s.evicted)
while True:
    recs = s.peek(50)
    if not recs:
        break
    print("R", " ".join(r[0][2][1:] for r in recs))
    s.ack(recs[-1][1], len(recs))
"""


def test_random_kills_lose_or_repeat_nothing(vm: VM) -> None:
    rng = random.Random(3)
    appended: set[int] = set()
    acked: list[int] = []  # values whose ack returned
    unconfirmed: set[int] = set()  # sent but the ack may not have landed
    start = 0
    for _ in range(12):
        proc = vm.popen(WORKER.format(start=start))
        time.sleep(rng.uniform(0.01, 0.12))
        os.killpg(proc.pid, signal.SIGKILL)  # power cut: no cleanup runs
        out, _ = proc.communicate(timeout=10)
        pending: list[int] = []
        for line in out.splitlines():
            if line.startswith("A "):
                appended.add(int(line[2:]))
            elif line.startswith("S "):
                pending = [int(v) for v in line[2:].split()]
            elif line == "K":
                acked.extend(pending)
                pending = []
        unconfirmed |= set(pending)
        start = max(appended, default=-1) + 2  # the value after a maybe-torn append
        # A torn write: half a record and no newline, as a power cut mid-write leaves.
        # A kill before the VM made its queue folder (a slow start) leaves nothing to tear.
        queue = vm.device_dir / "q"
        segs = sorted(int(n) for n in os.listdir(queue) if n.isdigit()) if queue.exists() else []
        if segs and rng.random() < 0.5:
            with open(vm.device_dir / "q" / str(segs[-1]), "ab") as f:
                f.write(b"1763859999 1 t99")
    out = vm.run(DRAIN)
    remaining = [
        int(v) for line in out.splitlines() if line.startswith("R ") for v in line[2:].split()
    ]
    n_line = next(line for line in out.splitlines() if line.startswith("N "))
    assert int(n_line.split()[1]) == len(remaining) and n_line.split()[2] == "0"
    assert len(appended) > 100
    # Nothing acknowledged comes back; nothing appended is lost; nothing appears twice.
    assert len(acked) == len(set(acked))
    assert not set(acked) & set(remaining) - unconfirmed
    assert len(remaining) == len(set(remaining))
    assert appended <= set(acked) | set(remaining) | unconfirmed
    # Every value is one the worker tried to write (a torn or half-sealed line never parses).
    assert all(v < start for v in remaining)


def test_full_queue_evicts_oldest_and_counts(vm: VM) -> None:
    code = """
import json
from cs.store import Store
s = Store("q", seg_bytes=100, max_segs=3)
for i in range(40):
    s.append(1763850000 + i, 1, "t%d" % i)
first = Store("q", seg_bytes=100, max_segs=3)
recs = first.peek(100)
print("RESULT", json.dumps({"len": len(s), "evicted": s.evicted, "reopened": first.evicted,
      "first": recs[0][0][2], "last_of_seg": recs[-1][0][2], "depth": len(first)}))
"""
    (res,) = vm.results(vm.run(code))
    # 3 segments of ~4 records: the oldest whole segments went, and were counted.
    assert res["evicted"] == res["reopened"] > 0
    assert res["len"] == res["depth"] == 40 - res["evicted"]
    assert res["first"] == f"t{res['evicted']}"  # oldest first, in order
    segs = sorted(int(n) for n in os.listdir(vm.device_dir / "q") if n.isdigit())
    assert len(segs) <= 3


def test_seven_days_fit(vm: VM) -> None:
    """The default bound holds 7 days of 15-minute readings of 4 metrics without eviction."""
    code = """
import json
from cs.store import Store
s = Store()
for i in range(7 * 96):
    s.append(1763850000 + 900 * i, 3, "t21.43 h55.21 s14.12 v3.01")
print("RESULT", json.dumps({"evicted": s.evicted, "depth": len(s)}))
"""
    (res,) = vm.results(vm.run(code, timeout=120))
    assert res == {"evicted": 0, "depth": 7 * 96}
