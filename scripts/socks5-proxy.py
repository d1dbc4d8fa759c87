#!/usr/bin/env python3
"""A small SOCKS5 proxy (RFC 1928, CONNECT only, no authentication) for weft's tests.

Usage: socks5-proxy.py PORT [LOGFILE [ADDRESS]]. Listens on ADDRESS:PORT (default 127.0.0.1)
and logs one line per connection it makes ("CONNECT host:port") to LOGFILE (default stdout), so
a test can show that its links really went through the proxy.
"""
import asyncio
import ipaddress
import socket
import struct
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(reader, writer, log):
    try:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            return writer.close()
        writer.write(b"\x05\x00")
        version, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif kind == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode("ascii", "replace")
        else:
            return writer.close()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:
            writer.write(b"\x05\x07\x00\x01" + bytes(6))
            return writer.close()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01" + bytes(6))
            await writer.drain()
            return writer.close()
        log.write(f"CONNECT {host}:{port}\n")
        log.flush()
        bound = upstream_writer.get_extra_info("sockname")
        address = socket.inet_pton(socket.AF_INET, bound[0]) if ":" not in bound[0] else None
        if address is None:
            writer.write(b"\x05\x00\x00\x04" + socket.inet_pton(socket.AF_INET6, bound[0]))
        else:
            writer.write(b"\x05\x00\x00\x01" + address)
        writer.write(struct.pack("!H", bound[1]))
        await writer.drain()
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    port = int(sys.argv[1])
    log = open(sys.argv[2], "a") if len(sys.argv) > 2 and sys.argv[2] != "-" else sys.stdout
    address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    server = await asyncio.start_server(lambda r, w: handle(r, w, log), address, port)
    print(f"socks5 proxy on {address}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
