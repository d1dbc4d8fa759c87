#!/usr/bin/python3
"""A user-space L2 delay line between two interfaces, for the network lab (scripts/lab.sh).

This kernel has no netem qdisc, so the lab delays a link by putting this bridge in the middle of
it: every Ethernet frame read on one interface (an AF_PACKET raw socket) is sent out of the other
one DELAY ms later, per direction. It works on frames, so TCP, TLS and MPTCP subflows pass
untouched (nothing terminates a connection); ARP crosses it as well.

    delaybridge.py IF_A IF_B --delay MS [--delay-back MS] [--pidfile FILE] [--limit-bytes N]

--delay is IF_A -> IF_B, --delay-back IF_B -> IF_A (default: the same as --delay). The pidfile is
written once both sockets are bound, so a caller can wait for it. SIGTERM or SIGINT stops it and
prints its counters to stderr; SIGUSR1 prints them without stopping.

The interfaces and their peers must have segmentation and checksum offloads off
(ethtool -K IF tx off gso off tso off gro off): a GSO super-frame would exceed the MTU on the
other side and a frame with a checksum left to the hardware would arrive with a wrong one.
Python 3 standard library only.
"""

import argparse
import collections
import ctypes
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20+
PACKET_OUTGOING = 4
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
BUFFER = 8 << 20
FRAME_MAX = 65535
BATCH = 256  # frames read from one socket per wakeup at most
RETRY = 0.001  # seconds before sending again after EAGAIN/ENOBUFS
GONE = {errno.ENETDOWN, errno.ENXIO, errno.ENODEV}
PR_SET_TIMERSLACK = 29


def tight_timers():
    """The default 50 us timer slack would add to every delay; ask for 1 ns (best effort)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Stop(Exception):
    pass


def open_socket(name):
    # Protocol 0 until bound, so nothing from other interfaces is queued in between.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUFFER)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, BUFFER)
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        ignores_outgoing = True
    except OSError:
        ignores_outgoing = False
    s.bind((name, ETH_P_ALL))  # Python converts the protocol to network order itself
    s.setblocking(False)
    return s, ignores_outgoing


class Direction:
    """Frames read on one socket, waiting to be sent on the other. Delay is constant, so a deque
    is already in time order."""

    def __init__(self, label, source, sink, delay, limit_bytes):
        self.label = label
        self.source, self.ignores_outgoing = source
        self.sink = sink[0]
        self.delay = delay
        self.limit_bytes = limit_bytes
        self.queue = collections.deque()
        self.queued_bytes = 0
        self.blocked_until = 0.0
        self.received = self.sent = self.bytes = 0
        self.retries = self.dropped_full = self.dropped_error = self.oversize = 0
        self.kernel_drops = 0
        self.peak_bytes = 0

    def read(self, now):
        """Reads up to BATCH frames; each is due at now + delay."""
        due = now + self.delay
        queue = self.queue
        recv = self.source.recv
        for _ in range(BATCH):
            try:
                if self.ignores_outgoing:
                    frame = recv(FRAME_MAX)
                else:
                    frame, address = self.source.recvfrom(FRAME_MAX)
                    if address[2] == PACKET_OUTGOING:
                        continue
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as error:
                if error.errno in GONE:
                    raise Stop(f"{self.label}: {os.strerror(error.errno)}")
                raise
            self.received += 1
            if self.queued_bytes + len(frame) > self.limit_bytes:
                self.dropped_full += 1
                continue
            queue.append((due, frame))
            self.queued_bytes += len(frame)
        if self.queued_bytes > self.peak_bytes:
            self.peak_bytes = self.queued_bytes

    def flush(self, now):
        """Sends every frame that is due; stops at EAGAIN/ENOBUFS and retries a little later."""
        if now < self.blocked_until:
            return
        queue = self.queue
        send = self.sink.send
        while queue and queue[0][0] <= now:
            frame = queue[0][1]
            try:
                send(frame)
            except (BlockingIOError, InterruptedError):
                self.retries += 1
                self.blocked_until = now + RETRY
                return
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    self.retries += 1
                    self.blocked_until = now + RETRY
                    return
                if error.errno in GONE:
                    raise Stop(f"{self.label}: {os.strerror(error.errno)}")
                # EMSGSIZE (an offload left on) and the like: this frame can never go.
                if error.errno == errno.EMSGSIZE:
                    self.oversize += 1
                self.dropped_error += 1
            else:
                self.sent += 1
                self.bytes += len(frame)
            queue.popleft()
            self.queued_bytes -= len(frame)

    def next_due(self):
        if not self.queue:
            return None
        return max(self.queue[0][0], self.blocked_until)

    def poll_kernel_drops(self):
        try:
            packets, drops = struct.unpack("II", self.source.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return
        self.kernel_drops += drops  # reading the statistics resets them

    def report(self):
        self.poll_kernel_drops()
        return (f"{self.label}: delay {self.delay * 1000:g} ms, received {self.received}, sent {self.sent} "
                f"({self.bytes} bytes), queued now {len(self.queue)} ({self.queued_bytes} bytes), "
                f"peak {self.peak_bytes} bytes, send retries {self.retries}, dropped: socket buffer "
                f"{self.kernel_drops}, queue full {self.dropped_full}, send error {self.dropped_error} "
                f"(oversize {self.oversize})")

    def drops(self):
        return self.kernel_drops + self.dropped_full + self.dropped_error


def main():
    parser = argparse.ArgumentParser(description="User-space L2 delay bridge between two interfaces.")
    parser.add_argument("if_a")
    parser.add_argument("if_b")
    parser.add_argument("--delay", type=float, required=True, help="ms, IF_A -> IF_B")
    parser.add_argument("--delay-back", type=float, help="ms, IF_B -> IF_A (default: --delay)")
    parser.add_argument("--pidfile", help="written once both sockets are bound")
    parser.add_argument("--limit-bytes", type=int, default=64 << 20, help="queue per direction (default 64 MiB)")
    args = parser.parse_args()
    back = args.delay if args.delay_back is None else args.delay_back
    if args.delay < 0 or back < 0:
        parser.error("delays must be >= 0")

    tight_timers()
    a = open_socket(args.if_a)
    b = open_socket(args.if_b)
    directions = [
        Direction(f"{args.if_a}->{args.if_b}", a, b, args.delay / 1000, args.limit_bytes),
        Direction(f"{args.if_b}->{args.if_a}", b, a, back / 1000, args.limit_bytes),
    ]
    by_fd = {d.source.fileno(): d for d in directions}
    readers = [d.source for d in directions]

    def stop(signum, frame):
        raise Stop(signal.Signals(signum).name)

    def report(signum=None, frame=None):
        for d in directions:
            print(f"delaybridge: {d.report()}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, report)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.pidfile + ".tmp", args.pidfile)
    print(f"delaybridge: {args.if_a} <-> {args.if_b}, {args.delay:g} ms / {back:g} ms, pid {os.getpid()}",
          file=sys.stderr, flush=True)

    monotonic = time.monotonic
    reason = "stopped"
    try:
        while True:
            now = monotonic()
            timeout = 1.0  # wake now and then even when idle (SIGUSR1, socket statistics)
            for d in directions:
                d.flush(now)
                due = d.next_due()
                if due is not None and due - now < timeout:
                    timeout = max(due - now, 0.0)
            try:
                readable, _, _ = select.select(readers, [], [], timeout)
            except InterruptedError:
                continue
            if readable:
                now = monotonic()
                for s in readable:
                    by_fd[s.fileno()].read(now)
    except Stop as why:
        reason = str(why)
    report()
    drops = sum(d.drops() for d in directions)
    print(f"delaybridge: exiting ({reason}); {drops} frame(s) dropped in all", file=sys.stderr, flush=True)
    if args.pidfile:
        try:
            with open(args.pidfile) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(args.pidfile)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
