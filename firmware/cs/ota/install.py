"""Download (resumable HTTP ranges, retried), verify and install a checked release.

App bundles are downloaded to ota/dl.bin, checked against the signed SHA-256, unpacked
file by file into apps/<version>.new (each file checked against its own signed hash),
renamed into place, and switched to by replacing the ota/app pointer. Firmware images are
written straight into the next OTA slot (the filesystem has no room for them), read back
and checked, then chosen with set_boot. Either way the caller then hard-resets.
"""

import asyncio
import binascii
import hashlib
import os

from cs.ota import files
from cs.ota.http import get_range
from cs.ota.manifest import Refused

CHUNK = 16384  # bytes per range request: a lost connection costs at most this much
TRIES = 5


class Retry(Exception):
    """A transient failure (network); the download resumes where it stopped next time."""


def _hex(digest) -> str:
    return binascii.hexlify(digest).decode()


async def _fetch(url: str, end: int, sink, total: int) -> None:
    """Fill `sink` up to byte `end`, resuming from wherever a failed attempt stopped."""
    from cs.backoff import Backoff

    backoff = Backoff()
    for attempt in range(TRIES):
        start = sink.resume()
        try:
            size = await get_range(url, start, end, sink)
        except Exception as e:  # OSError, timeouts, a malformed reply: all worth a retry
            if attempt == TRIES - 1:
                raise Retry("download failed at byte %d: %r" % (start, e))
            await asyncio.sleep_ms(min(backoff.next_ms(), 8000))
            continue
        if size != total:
            raise Refused("download is %d bytes, the signed manifest says %d (truncated or wrong blob)" % (size, total))
        return


class _FileSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self.pos = files.size(path)
        self.f = None

    def __call__(self, data) -> None:
        f = self.f
        if f is None:
            f = self.f = open(self.path, "ab")
        f.write(data)
        self.pos += len(data)

    def resume(self) -> int:
        return self.pos

    def close(self) -> None:
        if self.f is not None:
            self.f.close()  # littlefs commits the appended data here
            self.f = None


async def download_app(root: str, m: dict, url: str, progress) -> str:
    """ota/dl.bin holding the whole blob, checked against the manifest; returns its path."""
    path = root + "ota/dl.bin"
    size = m["size"]
    if files.size(path) > size:
        files.remove(path)
    sink = _FileSink(path)
    last = -1
    try:
        while sink.pos < size:
            pct = sink.pos * 100 // size
            if pct // 25 != last:
                last = pct // 25
                await progress("downloading", pct)
            await _fetch(url, min(size, sink.pos + CHUNK), sink, size)
            sink.close()
    finally:
        sink.close()
    await progress("verifying", 100)
    h = hashlib.sha256()
    buf = bytearray(1024)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(memoryview(buf)[:n])
    if _hex(h.digest()) != m["sha256"]:
        files.remove(path)  # start again from scratch next time
        raise Refused("download does not match the signed SHA-256")
    return path


def _safe(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def unpack_app(root: str, m: dict, blob: str, text: str) -> str:
    """Unpack into apps/<version>.new, check every file, rename to apps/<version>.

    The blob starts with an index, one line per file: "<sha256> <size> <offset> <zsize> <path>".
    """
    import deflate

    final = root + "apps/" + m["version"]
    stage = final + ".new"
    files.rmtree(stage)
    files.makedirs(stage)
    buf = bytearray(512)
    mv = memoryview(buf)
    index_end = m.get("index", 0)
    count = 0
    with open(blob, "rb") as src, open(blob, "rb") as idx:
        while idx.tell() < index_end:
            line = idx.readline()
            parts = line.decode().split()
            if len(parts) != 5:
                raise Refused("bundle index is malformed")
            digest, path = parts[0], parts[4]
            size, offset = int(parts[1]), int(parts[2])
            if not _safe(path):
                raise Refused("bundle names an unsafe path %r" % path)
            target = stage + "/" + path
            files.makedirs(target.rsplit("/", 1)[0])
            src.seek(offset)
            stream = deflate.DeflateIO(src, deflate.ZLIB)
            h = hashlib.sha256()
            n = 0
            with open(target, "wb") as out:
                while True:
                    k = stream.readinto(buf)
                    if not k:
                        break
                    n += k
                    if n > size:
                        break
                    out.write(mv[:k])
                    h.update(mv[:k])
            if n != size or _hex(h.digest()) != digest:
                raise Refused("file %s does not match its signed hash" % path)
            count += 1
    if count != m.get("files"):
        raise Refused("bundle holds %d files, the manifest says %r" % (count, m.get("files")))
    with open(stage + "/manifest.json", "w") as f:
        f.write(text)
    files.rmtree(final)
    os.rename(stage, final)
    return "apps/" + m["version"]


def switch_app(root: str, folder: str, version: str, job_id, running_version: str) -> None:
    """The atomic step: the pointer names the new folder, on trial, with the way back."""
    cur = files.read_json(root + "ota/app") or {}
    files.write_json(
        root + "ota/app",
        {"cur": folder, "ver": version, "prev": cur.get("cur") or "", "pver": running_version, "id": job_id, "trial": 1},
    )


# -- firmware images ---------------------------------------------------------------
BLOCK = 4096


class _SlotSink:
    def __init__(self, part, pos: int) -> None:
        self.part = part
        self.pos = pos
        self.buf = bytearray(BLOCK)
        self.fill = 0

    def __call__(self, data) -> None:
        mv = memoryview(data)
        while len(mv):
            k = min(BLOCK - self.fill, len(mv))
            self.buf[self.fill : self.fill + k] = mv[:k]
            self.fill += k
            mv = mv[k:]
            if self.fill == BLOCK:
                self.flush()

    def resume(self) -> int:
        self.fill = 0  # a partly received block is fetched again
        return self.pos

    def flush(self) -> None:
        if self.fill:
            for i in range(self.fill, BLOCK):
                self.buf[i] = 0xFF
            self.part.writeblocks(self.pos // BLOCK, self.buf)
            self.pos += self.fill
            self.fill = 0


async def download_image(root: str, m: dict, url: str, job_id, part, progress) -> None:
    """Write the image into `part` block by block; the position survives resets in ota/dl.json."""
    size = m["size"]
    state = files.read_json(root + "ota/dl.json") or {}
    pos = state.get("n", 0) if state.get("id") == job_id and state.get("slot") == part.info()[4] else 0
    sink = _SlotSink(part, pos)
    last = -1
    while sink.pos < size:
        pct = sink.pos * 100 // size
        if pct // 25 != last:
            last = pct // 25
            await progress("downloading", pct)
        await _fetch(url, min(size, sink.pos + CHUNK), sink, size)
        sink.flush()
        files.write_json(root + "ota/dl.json", {"id": job_id, "slot": part.info()[4], "n": sink.pos})
    await progress("verifying", 100)
    h = hashlib.sha256()
    buf = bytearray(BLOCK)
    left = size
    blk = 0
    while left > 0:
        part.readblocks(blk, buf)
        k = min(BLOCK, left)
        h.update(memoryview(buf)[:k])
        left -= k
        blk += 1
    files.remove(root + "ota/dl.json")
    if _hex(h.digest()) != m["sha256"]:
        raise Refused("image in the slot does not match the signed SHA-256")
    from cs.ota.report import image_version

    found = image_version(_Board(part))
    if found != m["version"]:
        raise Refused("image says version %r, the signed manifest %r" % (found, m["version"]))


class _Board:
    """Lets cs.ota.report.image_version read a slot that is not the running one."""

    def __init__(self, part) -> None:
        self.part = part

    def app_partition(self):
        return self.part
