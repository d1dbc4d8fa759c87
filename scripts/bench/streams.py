#!/usr/bin/python3
"""Many concurrent connections for weft's scale benchmark: an echo server and a client that opens
COUNT connections, proves each one with an echo round trip, holds them all open, and reports how
fast they opened. Standard library only.

    streams.py echo --listen 127.0.0.1:7000
    streams.py open --connect 127.0.0.1:17000 --count 10000 --report out.json [--hold-file F]
"""

import argparse
import asyncio
import json
import os
import resource
import sys
import time


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(hard, 1 << 17)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def split(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


async def echo(args):
    async def serve(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    host, port = split(args.listen)
    server = await asyncio.start_server(serve, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


async def open_many(args):
    host, port = split(args.connect)
    gate = asyncio.Semaphore(args.concurrency)
    writers = []
    failures = []
    probe = b"weft-scale-probe"
    latencies = []

    async def one(i):
        async with gate:
            begin = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), args.timeout)
                writer.write(probe)
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(len(probe)), args.timeout)
                if got != probe:
                    raise ValueError("echo differs")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                failures.append(f"{type(e).__name__}: {e}")
                return
            latencies.append(time.monotonic() - begin)
            writers.append(writer)

    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    elapsed = time.monotonic() - start
    report = {
        "count": args.count,
        "open": len(writers),
        "failures": len(failures),
        "first_failures": failures[:5],
        "seconds": elapsed,
        "opens_per_second": len(writers) / elapsed if elapsed > 0 else 0.0,
        "p50_open_ms": sorted(latencies)[len(latencies) // 2] * 1000 if latencies else None,
        "p99_open_ms": sorted(latencies)[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }
    with open(args.report, "w") as f:
        json.dump(report, f)
    # Everyone open: let the caller sample the nodes, then close when told (or after a while).
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline and not (args.hold_file and os.path.exists(args.hold_file)):
        await asyncio.sleep(0.05)
    for writer in writers:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    return 0 if not failures else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--listen", required=True)
    o = sub.add_parser("open")
    o.add_argument("--connect", required=True)
    o.add_argument("--count", type=int, required=True)
    o.add_argument("--concurrency", type=int, default=256)
    o.add_argument("--timeout", type=float, default=30)
    o.add_argument("--report", required=True)
    o.add_argument("--hold", type=float, default=60, help="seconds to hold the connections open at most")
    o.add_argument("--hold-file", help="close as soon as this file exists")
    args = parser.parse_args()
    raise_fd_limit()
    if args.command == "echo":
        asyncio.run(echo(args))
        return 0
    return asyncio.run(open_many(args))


if __name__ == "__main__":
    sys.exit(main())
