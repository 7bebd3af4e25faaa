"""Device application: sample, queue, publish over MQTT, report health, reconnect.

Tasks share state through this object and asyncio events; none of them imports
hardware modules (the Board does that).
"""

import asyncio
import gc

from cs import FW_VERSION, clock, topics
from cs.backoff import Backoff
from cs.drivers.sht4x import SHT4x, SHT4xError
from cs.log import log
from cs.mqtt import MQTTClient, MQTTError, Transport
from cs.samples import SampleQueue
from cs.senml import CEL, RH, Pack

MAX_BATCH = 4  # readings per pack: bounds the payload size on a small heap
SENSOR = "sht4x"


def _read_file(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class App:
    def __init__(self, cfg: dict, board, sensor) -> None:
        self.cfg = cfg
        self.device_id: str = cfg["device_id"]
        self.board = board
        self.sensor = sensor
        self.queue = SampleQueue()
        self.uptime = clock.Uptime()
        self.client: "MQTTClient | None" = None
        self.online = asyncio.Event()
        self.queued = asyncio.Event()
        self.reconnects = 0
        self.faults: dict = {}  # "sht4x:crc" -> count since the last health report
        self.heap_min_free = board.free_heap()
        self.clock_synced = False
        self.reset_cause = board.reset_cause()
        self.published = 0

    # -- sampling ------------------------------------------------------------------
    def sample_once(self) -> None:
        try:
            t, rh = self.sensor.measure()
        except SHT4xError as e:
            key = SENSOR + ":" + e.kind
            self.faults[key] = self.faults.get(key, 0) + 1
            log("sensor fault:", e)
            try:
                self.sensor.soft_reset()  # often clears a latched bus state
            except SHT4xError:
                pass
            return
        self.queue.push(clock.unix_time(), t, rh)
        self.queued.set()

    async def sampler(self) -> None:
        interval_ms = self.cfg["sample_interval_s"] * 1000
        while True:
            try:
                self.sample_once()
            except Exception as e:  # e.g. MemoryError: skip this sample, keep sampling
                log("sample failed:", repr(e))
            self.track_heap()
            await asyncio.sleep_ms(interval_ms)

    def track_heap(self) -> None:
        free = self.board.free_heap()
        if free < self.heap_min_free:
            self.heap_min_free = free

    # -- publishing ----------------------------------------------------------------
    def build_up_pack(self, items: list) -> bytes:
        bt = items[0][0]
        pack = Pack(self.device_id, bt)
        for ts, t, rh in items:
            pack.add("temperature", t, CEL, ts - bt)
            pack.add("humidity", rh, RH, ts - bt)
        return pack.encode()

    async def sender(self) -> None:
        up = topics.device_topic(self.device_id, topics.UP)
        while True:
            if not len(self.queue):
                self.queued.clear()
                await self.queued.wait()
                continue
            if not self.online.is_set():
                await self.online.wait()
                continue
            client = self.client
            if client is None:
                self.online.clear()
                continue
            items = self.queue.peek(MAX_BATCH)
            payload = self.build_up_pack(items)
            try:
                await client.publish(up, payload, qos=1)
            except (MQTTError, OSError) as e:
                log("publish failed:", e)
                client.close("publish failed")
                self.online.clear()
                continue
            # Only a PUBACK makes a reading "sent".
            self.queue.drop(len(items))
            self.published += len(items)
            del payload
            gc.collect()

    def build_health_pack(self) -> bytes:
        pack = Pack(self.device_id, clock.unix_time())
        self.track_heap()
        pack.add("uptime", self.uptime.seconds(), "s")
        pack.add("heap_free", self.board.free_heap(), "B")
        pack.add("heap_min_free", self.heap_min_free, "B")
        rssi = self.board.rssi()
        if rssi is not None:
            pack.add("rssi", rssi)
        pack.add("reset_cause", self.reset_cause)
        pack.add("fw_version", FW_VERSION)
        pack.add("config_version", self.cfg["version"])
        pack.add("queue_depth", len(self.queue))
        pack.add("evicted", self.queue.evicted)
        pack.add("reconnects", self.reconnects)
        pack.add("sensor_faults", ",".join(sorted(self.faults)))
        pack.add("clock_synced", self.clock_synced)
        return pack.encode()

    async def health(self) -> None:
        topic = topics.device_topic(self.device_id, topics.HEALTH)
        while True:
            if not self.online.is_set():
                await self.online.wait()
            client = self.client
            try:
                if client is None:
                    raise MQTTError("no client")
                await client.publish(topic, self.build_health_pack(), qos=1)
                self.faults = {}  # reported: start counting afresh
            except (MQTTError, OSError) as e:
                log("health publish failed:", e)
            gc.collect()
            await asyncio.sleep_ms(self.cfg["health_interval_s"] * 1000)

    # -- connection ----------------------------------------------------------------
    async def connect_once(self) -> MQTTClient:
        if not self.board.wifi_connected():
            await self.board.connect_wifi(self.cfg["wifi"]["ssid"], self.cfg["wifi"]["password"])
            self.clock_synced = self.board.sync_clock()
        m = self.cfg["mqtt"]
        did = self.device_id
        status = topics.device_topic(did, topics.STATUS)
        client = MQTTClient(
            did,
            keepalive=m["keepalive"],
            username=m["username"],
            password=m["password"],
            will=(status, topics.status_payload(topics.STATE_OFFLINE), True, 1),
            clean_session=m["clean_session"],
        )
        ctx = None
        if m["tls"]:
            from cs.tlsctx import make_tls_context  # only TLS devices pay for it

            ctx = make_tls_context(_read_file(m["ca"]), _read_file(m["cert"]), _read_file(m["key"]))
        await client.connect(Transport(m["host"], m["port"], ctx))
        try:
            await client.publish(status, topics.status_payload(topics.STATE_ONLINE), True, 1)
            await client.subscribe(topics.device_topic(did, topics.CMD), 1)
            await client.subscribe(topics.device_topic(did, topics.CONFIG), 1)
        except Exception:
            client.close("setup failed")
            raise
        return client

    async def connection(self) -> None:
        backoff = Backoff()
        first = True
        while True:
            try:
                client = await self.connect_once()
            except Exception as e:  # Wi-Fi, DNS, TCP, TLS or broker refusal: all retried
                delay = backoff.next_ms()
                log("connect failed:", e, "- retry in %d ms" % delay)
                await asyncio.sleep_ms(delay)
                continue
            backoff.reset()
            if not first:
                self.reconnects += 1
            first = False
            self.client = client
            self.clock_synced = clock.is_synced()
            self.online.set()
            self.board.led(True)
            log("online as", self.device_id)
            await client.down.wait()
            self.online.clear()
            self.board.led(False)
            log("connection lost:", client.error)
            client.close()
            await asyncio.sleep_ms(backoff.next_ms())

    async def run(self) -> None:
        # Received cmd/config messages wait in client.inbox (bounded) until the
        # command handler lands; nothing here consumes them yet.
        for coro in (self.sampler(), self.sender(), self.health()):
            asyncio.create_task(coro)
        await self.connection()


def main(cfg: dict, profile: dict) -> None:
    """Run forever with a validated config and board profile (see cs.config)."""
    from cs.board import Board

    board = Board(profile)
    sensor = SHT4x(board.i2c(), board.sensor_addr(SENSOR, 0x44))
    log("boot: fw", FW_VERSION, "device", cfg["device_id"], "reset", board.reset_cause())
    gc.collect()
    asyncio.run(App(cfg, board, sensor).run())
