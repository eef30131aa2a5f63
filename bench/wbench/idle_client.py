"""Opens N TLS connections to HOST:PORT, makes one keep-alive request on each, prints
`ready N` and keeps them open until killed. Used for the proxy's memory per idle connection."""

import asyncio
import ssl
import sys


async def one(host, port, ctx, sem):
    async with sem:
        r, w = await asyncio.open_connection(host, port, ssl=ctx)
        w.write(f"GET /1k HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = int(next(l.split(b":")[1] for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")))
        await r.readexactly(length)
        return r, w


async def main(host, port, cafile, n):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    sem = asyncio.Semaphore(64)
    try:
        conns = await asyncio.gather(*(one(host, port, ctx, sem) for _ in range(n)))
    except Exception as e:  # noqa: BLE001 - reported to the harness, which fails the row
        print(f"failed: {e!r}", flush=True)
        return
    print(f"ready {len(conns)}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    h, p, ca, count = sys.argv[1:5]
    asyncio.run(main(h, int(p), ca, int(count)))
