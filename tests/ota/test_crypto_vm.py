"""SHA-512 and Ed25519 verification run in the MicroPython VM against RFC vectors."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.firmware.conftest import VM

# RFC 8032 section 7.1, TEST 1-3: (secret key, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

_VERIFY = """
import json
from cs.crypto import ed25519
cases = json.loads(open("cases.json").read())
for pk, msg, sig in cases:
    try:
        ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig))
        print("RESULT", json.dumps("ok"))
    except ed25519.BadSignature as e:
        print("RESULT", json.dumps("bad: " + str(e)))
"""


def _public_hex(secret_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def test_vectors_are_the_rfc_ones() -> None:
    # Guards the table above: the host library derives the same keys and signatures.
    for secret, public, msg, sig in RFC8032:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
        assert _public_hex(secret) == public
        assert key.sign(bytes.fromhex(msg)).hex() == sig


def _run(vm: VM, cases: list[tuple[str, str, str]]) -> list[str]:
    (vm.device_dir / "cases.json").write_text(json.dumps(cases))
    return vm.results(vm.run(_VERIFY, heapsize="128K", timeout=120))


def test_rfc8032_vectors_verify_in_the_vm(vm: VM) -> None:
    assert _run(vm, [(pk, msg, sig) for _, pk, msg, sig in RFC8032]) == ["ok"] * 3


def test_forgeries_are_refused_in_the_vm(vm: VM) -> None:
    _, pk, msg, sig = RFC8032[2]
    flipped_sig = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    other_pk = RFC8032[0][1]
    big_s = sig[:64] + "ff" * 32  # s >= L must be refused, not reduced
    results = _run(
        vm,
        [
            (pk, "af83", sig),  # message changed
            (pk, msg, flipped_sig),  # signature changed
            (other_pk, msg, sig),  # someone else's key
            (pk, msg, big_s),
        ],
    )
    assert all(r.startswith("bad: ") for r in results), results


def test_long_message_and_sha512_match_the_host(vm: VM) -> None:
    key = Ed25519PrivateKey.generate()
    pk = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    msg = bytes(range(256)) * 9 + b"manifest"  # spans many SHA-512 blocks
    assert _run(vm, [(pk.hex(), msg.hex(), key.sign(msg).hex())]) == ["ok"]
    code = (
        "import json\nfrom cs.crypto.sha512 import sha512\n"
        "for n in (0, 3, 111, 112, 127, 128, 129, 1000):\n"
        "    h = sha512(bytes(i & 255 for i in range(n)))\n"
        "    print('RESULT', json.dumps(h.digest().hex()))\n"
    )
    expected = [
        hashlib.sha512(bytes(i & 255 for i in range(n))).hexdigest()
        for n in (0, 3, 111, 112, 127, 128, 129, 1000)
    ]
    assert vm.results(vm.run(code, heapsize="128K")) == expected


@pytest.mark.parametrize("split", [1, 64, 200])
def test_incremental_sha512(vm: VM, split: int) -> None:
    data = bytes(range(256)) * 2
    code = (
        "import json\nfrom cs.crypto.sha512 import sha512\n"
        "d = bytes(range(256)) * 2\nh = sha512()\n"
        f"for i in range(0, len(d), {split}):\n"
        f"    h.update(d[i:i + {split}])\n"
        "print('RESULT', json.dumps(h.digest().hex()))\n"
    )
    assert vm.results(vm.run(code, heapsize="128K")) == [hashlib.sha512(data).hexdigest()]
