"""The update boot: with the whole heap to itself (no sampler, no queue, no app tasks), check
the saved offer's signature, download, verify and install, then hard-reset.

Entered from main.py when ota/job.json holds an accepted offer (cs.ota.update_due). Progress
goes out on `ota/progress` over a second, clean MQTT session (client id "<device>-ota"), so
commands queued in the node's own persistent session are neither taken nor lost. Whatever
happens, the node leaves this boot by a hard reset (never a deep sleep): into the new app or
image on trial, or back into the running one with the outcome in ota/report.json.
"""

import asyncio
import gc
import json

from cs import FW_VERSION, ota, topics, unload
from cs.log import log
from cs.mqtt import MQTTClient, Transport
from cs.ota import files

WDT_MS = 120000  # fed after every chunk; a stuck update resets and resumes


class Reporter:
    def __init__(self, cfg: dict, board, job: dict) -> None:
        self.cfg = cfg
        self.board = board
        self.job = job
        self.client: "MQTTClient | None" = None
        self.topic = topics.device_topic(cfg["device_id"], ota.PROGRESS)

    async def connect(self) -> None:
        m = self.cfg["mqtt"]
        ctx = None
        if m["tls"]:
            from cs.link import _read_file
            from cs.tlsctx import make_tls_context

            ctx = make_tls_context(_read_file(m["ca"]), _read_file(m["cert"]), _read_file(m["key"]))
        client = MQTTClient(self.cfg["device_id"] + "-ota", keepalive=m["keepalive"], username=m["username"],
                            password=m["password"], clean_session=True)
        try:
            await client.connect(Transport(m["host"], m["port"], ctx))
            self.client = client
        except Exception as e:  # progress is a courtesy: the update goes on without it
            log("ota: no broker for progress:", repr(e))

    async def __call__(self, state: str, **extra) -> None:
        client = self.client
        if client is None:
            return
        try:
            from cs.ota.report import progress_payload

            payload = progress_payload(state, self.job, FW_VERSION, self.board, extra)
            await client.publish(self.topic, payload, False, 1)
        except Exception as e:
            log("ota: progress not sent:", repr(e))
            self.client = None


def _restart(board, why: str, **rtc_extra) -> None:
    try:
        rtc = json.loads(board.rtc_memory() or "{}")
    except ValueError:
        rtc = {}
    rtc["why"] = why
    rtc.update(rtc_extra)
    board.rtc_memory(json.dumps(rtc).encode())
    board.reset()


async def _update(cfg: dict, board, wdt, root: str, job: dict, report: Reporter) -> None:
    from cs.ota import install, manifest

    if not job.get("ok"):
        m = manifest.check(job, manifest.trust(root))
        job["ok"] = 1  # verified once: a resumed download does not check again
        files.write_json(root + "ota/job.json", job)
        unload("cs.crypto.ed25519", "cs.crypto.sha512")
        gc.collect()
    else:
        m = json.loads(job["manifest"])
    url = job.get("url")
    if not isinstance(url, str):
        raise manifest.Refused("offer has no download URL")

    async def progress(state, pct):
        wdt.feed()
        await report(state, pct=pct)

    signed = {k: m[k] for k in ("floor", "keys") if k in m}
    from cs import board as hw
    if m["kind"] == "app":
        blob = await install.download_app(root, m, url, progress)
        await report("installing")
        wdt.feed()
        folder = install.unpack_app(root, m, blob, job["manifest"])
        install.switch_app(root, folder, m["version"], job.get("id"), FW_VERSION)
    else:
        part = hw.app_partition(True)
        await install.download_image(root, m, url, job.get("id"), part, progress)
        await report("installing")
        trial = {"id": job.get("id"), "ver": m["version"], "slot": part.info()[4], "state": "staged", "m": signed}
        files.write_json(root + "ota/image.json", trial)
        part.set_boot()
        trial["state"] = "set"
        files.write_json(root + "ota/image.json", trial)
    files.remove(root + "ota/job.json")
    await report("rebooting")


def main(cfg: dict, profile: dict) -> None:
    from cs.board import Board, fs_root
    from cs.ota.manifest import Refused

    board = Board(profile)
    wdt = board.watchdog(WDT_MS)
    root = fs_root()
    job = files.read_json(root + "ota/job.json") or {}
    log("ota: update boot for", job.get("kind"), job.get("version"), "heap free", gc.mem_free())
    from cs import board as hw

    report = Reporter(cfg, hw, {"id": job.get("id"), "kind": job.get("kind"), "version": job.get("version")})

    async def run() -> None:
        try:
            await board.connect_wifi(cfg["wifi"]["ssid"], cfg["wifi"]["password"])
            board.sync_clock()  # TLS certificates need the time
        except Exception as e:
            log("ota: network:", repr(e))
        await report.connect()
        try:
            await _update(cfg, board, wdt, root, job, report)
        finally:
            client = report.client
            if client is not None:
                await client.disconnect()

    outcome: dict = {}
    try:
        asyncio.run(run())
    except Refused as e:
        for name in ("job.json", "dl.bin", "dl.json"):
            files.remove(root + "ota/" + name)
        outcome = {"state": "failed", "reason": str(e)}
        _note(root, job, outcome)
        files.refuse(root, job.get("id"))
        _restart(board, "ota")
    except Exception as e:  # the network, the heap, a full flash: keep what we have, try later
        job["hold"] = 1
        files.write_json(root + "ota/job.json", job)
        outcome = {"state": "failed", "reason": "will retry: %r" % e, "retry": True}
        _note(root, job, outcome)
        _restart(board, "ota")
    _restart(board, "ota")


def _note(root: str, job: dict, outcome: dict) -> None:
    log("ota: update", outcome["state"], outcome["reason"])
    outcome.update({"id": job.get("id"), "kind": job.get("kind"), "version": job.get("version")})
    files.write_json(root + "ota/report.json", outcome)
