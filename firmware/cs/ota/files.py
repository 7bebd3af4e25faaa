"""Small filesystem helpers for the OTA area; every replacement is write-then-rename."""

import json
import os


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path: str, obj) -> None:
    """Replace `path` atomically: littlefs renames are all-or-nothing across power loss."""
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(path + ".tmp", path)


def exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def size(path: str) -> int:
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def makedirs(path: str) -> None:
    cur = ""
    for part in path.split("/"):
        if not part:
            cur = "/" if not cur else cur
            continue
        cur = cur + part if cur.endswith("/") or not cur else cur + "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass


def rmtree(path: str) -> None:
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == 0x4000:
            rmtree(child)
        else:
            remove(child)
    try:
        os.rmdir(path)
    except OSError:
        pass


REFUSED = "ota/refused"  # job ids this device will not try again (failed or refused), newest last


def refuse(root: str, job_id) -> None:
    if job_id is None:
        return
    ids = read_json(root + REFUSED) or []
    if job_id not in ids:
        write_json(root + REFUSED, (ids + [job_id])[-4:])


def refused(root: str, job_id) -> bool:
    return job_id is not None and job_id in (read_json(root + REFUSED) or [])
