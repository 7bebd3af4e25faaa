"""Commands on `cmd` and desired config on `config`; results on `cmd/ack`.

docs/schemas/command*.json: {"sv":1,"id":...,"op":...,"args":{}} in,
{"sv":1,"id":...,"ok":bool,"result"|"error":...} out. Anything malformed or unknown
gets an error ack; nothing here may stop the node. Loaded only when a message arrives.
"""

import json

from cs import topics, unload
from cs.log import log

OPS = ("reboot", "sample-now", "identify", "set-config", "enter-maintenance")
MAINTENANCE_FLAG = "maintenance"  # main.py keeps the app stopped while this file exists


async def ack(node, client, cid, ok: bool, detail=None) -> None:
    msg = {"sv": topics.SCHEMA_VERSION, "id": cid, "ok": ok}
    msg["result" if ok else "error"] = detail
    if ok and detail is None:
        del msg["result"]
    await client.publish(topics.device_topic(node.device_id, topics.CMD_ACK), json.dumps(msg).encode(), False, 1)


def apply_config(node, desired) -> dict:
    """Validate `desired` over the running config and save it; raises ConfigError."""
    import os

    from cs import config

    try:
        new = config.update(node.cfg, desired)
        with open("config.json.tmp", "w") as f:
            json.dump(new, f)
        os.rename("config.json.tmp", "config.json")  # atomic: the last good one until here
    finally:
        unload("cs.config")  # validation code leaves the heap again
    return new


async def handle(node, client, topic: str, payload: bytes) -> None:
    if topic.endswith("/" + topics.CONFIG):
        await _config(node, client, payload)
        return
    cid = None
    try:
        cmd = json.loads(payload)
        cid = cmd.get("id") if isinstance(cmd, dict) else None
        if not isinstance(cid, str) or not cid:
            raise ValueError("command needs a string 'id'")
        if cmd.get("sv") != topics.SCHEMA_VERSION:
            raise ValueError("unsupported schema version %r" % cmd.get("sv"))
        op = cmd.get("op")
        args = cmd.get("args") or {}
        if op not in OPS:
            raise ValueError("unknown op %r" % op)
        if not isinstance(args, dict):
            raise ValueError("'args' must be an object")
    except Exception as e:  # malformed JSON, wrong types: refuse, never crash
        await ack(node, client, cid, False, str(e) or repr(e))
        return
    seen = node.rtc.setdefault("ids", [])
    if cid in seen:
        await ack(node, client, cid, True, {"duplicate": True})  # a redelivery: do not run twice
        return
    seen.append(cid)
    del seen[:-4]
    log("command", op, cid)
    try:
        await _run(node, client, cid, op, args)
    except Exception as e:
        await ack(node, client, cid, False, "%s failed: %r" % (op, e))


async def _run(node, client, cid, op: str, args: dict) -> None:
    if op == "sample-now":
        values = node.sample()
        await ack(node, client, cid, True, {"values": values, "sensor_faults": node.sensors.faults()})
        node.kick()
    elif op == "identify":
        secs = args.get("seconds", 5)
        if not isinstance(secs, int) or not 1 <= secs <= 60:
            raise ValueError("'seconds' must be 1..60")
        await ack(node, client, cid, True)
        await node.blink(secs)
    elif op == "set-config":
        try:
            new = apply_config(node, args.get("config", args))
        except Exception as e:
            await ack(node, client, cid, False, "config refused: %s" % e)
            return
        await ack(node, client, cid, True, {"version": new["version"], "restart": True})
        await client.disconnect()
        node.restart("config")
    elif op == "reboot":
        await ack(node, client, cid, True)
        await client.disconnect()
        node.restart("command")
    elif op == "enter-maintenance":
        with open(MAINTENANCE_FLAG, "w") as f:
            f.write("entered by command %s\n" % cid)
        await ack(node, client, cid, True, {"restart": True})
        await client.disconnect()
        node.restart("maintenance")


async def _config(node, client, payload: bytes) -> None:
    """Retained desired config: apply a newer version, or say why not (once per version)."""
    if not payload:
        return  # the retained config was cleared (the fleet retired this device id)
    try:
        desired = json.loads(payload)
        version = desired["version"]
    except Exception as e:
        await ack(node, client, "config", False, "config message unreadable: %r" % e)
        return
    if not isinstance(version, int) or version <= node.cfg["version"] or version == node.rtc.get("cv_no"):
        return  # already running it (the retained message comes back on every subscribe)
    cid = "config:%d" % version
    try:
        apply_config(node, desired)
    except Exception as e:
        node.rtc["cv_no"] = version
        node.save_rtc()
        await ack(node, client, cid, False, "config refused, keeping version %d: %s" % (node.cfg["version"], e))
        return
    await ack(node, client, cid, True, {"version": version, "restart": True})
    await client.disconnect()
    node.restart("config")
