"""Battery node: one wake = sample, queue on flash, maybe uplink, deep sleep.

The radio is the big cost, so it stays off unless there is a reason to use it:
every `uplink_every`-th wake, the first boot after power-on (clock and identity),
or RH crossing `rh_uplink_above`. A failed uplink is retried on later wakes with
backoff (1, 2, 4, 8 wakes). Counters live in RTC memory, which deep sleep keeps.
Before sleeping the node publishes status "sleeping" and disconnects cleanly (the
broker then keeps "sleeping" instead of sending the "offline" will); queued
commands reach it at its next uplink through the persistent session. It runs them,
those arriving meanwhile too, before it sleeps; any it had no time for stay with the
broker (never acknowledged) for the next uplink.
"""

import asyncio
import gc
import time

from cs import FW_VERSION, clock, topics
from cs.log import log
from cs.node import Node

WDT_MS = 60000  # a wake that hangs (e.g. a stuck socket) resets instead of draining the cells
UPLINK_MS = 30000  # give up an uplink after this long: the readings stay queued


def due(node: Node, values: dict) -> bool:
    rtc = node.rtc
    rtc["n"] = rtc.get("n", 0) + 1
    rh = values.get("humidity")
    above = rh is not None and rh > node.cfg["rh_uplink_above"]
    crossed = above and not rtc.get("hi")
    rtc["hi"] = above
    if rtc.get("wait", 0) > 0:  # backing off after failed uplinks
        rtc["wait"] -= 1
        return crossed
    # Any boot but a timer wake (power-on, a crash, the watchdog, a reboot command) goes up
    # at once: its health report says why, and the next wake's would say "deep_sleep".
    return crossed or rtc["n"] >= node.cfg["uplink_every"] or node.reset_cause != "deep_sleep"


async def uplink(node: Node) -> None:
    from cs.link import connect  # MQTT and Wi-Fi code load on uplink wakes only

    until = time.ticks_add(time.ticks_ms(), UPLINK_MS // 2)  # time left for another connection
    client = await connect(node)
    client.redeliver = False  # this wake reconnects itself, between its steps (below)
    try:
        await node.drain(client)
        await client.publish(
            topics.device_topic(node.device_id, topics.HEALTH),
            node.health_pack(node.board.rssi(), node.rtc.get("rc", 0)),
            False,
            1,
        )
        # Commands queued by the broker while we slept arrived with the session: act on them.
        await node.handle_inbox(client)
        from cs import ota
        from cs.board import fs_root

        root = fs_root()
        if ota.pending(root):  # settle a trial boot, report an outcome, retry a held update
            from cs.ota import trial

            await trial.after_boot(node, client, root)
            await trial.resume(node, client, root)
        # Commands that came meanwhile, and those the inbox had no room for: the broker
        # keeps what the node did not take, and a new connection brings it while the wake
        # has time (else the next uplink does).
        while True:
            await node.handle_inbox(client)
            if not client.held or time.ticks_diff(until, time.ticks_ms()) <= 0:
                break
            log("reconnecting for", client.held, "held commands")
            await client.disconnect()
            client = await connect(node)
            client.redeliver = False
        await node.drain(client)  # a sample-now reading
        await client.publish(
            topics.device_topic(node.device_id, topics.STATUS), topics.status_payload(topics.STATE_SLEEPING), True, 1
        )
        await client.disconnect()
    finally:
        client.close()


def sleep_ms(node: Node, awake_ms: int) -> int:
    interval = node.cfg["sample_interval_s"]
    if clock.is_synced():
        # Wake on the UTC grid (:00, :15, ...); the RTC keeps time through deep sleep.
        return (interval - clock.unix_time() % interval) * 1000
    return max(1000, interval * 1000 - awake_ms)


def main(cfg: dict, profile: dict) -> None:
    from cs.board import Board

    t0 = time.ticks_ms()
    board = Board(profile)
    wdt = board.watchdog(WDT_MS)
    node = Node(cfg, profile, board)
    values = node.sample()
    from cs.board import fs_root
    from cs.ota import files

    root = fs_root()
    trial = files.exists(root + "ota/image.json") or (files.read_json(root + "ota/app") or {}).get("trial")
    if due(node, values) or trial:  # a trial boot must reach the broker for its self-test
        log("uplink: fw", FW_VERSION, "reset", node.reset_cause, "queued", len(node.store))
        gc.collect()
        try:
            asyncio.run(asyncio.wait_for_ms(uplink(node), UPLINK_MS))
            node.rtc["n"] = node.rtc["f"] = 0
        except Exception as e:  # no Wi-Fi, no broker: the readings wait on flash
            f = node.rtc["f"] = node.rtc.get("f", 0) + 1
            node.rtc["wait"] = min(1 << (f - 1), 8) - 1
            node.rtc["rc"] = node.rtc.get("rc", 0) + 1
            log("uplink failed:", repr(e))
    wdt.feed()
    node.rtc.pop("crashes", None)  # a whole wake ran: crashes before it no longer count (main.py)
    node.save_rtc()
    if files.exists(root + "ota/image.json") or (files.read_json(root + "ota/app") or {}).get("trial"):
        # A release on trial never deep-sleeps: it would run unvalidated for a whole sleep,
        # and an image would escape the bootloader's rollback. A reset tries the self-test
        # again at once and counts as a trial boot, so one that never passes is undone.
        log("trial not settled: reset instead of sleep")
        board.reset()
    ms = sleep_ms(node, time.ticks_diff(time.ticks_ms(), t0))
    log("sleep %d ms (awake %d ms, light %d ms)" % (ms, time.ticks_diff(time.ticks_ms(), t0), board.light_ms))
    board.deepsleep(ms)
