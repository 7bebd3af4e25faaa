"""A stand-in ESP32 ROM bootloader (and flasher stub) behind a pseudo-terminal.

esptool opens `port` as it would /dev/ttyUSB0 and speaks its SLIP protocol to this object,
which answers like the chip: sync, register reads (chip magic, eFuse MAC), stub upload and
its "OHAI" greeting, erase, compressed flash writes (inflated into a flash image so the MD5
check esptool does afterwards is real), and baud changes. `magic` picks the chip esptool
detects; `silent=True` answers nothing, as a board outside download mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import struct
import threading
import tty
import zlib

ESP32_MAGIC = 0x00F01D83
ESP32S2_MAGIC = 0x000007C6
FLASH_SIZE = 4 * 1024 * 1024
EFUSE_BASE = 0x3FF5A000
UART_CLKDIV_REG = 0x3FF40014

SYNC, READ_REG, MEM_END, MEM_BEGIN, MEM_DATA = 0x08, 0x0A, 0x06, 0x05, 0x07
DEFL_BEGIN, DEFL_DATA, DEFL_END, SPI_MD5 = 0x10, 0x11, 0x12, 0x13
SECURITY_INFO, ERASE_FLASH = 0x14, 0xD0


class FakeEsp32:
    def __init__(
        self, mac: str = "3c:71:bf:0a:12:f4", *, magic: int = ESP32_MAGIC, silent: bool = False
    ):
        self.mac = bytes.fromhex(mac.replace(":", ""))
        self.magic = magic
        self.silent = silent
        self.flash = bytearray(b"\xaa" * FLASH_SIZE)  # not erased: erase-flash must happen
        self.erased = False
        self.writes: list[tuple[int, int]] = []  # (offset, length) of completed writes
        self.stub = False
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._inflate: zlib._Decompress | None = None
        self._write_at = 0

    # -- framing -----------------------------------------------------------------------
    def _send(self, payload: bytes) -> None:
        body = payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
        with contextlib.suppress(OSError):
            os.write(self._master, b"\xc0" + body + b"\xc0")

    def _reply(self, op: int, val: int = 0, data: bytes = b"", ok: bool = True) -> None:
        status = (b"\x00\x00" if ok else b"\x01\x05") + (b"" if self.stub else b"\x00\x00")
        body = data + status
        self._send(struct.pack("<BBHI", 1, op, len(body), val) + body)

    def _serve(self) -> None:
        buf = bytearray()
        frame: bytearray | None = None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                continue
            buf += chunk
            while buf:
                byte = buf.pop(0)
                if byte == 0xC0:
                    if frame:
                        packet = (
                            bytes(frame).replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
                        )
                        if not self.silent:
                            self._handle(packet)
                        frame = None
                    else:
                        frame = bytearray()
                elif frame is not None:
                    frame.append(byte)

    # -- the loader --------------------------------------------------------------------
    def _register(self, addr: int) -> int:
        if addr == 0x40001000:
            return self.magic
        if addr == UART_CLKDIV_REG:
            return 347  # 40 MHz crystal at 115200 baud
        if addr == EFUSE_BASE + 4:  # eFuse word 1: MAC bytes 2..5
            return int.from_bytes(self.mac[2:], "big")
        if addr == EFUSE_BASE + 8:  # eFuse word 2: MAC bytes 0..1 in the low half
            return int.from_bytes(self.mac[:2], "big")
        return 0

    def _handle(self, packet: bytes) -> None:
        if len(packet) < 8:
            return
        _, op, _, _ = struct.unpack("<BBHI", packet[:8])
        data = packet[8:]
        if op == SYNC:
            # A new session: on a DevKitC the auto-reset circuit has put the chip back into
            # its ROM loader (a pty has no DTR/RTS lines, so esptool cannot do it here).
            self.stub = False
            for _ in range(8):
                self._reply(op, val=0x20120707)
        elif op == READ_REG:
            self._reply(op, val=self._register(struct.unpack("<I", data[:4])[0]))
        elif op == SECURITY_INFO:
            self._reply(op, ok=False)  # the original ESP32's ROM does not know it
        elif op == MEM_END:
            self._reply(op)
            self.stub = True
            self._send(b"OHAI")
        elif op == ERASE_FLASH:
            self.flash[:] = b"\xff" * FLASH_SIZE
            self.erased = True
            self._reply(op)
        elif op == DEFL_BEGIN:
            self._write_at = struct.unpack("<IIII", data[:16])[3]
            self._inflate = zlib.decompressobj()
            self._begin = self._write_at
            self._reply(op)
        elif op == DEFL_DATA:
            size = struct.unpack("<I", data[:4])[0]
            assert self._inflate is not None
            out = self._inflate.decompress(data[16 : 16 + size])
            self.flash[self._write_at : self._write_at + len(out)] = out
            self._write_at += len(out)
            self._reply(op)
        elif op == DEFL_END:
            self.writes.append((self._begin, self._write_at - self._begin))
            self._reply(op)
        elif op == SPI_MD5:
            addr, size = struct.unpack("<II", data[:8])
            digest = hashlib.md5(self.flash[addr : addr + size]).digest()
            self._reply(op, data=digest if self.stub else digest.hex().encode())
        else:  # MEM_BEGIN/DATA, SPI attach/params, register writes, baud change: accept
            self._reply(op)

    def __enter__(self) -> FakeEsp32:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
