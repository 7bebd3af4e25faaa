"""The second-stage bootloader's slot decision and image check, for simdev.partition.

Loaded only once an OTA image was ever set to boot (partitions/otadata.json exists), so
a virtual device that never took an image pays no heap for it.
"""

import json

from simdev import state
from simdev.partition import _APP_SIZE, _other, _otadata, _save_otadata, _slot_path


BOOT_LOG = "sim_boot.log"  # one line per slot decision: "<slot> <version> <project> <sha256>"


def image_info(label):
    """(version, project name, appended SHA-256 hex) of a verified image in the slot; None if
    it does not verify. ota_0 never written stands for the factory image: ("", "factory", "")."""
    import hashlib
    import struct

    try:
        f = open(_slot_path(label), "rb")
    except OSError:
        return ("", "factory", "") if label == "ota_0" else None
    with f:
        head = f.read(24)
        if len(head) < 24 or head[0] != 0xE9:
            return None
        h = hashlib.sha256(head)
        check = 0xEF
        desc = None
        for _ in range(head[1]):
            seg = f.read(8)
            if len(seg) < 8:
                return None
            h.update(seg)
            n = struct.unpack("<II", seg)[1]
            if n > _APP_SIZE:
                return None
            left = n
            while left:  # in pieces: the VM's heap is the device's
                data = f.read(min(left, 1024))
                if not data:
                    return None
                h.update(data)
                if desc is None:
                    desc = data[:256]
                for b in data:
                    check ^= b
                left -= len(data)
        pos = f.tell()
        pad = f.read(15 - pos % 16 + 1)
        if len(pad) < 15 - pos % 16 + 1 or pad[-1] != check:
            return None
        h.update(pad)
        digest = h.digest()
        if head[23] == 1 and f.read(32) != digest:
            return None
    if desc is None or len(desc) < 112 or struct.unpack("<I", desc[:4])[0] != 0xABCD5432:
        return None
    version = bytes(desc[16:48]).split(b"\0")[0].decode()
    project = bytes(desc[48:80]).split(b"\0")[0].decode()
    return version, project, "".join("%02x" % b for b in digest)


def note_boot(slot, info):
    """What this boot runs, for tests that check every boot ran a verified image."""
    with open(BOOT_LOG, "a") as f:
        f.write("%s %s %s %s\n" % ((slot,) + tuple(x or "-" for x in info)))


def decide():
    import machine

    d = _otadata()
    if machine.reset_cause() == machine.DEEPSLEEP_RESET:
        return d["running"]  # deep-sleep wake: no slot decision (see the module docstring)
    st = d["state"]
    slot = d["boot"]
    why = None
    if st.get(slot) == "pending":
        why = "rollback: %s booted without being marked valid" % slot
        st[slot] = "aborted"
    elif st.get(slot) in ("aborted", "invalid"):
        why = "%s is %s" % (slot, st[slot])
    elif image_info(slot) is None:
        why = "%s holds no valid image" % slot
        st[slot] = "invalid"
    if why is not None:
        print("SIM bootloader:", why, "- booting", _other(slot))
        slot = _other(slot)
        d["boot"] = slot
    elif st.get(slot) == "new":
        st[slot] = "pending"
    d["running"] = slot
    _save_otadata(d)
    info = image_info(slot)
    note_boot(slot, info or ("?", "unverified", ""))
    if info is not None and info[1].endswith("+panic"):
        print("SIM: image %s (%s) panics at start" % (info[0], slot))
        state.write_bytes(state.RESET_FILE, b"%d 0 0" % machine.HARD_RESET)
        import sys

        sys.exit(state.EXIT_RESET)
    return slot


