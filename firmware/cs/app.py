"""Mains-powered node: always connected, commands handled at once.

Tasks share state through the Node and asyncio events: sampler (on the UTC grid),
sender (drains the flash queue), health, inbox (commands/config), connection
(reconnect with backoff) and the supervisor, the only feeder of the watchdog, which
stops feeding when a task stops making progress, so a hung node resets itself.
"""

import asyncio
import gc
import time

from micropython import const

from cs import FW_VERSION, clock, topics, unload
from cs.backoff import Backoff
from cs.log import log
from cs.link import connect
from cs.mqtt import MQTTClient, MQTTError
from cs.node import Node

WDT_MS = 30000
OTA_RETRY_MS = 600000  # OTA work left by a boot, or an update held after network failures
# A heap a leak or fragmentation filled makes every task fail while the node looks alive:
# it resets after _HEAP_TRIES connects, or connections, in a row ran out of heap, or when
# the free heap after a collection stayed under _HEAP_FLOOR (a pack and its send need
# ~2 KB) for _HEAP_LOW checks a minute apart.
_HEAP_TRIES = const(5)
# A connection must last this long before the backoff starts again from one second: a broker
# that accepts and then drops the node (another sensor with its id, an ACL) is not hammered.
_STABLE_MS = const(60000)
_HEAP_FLOOR = const(4096)
_HEAP_LOW = const(3)
_PROVEN_S = const(600)  # seconds up after which earlier crashes no longer count (main.py)
# NTP while it is due (Node.clock_due), whatever the broker connection does: a minute after
# a failure, doubling up to 15 minutes (until the clock is set nothing can be sent).
_NTP_RETRY_S = const(60)
_NTP_RETRY_MAX_S = const(900)


def note(what: str, err, retry_ms: int = -1) -> None:
    """Log an error after freeing what can be freed: out of heap even the line may not fit,
    and a task must not die of its own error report."""
    gc.collect()
    try:
        if retry_ms < 0:
            log(what, err if isinstance(err, str) else repr(err))
        else:
            log(what, err, "- retry in %d ms" % retry_ms)
    except MemoryError:
        pass


class App:
    def __init__(self, node: Node, wdt) -> None:
        self.node = node
        self.wdt = wdt
        self.client: "MQTTClient | None" = None
        self.online = asyncio.Event()
        node.queued = asyncio.Event()
        self.reconnects = 0
        self.short = 0  # connections in a row lost to a full heap (see fail)
        self.beat = time.ticks_ms()  # the sampler's last sign of life

    def fail(self, client: "MQTTClient | None", what: str, err: Exception) -> None:
        """A task hit an unexpected error (often MemoryError): drop the connection, whose
        stream may hold half a packet, free memory and let the tasks carry on; a task that
        died instead would leave a node that looks alive but never reports again."""
        if client is not None:
            client.close("task error")
        self.online.clear()
        note(what, err)
        # A fragmented heap may still connect but never fit a health pack: the connection is
        # lost to it again and again, and only a fresh heap ends that.
        self.short = self.short + 1 if isinstance(err, MemoryError) else 0
        if self.short >= _HEAP_TRIES:
            self.node.restart("heap")

    async def sampler(self) -> None:
        interval = self.node.cfg["sample_interval_s"]
        # First sample on the UTC grid once NTP had its chance: a reading stamped in the
        # same second as the last one before a reboot would be the same reading to the fleet.
        for _ in range(150):
            if clock.is_synced():
                await asyncio.sleep_ms((interval - clock.unix_time() % interval) * 1000)
                break
            await asyncio.sleep_ms(100)
        while True:
            try:
                if self.node.sample():
                    self.node.kick()
            except Exception as e:  # e.g. MemoryError or a full flash: skip this sample
                log("sample failed:", repr(e))
            self.beat = time.ticks_ms()
            # Sample on the UTC grid (:00, :15, ...) so readings line up across devices.
            now = clock.unix_time()
            await asyncio.sleep_ms((interval - now % interval) * 1000 if clock.is_synced() else interval * 1000)

    async def sender(self) -> None:
        node = self.node
        queued = node.queued
        assert queued is not None
        while True:
            await self.online.wait()
            client = self.client
            if client is None:
                self.online.clear()
                continue
            queued.clear()
            try:
                await node.drain(client)
            except Exception as e:  # incl. MemoryError mid-packet: the stream is unusable
                self.fail(client, "publish failed:", e)
                continue
            await queued.wait()

    async def health(self) -> None:
        topic = topics.device_topic(self.node.device_id, topics.HEALTH)
        while True:
            await self.online.wait()
            client = self.client
            try:
                if client is None:
                    raise MQTTError("no client")
                await client.publish(topic, self.node.health_pack(self.node.board.rssi(), self.reconnects), False, 1)
                self.short = 0
            except (MQTTError, OSError) as e:
                log("health publish failed:", e)
            except Exception as e:  # e.g. MemoryError part-way through a packet
                self.fail(client, "health publish failed:", e)
            gc.collect()
            await asyncio.sleep_ms(self.node.cfg["health_interval_s"] * 1000)

    async def inbox(self) -> None:
        while True:
            await self.online.wait()
            client = self.client
            if client is None or client.down.is_set():
                # Gone: wait for the connection task to bring the next client (this
                # one's inbox event is set for good, see MQTTClient._lost).
                await asyncio.sleep_ms(100)
                continue
            await client.inbox_event.wait()
            client.inbox_event.clear()
            try:
                await self.node.handle_inbox(client)
            except (MQTTError, OSError) as e:
                log("command reply failed:", e)
            except Exception as e:
                self.fail(client, "command handling failed:", e)

    async def supervisor(self) -> None:
        """Feeds the watchdog only while the sampler keeps its schedule; resets the node when
        its heap stays nearly full; sets the clock when NTP is due."""
        wdt = self.wdt
        node = self.node
        limit = (node.cfg["sample_interval_s"] + 60) * 1000
        tick = low = ntp_fails = 0
        ntp_at = _NTP_RETRY_S  # connecting tried it just now
        while True:
            if time.ticks_diff(time.ticks_ms(), self.beat) < limit:
                wdt.feed()
            else:
                log("sampler stalled: letting the watchdog reset the node")
            tick += 1
            if tick == _PROVEN_S and self.node.rtc.pop("crashes", None):
                self.node.save_rtc()  # the app runs well: crashes before this boot are forgiven
            if tick % 60 == 0:
                low = low + 1 if self.node.track_heap() < _HEAP_FLOOR else 0
                if low >= _HEAP_LOW:
                    note("heap nearly full:", self.node.board.free_heap())
                    self.node.restart("heap")
            if tick >= ntp_at and node.clock_due() and node.board.wifi_connected():
                try:
                    ok = node.sync_clock()
                except Exception as e:  # e.g. MemoryError: the watchdog's feeder must live on
                    note("clock sync failed:", e)
                    ok = False
                if ok:
                    ntp_fails = 0
                    node.kick()  # readings held for want of a date can go now
                else:
                    ntp_fails = min(ntp_fails + 1, 4)
                ntp_at = tick + min(_NTP_RETRY_S << ntp_fails, _NTP_RETRY_MAX_S)
            await asyncio.sleep_ms(1000)

    async def connection(self) -> None:
        backoff = Backoff()
        first = True
        short = 0  # connects in a row that ran out of heap
        while True:
            try:
                client = await connect(self.node)
            except Exception as e:  # Wi-Fi, DNS, TCP, TLS or broker refusal: all retried
                short = short + 1 if isinstance(e, MemoryError) else 0
                if short >= _HEAP_TRIES:
                    self.node.restart("heap")  # a fresh heap; the readings wait on flash
                delay = backoff.next_ms()
                note("connect failed:", e, delay)
                await asyncio.sleep_ms(delay)
                continue
            short = 0
            up_at = time.ticks_ms()
            if not first:
                self.reconnects += 1
            first = False
            self.client = client
            self.online.set()
            self.node.kick()
            self.node.board.led(True)
            log("online as", self.node.device_id)
            try:
                # A lost access point can leave the socket looking open: watch both.
                while not client.down.is_set():
                    try:
                        await asyncio.wait_for_ms(client.down.wait(), 1000)
                    except asyncio.TimeoutError:
                        if not self.node.board.wifi_connected():
                            client.close("Wi-Fi lost")
            except Exception as e:  # e.g. MemoryError: this task must outlive it to reconnect
                self.fail(client, "connection watch failed:", e)
            self.online.clear()
            self.client = None
            self.node.board.led(False)
            if time.ticks_diff(time.ticks_ms(), up_at) >= _STABLE_MS:
                backoff.reset()
            delay = backoff.next_ms()
            note("connection lost:", client.error, delay)
            client.close()
            await asyncio.sleep_ms(delay)

    async def ota(self) -> None:
        """Checks for OTA work now and then; the OTA code is in the heap only meanwhile
        (and while an offer is being handled, see Node.handle_inbox)."""
        first = True
        while True:
            try:
                from cs.ota import watch

                try:
                    await watch.check(self, first)
                finally:
                    del watch  # or this task would keep the module while it sleeps
                first = False
            except Exception as e:  # e.g. MemoryError loading the code: the task lives on
                note("ota check failed:", e)
            unload("cs.ota.watch")
            import sys

            if not [n for n in sys.modules if n.startswith("cs.ota.") and n != "cs.ota.files"]:
                unload("cs.ota.files", "cs.ota")  # no offer in hand either
            gc.collect()
            await asyncio.sleep_ms(OTA_RETRY_MS)

    async def run(self) -> None:
        for coro in (self.sampler(), self.sender(), self.health(), self.inbox(), self.supervisor(), self.ota()):
            asyncio.create_task(coro)
        await self.connection()


def main(cfg: dict, profile: dict) -> None:
    """Run forever with a validated config and board profile (see cs.config)."""
    from cs.board import Board

    board = Board(profile)
    # Started before any task: a node must not run without its watchdog, so a watchdog
    # that does not start is a crash at boot (main.py backs off and retries).
    wdt = board.watchdog(WDT_MS)
    node = Node(cfg, profile, board)
    log("boot: fw", FW_VERSION, "device", cfg["device_id"], "reset", node.reset_cause)
    gc.collect()
    asyncio.run(App(node, wdt).run())
