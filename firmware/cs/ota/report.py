"""Progress payloads (docs/schemas/ota-progress.schema.json), the running image's version,
and what a confirmed release changes in the trust store."""

from cs.ota import version_tuple


def image_version(board) -> str:
    """Version of the running firmware image (its esp_app_desc_t), or "" if unknown."""
    try:
        part = board.app_partition()
        buf = bytearray(80)  # image header, segment header and the start of esp_app_desc_t
        part.readblocks(0, buf)
    except Exception:  # no OTA partition table (e.g. a plain build)
        return ""
    if buf[0] != 0xE9 or buf[32:36] != b"\x32\x54\xcd\xab":
        return ""
    return bytes(buf[48:80]).split(b"\0")[0].decode()


def progress_payload(state: str, job, app_version: str, board, extra) -> bytes:
    """docs/schemas/ota-progress.schema.json"""
    import json

    msg = {"sv": 1, "state": state, "app": app_version, "image": image_version(board)}
    if job:
        for k in ("id", "kind", "version"):
            if job.get(k) is not None:
                msg[k] = job[k]
    for k in ("pct", "reason", "step", "retry"):
        if extra.get(k) is not None:
            msg[k] = extra[k]
    print("ota:", state, extra.get("reason") or extra.get("pct", ""))
    return json.dumps(msg).encode()


def accept(root: str, m: dict) -> None:
    """After a confirmed install: raise the floor, adopt a rotated key set (both signed)."""
    from cs.ota.files import read_json, write_json

    trusted = read_json(root + "ota/trust.json") or {}
    changed = False
    floor = m.get("floor")
    if isinstance(floor, str) and version_tuple(floor) > version_tuple(trusted.get("floor") or "0"):
        trusted["floor"] = floor
        changed = True
    keys = m.get("keys")
    if isinstance(keys, dict) and keys and keys != trusted.get("keys"):
        trusted["keys"] = keys
        changed = True
    if changed:
        write_json(root + "ota/trust.json", trusted)
