"""Store-and-forward queue of readings on flash: nothing is lost to a reboot or power cut.

Layout (folder `q/`): numbered append-only segment files holding one text record per
line, `<ts> <gen> <metrics>*<check>`, and `head`, the commit file "<segment>
<offset> <evicted>" naming the first record not yet acknowledged by the broker.
`head` is replaced atomically (write `head.tmp`, then rename: copy-on-write on
littlefs), so after a crash at any point:
- a record is either whole (its check matches) or ignored: a torn line is sealed
  by the next append's newline and then skipped;
- acknowledged records are never re-read, unacknowledged ones are re-sent (the
  fleet stores a reading once per device, metric and time, so a re-send is harmless);
- segments behind `head` left by a crash between commit and delete are removed.
The queue is bounded: when `max_segs` segments are full the oldest segment is
evicted whole and its records counted in `evicted` (reported in health).

`gen` numbers the power-on periods whose clock was never set (see cs.clock): a
record stamped before the first NTP sync is re-dated once that period's offset is
known.
"""

import os

HEAD = "head"


def check(line) -> int:
    """Fletcher-16 over the record text: cheap, and catches torn or mixed lines."""
    a = b = 0
    for c in line:
        a = (a + c) % 255
        b = (b + a) % 255
    return (b << 8) | a


def parse(raw):
    """(ts, gen, metrics) from a stored line, or None if it is torn or corrupt."""
    star = raw.rfind(b"*")
    if star < 0 or raw[-1:] != b"\n":
        return None
    try:
        if int(raw[star + 1 : -1], 16) != check(raw[:star]):
            return None
        ts, gen, body = raw[:star].split(b" ", 2)
        return int(ts), int(gen), body.decode()
    except ValueError:
        return None


class Store:
    def __init__(self, root: str = "q", seg_bytes: int = 2048, max_segs: int = 32) -> None:
        self.root = root
        self.seg_bytes = seg_bytes
        self.max_segs = max_segs
        try:
            os.mkdir(root)
        except OSError:
            pass
        segs = [int(n) for n in os.listdir(root) if n.isdigit()]
        try:
            with open(self._p(HEAD)) as f:
                h = f.read().split()
            self.seg, self.off, self.evicted = int(h[0]), int(h[1]), int(h[2])
        except (OSError, ValueError, IndexError):
            self.seg, self.off, self.evicted = (min(segs) if segs else 0), 0, 0
        for n in segs:
            if n < self.seg:
                self._rm(n)  # acknowledged, but a crash came before the delete
        self.tail = max(segs) if segs else self.seg
        if self.tail < self.seg:
            self.tail = self.seg
        self._depth = -1  # counted on first use

    def _p(self, name) -> str:
        return self.root + "/" + str(name)

    def _rm(self, n: int) -> None:
        try:
            os.remove(self._p(n))
        except OSError:
            pass

    def _size(self, n: int) -> int:
        try:
            return os.stat(self._p(n))[6]
        except OSError:
            return 0

    def _commit(self) -> None:
        tmp = self._p(HEAD + ".tmp")
        with open(tmp, "w") as f:
            f.write("%d %d %d" % (self.seg, self.off, self.evicted))
        os.rename(tmp, self._p(HEAD))

    # -- writing -------------------------------------------------------------------
    def append(self, ts: int, gen: int, body: str) -> None:
        line = ("%d %d %s" % (ts, gen, body)).encode()
        size = self._size(self.tail)
        if size >= self.seg_bytes:
            self.tail += 1
            size = 0
            while self.tail - self.seg >= self.max_segs:
                self._evict_oldest()
        with open(self._p(self.tail), "ab") as f:
            if size and self._last_byte(size) != b"\n":
                f.write(b"\n")  # seal a line torn by a power cut; it fails its check
            f.write(line + b"*%04x\n" % check(line))
        if self._depth >= 0:
            self._depth += 1

    def _last_byte(self, size: int) -> bytes:
        with open(self._p(self.tail), "rb") as f:
            f.seek(size - 1)
            return f.read(1)

    def _evict_oldest(self) -> None:
        lost = sum(1 for _ in self._records(self.seg, self.off))
        self.evicted += lost
        old = self.seg
        self.seg, self.off = old + 1, 0
        self._commit()
        self._rm(old)
        if self._depth >= 0:
            self._depth -= lost

    # -- reading -------------------------------------------------------------------
    def _records(self, seg: int, off: int):
        """Yield (record, position after it) from one segment; corrupt lines are skipped."""
        try:
            f = open(self._p(seg), "rb")
        except OSError:
            return
        with f:
            f.seek(off)
            while True:
                raw = f.readline()
                if not raw or raw[-1:] != b"\n":
                    return  # end, or a torn last line not yet sealed
                off += len(raw)
                rec = parse(raw)
                if rec is not None:
                    yield rec, (seg, off)

    def peek(self, n: int) -> list:
        """Up to `n` unacknowledged records from one segment, each with the position after
        it (pass the last one acknowledged by the broker to `ack`)."""
        while True:
            out = []
            for item in self._records(self.seg, self.off):
                out.append(item)
                if len(out) >= n:
                    break
            if out or self.seg >= self.tail:
                return out
            # Nothing left in a finished segment: move on (no readings are skipped).
            self.ack((self.seg + 1, 0))

    def ack(self, pos: tuple, count: int = 0) -> None:
        if pos[0] < self.seg or pos[0] == self.seg and pos[1] < self.off:
            return  # the queue overflowed meanwhile and evicted that segment
        old = self.seg
        self.seg, self.off = pos
        self._commit()
        for n in range(old, self.seg):
            self._rm(n)
        if self._depth >= 0:
            self._depth -= count

    def __len__(self) -> int:
        if self._depth < 0:
            n = 0
            for seg in range(self.seg, self.tail + 1):
                for _ in self._records(seg, self.off if seg == self.seg else 0):
                    n += 1
            self._depth = n
        return self._depth
