import Foundation
import Testing
import WeftTestSupport

/// UDP apps between two `weft run` sites: Debian's dnsmasq behind one, `dig` at the other,
/// and a datagram flood, a flood of client addresses and an oversized datagram thrown at it.
@Suite(
    "UDP apps end to end",
    .serialized,
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .enabled(
        if: TestEnvironment.runs(needing: "/usr/sbin/dnsmasq") && TestEnvironment.runs(needing: "/usr/bin/dig"),
        "dnsmasq or dig is not installed (apt-get install dnsmasq-base bind9-dnsutils)"),
    .timeLimit(.minutes(10))
)
struct UDPAppsEndToEndTests {
    /// Echoes every datagram to its sender, for the flood and the caps.
    static let echoServer = """
        import socket, sys
        family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((sys.argv[1], int(sys.argv[2])))
        # A TCP listener on the same port says the server is up.
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((sys.argv[1], int(sys.argv[2])))
        t.listen()
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)

        """

    /// Sends numbered datagrams of `size` bytes through `host:port` and reports, as JSON, how
    /// many came back, intact, repeated or out of order.
    static let floodClient = """
        import json, socket, struct, sys, threading, time
        host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.connect((host, port))
        def payload(seq):
            head = struct.pack("!I", seq)
            return head + bytes((seq + i) & 0xff for i in range(size - 4))
        # The flow is up once one datagram came back (the tunnel may still be forming).
        s.settimeout(2)
        for attempt in range(30):
            s.send(payload(0xffffffff))
            try:
                s.recv(65535)
                break
            except socket.timeout:
                pass
        else:
            print(json.dumps({"error": "no echo"}))
            sys.exit(1)
        seen, intact, duplicates, reordered, highest = set(), 0, 0, 0, -1
        def receive():
            global intact, duplicates, reordered, highest
            s.settimeout(5)
            while True:
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    return
                seq = struct.unpack("!I", data[:4])[0]
                if seq == 0xffffffff:
                    continue
                if seq in seen:
                    duplicates += 1
                    continue
                seen.add(seq)
                if data == payload(seq):
                    intact += 1
                if seq < highest:
                    reordered += 1
                highest = max(highest, seq)
        reader = threading.Thread(target=receive)
        reader.start()
        start = time.monotonic()
        for seq in range(count):
            s.send(payload(seq))
            if seq % 16 == 15:
                time.sleep(0.004)
        sent_in = time.monotonic() - start
        reader.join()
        print(json.dumps({"sent": count, "received": len(seen), "intact": intact, "duplicates": duplicates,
                          "reordered": reordered, "seconds": round(sent_in, 3)}))

        """

    /// Sends one datagram from each of `count` sockets and prints how many got an answer.
    static let manyClients = """
        import socket, sys
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sockets = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(count)]
        for i, s in enumerate(sockets):
            s.connect((host, port))
            s.send(b"client %d" % i)
        answered = 0
        for i, s in enumerate(sockets):
            s.settimeout(5 if answered == 0 else 1)
            try:
                if s.recv(100) == b"client %d" % i:
                    answered += 1
            except socket.timeout:
                pass
        print(answered)

        """

    /// Sends a datagram too large for the tunnel, then a small one, and prints the answer.
    static let oversized = """
        import socket, sys
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.connect((sys.argv[1], int(sys.argv[2])))
        s.settimeout(5)
        s.send(b"x" * 65520)
        for attempt in range(10):
            s.send(b"small")
            try:
                print(s.recv(65535).decode())
                break
            except socket.timeout:
                pass

        """

    @Test(
        "DNS through a UDP app: 1,000 dig queries to dnsmasq, every answer right; a range app; TCP and UDP never mixed"
    )
    func dns() async throws {
        let lab = try SiteLab()
        let dnsPort = try FreePort.find()
        var hosts = ""
        for index in 0..<1000 { hosts += "198.18.\(index / 250).\(index % 250 + 1) host\(index).weft.test\n" }
        let hostsFile = try lab.write("hosts", hosts)
        chmod(hostsFile, 0o644)
        try await lab.app(
            "dnsmasq", "/usr/sbin/dnsmasq",
            [
                "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--addn-hosts=\(hostsFile)",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=\(dnsPort)", "--pid-file=",
                "--user=\(geteuid() == 0 ? "root" : NSUserName())", "--cache-size=0",
            ], port: dnsPort)
        let (single, inRange, outside, overTCP) = try (
            FreePort.find(), FreePort.find(), FreePort.find(), FreePort.find()
        )
        let (alphaAPI, betaAPI) = try (FreePort.find(), FreePort.find())
        try lab.site(
            "alpha",
            exposed: [
                SiteLab.exposed("dns", "udp:127.0.0.1:\(dnsPort)"),
                "- appName: resolvers\n  mode: range\n  protocols: [udp]\n  addressRange: [127.0.0.1/32]\n"
                    + "  portRange: [\"\(dnsPort)\"]",
            ], extra: OperationsEndToEndTests.api(alphaAPI, auth: false))
        try lab.site(
            "beta",
            remote: [
                SiteLab.remote("alpha", "dns", "udp:127.0.0.1:\(single)"),
                SiteLab.remote("alpha", "resolvers", "udp:127.0.0.1:\(inRange)")
                    + "\n  appSocket: udp:127.0.0.1:\(dnsPort)",
                SiteLab.remote("alpha", "resolvers", "udp:127.0.0.1:\(outside)")
                    + "\n  appSocket: udp:127.0.0.2:\(dnsPort)",
                SiteLab.remote("alpha", "dns", "tcp:127.0.0.1:\(overTCP)"),
            ], extra: OperationsEndToEndTests.api(betaAPI, auth: false))
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")

        // 1,000 queries, each from a port of its own: a flow each.
        var queries = ""
        for index in 0..<1000 { queries += "host\(index).weft.test A\n" }
        let batch = try lab.write("queries.txt", queries)
        let answers = try await lab.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(single)", "+short", "+tries=3", "+time=5", "-f", batch],
            timeout: .seconds(300))
        let lines = answers.stdout.split(separator: "\n").map(String.init)
        let expected = (0..<1000).map { "198.18.\($0 / 250).\($0 % 250 + 1)" }
        #expect(lines.count == 1000, "\(lines.count) answers: \(answers.stderr.suffix(500))")
        #expect(lines == expected, "first wrong: \(zip(lines, expected).first { $0 != $1 }.map { "\($0)" } ?? "-")")
        // Each site counts the app's flows and datagram bytes (the API's `traffic`): a flow per
        // query at both ends, and what one site sent is what the other received.
        func traffic(_ port: Int, _ list: String, _ name: String) async throws -> [String: Any]? {
            let answer = try await OperationsEndToEndTests.http(lab, "GET", "http://127.0.0.1:\(port)/api/v1/\(list)")
            let apps = OperationsEndToEndTests.json(answer.body) as? [[String: Any]] ?? []
            return apps.first { $0["appName"] as? String == name }?["traffic"] as? [String: Any]
        }
        let near = try await traffic(betaAPI, "remoteApps", "dns")
        let far = try await traffic(alphaAPI, "localExposedApps", "dns")
        let (nearStreams, farStreams) = (near?["streams"] as? Int ?? 0, far?["streams"] as? Int ?? 0)
        print("udp apps: traffic at beta \(near ?? [:]), at alpha \(far ?? [:])")
        // dig picks a random source port per query: a few repeat one and share its flow.
        #expect(nearStreams >= 900 && farStreams == nearStreams, "beta \(near ?? [:]), alpha \(far ?? [:])")
        let (sent, received) = (near?["bytesSent"] as? Int ?? 0, far?["bytesReceived"] as? Int ?? -1)
        #expect(sent >= 1000 * 30 && sent == received, "beta \(near ?? [:]), alpha \(far ?? [:])")
        #expect(
            (near?["bytesReceived"] as? Int ?? 0) == (far?["bytesSent"] as? Int ?? -1)
                && (far?["bytesSent"] as? Int ?? 0) >= 1000 * 40, "beta \(near ?? [:]), alpha \(far ?? [:])")

        // The range app: inside its range, answered; outside, refused at alpha and never sent.
        let ranged = try await lab.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(inRange)", "+short", "+tries=2", "+time=5", "host7.weft.test"])
        #expect(ranged.stdout == "198.18.0.8\n", "\(ranged)")
        let refused = try await lab.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(outside)", "+short", "+tries=1", "+time=3", "host7.weft.test"])
        #expect(!refused.stdout.contains("198.18."), "\(refused)")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                !lab.lines("alpha", "refused a stream", "is outside the ranges of resolvers", "udp:127.0.0.2").isEmpty
            }, "\(lab.lines("alpha", "refused"))")
        // A TCP client of a UDP app is refused, not handed datagram framing.
        let tcp = try await lab.run(
            "/usr/bin/dig",
            ["@127.0.0.1", "-p", "\(overTCP)", "+tcp", "+short", "+tries=1", "+time=3", "host7.weft.test"])
        #expect(!tcp.stdout.contains("198.18."), "\(tcp)")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                !lab.lines("alpha", "is a UDP app; the client came over TCP").isEmpty
            },
            "\(lab.lines("alpha", "refused"))")
        await lab.stop("alpha", "beta")
    }

    @Test("a flood of WireGuard-sized datagrams, a flood of client addresses (udpMaxFlows) and an oversized datagram")
    func floods() async throws {
        let lab = try SiteLab()
        let (echoPort, echo6Port) = try (FreePort.find(), FreePort.find())
        let server = try lab.write("echo.py", Self.echoServer)
        try await lab.app("echo", SiteLab.python, [server, "127.0.0.1", "\(echoPort)"], port: echoPort)
        try await lab.app("echo6", SiteLab.python, [server, "::1", "\(echo6Port)"], port: echo6Port, ipv6: true)
        let (flood, capped, big) = try (FreePort.find(), FreePort.find(), FreePort.find())
        try lab.site(
            "alpha",
            exposed: [
                SiteLab.exposed("echo", "udp:127.0.0.1:\(echoPort)"),
                SiteLab.exposed("echo6", "udp:[::1]:\(echo6Port)"),
            ])
        try lab.site(
            "beta",
            remote: [
                SiteLab.remote("alpha", "echo", "udp:127.0.0.1:\(flood)"),
                SiteLab.remote("alpha", "echo", "udp:127.0.0.1:\(capped)") + "\n  udpMaxFlows: 4",
                SiteLab.remote("alpha", "echo6", "udp:[::1]:\(big)"),
            ])
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")

        // 10,000 datagrams of 1,420 bytes (WireGuard's usual size) at about 25 Mbit/s, alone on
        // the machine (loss here is the figure, not the point: it is UDP on two loaded cores).
        let floodScript = try lab.write("flood.py", Self.floodClient)
        let result = try await HeavyTestGate.exclusive {
            try await lab.run(
                SiteLab.python, [floodScript, "127.0.0.1", "\(flood)", "10000", "1420"], timeout: .seconds(300))
        }
        print("udp flood through weft: \(result.stdout) \(lab.lines("beta", "dropped UDP").last ?? "")")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let received = report["received"] as? Int ?? 0
        #expect(report["intact"] as? Int == received, "every datagram that came back is whole: \(report)")
        #expect(report["duplicates"] as? Int == 0, "\(report)")
        // Loss is allowed (it is UDP), but not most of it.
        #expect(received >= 5_000, "\(report)")

        // Ten client addresses at a local socket that carries four.
        let many = try lab.write("many.py", Self.manyClients)
        let answered = try await lab.run(SiteLab.python, [many, "127.0.0.1", "\(capped)", "10"])
        #expect(answered.stdout == "4\n", "\(answered)")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                !lab.lines("beta", "dropped UDP datagrams", "reason=flows").isEmpty
            },
            "\(lab.lines("beta", "dropped"))")
        #expect(lab.lines("beta", "dropped UDP datagrams", "reason=flows").count == 1)

        // Larger than any datagram the tunnel carries (IPv6 allows it): dropped and counted;
        // the flow carries on.
        let oversized = try lab.write("big.py", Self.oversized)
        let answer = try await lab.run(SiteLab.python, [oversized, "::1", "\(big)"])
        #expect(answer.stdout == "small\n", "\(answer)")
        #expect(
            !lab.lines("beta", "dropped UDP datagrams", "reason=oversized").isEmpty, "\(lab.lines("beta", "dropped"))")
        await lab.stop("alpha", "beta")
    }
}
