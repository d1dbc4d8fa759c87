#!/usr/bin/python3
"""weft's benchmark: every scenario with weft and its baselines in the same run.

Prints a table per scenario, writes results.json and failover.png (gnuplot) to the output folder.
Needs root for the network lab (scripts/lab.sh); run it through scripts/bench.sh, which builds a
release binary first. Standard library only.

Scenarios: loopback, udp, aggregation, failover, loss, transports, latency, scale, nat (default: all).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from streams import raise_fd_limit as raise_limit  # the same file-descriptor limit for every process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
FLOW = os.path.join(HERE, "flow.py")
STREAMS = os.path.join(HERE, "streams.py")
PINGPONG = os.path.join(HERE, "pingpong.py")
LAB = os.path.join(ROOT, "scripts", "lab.sh")
LAB_NAT = os.path.join(ROOT, "scripts", "lab-nat.sh")
NS_A, NS_B = "weft-lab-a", "weft-lab-b"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(message):
    print(message, flush=True)


def in_ns(ns, command):
    return ["ip", "netns", "exec", ns] + command if ns else command


class Processes:
    """Everything the bench starts, stopped in reverse order however the run ends."""

    def __init__(self, work):
        self.work = work
        self.running = []

    def start(self, name, command, ns=None, stdin=None):
        out = open(os.path.join(self.work, f"{name}.log"), "ab")
        process = subprocess.Popen(
            in_ns(ns, command), stdout=out, stderr=subprocess.STDOUT, stdin=stdin or subprocess.DEVNULL,
            preexec_fn=raise_limit, start_new_session=True,
        )
        process.bench_name = name
        self.running.append(process)
        return process

    def stop(self, process, timeout=10):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self):
        for process in reversed(list(self.running)):
            self.stop(process, timeout=5)


def wait_until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout} s waiting for {what}")


def listening(port, ns=None):
    """True once something listens on TCP `port`; never connects (a connection to a relay would
    reach the sink and be taken for the measured flow)."""
    out = subprocess.run(in_ns(ns, ["ss", "-Hltn", f"sport = :{port}"]), capture_output=True, text=True).stdout
    return bool(out.strip())


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="weft-bench.")
        self.procs = Processes(self.work)
        self.results = {}
        self.weft = os.path.abspath(args.weft)
        self.seconds = args.seconds
        self.port = 21000
        # What weft got wrong (a flow that failed, bytes lost or changed, streams that did not
        # open): figures are figures, but any of these fails the run, the smoke included.
        self.failures = []

    def wrong(self, message):
        log(f"   ! WRONG: {message}")
        self.failures.append(message)

    def next_port(self):
        self.port += 1
        return self.port

    # -- one measured flow ---------------------------------------------------------------------

    def flow(self, label, sink_listen, connect, seconds=None, sink_ns=None, source_ns=None, mptcp=False,
             verify=False, during=None, nodes=(), congestion=None):
        """Runs one flow; returns the sink's report plus the nodes' CPU seconds during it."""
        seconds = seconds or self.seconds
        report_path = os.path.join(self.work, f"flow-{time.monotonic_ns()}.json")
        ready = report_path + ".ready"
        sink_cmd = [PY, FLOW, "sink", "--listen", sink_listen, "--report", report_path, "--ready", ready]
        if verify:
            sink_cmd.append("--verify")
        if mptcp:
            sink_cmd.append("--mptcp")
        if congestion:
            sink_cmd += ["--congestion", congestion]
        sink = self.procs.start("sink", sink_cmd, ns=sink_ns)
        wait_until("the flow sink", lambda: os.path.exists(ready), 10)
        source_cmd = [PY, FLOW, "source", "--connect", connect, "--seconds", str(seconds)]
        if mptcp:
            source_cmd.append("--mptcp")
        if congestion:
            source_cmd += ["--congestion", congestion]
        cpu_before = {name: cpu_seconds(pid) for name, pid in nodes}
        source = self.procs.start("source", source_cmd, ns=source_ns)
        if during:
            during()
        try:
            source_status = source.wait(seconds + 60)
            sink_status = sink.wait(30)
        except subprocess.TimeoutExpired:
            self.procs.stop(source)
            self.procs.stop(sink)
            raise BenchError(f"{label}: the flow did not finish")
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in nodes}
        self.procs.stop(source)
        self.procs.stop(sink)
        if not os.path.exists(report_path):
            raise BenchError(f"{label}: the sink wrote no report (see {self.work}/sink.log)")
        with open(report_path) as f:
            report = json.load(f)
        report["label"] = label
        report["node_cpu_seconds"] = cpu
        # weft's flows must be correct; a baseline's failure is only reported.
        ours = label.startswith("weft")
        if report.get("error"):
            (self.wrong if ours else log)(f"{label}: {report['error']}")
        if source_status != 0 or sink_status != 0:
            (self.wrong if ours else log)(f"{label}: source exited {source_status}, sink {sink_status}")
        if report.get("mismatch_at") is not None:
            (self.wrong if ours else log)(f"{label}: the bytes changed at byte {report['mismatch_at']}")
        return report

    # -- weft sites ----------------------------------------------------------------------------

    def sites(self, name, broker, a_listen, apps, links_per_path=1, ns_a=None, ns_b=None, transport="tls",
              congestion=None, socket_extra="", b_tunnel_extra="", udp_apps=None):
        """Starts sites `name`-a (exposing `apps`: name -> (port at a, port at b)) and `name`-b,
        waits until b has `len(a_listen) * links_per_path` links up, and returns both processes.
        `transport` is the sockets' transportProtocol (tls, quic, websocket), `congestion` both
        sites' tunnel.congestionControl (TCP's, and QUIC's own of the same name)."""
        key = f"weft-bench-{name}"
        state = os.path.join(self.work, name)
        sockets = "".join(
            f"  - mode: dedicated-address\n    transportProtocol: {transport}\n    listenAddress: {address}\n"
            f"    listenPort: {port}\n{socket_extra}"
            for address, port in a_listen
        )
        congestion_line = f"  congestionControl: {congestion}\n" if congestion else ""
        udp_apps = udp_apps or {}
        exposed = "".join(f"- appName: {app}\n  appSocket: tcp:127.0.0.1:{ports[0]}\n" for app, ports in apps.items())
        exposed += "".join(f"- appName: {app}\n  appSocket: udp:127.0.0.1:{ports[0]}\n" for app, ports in udp_apps.items())
        remote = "".join(
            f"- siteName: {name}-a\n  appName: {app}\n  localSocket: tcp:127.0.0.1:{ports[1]}\n"
            for app, ports in apps.items()
        )
        remote += "".join(
            f"- siteName: {name}-a\n  appName: {app}\n  localSocket: udp:127.0.0.1:{ports[1]}\n"
            for app, ports in udp_apps.items()
        )
        common = f"crypto:\n  key: \"{key}\"\nmessageChannel:\n  mqtt:\n    brokerServer: mqtt://{broker}\n"
        a_yaml = (
            f"siteName: {name}-a\n{common}logger:\n  level: debug\n  file: {state}-a.log\n"
            f"tunnel:\n  linksPerPath: {links_per_path}\n{congestion_line}  localSockets:\n{sockets}"
            f"localExposedApps:\n{exposed}stateDir: {state}-a\n"
        )
        b_yaml = (
            f"siteName: {name}-b\n{common}logger:\n  level: debug\n  file: {state}-b.log\n"
            f"tunnel:\n  linksPerPath: {links_per_path}\n{congestion_line}{b_tunnel_extra}"
            f"remoteApps:\n{remote}stateDir: {state}-b\n"
        )
        for side, text in (("a", a_yaml), ("b", b_yaml)):
            with open(f"{state}-{side}.yaml", "w") as f:
                f.write(text)
        a = self.procs.start(f"{name}-a", [self.weft, "run", "--config", f"{state}-a.yaml"], ns=ns_a)
        b = self.procs.start(f"{name}-b", [self.weft, "run", "--config", f"{state}-b.yaml"], ns=ns_b)
        want = len(a_listen) * links_per_path

        def links_up():
            for process in (a, b):
                if process.poll() is not None:
                    raise BenchError(f"{process.bench_name} exited ({process.returncode}); see {self.work}")
            try:
                with open(f"{state}-b.log") as f:
                    return f.read().count("link up") >= want
            except FileNotFoundError:
                return False

        wait_until(f"{want} link(s) between {name}-a and {name}-b", links_up, 30)
        for ports in apps.values():
            wait_until("the remote app's local socket", lambda: listening(ports[1], ns_b), 10)
        return a, b

    def broker(self, listen_address, ns=None):
        port = self.next_port()
        conf = os.path.join(self.work, f"mosquitto-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} {listen_address}\nallow_anonymous true\n")
        self.procs.start("mosquitto", ["mosquitto", "-c", conf], ns=ns)
        wait_until("mosquitto", lambda: listening(port, ns), 10)
        return f"{listen_address}:{port}"

    # -- scenarios -------------------------------------------------------------------------------

    def udp(self):
        """UDP apps: iperf3 -u at fixed rates with WireGuard-sized datagrams, direct and through
        weft (its control connection through a TCP app on the same port), loss and jitter."""
        log("== udp, iperf3 -u, 1,400-byte datagrams, loopback")
        seconds = 2 if self.args.smoke else max(self.seconds, 5)
        rates = (100,) if self.args.smoke else (100, 400)
        server = self.next_port()
        rows = []

        def iperf(label, port, rate, nodes=()):
            self.procs.start("iperf3-server", ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(server)])
            wait_until("iperf3 -s", lambda: listening(server), 10)
            cpu_before = {name: cpu_seconds(pid) for name, pid in nodes}
            out = subprocess.run(
                ["iperf3", "-u", "-c", "127.0.0.1", "-p", str(port), "-b", f"{rate}M", "-l", "1400",
                 "-t", str(seconds), "-J"], capture_output=True, text=True, timeout=seconds + 60)
            try:
                report = json.loads(out.stdout)
                received = report["end"].get("sum_received") or report["end"]["sum"]
                summary = report["end"]["sum"]
                row = {"label": label, "rate_mbps": rate,
                       "received_mbps": received["bits_per_second"] / 1e6,
                       "lost_percent": summary.get("lost_percent", 0.0), "jitter_ms": summary.get("jitter_ms", 0.0),
                       "cpu": {name: cpu_seconds(pid) - cpu_before[name] for name, pid in nodes}}
            except (ValueError, KeyError) as error:
                self.wrong(f"{label}: iperf3 gave no report ({error}): {out.stdout[-500:]} {out.stderr[-500:]}")
                return None
            rows.append(row)
            cpu = "".join(f", {name} {seconds_:.2f} s CPU" for name, seconds_ in row["cpu"].items())
            log(f"   {label:<24} {rate:4} Mbit/s offered: {row['received_mbps']:7.1f} received, "
                f"{row['lost_percent']:5.2f} % lost, jitter {row['jitter_ms']:.3f} ms{cpu}")
            return row

        direct = {rate: iperf("direct", server, rate) for rate in rates}
        broker = self.broker("127.0.0.1")
        entry = self.next_port()
        a, b = self.sites("udp", broker, [("127.0.0.1", self.next_port())], {"iperf": (server, entry)},
                          udp_apps={"iperf-data": (server, entry)})
        through = {rate: iperf("weft, UDP app", entry, rate, [("site a", a.pid), ("site b", b.pid)])
                   for rate in rates}
        self.procs.stop(b)
        self.procs.stop(a)
        for rate in rates:
            if direct[rate] and through[rate]:
                log(f"   at {rate} Mbit/s: weft / direct received {through[rate]['received_mbps'] / max(direct[rate]['received_mbps'], 1e-9):.2f}×,"
                    f" loss {through[rate]['lost_percent']:.2f} % vs {direct[rate]['lost_percent']:.2f} %")
        self.results["udp"] = rows

    def loopback(self):
        """One stream on loopback: direct, socat two hops, an stunnel pair, ssh -L, weft."""
        log("== loopback, one stream")
        rows = []
        sink = self.next_port()

        def relay_flow(label, entry_port, processes=()):
            wait_until(label, lambda: listening(entry_port), 15)
            row = self.flow(label, f"127.0.0.1:{sink}", f"127.0.0.1:{entry_port}", nodes=processes)
            rows.append(row)
            log(f"   {label:<28} {row['mbps'] / 1000:7.2f} Gbit/s")
            return row

        rows.append(self.flow("direct TCP", f"127.0.0.1:{sink}", f"127.0.0.1:{sink}"))
        log(f"   {'direct TCP':<28} {rows[-1]['mbps'] / 1000:7.2f} Gbit/s")

        # socat: two relays in a row, like two relay hosts.
        p1, p2 = self.next_port(), self.next_port()
        s2 = self.procs.start("socat", ["socat", f"TCP-LISTEN:{p2},bind=127.0.0.1,reuseaddr", f"TCP:127.0.0.1:{sink}"])
        s1 = self.procs.start("socat", ["socat", f"TCP-LISTEN:{p1},bind=127.0.0.1,reuseaddr", f"TCP:127.0.0.1:{p2}"])
        wait_until("socat", lambda: listening(p2), 10)
        relay_flow("socat, two hops", p1, [("relay 1", s1.pid), ("relay 2", s2.pid)])
        self.procs.stop(s1)
        self.procs.stop(s2)

        # stunnel: a client and a server instance, TLS between them.
        entry, t1, t2 = self.stunnel_pair(sink)
        stunnel = relay_flow("stunnel pair (TLS 1.3)", entry, [("client", t1.pid), ("server", t2.pid)])
        self.procs.stop(t1)
        self.procs.stop(t2)

        # The same with SwiftNIO and NIOSSL: weft's stack without weft.
        nio = self.nio_pair(sink)
        if nio:
            relay_flow("SwiftNIO TLS pair (floor)", nio[0], [("client", nio[1].pid), ("server", nio[2].pid)])
            self.procs.stop(nio[1])
            self.procs.stop(nio[2])

        # ssh -L through a private sshd.
        ssh_row = self.ssh_forward(sink, relay_flow)

        # weft, one and two links.
        broker = self.broker("127.0.0.1")
        weft_rows = []
        for links in (1, 2, 4):
            entry = self.next_port()
            a, b = self.sites(f"lo{links}", broker, [("127.0.0.1", self.next_port())], {"sink": (sink, entry)},
                              links_per_path=links)
            if links == 1:
                # Linked and idle: 2 s after start (startup pages still resident), then settled,
                # after the node gave back what only starting needed (5 s after start).
                time.sleep(2)
                self.results["startup_rss_mib"] = {"site a": rss_mib(a.pid), "site b": rss_mib(b.pid)}
                time.sleep(8 if not self.args.smoke else 4)
                self.results["idle_rss_mib"] = {"site a": rss_mib(a.pid), "site b": rss_mib(b.pid)}
                log(f"   idle node RSS: {self.results['startup_rss_mib']['site a']:.1f} MiB at 2 s, "
                    f"{self.results['idle_rss_mib']['site a']:.1f} MiB settled")
            weft_rows.append(relay_flow(f"weft, {links} link{'s' if links > 1 else ''}", entry,
                                        [("site a", a.pid), ("site b", b.pid)]))
            self.procs.stop(b)
            self.procs.stop(a)
        log(f"   weft, 2 links / 1 link: {weft_rows[1]['mbps'] / weft_rows[0]['mbps']:.2f}×, "
            f"4 links / 1 link: {weft_rows[2]['mbps'] / weft_rows[0]['mbps']:.2f}×")
        log(f"   weft, 1 link / stunnel pair: {weft_rows[0]['mbps'] / stunnel['mbps']:.2f}×"
            + (f"; / ssh -L: {weft_rows[0]['mbps'] / ssh_row['mbps']:.2f}×" if ssh_row else ""))
        self.results["loopback"] = rows

    def stunnel_pair(self, target):
        """An stunnel client and server on loopback in front of `target`; returns the client's
        port and both processes."""
        cert = os.path.join(self.work, "stunnel.pem")
        if not os.path.exists(cert):
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-subj", "/CN=weft-bench", "-days", "1", "-keyout", cert, "-out", cert],
                check=True, capture_output=True,
            )
        p1, p2 = self.next_port(), self.next_port()
        server_conf = os.path.join(self.work, f"stunnel-server-{p2}.conf")
        client_conf = os.path.join(self.work, f"stunnel-client-{p1}.conf")
        with open(server_conf, "w") as f:
            f.write(f"foreground = yes\npid =\n[bench]\naccept = 127.0.0.1:{p2}\nconnect = 127.0.0.1:{target}\n"
                    f"cert = {cert}\nkey = {cert}\n")
        with open(client_conf, "w") as f:
            f.write(f"foreground = yes\npid =\n[bench]\nclient = yes\naccept = 127.0.0.1:{p1}\n"
                    f"connect = 127.0.0.1:{p2}\n")
        server = self.procs.start("stunnel", ["stunnel4", server_conf])
        client = self.procs.start("stunnel", ["stunnel4", client_conf])
        wait_until("stunnel", lambda: listening(p1) and listening(p2), 10)
        return p1, client, server

    def nio_pair(self, target):
        """The smallest TLS relay pair SwiftNIO and NIOSSL make (`weft-bench tls-relay`, weft's own
        link TLS) in front of `target`: the floor of weft's stack, no framing, no multiplexing.
        Returns the client end's port and both processes, or None without a built weft-bench."""
        tool = os.path.join(os.path.dirname(self.weft), "weft-bench")
        if not os.access(tool, os.X_OK):
            log(f"   (no SwiftNIO TLS pair: {tool} is not built)")
            return None
        identity = os.path.join(self.work, "nio-pair-identity")
        p1, p2 = self.next_port(), self.next_port()
        server = self.procs.start("nio-pair", [tool, "tls-relay", "--side", "server", "--listen", str(p2),
                                               "--connect", str(target), "--identity-directory", identity])
        wait_until("the SwiftNIO pair's server end", lambda: listening(p2), 15)
        client = self.procs.start("nio-pair", [tool, "tls-relay", "--side", "client", "--listen", str(p1),
                                               "--connect", str(p2), "--identity-directory", identity])
        wait_until("the SwiftNIO pair's client end", lambda: listening(p1), 15)
        return p1, client, server

    def ssh_forward(self, sink, relay_flow):
        tunnel = self.ssh_tunnel(sink)
        if tunnel is None:
            return None
        entry, client, sshd = tunnel
        row = relay_flow("ssh -L", entry, [("ssh", client.pid)])
        self.procs.stop(client)
        self.procs.stop(sshd)
        return row

    def ssh_tunnel(self, target):
        """`ssh -L` to `target` through a private sshd on loopback: (entry port, ssh, sshd), or None
        without openssh-server."""
        if not shutil.which("sshd") and not os.path.exists("/usr/sbin/sshd"):
            log("   ssh -L: skipped: openssh-server is not installed")
            return None
        os.makedirs("/run/sshd", exist_ok=True)
        key = os.path.join(self.work, "ssh_key")
        host_key = os.path.join(self.work, "ssh_host_key")
        for path in (key, host_key):
            if not os.path.exists(path):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        shutil.copy(key + ".pub", os.path.join(self.work, "authorized_keys"))
        port, entry = self.next_port(), self.next_port()
        conf = os.path.join(self.work, f"sshd_config-{port}")
        with open(conf, "w") as f:
            f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\nUsePAM no\n"
                    f"StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    f"AuthorizedKeysFile {self.work}/authorized_keys\nAllowTcpForwarding yes\n")
        sshd = self.procs.start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", conf])
        wait_until("sshd", lambda: listening(port), 10)
        client = self.procs.start("ssh", [
            "ssh", "-N", "-i", key, "-p", str(port), "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes",
            "-L", f"127.0.0.1:{entry}:127.0.0.1:{target}", "root@127.0.0.1",
        ])
        wait_until("ssh -L", lambda: listening(entry), 15)
        return entry, client, sshd

    def lab(self, *arguments):
        subprocess.run(["bash", LAB, *arguments], check=True, capture_output=True)

    def lab_sites(self, links, transport="tls", congestion=None, broker=None):
        broker = broker or self.broker("198.19.0.1", ns=NS_A)
        sink = self.next_port()
        entry = self.next_port()
        listen_port = self.next_port()
        a, b = self.sites(f"lab{time.monotonic_ns() % 100000}", broker,
                          [(f"198.18.{n}.1", listen_port) for n in range(1, links + 1)],
                          {"sink": (sink, entry)}, ns_a=NS_A, ns_b=NS_B, transport=transport,
                          congestion=congestion)
        return a, b, sink, entry

    def mptcp_setup(self, links):
        for ns in (NS_A, NS_B):
            subprocess.run(in_ns(ns, ["ip", "mptcp", "limits", "set", "subflow", "8", "add_addr_accepted", "8"]),
                           check=True)
            subprocess.run(in_ns(ns, ["ip", "mptcp", "endpoint", "flush"]), check=True)
        for n in range(2, links + 1):
            subprocess.run(in_ns(NS_B, ["ip", "mptcp", "endpoint", "add", f"198.18.{n}.2", "dev", f"wlb{n}",
                                        "subflow"]), check=True)

    def shaped(self, key, title, rates, transport="tls"):
        """weft against each link alone, their sum and kernel MPTCP on the same shaped links."""
        if self.args.cases and key not in self.args.cases:
            return
        log(f"== {title}")
        self.lab("up", *rates)
        self.mptcp_setup(len(rates))
        rows = []
        port = self.next_port()
        for n in range(1, len(rates) + 1):
            row = self.flow(f"link {n} alone ({rates[n - 1]})", f"198.18.{n}.1:{port}", f"198.18.{n}.1:{port}",
                            sink_ns=NS_A, source_ns=NS_B)
            rows.append(row)
            log(f"   {row['label']:<28} {row['mbps']:8.1f} Mbit/s")
        total = sum(r["mbps"] for r in rows)
        fastest = max(r["mbps"] for r in rows)
        mptcp = self.flow("kernel MPTCP", f"0.0.0.0:{port}", f"198.18.1.1:{port}", sink_ns=NS_A, source_ns=NS_B,
                          mptcp=True)
        log(f"   {'kernel MPTCP':<28} {mptcp['mbps']:8.1f} Mbit/s  {mptcp['mbps'] / total * 100:5.1f} % of the sum")
        a, b, sink, entry = self.lab_sites(len(rates), transport=transport)
        label = f"weft, {len(rates)} {'QUIC ' if transport == 'quic' else ''}links"
        weft = self.flow(label, f"127.0.0.1:{sink}", f"127.0.0.1:{entry}", sink_ns=NS_A,
                         source_ns=NS_B, nodes=[("site a", a.pid), ("site b", b.pid)])
        log(f"   {weft['label']:<28} {weft['mbps']:8.1f} Mbit/s  {weft['mbps'] / total * 100:5.1f} % of the sum, "
            f"{weft['mbps'] / fastest:.2f}× the fastest link, {weft['mbps'] / mptcp['mbps']:.2f}× MPTCP")
        self.procs.stop_all()
        self.lab("down")
        self.results.setdefault("aggregation", []).append({
            "key": key, "title": title, "rates": rates, "alone": rows, "sum_mbps": total, "mptcp": mptcp,
            "weft": weft, "transport": transport,
        })

    def aggregation(self):
        self.shaped("2x100", "aggregation: 2 × 100 Mbit/s", ["100mbit", "100mbit"])
        self.shaped("2x100quic", "aggregation: 2 × 100 Mbit/s, QUIC links", ["100mbit", "100mbit"], transport="quic")
        self.shaped("100+20", "aggregation: 100 + 20 Mbit/s", ["100mbit", "20mbit"])
        self.shaped("4mixed", "aggregation: 4 mixed links", ["100mbit", "50mbit", "20mbit", "10mbit"])
        if not self.args.rtt:
            return
        if not os.path.exists(os.path.join(ROOT, "scripts", "delaybridge.py")):
            log("== aggregation at 1:25 RTT: skipped: the lab has no delay relay yet (no netem on this kernel)")
            return
        self.shaped("1:25rtt", "aggregation: 50 + 50 Mbit/s at 1:25 RTT", ["50mbit@1ms", "50mbit@25ms"])

    def failover(self):
        """One of two 100 Mbit/s links cut 3 s into a 10 s transfer: bytes lost, longest stall."""
        log("== failover: link 1 of 2 × 100 Mbit/s cut 3 s into the transfer")
        self.lab("up", "100mbit", "100mbit")
        self.mptcp_setup(2)
        port = self.next_port()
        cut = lambda: (time.sleep(3), self.lab("cut", "1"))  # noqa: E731
        seconds = 5 if self.args.smoke else max(self.seconds, 10)
        mptcp = self.flow("kernel MPTCP", f"0.0.0.0:{port}", f"198.18.1.1:{port}", seconds=seconds, sink_ns=NS_A,
                          source_ns=NS_B, mptcp=True, verify=True, during=cut)
        self.lab("restore", "1")
        a, b, sink, entry = self.lab_sites(2)
        weft = self.flow("weft, 2 links", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}", seconds=seconds, sink_ns=NS_A,
                         source_ns=NS_B, verify=True, during=cut)
        rows = []
        for row in (mptcp, weft):
            lost = "none" if row["mismatch_at"] is None and not row["error"] else (
                f"stream broken at byte {row['mismatch_at']}" if row["mismatch_at"] is not None else row["error"])
            after = row["series_mbps"][int(4.5 / row["interval"]):]
            row["after_cut_mbps"] = sum(after) / len(after) if after else 0.0
            log(f"   {row['label']:<16} {row['bytes'] / 1e6:8.1f} MB received, bytes lost: {lost}, "
                f"longest stall {row['longest_gap'] * 1000:.0f} ms, {row['after_cut_mbps']:.1f} Mbit/s after the cut")
            rows.append(row)
        self.procs.stop_all()
        self.lab("down")
        self.results["failover"] = rows
        self.plot_failover(rows)

    def plot_failover(self, rows):
        data = os.path.join(self.args.out, "failover.dat")
        with open(data, "w") as f:
            for row in rows:
                f.write(f"# {row['label']}\n")
                for i, mbps in enumerate(row["series_mbps"]):
                    f.write(f"{(i + 1) * row['interval'] + row['since_start']:.2f} {mbps:.2f}\n")
                f.write("\n\n")
        if not shutil.which("gnuplot"):
            log("   (no gnuplot: failover.png not drawn; the series are in failover.dat)")
            return
        png = os.path.join(self.args.out, "failover.png")
        script = (
            f"set terminal pngcairo size 900,420 font 'sans,10'\nset output '{png}'\n"
            "set title 'Link 1 of 2 × 100 Mbit/s cut at 3 s (100 ms bins, receiver side)'\n"
            "set xlabel 'seconds'\nset ylabel 'Mbit/s'\nset yrange [0:*]\nset grid\nset key bottom right\n"
            "set arrow from 3, graph 0 to 3, graph 1 nohead dt 2\n"
            f"plot '{data}' index 0 with lines lw 2 title '{rows[0]['label']}', "
            f"'{data}' index 1 with lines lw 2 title '{rows[1]['label']}'\n"
        )
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        log(f"   plot: {png}")

    def loss(self):
        """1 % and 5 % packet loss on one of two 100 Mbit/s links: goodput, weft against MPTCP."""
        log("== loss on link 1 of 2 × 100 Mbit/s")
        self.lab("up", "100mbit", "100mbit")
        self.mptcp_setup(2)
        port = self.next_port()
        a, b, sink, entry = self.lab_sites(2)
        rows = []
        for percent in (1, 5):
            self.lab("loss", "1", str(percent))
            alone = self.flow(f"link 1 alone, {percent} % loss", f"198.18.1.1:{port}", f"198.18.1.1:{port}",
                              sink_ns=NS_A, source_ns=NS_B)
            mptcp = self.flow(f"kernel MPTCP, {percent} % loss", f"0.0.0.0:{port}", f"198.18.1.1:{port}",
                              sink_ns=NS_A, source_ns=NS_B, mptcp=True)
            weft = self.flow(f"weft, {percent} % loss", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}", sink_ns=NS_A,
                             source_ns=NS_B)
            for row in (alone, mptcp, weft):
                log(f"   {row['label']:<28} {row['mbps']:8.1f} Mbit/s")
            log(f"   weft / MPTCP at {percent} %: {weft['mbps'] / mptcp['mbps']:.2f}×")
            rows.append({"percent": percent, "alone": alone, "mptcp": mptcp, "weft": weft})
        self.procs.stop_all()
        self.lab("down")
        self.results["loss"] = rows

    def transports(self):
        """Link transports: one stream on loopback over a TLS, a QUIC and a WebSocket link (behind
        nginx, TLS-terminating); then one 100 Mbit/s link at 20 ms RTT with 1 % and 3 % loss:
        QUIC and TLS links, cubic and bbr, against kernel MPTCP on the same link."""
        self.transport_loopback()
        self.transport_loss()

    def alternate(self, one_flow):
        """TLS and QUIC links in turn, over three rounds, each keeping its median: two cores carry
        both sites, the source and the sink, so single flows vary by tens of percent.
        `one_flow(transport)` starts two sites, runs a flow and stops them."""
        rounds = 1 if self.args.smoke else 3
        runs = {"tls": [], "quic": []}
        for round in range(rounds):
            for transport in runs:
                row = one_flow(transport)
                log(f"   {row['label']:<34} {row['mbps'] / 1000:7.2f} Gbit/s  (round {round + 1})")
                runs[transport].append(row)
        rows = {}
        for transport, results in runs.items():
            ordered = sorted(results, key=lambda row: row["mbps"])
            rows[transport] = dict(ordered[len(ordered) // 2], rounds_mbps=[row["mbps"] for row in results])
            if rounds > 1:
                log(f"   {rows[transport]['label']:<34} {rows[transport]['mbps'] / 1000:7.2f} Gbit/s  (median)")
        return rows

    def transport_loopback(self):
        log("== link transports on loopback, one stream")
        sink = self.next_port()
        broker = self.broker("127.0.0.1")

        def one_flow(transport):
            entry = self.next_port()
            a, b = self.sites(f"lo{transport}{entry}", broker, [("127.0.0.1", self.next_port())],
                              {"sink": (sink, entry)}, transport=transport)
            row = self.flow(f"weft, 1 {transport.upper()} link", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}",
                            nodes=[("site a", a.pid), ("site b", b.pid)])
            self.procs.stop(b)
            self.procs.stop(a)
            return row

        rows = self.alternate(one_flow)
        if shutil.which("nginx") and shutil.which("openssl"):
            upstream, proxy, entry = self.next_port(), self.next_port(), self.next_port()
            nginx = self.nginx(proxy, upstream)
            a, b = self.sites("lows", broker, [("127.0.0.1", upstream)], {"sink": (sink, entry)},
                              transport="websocket",
                              socket_extra=f"    publicUrl: wss://localhost:{proxy}/weft\n",
                              b_tunnel_extra=f"  caFile: {os.path.join(self.work, 'nginx-cert.pem')}\n")
            rows["websocket"] = self.flow("weft, 1 WebSocket link via nginx", f"127.0.0.1:{sink}",
                                          f"127.0.0.1:{entry}",
                                          nodes=[("site a", a.pid), ("site b", b.pid), ("nginx", nginx.pid)])
            log(f"   {rows['websocket']['label']:<34} {rows['websocket']['mbps'] / 1000:7.2f} Gbit/s")
            self.procs.stop(b)
            self.procs.stop(a)
            self.procs.stop(nginx)
        else:
            log("   WebSocket via nginx: skipped: no nginx or openssl")
        tls = rows["tls"]["mbps"]
        ratios = ", ".join(f"{name} / TLS {row['mbps'] / tls:.2f}×" for name, row in rows.items() if name != "tls")
        log(f"   {ratios}")
        self.results["transport_loopback"] = rows
        self.transport_veth()

    def transport_veth(self):
        """The same flow between two namespaces over the lab's unshaped control veth (MTU 1500):
        there a QUIC link sends network-sized packets, as on any network; on loopback it sends
        16 KB ones, since the kernel knows that path whole."""
        log("== link transports across an unshaped veth (MTU 1500), one stream")
        self.lab("up", "100mbit")
        broker = self.broker("198.19.0.1", ns=NS_A)
        sink = self.next_port()

        def one_flow(transport):
            entry = self.next_port()
            a, b = self.sites(f"veth{transport}{entry}", broker, [("198.19.0.1", self.next_port())],
                              {"sink": (sink, entry)}, ns_a=NS_A, ns_b=NS_B, transport=transport)
            row = self.flow(f"weft, 1 {transport.upper()} link, veth", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}",
                            sink_ns=NS_A, source_ns=NS_B, nodes=[("site a", a.pid), ("site b", b.pid)])
            self.procs.stop(b)
            self.procs.stop(a)
            return row

        rows = self.alternate(one_flow)
        self.procs.stop_all()
        self.lab("down")
        log(f"   quic / TLS {rows['quic']['mbps'] / rows['tls']['mbps']:.2f}× (network-sized QUIC packets)")
        self.results["transport_veth"] = rows

    def nginx(self, port, upstream):
        """nginx terminating TLS (a self-signed certificate for localhost) on `port`, passing
        `/weft` WebSocket upgrades to `upstream`."""
        work = self.work
        cert, key = os.path.join(work, "nginx-cert.pem"), os.path.join(work, "nginx-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        temp = os.path.join(work, "nginx-tmp")
        os.makedirs(temp, exist_ok=True)
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                f"master_process off;\ndaemon off;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log;\n"
                "events { worker_connections 128; }\nhttp {\n  access_log off;\n"
                + "".join(f"  {kind}_temp_path {temp}/{kind};\n"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n"
                f"    ssl_certificate_key {key};\n    location /weft {{\n"
                f"      proxy_pass http://127.0.0.1:{upstream};\n      proxy_http_version 1.1;\n"
                "      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n"
                "      proxy_read_timeout 3600s;\n      proxy_send_timeout 3600s;\n    }\n  }\n}\n")
        process = self.procs.start("nginx", ["nginx", "-e", f"{work}/nginx-error.log", "-c", conf, "-p", work])
        wait_until("nginx", lambda: listening(port), 10)
        return process

    def transport_loss(self):
        log("== loss on one 100 Mbit/s link at 20 ms RTT: QUIC and TLS links, cubic and bbr")
        self.lab("up", "100mbit@10ms")
        self.mptcp_setup(1)
        broker = self.broker("198.19.0.1", ns=NS_A)
        port = self.next_port()
        configs = [("tls", "cubic"), ("tls", "bbr"), ("quic", "cubic"), ("quic", "bbr")]
        rows = []
        for percent in ((1,) if self.args.smoke else (1, 3)):
            self.lab("loss", "1", str(percent))
            # The system's default congestion control differs between machines (bbr on some):
            # measure MPTCP with each, set on its sockets.
            mptcp = {}
            for congestion in ("cubic", "bbr"):
                mptcp[congestion] = self.flow(f"kernel MPTCP, {congestion}, {percent} % loss", f"0.0.0.0:{port}",
                                              f"198.18.1.1:{port}", sink_ns=NS_A, source_ns=NS_B, mptcp=True,
                                              congestion=congestion)
                log(f"   {mptcp[congestion]['label']:<34} {mptcp[congestion]['mbps']:8.1f} Mbit/s")
            weft = {}
            for transport, congestion in configs:
                a, b, sink, entry = self.lab_sites(1, transport=transport, congestion=congestion, broker=broker)
                row = self.flow(f"weft, {transport.upper()} link, {congestion}, {percent} % loss", f"127.0.0.1:{sink}",
                                f"127.0.0.1:{entry}", sink_ns=NS_A, source_ns=NS_B,
                                nodes=[("site a", a.pid), ("site b", b.pid)])
                log(f"   {row['label']:<34} {row['mbps']:8.1f} Mbit/s")
                weft[f"{transport}/{congestion}"] = row
                self.procs.stop(b)
                self.procs.stop(a)
            best_name, best = max(weft.items(), key=lambda item: item[1]["mbps"])
            baseline = weft["tls/cubic"]["mbps"]
            best_mptcp = max(row["mbps"] for row in mptcp.values())
            log(f"   best weft ({best_name}) at {percent} %: {best['mbps'] / baseline:.2f}× the TLS/cubic link, "
                f"{best['mbps'] / best_mptcp:.2f}× MPTCP's best")
            rows.append({"percent": percent, "mptcp": mptcp, "weft": weft, "best": best_name})
        self.procs.stop_all()
        self.lab("down")
        self.results["transport_loss"] = rows

    def latency(self):
        """redis-benchmark through a tunnel on loopback against redis directly."""
        log("== latency: redis-benchmark, direct and through weft (loopback)")
        port, entry = self.next_port(), self.next_port()
        self.procs.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"])
        wait_until("redis", lambda: listening(port), 10)
        broker = self.broker("127.0.0.1")
        self.sites("lat", broker, [("127.0.0.1", self.next_port())], {"redis": (port, entry)})
        stunnel, _, _ = self.stunnel_pair(port)
        paths = [("direct", port), ("stunnel pair", stunnel)]
        nio = self.nio_pair(port)
        if nio:
            paths.append(("SwiftNIO TLS pair", nio[0]))
        paths.append(("weft", entry))
        rows = []
        for clients in (1, 50):
            for label, target in paths:
                out = subprocess.run(
                    ["redis-benchmark", "-h", "127.0.0.1", "-p", str(target), "-t", "set,get", "-n",
                     str(self.args.requests), "-c", str(clients), "--csv"],
                    capture_output=True, text=True, timeout=300, check=True,
                ).stdout
                for line in out.splitlines()[1:]:
                    cells = [c.strip('"') for c in line.split(",")]
                    rows.append({"path": label, "clients": clients, "test": cells[0], "rps": float(cells[1]),
                                 "p50_ms": float(cells[4]), "p99_ms": float(cells[6])})
        for clients in (1, 50):
            for test in ("SET", "GET"):
                pick = lambda path: next(  # noqa: E731
                    r for r in rows if r["path"] == path and r["clients"] == clients and r["test"] == test)
                d = pick("direct")
                parts = []
                for path, _ in paths[1:]:
                    r = pick(path)
                    parts.append(f"{path}: p50 {r['p50_ms']:.3f} ({r['p50_ms'] - d['p50_ms']:+.3f}) "
                                 f"p99 {r['p99_ms']:.3f} ({r['p99_ms'] - d['p99_ms']:+.3f}) ms, {r['rps']:.0f}/s")
                log(f"   {test} {clients:>2} client(s): direct p50 {d['p50_ms']:.3f} p99 {d['p99_ms']:.3f} ms, "
                    f"{d['rps']:.0f}/s; " + "; ".join(parts))
        self.results["latency"] = rows
        self.pingpong(broker)
        self.procs.stop_all()

    def pingpong(self, broker):
        """A 1-byte ping-pong over one connection (a keystroke in a shell): round trips per second."""
        log("== interactive: 1-byte ping-pong over one connection (loopback)")
        echo = self.next_port()
        self.procs.start("echo", [PY, PINGPONG, "serve", f"127.0.0.1:{echo}"])
        wait_until("echo", lambda: listening(echo), 10)
        entry = self.next_port()
        self.sites("pp", broker, [("127.0.0.1", self.next_port())], {"echo": (echo, entry)})
        stunnel, _, _ = self.stunnel_pair(echo)
        paths = [("direct", echo), ("stunnel pair", stunnel)]
        nio = self.nio_pair(echo)
        if nio:
            paths.append(("SwiftNIO TLS pair", nio[0]))
        ssh = self.ssh_tunnel(echo)
        if ssh:
            paths.append(("ssh -L", ssh[0]))
        paths.append(("weft", entry))
        seconds = 2 if self.args.smoke else 5
        rows = []
        for label, port in paths:
            out = subprocess.run([PY, PINGPONG, "run", f"127.0.0.1:{port}", str(seconds)], capture_output=True,
                                 text=True, timeout=120, check=True).stdout
            row = {"path": label, **json.loads(out)}
            rows.append(row)
            log(f"   {label:<14} {row['per_second']:8.0f} round trips/s, p50 {row['p50_us']:6.1f} µs, "
                f"p99 {row['p99_us']:6.1f} µs")
        weft, stunnel_row = rows[-1], rows[1]
        log(f"   weft / stunnel pair: {weft['per_second'] / stunnel_row['per_second']:.2f}×"
            + "".join(f"; / {r['path']}: {weft['per_second'] / r['per_second']:.2f}×" for r in rows
                      if r["path"] in ("ssh -L", "SwiftNIO TLS pair")))
        self.results["pingpong"] = rows

    def scale(self):
        """1,000 and 10,000 concurrent streams through one tunnel: node RSS and CPU, opens per second."""
        log("== scale: concurrent streams through one tunnel (loopback, echo app)")
        echo, entry = self.next_port(), self.next_port()
        self.procs.start("echo", [PY, STREAMS, "echo", "--listen", f"127.0.0.1:{echo}"])
        wait_until("the echo app", lambda: listening(echo), 10)
        broker = self.broker("127.0.0.1")
        rows = []
        for count in self.args.streams:
            direct = self.open_streams(count, echo, [])
            a, b = self.sites(f"sc{count}", broker, [("127.0.0.1", self.next_port())], {"echo": (echo, entry)})
            # After the startup trim (5 s after start), so it does not land among the opens.
            time.sleep(6)
            idle = {"site a": rss_mib(a.pid), "site b": rss_mib(b.pid)}
            weft = self.open_streams(count, entry, [("site a", a.pid), ("site b", b.pid)])
            weft["idle_rss_mib"] = idle
            rss = weft["rss_mib"]
            if weft.get("error") or weft.get("failures", 0) > 0 or weft.get("open", 0) < count:
                self.wrong(f"{count} streams through weft: {weft.get('open')} open, {weft.get('failures')} failed"
                           f"{', ' + weft['error'] if weft.get('error') else ''}")
            log(f"   {count:>6} streams: direct {direct['opens_per_second']:8.0f} opens/s; weft "
                f"{weft['opens_per_second']:8.0f} opens/s, {weft['open']} open, {weft['failures']} failed, "
                f"p99 open {weft['p99_open_ms'] or 0:.1f} ms; RSS a {idle['site a']:.1f}→{rss['site a']:.1f} MiB, "
                f"b {idle['site b']:.1f}→{rss['site b']:.1f} MiB "
                f"({(rss['site a'] - idle['site a']) * 1024 / count:.1f} + "
                f"{(rss['site b'] - idle['site b']) * 1024 / count:.1f} KiB per stream); CPU "
                f"{weft['cpu_seconds']['site a']:.2f} s + {weft['cpu_seconds']['site b']:.2f} s")
            # How long a linked node takes from SIGTERM to exit (goodbyes to its peer and the
            # broker included): a figure here, never a bound in a test.
            stopping = time.monotonic()
            self.procs.stop(b)
            weft["stop_seconds"] = time.monotonic() - stopping
            log(f"   a linked node stopped {weft['stop_seconds'] * 1000:.0f} ms after SIGTERM")
            rows.append({"count": count, "direct": direct, "weft": weft})
            self.procs.stop(a)
        self.procs.stop_all()
        self.results["scale"] = rows

    def nat(self):
        """Issue 18: a tunnel through a relay site against a direct one (goodput and redis
        latency, loopback), and the time from two sites starting behind cone NATs to an app's
        first bytes through a punched link (scripts/lab-nat.sh first-byte)."""
        self.relay_loopback()
        self.relay_shaped()
        self.punch_first_byte()

    def redis_latency(self, port, requests, clients=1):
        """redis-benchmark SET and GET at `port`: {test: {rps, p50_ms, p99_ms}}."""
        out = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get", "-n", str(requests), "-c",
             str(clients), "--csv"], capture_output=True, text=True, timeout=300, check=True).stdout
        rows = {}
        for line in out.splitlines()[1:]:
            cells = [c.strip('"') for c in line.split(",")]
            rows[cells[0]] = {"rps": float(cells[1]), "p50_ms": float(cells[4]), "p99_ms": float(cells[6])}
        return rows

    def relayed_sites(self, name, broker, apps, relay_address="127.0.0.1", ns_a=None, ns_b=None):
        """Sites `name`-a (exposing `apps`) and `name`-b with no socket of their own, and relay
        `name`-r (listening at `relay_address`, in a's namespace): their only path is a relayed
        link through r. Waits for it at b."""
        key = f"weft-bench-{name}"
        state = os.path.join(self.work, name)
        common = f"crypto:\n  key: \"{key}\"\nmessageChannel:\n  mqtt:\n    brokerServer: mqtt://{broker}\n"
        relay_port = self.next_port()
        texts = {
            "r": f"tunnel:\n  relay: true\n  localSockets:\n  - mode: dedicated-address\n"
                 f"    listenAddress: {relay_address}\n    listenPort: {relay_port}\n",
            "a": "tunnel:\n  localSockets: []\nlocalExposedApps:\n"
                 + "".join(f"- appName: {app}\n  appSocket: tcp:127.0.0.1:{ports[0]}\n" for app, ports in apps.items()),
            "b": "tunnel:\n  localSockets: []\nremoteApps:\n"
                 + "".join(f"- siteName: {name}-a\n  appName: {app}\n  localSocket: tcp:127.0.0.1:{ports[1]}\n"
                           for app, ports in apps.items()),
        }
        processes = {}
        for side in ("r", "a", "b"):
            with open(f"{state}-{side}.yaml", "w") as f:
                f.write(f"siteName: {name}-{side}\n{common}logger:\n  level: debug\n  file: {state}-{side}.log\n"
                        f"{texts[side]}stateDir: {state}-{side}\n")
            processes[side] = self.procs.start(f"{name}-{side}",
                                               [self.weft, "run", "--config", f"{state}-{side}.yaml"],
                                               ns=ns_b if side == "b" else ns_a)

        def relayed_up():
            for process in processes.values():
                if process.poll() is not None:
                    raise BenchError(f"{process.bench_name} exited ({process.returncode}); see {self.work}")
            try:
                with open(f"{state}-b.log") as f:
                    return f"path=\"relayed via {name}-r\"" in f.read()
            except FileNotFoundError:
                return False

        wait_until(f"a relayed link from {name}-b to {name}-a", relayed_up, 60)
        for ports in apps.values():
            wait_until("the remote app's local socket", lambda: listening(ports[1], ns_b), 10)
        return processes

    def relay_loopback(self):
        log("== relay on loopback: a tunnel through a relay site against a direct one")
        sink, redis = self.next_port(), self.next_port()
        self.procs.start("redis", ["redis-server", "--port", str(redis), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"])
        wait_until("redis", lambda: listening(redis), 10)
        broker = self.broker("127.0.0.1")
        requests = self.args.requests
        direct = {"tcp": self.flow("direct TCP", f"127.0.0.1:{sink}", f"127.0.0.1:{sink}"),
                  "redis": self.redis_latency(redis, requests)}
        rows = {"direct": direct}
        entries = {"direct weft": (self.next_port(), self.next_port()), "relayed weft": (self.next_port(),
                                                                                     self.next_port())}
        for label, (flow_entry, redis_entry) in entries.items():
            apps = {"sink": (sink, flow_entry), "redis": (redis, redis_entry)}
            if label == "direct weft":
                a, b = self.sites("nd", broker, [("127.0.0.1", self.next_port())], apps)
                nodes = [("site a", a.pid), ("site b", b.pid)]
            else:
                processes = self.relayed_sites("nr", broker, apps)
                nodes = [("site a", processes["a"].pid), ("site b", processes["b"].pid),
                         ("relay", processes["r"].pid)]
            flow = self.flow(f"weft, {label.split()[0]}", f"127.0.0.1:{sink}", f"127.0.0.1:{flow_entry}",
                             nodes=nodes, verify=True)
            rows[label] = {"flow": flow, "redis": self.redis_latency(redis_entry, requests)}
            self.procs.stop_all()
            self.procs.start("redis", ["redis-server", "--port", str(redis), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"])
            wait_until("redis", lambda: listening(redis), 10)
            broker = self.broker("127.0.0.1")
        log(f"   {'direct TCP':<22} {direct['tcp']['mbps'] / 1000:7.2f} Gbit/s")
        for label in entries:
            flow = rows[label]["flow"]
            cpu = ", ".join(f"{n} {c:.1f} s" for n, c in flow["node_cpu_seconds"].items())
            log(f"   {label:<22} {flow['mbps'] / 1000:7.2f} Gbit/s (CPU {cpu})")
        relayed, direct_weft = rows["relayed weft"]["flow"]["mbps"], rows["direct weft"]["flow"]["mbps"]
        log(f"   relayed / direct weft: {relayed / direct_weft:.2f}× (target ≥ 0.8×); "
            f"relayed / direct TCP: {relayed / direct['tcp']['mbps']:.2f}×")
        for test in ("SET", "GET"):
            d = direct["redis"][test]
            parts = []
            for label in entries:
                r = rows[label]["redis"][test]
                parts.append(f"{label}: p50 {r['p50_ms']:.3f} ({r['p50_ms'] - d['p50_ms']:+.3f}) p99 "
                             f"{r['p99_ms']:.3f} ({r['p99_ms'] - d['p99_ms']:+.3f}) ms, {r['rps']:.0f}/s")
            log(f"   redis {test}, 1 client: direct p50 {d['p50_ms']:.3f} p99 {d['p99_ms']:.3f} ms; " + "; ".join(parts))
        self.procs.stop_all()
        self.results["relay"] = rows

    def relay_shaped(self):
        """One 200 Mbit/s lab link between a's and b's namespaces; the relay sits with a, so
        the relayed path crosses the same link: what a relay costs when the network, not the
        CPU, is the limit."""
        log("== relay on a 200 Mbit/s link: relayed against direct")
        self.lab("up", "200mbit")
        broker = self.broker("198.19.0.1", ns=NS_A)
        a, b, sink, entry = self.lab_sites(1, broker=broker)
        direct = self.flow("weft, direct, 200 Mbit/s", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}", sink_ns=NS_A,
                           source_ns=NS_B, verify=True)
        self.procs.stop(b)
        self.procs.stop(a)
        sink, entry = self.next_port(), self.next_port()
        processes = self.relayed_sites("ns", broker, {"sink": (sink, entry)}, relay_address="198.18.1.1",
                                       ns_a=NS_A, ns_b=NS_B)
        relayed = self.flow("weft, relayed, 200 Mbit/s", f"127.0.0.1:{sink}", f"127.0.0.1:{entry}", sink_ns=NS_A,
                            source_ns=NS_B, verify=True,
                            nodes=[(side, process.pid) for side, process in processes.items()])
        for row in (direct, relayed):
            log(f"   {row['label']:<28} {row['mbps']:8.1f} Mbit/s")
        log(f"   relayed / direct: {relayed['mbps'] / direct['mbps']:.2f}× (target ≥ 0.8×)")
        self.procs.stop_all()
        self.lab("down")
        self.results["relay_shaped"] = {"direct": direct, "relayed": relayed}

    def punch_first_byte(self):
        log("== punched: both sites start behind cone NATs; time to an app's first bytes")
        runs = 1 if self.args.smoke else 5
        out = subprocess.run(
            ["bash", LAB_NAT], env=dict(os.environ, WEFT=self.weft, LAB_NAT_SCENARIOS="first-byte",
                                        LAB_NAT_RUNS=str(runs)),
            capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            self.wrong(f"lab-nat first-byte failed: {out.stderr[-2000:]}")
            return
        times = [int(m.group(1)) for m in re.finditer(r"first-byte: (\d+) ms", out.stdout)]
        if not times or "skipped" in out.stdout:
            log(f"   skipped: {out.stdout.strip()}")
            return
        ordered = sorted(times)
        log(f"   {len(times)} run(s): " + ", ".join(f"{t} ms" for t in times)
            + f"; median {ordered[len(ordered) // 2]} ms (target < 3000 ms)")
        self.results["punch_first_byte_ms"] = times

    def open_streams(self, count, port, nodes):
        report = os.path.join(self.work, f"streams-{count}-{port}.json")
        release = report + ".release"
        cpu_before = {name: cpu_seconds(pid) for name, pid in nodes}
        client = self.procs.start("streams", [PY, STREAMS, "open", "--connect", f"127.0.0.1:{port}", "--count",
                                              str(count), "--report", report, "--hold-file", release])
        wait_until(f"{count} streams", lambda: os.path.exists(report) or client.poll() is not None, 300)
        time.sleep(1)
        result = json.load(open(report)) if os.path.exists(report) else {"error": "no report"}
        result["rss_mib"] = {name: rss_mib(pid) for name, pid in nodes}
        result["cpu_seconds"] = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in nodes}
        open(release, "w").close()
        client.wait(60)
        return result

    # -- the run ----------------------------------------------------------------------------------

    def run(self):
        started = time.time()
        self.results["machine"] = {
            "date": datetime.date.today().isoformat(), "kernel": platform.release(), "cores": os.cpu_count(),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                        "?"),
            "weft": subprocess.run([self.weft, "version"], capture_output=True, text=True).stdout.strip(),
            "command": " ".join(sys.argv),
        }
        try:
            for scenario in self.args.scenarios:
                getattr(self, scenario)()
        finally:
            self.procs.stop_all()
            subprocess.run(["bash", LAB, "down"], capture_output=True)
        self.results["seconds"] = time.time() - started
        path = os.path.join(self.args.out, "results.json")
        with open(path, "w") as f:
            json.dump(self.results, f, indent=1)
        log(f"== done in {self.results['seconds']:.0f} s; results: {path}")
        if self.failures:
            raise BenchError("weft got it wrong: " + "; ".join(self.failures))
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


SCENARIOS = ["loopback", "udp", "aggregation", "failover", "loss", "transports", "latency", "scale", "nat"]


def main():
    parser = argparse.ArgumentParser(description="weft benchmarks against baselines measured in the same run")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--weft", default=os.path.join(ROOT, ".build", "release", "weft"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    parser.add_argument("--seconds", type=float, default=8, help="length of each throughput flow")
    parser.add_argument("--requests", type=int, default=50000, help="redis-benchmark requests per test")
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cases", nargs="+", help="aggregation cases to run (2x100 100+20 4mixed 1:25rtt)")
    parser.add_argument("--no-rtt", dest="rtt", action="store_false", help="skip the 1:25 RTT case")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, configs)")
    parser.add_argument("--smoke", action="store_true",
                        help="every scenario, briefly (CI): 2 s flows, one aggregation case, 500 streams")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.requests, args.streams, args.rtt = 2, 2000, [500], False
        args.cases = args.cases or ["2x100"]
    args.scenarios = args.scenarios or SCENARIOS
    for name in args.scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        print("bench: the network lab needs root (namespaces); run as root or with sudo", file=sys.stderr)
        sys.exit(77)
    if not os.access(args.weft, os.X_OK):
        print(f"bench: {args.weft} is not built (swift build -c release)", file=sys.stderr)
        sys.exit(1)
    os.makedirs(args.out, exist_ok=True)
    raise_limit()
    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    except BenchError as e:
        print(f"bench: {e} (work folder kept: {bench.work})", file=sys.stderr)
        bench.args.keep = True
        sys.exit(1)


if __name__ == "__main__":
    main()
