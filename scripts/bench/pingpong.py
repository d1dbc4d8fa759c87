#!/usr/bin/python3
"""A 1-byte ping-pong over one TCP connection: what a keystroke in an interactive shell costs.

  pingpong.py serve HOST:PORT          echo every byte back, one connection at a time or many
  pingpong.py run HOST:PORT [SECONDS]  send one byte, wait for it to come back, again and again;
                                       prints one JSON line: round trips per second, p50 and p99

Both ends are this script, so direct TCP measured with it is the floor every relay adds to.
Standard library only.
"""

import json
import socket
import sys
import threading
import time


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def serve(listen):
    server = socket.create_server(address(listen), reuse_port=False)
    server.listen(64)

    def echo(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    while True:
        conn, _ = server.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def run(target, seconds):
    # The first connection through a relay may wait for its tunnel: connect, then warm up.
    conn = socket.create_connection(address(target), timeout=30)
    conn.settimeout(None)  # blocking: a timeout would add a poll to every send and receive
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    byte = b"x"
    for _ in range(200):
        conn.sendall(byte)
        if conn.recv(1) != byte:
            raise SystemExit("pingpong: the echo did not come back")
    samples = []
    clock = time.perf_counter_ns
    end = clock() + int(seconds * 1e9)
    while True:
        start = clock()
        if start >= end:
            break
        conn.sendall(byte)
        if conn.recv(1) != byte:
            raise SystemExit("pingpong: the echo did not come back")
        samples.append(clock() - start)
    conn.close()
    samples.sort()
    count = len(samples)
    print(json.dumps({
        "round_trips": count,
        "per_second": count / seconds,
        "p50_us": samples[count // 2] / 1000,
        "p99_us": samples[min(count - 1, count * 99 // 100)] / 1000,
    }))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 5.0)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
