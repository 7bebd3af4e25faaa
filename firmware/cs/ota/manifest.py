"""Check an update offer before a byte is downloaded: signature by a trusted key, kind,
and the anti-rollback floor. Loaded only while an offer is handled.

An offer (topic `ota`) is {"sv":1, "id", "manifest": "<JSON text>", "sigs": [[kid, hex]],
"url"}; the signatures cover the manifest text exactly as sent. The manifest says
{"sv":1, "kind": "app"|"image", "version", "size", "sha256", "floor"?, "keys"?, "files"?}.
"""

import json

from cs.ota import version_tuple


class Refused(Exception):
    """The offer must not be installed; the message is the reason reported to the fleet."""


def trust(root: str) -> dict:
    from cs.ota.files import read_json

    t = read_json(root + "ota/trust.json") or {}
    if not isinstance(t.get("keys"), dict):
        t["keys"] = {}
    return t


def check(offer: dict, trusted: dict) -> dict:
    """The verified manifest of `offer`, or raise Refused saying why."""
    text = offer.get("manifest")
    sigs = offer.get("sigs")
    if not isinstance(text, str) or not isinstance(sigs, list):
        raise Refused("offer without a manifest or signatures")
    if not sigs:
        raise Refused("unsigned release")
    keys = trusted["keys"]
    if not keys:
        raise Refused("no trusted release keys on the device (ota/trust.json)")
    from cs.crypto import ed25519

    body = text.encode()
    why = "signed by no trusted key (%s)" % ",".join(str(s[0]) for s in sigs if isinstance(s, list))
    ok = False
    for sig in sigs:
        if not isinstance(sig, list) or len(sig) != 2 or sig[0] not in keys:
            continue
        try:
            ed25519.verify(bytes.fromhex(keys[sig[0]]), body, bytes.fromhex(sig[1]))
            ok = True
            break
        except (ed25519.BadSignature, ValueError) as e:
            why = "bad signature from key %s: %s" % (sig[0], e)
    if not ok:
        raise Refused(why)
    try:
        m = json.loads(text)
    except ValueError:
        raise Refused("manifest is not JSON")
    if m.get("sv") != 1 or m.get("kind") not in ("app", "image"):
        raise Refused("unsupported manifest (sv %r, kind %r)" % (m.get("sv"), m.get("kind")))
    version = m.get("version")
    if not isinstance(version, str) or not version_tuple(version):
        raise Refused("manifest version %r is not x.y.z" % version)
    if not isinstance(m.get("size"), int) or not isinstance(m.get("sha256"), str):
        raise Refused("manifest lacks size or sha256")
    floor = trusted.get("floor") or "0"
    if version_tuple(version) < version_tuple(floor):
        raise Refused("version %s is below the minimum allowed %s (anti-rollback)" % (version, floor))
    if offer.get("version") not in (None, version) or offer.get("kind") not in (None, m["kind"]):
        raise Refused("offer does not match its signed manifest")
    return m
