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


def _unload(package: str) -> None:
    """Forget a package whose work is done (as cs.unload does: this file must not rely on
    what the active app bundle, maybe an older release, provides), so the app gets its heap
    back."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    parent, _, leaf = package.rpartition(".")
    if parent in sys.modules and hasattr(sys.modules[parent], leaf):
        delattr(sys.modules[parent], leaf)


# An app that dies at every boot would reset as fast as it boots: thousands of boots an
# hour, a battery flat within days, a broker hammered by reconnects. From the third crash
# in a row the node deep-sleeps before it tries again, a minute doubling up to an hour.
# The app clears the count once it has run well (cs.app, cs.cycle).
_CRASH_SLEEP_AFTER = 3
_CRASH_SLEEP_S = 60
_CRASH_SLEEP_MAX_S = 3600


def _crashed(err) -> None:
    """The app died: note it in RTC memory for the next boot's loader (which undoes a
    release on trial), count it, and reset, after a sleep when it keeps happening. Kept
    here, not in the unloaded loader."""
    import json

    from cs import board

    try:
        rtc = json.loads(board.boot_info()[1] or "{}")
    except ValueError:
        rtc = {}
    rtc["why"] = "crash"  # cs.ota.RTC_CRASH
    rtc["err"] = repr(err)[:80]
    n = rtc["crashes"] = rtc.get("crashes", 0) + 1
    board.set_rtc(json.dumps(rtc).encode())
    print("app crashed:", repr(err))
    try:
        sys.print_exception(err)
    except MemoryError:
        pass
    sleep = getattr(board, "deep_sleep", None)  # an older app bundle's board may lack it
    if n >= _CRASH_SLEEP_AFTER and sleep is not None:
        s = min(_CRASH_SLEEP_S << min(n - _CRASH_SLEEP_AFTER, 6), _CRASH_SLEEP_MAX_S)
        print("%d crashes in a row: sleeping %d s before the next try" % (n, s))
        sleep(s * 1000)
    board.hard_reset()


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
        _unload("cs.config")
        gc.collect()
        from cs.board import maintenance_pin_held

        if loader.update_due():
            from cs.ota import update

            update.main(cfg, profile)  # ends in a reset
        del loader
        _unload("cs.ota")  # OTA code loads again only when there is OTA work
        gc.collect()
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
            _crashed("the new app refused the configuration")
        raise
    except Exception as e:
        _crashed(e)
