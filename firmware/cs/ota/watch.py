"""Mains node task: hand over to cs.ota.trial only when a boot left OTA work.

Offers themselves arrive through the inbox (cs.ota.intake). This task, once online and
settled, reports outcomes decided at boot, runs a trial's self-test, and retries a held
update now and then. A trial that cannot get online resets, so its boot counter runs out.
"""

import asyncio

from cs import ota
from cs.log import log

RETRY_MS = 600000  # an update held after network failures is tried again this often
TRIAL_MS = 300000  # a trial boot that cannot reach the broker this long resets (and counts)
SETTLE_MS = 2000  # let the node's first publishes go out before loading more code


async def task(app) -> None:
    from cs.board import fs_root

    root = fs_root()
    first = True
    while True:
        if first and ota.pending(root):
            try:
                await asyncio.wait_for_ms(app.online.wait(), TRIAL_MS)
            except asyncio.TimeoutError:
                app.node.restart("ota-offline")
        await app.online.wait()
        await asyncio.sleep_ms(SETTLE_MS)
        client = app.client
        if client is not None and ota.pending(root):
            import gc
            import sys

            gc.collect()
            try:
                from cs.ota import trial

                if first:
                    await trial.after_boot(app.node, client, root)
                else:
                    await trial.resume(app.node, client, root)
            except Exception as e:  # a lost connection, the heap: try again later
                log("ota:", repr(e))
            for name in ("cs.ota.trial", "cs.ota.report"):  # give the heap back
                sys.modules.pop(name, None)
            gc.collect()
        first = False
        await asyncio.sleep_ms(RETRY_MS)
