"""Just enough HTTP/1.1 to fetch a byte range of a release blob (asyncio streams)."""

import asyncio


class HTTPError(Exception):
    pass


def split_url(url: str) -> tuple:
    """(host, port, path, tls) of an http:// or https:// URL."""
    if url.startswith("http://"):
        rest, port, tls = url[7:], 80, False
    elif url.startswith("https://"):
        rest, port, tls = url[8:], 443, True
    else:
        raise HTTPError("unsupported URL %r" % url)
    host, _, path = rest.partition("/")
    if ":" in host:
        host, p = host.split(":", 1)
        port = int(p)
    return host, port, "/" + path, tls


async def get_range(url: str, start: int, end: int, sink, tls_context=None, timeout_ms: int = 15000) -> int:
    """GET bytes [start, end) of `url`, passing each piece to `sink(bytes)`; returns the total
    size the server reports (Content-Range), so the caller can detect a short blob."""
    host, port, path, tls = split_url(url)
    if tls and tls_context is None:
        raise HTTPError("https needs a TLS context")
    pair: tuple = await asyncio.wait_for_ms(asyncio.open_connection(host, port, ssl=tls_context if tls else None), timeout_ms)
    s = pair[0]
    try:
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-%d\r\nConnection: close\r\n\r\n" % (path, host, start, end - 1)
        s.write(req.encode())
        await s.drain()
        line = await asyncio.wait_for_ms(s.readline(), timeout_ms)
        parts = line.split()
        if len(parts) < 2 or parts[1] != b"206":
            raise HTTPError("range request answered %r" % line[:40])
        length = -1
        total = -1
        while True:
            h = await asyncio.wait_for_ms(s.readline(), timeout_ms)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"content-range":
                total = int(value.strip().split(b"/")[-1])
        if length < 0:
            raise HTTPError("no Content-Length")
        got = 0
        while got < length:
            piece = await asyncio.wait_for_ms(s.read(min(1024, length - got)), timeout_ms)
            if not piece:
                raise HTTPError("connection closed after %d of %d bytes" % (got, length))
            got += len(piece)
            sink(piece)
        return total
    finally:
        s.close()
