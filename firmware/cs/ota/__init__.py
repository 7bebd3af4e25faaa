"""Over-the-air updates: signed app bundles and firmware images, with trial boots.

Files in the OTA area (the filesystem root on the device, `board.fs_root()`):
  ota/trust.json   trusted release keys {"keys": {kid: hex}, "floor": "x.y.z"} (provisioning)
  ota/app          pointer to the active app folder (JSON; replaced by an atomic rename)
  ota/job.json     the verified offer being downloaded or installed (for resuming)
  ota/dl.bin       the app bundle being downloaded (its size is the resume position)
  ota/image.json   a firmware image on trial: which slot must be running, and the job
  ota/report.json  an outcome decided at boot (rollback), published once online
  ota/cuts.json    power cuts that rolled the image of job "id" back during its trial
  apps/<version>/  installed app bundles; apps/<version>.new/ while being staged
docs/ota.md describes the whole update path.
"""

PROGRESS = "ota/progress"  # = cs.topics.OTA_PROGRESS

MAX_TRIAL_BOOTS = 3  # a new app that has not passed its self-test after this many boots is undone
MAX_IMAGE_CUTS = 3  # rollbacks after a power cut during an image's trial before giving up
IMAGE_CUTS = "ota/cuts.json"
RTC_BOOTS = "otb"  # trial boot counter, in the JSON the node keeps in RTC memory
RTC_CRASH = "why"  # the node's own "deliberate reset" key; "crash" marks an app that died


def version_tuple(v: str) -> tuple:
    out = []
    for part in v.split("+")[0].split("-")[0].split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def pending(root: str) -> bool:
    """Anything for cs.ota.trial to do (a trial, an outcome to report, a download to resume)?
    Checked without loading it, so a node with no update going costs no heap."""
    import os

    for name in ("app", "image.json", "report.json", "job.json"):
        try:
            os.stat(root + "ota/" + name)
        except OSError:
            continue
        if name != "app":
            return True
        from cs.ota.files import read_json

        p = read_json(root + "ota/app") or {}
        if p.get("trial") or p.get("told"):
            return True
    return False


def update_due(root: str) -> bool:
    """Boot into the updater? An accepted offer waits and no trial is running."""
    from cs.ota.files import exists, read_json

    job = read_json(root + "ota/job.json")
    if not job or job.get("hold") or exists(root + "ota/image.json"):
        return False
    return not (read_json(root + "ota/app") or {}).get("trial")
