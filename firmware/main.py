"""Runs after boot.py.

A file named `maintenance` keeps the app stopped so a technician's mpremote
session is not disturbed. Config is validated before the app is imported and
its module unloaded afterwards, so validation code never shares the heap with
the running app.
"""

import gc
import os
import sys


def _maintenance() -> bool:
    try:
        os.stat("maintenance")
        return True
    except OSError:
        return False


if _maintenance():
    print("maintenance mode: app not started (delete 'maintenance' to resume)")
else:
    # Load asyncio's lazily imported parts while the heap is still unfragmented.
    import asyncio

    asyncio.Event, asyncio.wait_for_ms, asyncio.open_connection  # noqa: B018

    from cs import config

    settings = config.load_or_exit()
    del config
    sys.modules.pop("cs.config", None)
    delattr(sys.modules["cs"], "config")
    gc.collect()
    from cs import app

    app.main(*settings)
