"""Runs after boot.py.

Maintenance mode keeps the app (and so the watchdog) stopped, so a technician's
mpremote session is not disturbed: a file named `maintenance` (written by the
enter-maintenance command, deleted by the technician) or the profile's
maintenance button held at boot. Config is validated before the app is imported
and its module unloaded afterwards, so validation code never shares the heap with
the running app.
"""

import gc
import os
import sys


def _flag() -> bool:
    try:
        os.stat("maintenance")
        return True
    except OSError:
        return False


if _flag():
    print("maintenance mode: app not started (delete 'maintenance' and reset to resume)")
else:
    # The firmware's own loader picks the app folder (a newer release, or this one) and
    # counts trial boots; a new app that dies here is undone on the next boot.
    from cs.ota import loader

    trial = loader.run()
    try:
        # Load asyncio's lazily imported parts while the heap is still unfragmented.
        import asyncio

        asyncio.Event, asyncio.wait_for_ms, asyncio.open_connection  # noqa: B018

        from cs import config

        cfg, profile = config.load_or_exit()
        del config
        sys.modules.pop("cs.config", None)
        delattr(sys.modules["cs"], "config")
        gc.collect()
        from cs.board import maintenance_pin_held

        if loader.update_due():
            from cs.ota import update

            update.main(cfg, profile)  # ends in a reset
        if maintenance_pin_held(profile):
            print("maintenance mode: button held at boot, app not started")
        elif profile["power"] == "battery":
            from cs import cycle

            cycle.main(cfg, profile)
        else:
            from cs import app

            app.main(cfg, profile)
    except SystemExit as e:
        # Status 2: config refused (see config.load_or_exit). From a new app on trial that
        # is a failed release, not a reason to stop.
        if trial and e.args and e.args[0] == 2:
            loader.crashed("the new app refused the configuration")
        raise
    except Exception as e:
        loader.crashed(e)
