"""What both power modes share: sample into the flash queue, drain it to the broker,
report health, and keep small state in RTC memory across deep sleep.

No hardware imports: the Board passed in does that.
"""

import asyncio
import gc
import json

from cs import FW_VERSION, clock, topics
from cs.log import log
from cs.senml import METRICS, Pack
from cs.sensors import Sensors, encode
from cs.store import Store

MAX_BATCH = 6  # readings per pack: bounds the payload on a small heap


class Node:
    def __init__(self, cfg: dict, profile: dict, board) -> None:
        self.cfg = cfg
        self.device_id: str = cfg["device_id"]
        self.board = board
        self.battery = profile["power"] == "battery"
        try:
            self.rtc = json.loads(board.rtc_memory() or "{}")
        except ValueError:
            self.rtc = {}
        cause = board.reset_cause()
        # Set before a deliberate reset (or a crash's sleep, see main.py), to tell them apart.
        why = self.rtc.pop("why", None)
        self.reset_cause = why if why and cause in ("hard", "soft", "deep_sleep") else cause
        if why is not None:
            # Cleared in RTC memory too (a mains node may not write it again for days): a
            # later panic or soft reset must not report this boot's reason.
            self.save_rtc()
        self.wake_reason = board.wake_reason()
        self.fix = clock.Fix(cause == "power_on")
        self.store = Store(max_segs=cfg["queue_segments"])
        self.sensors = Sensors(board, profile, self.battery, self.rtc.setdefault("s", {}))
        self.uptime = clock.Uptime()
        # Low-water mark of the free heap after collections; the first track_heap sets it (a
        # collection here would cost every battery wake).
        self.heap_min_free = 0x3FFFFFFF
        self.last: dict = {}  # last good values (battery level for health)

    queued: "asyncio.Event | None" = None  # mains mode: the sender waits on it

    def kick(self) -> None:
        if self.queued is not None:
            self.queued.set()

    async def blink(self, seconds: int) -> None:
        for i in range(seconds * 4):
            self.board.led(not i & 1)
            await asyncio.sleep_ms(250)
        self.board.led(False)

    def save_rtc(self) -> None:
        self.board.rtc_memory(json.dumps(self.rtc).encode())

    def track_heap(self) -> int:
        """Free heap after a collection (garbage not yet collected would hide the live
        figure), keeping the lowest seen."""
        gc.collect()
        free = self.board.free_heap()
        if free < self.heap_min_free:
            self.heap_min_free = free
        return free

    # -- sampling ------------------------------------------------------------------
    def sample(self) -> dict:
        """Read every sensor and queue the reading on flash before anything else."""
        values = self.sensors.sample()
        if values:
            ts = clock.unix_time()
            if ts <= self.rtc.get("hold", 0):  # the clock was stepped back past this stamp
                log("sample not queued: clock stepped back")
            else:
                self.rtc.pop("hold", None)
                self.store.append(ts, self.fix.gen, encode(values))
            for k in ("battery_voltage", "battery"):
                if k in values:
                    self.last[k] = values[k]
        return values

    def clock_due(self) -> bool:
        """NTP is due: the clock is not set for this power-on period, or its last sync is
        older than RESYNC_S (the RTC drifts, deep sleep's slow clock most)."""
        if not clock.is_synced() or self.fix.offset is None:
            return True
        return clock.unix_time() - self.rtc.get("ntp", 0) >= clock.RESYNC_S[self.battery]

    def sync_clock(self) -> bool:
        """Set the clock from NTP; False if NTP did not answer. Only the first sync of a
        power-on period dates the readings taken before it (clock.Fix); a later one just
        corrects the drift, and queued readings keep their stamps."""
        jump = self.board.sync_clock()
        if jump is None:
            return False
        now = clock.unix_time()
        self.rtc["ntp"] = now
        if self.fix.offset is None:
            self.fix.synced(jump)
            log("clock set, jumped %d s" % jump)
            return True
        if jump < 0:
            # Readings may carry stamps up to the old time already: none may be repeated.
            # (Past an hour ahead the fleet refused them anyway: hold no longer than that.)
            self.rtc["hold"] = now + min(-jump, 3600)
        log("clock corrected by %d s" % jump)
        return True

    # -- uplink --------------------------------------------------------------------
    def _batch(self) -> tuple:
        """(pack parts or None, records in it, position after them) for the next batch.
        Records whose time can never be known are dropped (counted as evicted)."""
        recs = self.store.peek(MAX_BATCH)
        pack = None
        n = 0
        end = None
        for (ts, gen, body), pos in recs:
            when = self.fix.date(ts, gen)
            if when is None:
                break  # taken before the clock was set: wait for NTP
            end = pos
            n += 1
            if when < 0:
                log("dropping a reading with an unknown date")
                self.store.evicted += 1
                continue
            if pack is None:
                pack = Pack(self.device_id, when)
            for item in body.split():
                name, unit = METRICS[item[0]]
                pack.add(name, item[1:], unit, when - pack.bt, True)
        return (pack.parts() if pack else None), n, end

    async def drain(self, client) -> int:
        """Publish queued readings (QoS 1); each batch leaves flash only after its PUBACK."""
        up = topics.device_topic(self.device_id, topics.UP)
        sent = 0
        while True:
            # Collect before each pack is built: it needs one contiguous block, and what
            # connecting left behind can be held by stale stack references when an
            # allocation failure collects by itself (seen at a 160 KB heap).
            gc.collect()
            payload, n, end = self._batch()
            if end is None:
                return sent
            if payload is not None:
                await client.publish(up, payload, False, 1)
            del payload
            self.store.ack(end, n)
            sent += n

    def health_pack(self, rssi, reconnects: int) -> list:
        """The health snapshot as SenML pack parts (see Pack.parts)."""
        free = self.track_heap()
        pack = Pack(self.device_id, clock.unix_time())
        pack.add("uptime", self.uptime.seconds(), "s")
        pack.add("heap_free", free, "B")
        pack.add("heap_min_free", self.heap_min_free, "B")
        pack.add("reset_cause", self.reset_cause)
        pack.add("wake_reason", self.wake_reason)
        if rssi is not None:
            pack.add("rssi", rssi)
        if "battery_voltage" in self.last:
            pack.add("battery_voltage", self.last["battery_voltage"], "V")
            pack.add("battery", self.last["battery"], "%EL")
        pack.add("queue_depth", len(self.store))
        pack.add("evicted", self.store.evicted)
        pack.add("reconnects", reconnects)
        pack.add("sensor_faults", self.sensors.faults())
        pack.add("clock_synced", clock.is_synced())
        pack.add("fw_version", FW_VERSION)
        pack.add("config_version", self.cfg["version"])
        return pack.parts()

    async def subscribe(self, client) -> None:
        did = self.device_id
        await client.subscribe(topics.device_topic(did, topics.CMD), 1)
        await client.subscribe(topics.device_topic(did, topics.CONFIG), 1)
        await client.subscribe(topics.device_topic(did, topics.OTA), 1)

    async def handle_inbox(self, client) -> None:
        """Commands and config updates that arrived; the handler loads only when needed."""
        from cs.mqtt import MQTTError  # loaded already: there is a client

        while client.inbox:
            topic, payload, _ = client.inbox.pop(0)
            if topic.endswith("/" + topics.OTA):
                try:
                    from cs.ota import intake

                    await intake.offer(self, client, payload)
                except (MQTTError, OSError):
                    raise
                except Exception as e:  # e.g. MemoryError: the offer comes back; the node stays up
                    import sys

                    log("ota offer failed:", repr(e))
                    sys.print_exception(e)
                continue
            from cs import commands

            await commands.handle(self, client, topic, payload)

    def restart(self, why: str) -> None:
        """A deliberate reset, recorded so the next boot reports why."""
        self.rtc["why"] = why
        try:
            self.save_rtc()
        except MemoryError:  # reset all the same: the next boot reports a plain reset
            pass
        self.board.reset()
