"""Mains node: hand over to cs.ota.trial only when a boot left OTA work.

Offers themselves arrive through the inbox (cs.ota.intake). The app calls `check` once
online and settled, then every cs.app.OTA_RETRY_MS, loading this module only for the call: it reports
outcomes decided at boot, runs a trial's self-test, and retries a held update. A trial
that cannot get online resets, so its boot counter runs out.
"""

import asyncio
import gc

from cs import ota, unload
from cs.log import log

TRIAL_MS = 300000  # a trial boot that cannot reach the broker this long resets (and counts)
SETTLE_MS = 2000  # let the node's first publishes go out before loading more code


async def check(app, first: bool) -> None:
    from cs.board import fs_root

    root = fs_root()
    if first and ota.pending(root):
        try:
            await asyncio.wait_for_ms(app.online.wait(), TRIAL_MS)
        except asyncio.TimeoutError:
            app.node.restart("ota-offline")
    await app.online.wait()
    await asyncio.sleep_ms(SETTLE_MS)
    client = app.client
    if client is None or not ota.pending(root):
        return
    gc.collect()
    try:
        from cs.ota import trial

        if first:
            await trial.after_boot(app.node, client, root)
        else:
            await trial.resume(app.node, client, root)
    except Exception as e:  # a lost connection, the heap: try again later
        log("ota:", repr(e))
    unload("cs.ota.trial", "cs.ota.report")  # give the heap back
