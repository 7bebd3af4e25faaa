"""After a boot with OTA work: publish an outcome decided at boot (rollback, refusal), settle
a trial with the self-test, retry a held update. Loaded only then, and unloaded after: it
shares the heap with the running node.

Self-test (docs/ota.md): the broker is connected, one QoS 1 publish is acknowledged (the
"verifying" report itself) and the sensors give a reading. Only then is a new app's pointer
made permanent, or a new firmware image marked valid.
"""

import json

from cs import FW_VERSION, ota, topics
from cs.ota import files


def _payload(state: str, job: dict, extra: dict, board=None) -> bytes:
    msg = {"sv": 1, "state": state, "app": FW_VERSION}
    for k in ("id", "kind", "version", "reason", "step", "retry"):
        v = extra.get(k, job.get(k))
        if v is not None:
            msg[k] = v
    if board is not None:  # image jobs say which image runs (costs a flash read)
        from cs.ota.report import image_version

        msg["image"] = image_version(board)
    print("ota:", state, msg.get("reason", ""))
    return json.dumps(msg).encode()


async def after_boot(node, client, root: str) -> None:
    from cs import board

    topic = topics.device_topic(node.device_id, ota.PROGRESS)
    await _told(client, topic, root)
    app = files.read_json(root + "ota/app")
    if not (app and app.get("trial")):
        app = None
    image = files.read_json(root + "ota/image.json")
    t = image or app
    if t is not None:
        job = {"id": t.get("id"), "kind": "image" if image else "app", "version": t.get("ver")}
        hw = board if image else None
        await client.publish(topic, _payload("verifying", job, {"step": "self-test"}, hw), False, 1)
        if not node.sensors.sample(True):
            # Not good: reset; the boot counter (app) or the bootloader (image) undoes it.
            await client.publish(topic, _payload("verifying", job, {"reason": "no sensor reading"}, hw), False, 1)
            node.restart("ota-selftest")
            return
        if image:
            board.mark_image_valid()
            # The outcome outlives a power cut here: it is reported from report.json.
            files.write_json(root + "ota/report.json", dict(job, state="succeeded"))
            files.remove(root + "ota/image.json")
            files.remove(root + ota.IMAGE_CUTS)
        else:
            # One atomic rename confirms the app and notes that its success is unreported.
            keep = {"cur": app["cur"], "ver": app["ver"], "prev": app.get("prev"), "pver": app.get("pver"), "told": job}
            files.write_json(root + "ota/app", keep)
            node.rtc.pop(ota.RTC_BOOTS, None)
        signed = t.get("m") or files.read_json(root + (app or {}).get("cur", "-") + "/manifest.json")
        if signed and (signed.get("floor") or signed.get("keys")):
            from cs.ota.report import accept

            accept(root, signed)  # raise the anti-rollback floor, adopt rotated keys
        files.remove(root + "ota/job.json")
        node.save_rtc()
        await _told(client, topic, root)


async def _told(client, topic: str, root: str) -> None:
    """Publish outcomes kept on flash, then forget them (at least once: a cut repeats them)."""
    told = files.read_json(root + "ota/report.json")
    if told:
        from cs import board

        await client.publish(topic, _payload(told["state"], told, {}, board if told.get("kind") == "image" else None), False, 1)
        files.remove(root + "ota/report.json")
    app = files.read_json(root + "ota/app")
    if app and app.get("told"):
        await client.publish(topic, _payload("succeeded", app.pop("told"), {}), False, 1)
        files.write_json(root + "ota/app", app)
        _tidy(root, app)


def _tidy(root: str, app: dict) -> None:
    """Keep the active app and the one to go back to; free the rest of the flash."""
    import os

    keep = (app.get("cur"), app.get("prev"))
    try:
        names = [e[0] for e in os.ilistdir(root + "apps")]
    except OSError:
        names = []
    for name in names:
        if "apps/" + name not in keep:
            files.rmtree(root + "apps/" + name)
    files.remove(root + "ota/dl.bin")


async def resume(node, client, root: str) -> None:
    """Retry an update held after network failures; drop one that a power cut left done."""
    job = files.read_json(root + "ota/job.json")
    if not job or files.exists(root + "ota/image.json") or (files.read_json(root + "ota/app") or {}).get("trial"):
        return
    if job.get("version") == FW_VERSION and job.get("kind") == "app":
        files.remove(root + "ota/job.json")
        return
    if not job.get("hold"):
        return
    job.pop("hold", None)
    files.write_json(root + "ota/job.json", job)
    await client.disconnect()
    node.restart("ota")
