"""Take an update offer (topic `ota`, retained) while the node runs: a few checks, save it
to ota/job.json, restart into the update boot (cs.ota.update). Deliberately tiny: it shares
the heap with the running node, and the offer comes back on every subscribe.
"""

import json

from cs import FW_VERSION
from cs.log import log
from cs.ota import files


async def offer(node, client, payload) -> None:
    if not payload:
        return  # offer withdrawn
    try:
        job = json.loads(payload)
        kind, version, oid = job["kind"], job["version"], job.get("id")
    except (ValueError, KeyError, TypeError):
        log("ota: unreadable offer ignored")
        return
    from cs.board import fs_root

    root = fs_root()
    if files.exists(root + "ota/image.json") or (files.read_json(root + "ota/app") or {}).get("trial"):
        return  # one update at a time: the running trial settles first
    if kind == "image":
        from cs import board
        from cs.ota.report import image_version

        running = image_version(board)
    else:
        running = FW_VERSION
    if version == running or files.refused(root, oid):
        return  # running it already, or it failed or was refused here before
    saved = files.read_json(root + "ota/job.json")
    if saved and saved.get("manifest") == job.get("manifest") and saved.get("hold"):
        return  # failed for network reasons: cs.ota.trial retries it later
    files.makedirs(root + "ota")
    files.write_json(root + "ota/job.json", job)
    log("ota: offer", oid, "for", kind, version, "accepted; restarting to update")
    await client.disconnect()
    node.restart("ota")
