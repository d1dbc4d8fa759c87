#!/usr/bin/python3
"""One measured TCP (or MPTCP) flow for weft's benchmarks: a source and a sink.

The sink accepts one connection, reads to the end, records the bytes received per interval,
optionally checks every byte against the source's pattern, and writes a JSON report. The source
connects and sends the pattern for a given time or byte count. Standard library only.

    flow.py sink --listen 0.0.0.0:5201 --report out.json [--verify] [--mptcp] [--congestion NAME]
    flow.py source --connect 198.18.1.1:5201 --seconds 10 [--mptcp] [--congestion NAME] [--bind ADDR]
"""

import argparse
import json
import os
import socket
import sys
import time

IPPROTO_MPTCP = 262
CHUNK = 1 << 18
PATTERN_SIZE = 1 << 20


def pattern():
    """A fixed 1 MiB block that is not periodic at any short distance (a linear congruential
    sequence); the stream is this block repeated, so any lost, duplicated or reordered byte shows
    as a mismatch at its offset."""
    state = 0x9E3779B9
    out = bytearray(PATTERN_SIZE)
    for i in range(0, PATTERN_SIZE, 4):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i : i + 4] = state.to_bytes(4, "little")
    return bytes(out)


def make_socket(mptcp, congestion=None, family=socket.AF_INET):
    proto = IPPROTO_MPTCP if mptcp else 0
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    if congestion:
        # Accepted sockets inherit it; an MPTCP socket passes it to its subflows.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion.encode())
    return sock


def split(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


def sink(args):
    listener = make_socket(args.mptcp, args.congestion)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(split(args.listen))
    listener.listen(4)
    if args.ready:
        open(args.ready, "w").close()
    listener.settimeout(args.accept_timeout)
    conn, peer = listener.accept()
    conn.settimeout(args.idle_timeout)
    reference = pattern() * 2 if args.verify else None
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    mismatch_at = None
    interval = args.interval
    series = []
    bucket_end = None
    bucket_bytes = 0
    first = last = None
    longest_gap = 0.0
    start = time.monotonic()
    error = None
    while True:
        try:
            n = conn.recv_into(buffer)
        except socket.timeout:
            error = f"no byte for {args.idle_timeout} s"
            break
        except OSError as e:
            error = f"receive failed: {e}"
            break
        now = time.monotonic()
        if n == 0:
            break
        if first is None:
            first = last = now
            bucket_end = now + interval
        else:
            longest_gap = max(longest_gap, now - last)
            last = now
        while now >= bucket_end:
            series.append(bucket_bytes)
            bucket_bytes = 0
            bucket_end += interval
        bucket_bytes += n
        if reference is not None and mismatch_at is None:
            offset = total % PATTERN_SIZE
            if view[:n] != reference[offset : offset + n]:
                for i in range(n):
                    if buffer[i] != reference[offset + i]:
                        mismatch_at = total + i
                        break
        total += n
    if first is not None:
        series.append(bucket_bytes)
    conn.close()
    listener.close()
    duration = (last - first) if first is not None else 0.0
    report = {
        "bytes": total,
        "seconds": duration,
        "mbps": total * 8 / duration / 1e6 if duration > 0 else 0.0,
        "interval": interval,
        "series_mbps": [b * 8 / interval / 1e6 for b in series],
        "longest_gap": longest_gap,
        "verified": args.verify,
        "mismatch_at": mismatch_at,
        "error": error,
        "since_start": (first - start) if first is not None else None,
    }
    with open(args.report, "w") as f:
        json.dump(report, f)
    return 0 if error is None and mismatch_at is None else 1


def source(args):
    sock = make_socket(args.mptcp, args.congestion)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.settimeout(args.connect_timeout)
    sock.connect(split(args.connect))
    sock.settimeout(None)
    block = memoryview(pattern() * 2)
    sent = 0
    deadline = time.monotonic() + args.seconds if args.seconds else None
    limit = args.bytes
    while True:
        if limit is not None and sent >= limit:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        offset = sent % PATTERN_SIZE
        size = CHUNK if limit is None else min(CHUNK, limit - sent)
        try:
            n = sock.send(block[offset : offset + size])
        except OSError as e:
            print(f"flow source: send failed after {sent} bytes: {e}", file=sys.stderr)
            return 1
        sent += n
    sock.shutdown(socket.SHUT_WR)
    # Wait for the sink to close, so the caller knows every byte was read.
    sock.settimeout(args.linger)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    sock.close()
    print(json.dumps({"sent": sent}))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--listen", required=True)
    s.add_argument("--report", required=True)
    s.add_argument("--ready", help="a file created once the sink listens")
    s.add_argument("--verify", action="store_true")
    s.add_argument("--mptcp", action="store_true")
    s.add_argument("--congestion", help="TCP congestion control (default: the system's)")
    s.add_argument("--interval", type=float, default=0.1)
    s.add_argument("--accept-timeout", type=float, default=30)
    s.add_argument("--idle-timeout", type=float, default=20)
    c = sub.add_parser("source")
    c.add_argument("--connect", required=True)
    c.add_argument("--bind")
    c.add_argument("--seconds", type=float)
    c.add_argument("--bytes", type=int)
    c.add_argument("--mptcp", action="store_true")
    c.add_argument("--congestion", help="TCP congestion control (default: the system's)")
    c.add_argument("--connect-timeout", type=float, default=10)
    c.add_argument("--linger", type=float, default=30)
    args = parser.parse_args()
    if args.command == "source" and not (args.seconds or args.bytes):
        parser.error("source needs --seconds or --bytes")
    sys.exit(sink(args) if args.command == "sink" else source(args))


if __name__ == "__main__":
    main()
