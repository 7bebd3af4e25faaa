"""Ed25519 signature verification (RFC 8032, section 5.1.7) in MicroPython.

Verification only: devices never sign. Points use extended twisted-Edwards coordinates
(X, Y, Z, T) so no field inversion happens inside the loop, and [s]B - [h]A is computed
in one pass (Straus' trick) to halve the doublings. Big integers are MicroPython's own.
"""

from cs.crypto.sha512 import sha512

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = 2 * _D % _P
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960


class BadSignature(Exception):
    pass


def _add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = z1 * 2 * z2 % _P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p):
    x1, y1, z1, _ = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _decode_point(s: bytes):
    if len(s) != 32:
        raise BadSignature("public key must be 32 bytes")
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        raise BadSignature("point not on the curve")
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        if sign:
            raise BadSignature("point not on the curve")
        return (0, y, 1, 0)
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        raise BadSignature("point not on the curve")
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _encode_point(p) -> bytes:
    x, y, z, _ = p
    zi = pow(z, _P - 2, _P)
    x = x * zi % _P
    y = y * zi % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Return if `signature` is `public_key`'s over `message`; raise BadSignature otherwise."""
    if len(signature) != 64:
        raise BadSignature("signature must be 64 bytes")
    a = _decode_point(public_key)
    r = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        raise BadSignature("signature scalar out of range")
    hh = sha512(r)
    hh.update(public_key)
    hh.update(message)
    h = int.from_bytes(hh.digest(), "little") % _L
    # R must equal [s]B - [h]A: walk both scalars' bits together.
    na = ((_P - a[0]) % _P, a[1], 1, (_P - a[3]) % _P)
    b = (_BX, _BY, 1, _BX * _BY % _P)
    both = _add(b, na)
    q = (0, 1, 1, 0)
    for i in range(255, -1, -1):
        q = _double(q)
        bs = (s >> i) & 1
        bh = (h >> i) & 1
        if bs and bh:
            q = _add(q, both)
        elif bs:
            q = _add(q, b)
        elif bh:
            q = _add(q, na)
    if _encode_point(q) != r:
        raise BadSignature("signature does not match")
