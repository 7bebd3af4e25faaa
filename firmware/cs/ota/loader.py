"""Runs first at every boot, from the firmware's own (never updated) copy of this module:
puts the active app folder on sys.path, and counts trial boots of a new release.

A new app is on trial until its self-test passes (cs.ota.trial). A trial that resets by
watchdog, crashes, or boots MAX_TRIAL_BOOTS times without passing is undone here, by
swapping the pointer back: nothing of the new release runs before this decision. The
counter lives in RTC memory (kept through resets, lost on power-on, so a power cut merely
restarts the count). A firmware image on trial is the bootloader's business (rollback
unless marked valid); here we only notice that it happened and say so.
"""

import json
import sys

from cs import ota
from cs.ota import files


def _rtc(board) -> dict:
    try:
        return json.loads(board.boot_info()[1] or "{}")
    except ValueError:
        return {}


def run() -> bool:
    """Choose the app folder for this boot; True if it is a new app on trial.
    Called once, before any other `cs` import."""
    from cs import board

    global _root
    root = _root = board.fs_root()
    cause = board.boot_info()[0]
    rtc = _rtc(board)
    _image_boot(board, root, cause)
    pointer = files.read_json(root + "ota/app")
    if pointer and pointer.get("trial"):
        boots = rtc.get(ota.RTC_BOOTS, 0) + 1
        crashed = rtc.get(ota.RTC_CRASH) == "crash"
        why = None
        if cause == "watchdog":
            why = "watchdog reset during the trial boot"
        elif crashed:
            why = "the new app crashed: " + rtc.get("err", "?")
        elif boots > ota.MAX_TRIAL_BOOTS:
            why = "no successful self-test after %d boots" % ota.MAX_TRIAL_BOOTS
        if why is not None:
            print("ota: undoing app %s (%s)" % (pointer.get("ver"), why))
            files.write_json(root + "ota/report.json", _outcome(pointer, "failed", why))
            files.refuse(root, pointer.get("id"))  # the offer stays retained: never again
            pointer = _revert(root, pointer)
            rtc.pop(ota.RTC_BOOTS, None)
            rtc.pop(ota.RTC_CRASH, None)
        else:
            rtc[ota.RTC_BOOTS] = boots
        rtc.pop("err", None)
        board.set_rtc(json.dumps(rtc).encode())
    folder = pointer.get("cur") if pointer else None
    if folder and files.exists(root + folder + "/manifest.json"):
        sys.path.insert(0, root + folder)
    elif pointer:
        pointer = None  # the folder is gone or incomplete: run the firmware's own app
    # Modules imported so far come from the firmware's own copy: forget them, so the rest
    # of the boot imports the active app.
    for name in list(sys.modules):
        if name == "cs" or name.startswith("cs."):
            del sys.modules[name]
    import gc

    gc.collect()
    return bool(pointer and pointer.get("trial"))


def _outcome(pointer: dict, state: str, reason) -> dict:
    return {"id": pointer.get("id"), "kind": "app", "version": pointer.get("ver"), "state": state, "reason": reason}


def _revert(root: str, pointer: dict):
    prev = pointer.get("prev")
    if prev and files.exists(root + prev + "/manifest.json"):
        back = {"cur": prev, "ver": pointer.get("pver")}
        files.write_json(root + "ota/app", back)
        return back
    files.remove(root + "ota/app")  # back to the app that came with the firmware
    return None


def _image_boot(board, root: str, cause: str) -> None:
    """Did an installed firmware image start (it is then on trial), or was it refused?

    ota/image.json goes "staged" (before set_boot) -> "set" (after) -> "booted" (first
    boot of the new image). The bootloader undoes an image that resets before it is
    marked valid, so: running the old slot after "set" or "booted" means a rollback; after
    "staged" it means set_boot never happened (power cut), and the offer is simply retried.
    A rollback that follows a power cut is not the image's fault: the retained offer is
    taken again (up to ota.MAX_IMAGE_CUTS times, as a brownout also reads as power-on).
    """
    trial = files.read_json(root + "ota/image.json")
    if not trial:
        return
    running = board.running_slot()
    step = trial.get("state")
    if running == trial.get("slot"):
        if step != "booted":
            trial["state"] = "booted"
            files.write_json(root + "ota/image.json", trial)
        return
    if step == "staged":
        files.remove(root + "ota/image.json")
        return
    if cause == "power_on":
        cuts = files.read_json(root + ota.IMAGE_CUTS) or {}
        n = (cuts.get("n", 0) if cuts.get("id") == trial.get("id") else 0) + 1
        if n <= ota.MAX_IMAGE_CUTS:
            print("ota: image", trial.get("ver"), "rolled back after a power cut; taking the offer again")
            files.write_json(root + ota.IMAGE_CUTS, {"id": trial.get("id"), "n": n})
            files.remove(root + "ota/image.json")
            return
    files.remove(root + ota.IMAGE_CUTS)
    why = "rolled back by the bootloader: image did not %s" % (
        "start" if step == "set" else "pass its self-test before a reset"
    )
    print("ota: image", trial.get("ver"), why)
    files.refuse(root, trial.get("id"))
    files.write_json(
        root + "ota/report.json",
        {"id": trial.get("id"), "kind": "image", "version": trial.get("ver"), "state": "failed", "reason": why},
    )
    files.remove(root + "ota/image.json")


_root = ""


def update_due() -> bool:
    """An accepted offer waits for the update boot (see cs.ota.update)."""
    return ota.update_due(_root)
