import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import WeftIdentity
import WeftTestSupport
import WeftTransport
import WeftTunnel
import WeftWire

/// Links over the transports beside plain TCP: WebSocket, and TCP or WebSocket dialed through
/// real proxies (tinyproxy for HTTP CONNECT, a SOCKS5 proxy written for these tests).
@Suite("links over WebSocket and through proxies", .serialized, .timeLimit(.minutes(10)))
struct LinkTransportTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// A debug build masks WebSocket frames byte by byte: an event loop writing a burst can be
    /// busy for seconds on a loaded machine, which the default 2 s silence limit would take for
    /// a dead link. (A release build masks a 64 KiB frame in microseconds.)
    static func webSocketPair(dialing context: LinkTransportContext = LinkTransportContext()) throws -> TunnelPair {
        try TunnelPair(
            listenTransport: WebSocketLinkTransport(path: "/weft"),
            dialTransport: WebSocketLinkTransport(context: context),
            endpoint: { LinkEndpoint.webSocket(url: "ws://127.0.0.1:\($0)/weft")! },
            silenceLimit: .seconds(20))
    }

    /// Starts sending `bytes` from alpha to beta on one stream; the futures give what beta
    /// received (count, sha256) and what alpha sent (sha256).
    static func startTransfer(
        _ pair: TunnelPair, bytes: Int
    ) async throws -> (received: EventLoopFuture<(Int, String)>, sent: EventLoopFuture<String>) {
        // Bounded from the start: a stream that never reaches beta fails the test, not hangs it.
        let done = pair.beta.eventLoop.makePromise(of: (Int, String).self).failing(after: PatternSender.deadline)
        pair.beta.onIncomingStream = { [beta = pair.beta] _, _, _ in HashingReceiver(driver: beta, done: done) }
        let sent = pair.alpha.eventLoop.makePromise(of: String.self)
        try await pair.alpha.eventLoop.submit {
            PatternSender(driver: pair.alpha, total: bytes, done: sent).start(appName: "sink")
        }.get()
        return (done.futureResult, sent.futureResult)
    }

    /// Sends `bytes` from alpha to beta on one stream; returns whether both digests agree.
    static func transfer(_ pair: TunnelPair, bytes: Int) async throws -> Bool {
        let (received, sent) = try await startTransfer(pair, bytes: bytes)
        let (count, digest) = try await received.get()
        let sentDigest = try await sent.get()
        return count == bytes && digest == sentDigest
    }

    @Test("two WebSocket links move 32 MiB, sha256 equal, with one closed and re-dialed midway")
    func webSocketTransfer() async throws {
        // Masking every byte in a debug build loads both cores: alone, as the other heavy tests.
        try await HeavyTestGate.exclusive { try await webSocketTransferAlone() }
    }

    func webSocketTransferAlone() async throws {
        let pair = try Self.webSocketPair()
        try await pair.listen()
        try await pair.dial()
        try await pair.dial()
        let total = 32 << 20
        let (received, sent) = try await Self.startTransfer(pair, bytes: total)
        // Once bytes flow, close one link (from beta's side) and dial a new one.
        let deadline = ContinuousClock.now + .seconds(120)
        while try await pair.beta.eventLoop.submit({ pair.beta.snapshot().bytesReceived }).get() < UInt64(total / 4) {
            guard ContinuousClock.now < deadline else {
                Issue.record("the transfer never reached a quarter")
                try await pair.shutdown()
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let victim = try #require(pair.betaLinks.withLockedValue { $0.first })
        try await victim.close()
        try await pair.dial()
        let (count, digest) = try await received.get()
        #expect(count == total)
        #expect(digest == (try await sent.get()))
        let snapshot = try await pair.alpha.eventLoop.submit { pair.alpha.snapshot() }.get()
        #expect(snapshot.links.count == 2)
        #expect(snapshot.links.allSatisfy { $0.transport == .websocket })
        try await pair.shutdown()
    }

    @Test("the WebSocket listener answers curl's plain requests with 426 or 404, and a stranger gets no link")
    func webSocketRefusals() async throws {
        let pair = try Self.webSocketPair()
        try await pair.listen()
        let curl = "/usr/bin/curl"
        if TestEnvironment.runs(needing: curl) {
            func status(_ path: String, _ extra: [String] = []) async throws -> String {
                try await ChildProcess.run(
                    curl,
                    ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60"] + extra
                        + ["http://127.0.0.1:\(pair.port)\(path)"]
                ).stdout
            }
            #expect(try await status("/weft") == "426")
            #expect(try await status("/") == "404")
            // A real upgrade request on another path is not upgraded.
            let upgrade = [
                "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
                "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ]
            let other = try await status("/other", upgrade)
            #expect(other == "404")
        }
        // A dialer asking for another path gets no link.
        let wrongPath = try TunnelPair(
            listenTransport: WebSocketLinkTransport(path: "/weft"), dialTransport: WebSocketLinkTransport(),
            endpoint: { LinkEndpoint.webSocket(url: "ws://127.0.0.1:\($0)/nope")! })
        try await wrongPath.listen()
        let notUpgraded = await #expect(throws: LinkError.self) { try await wrongPath.dial() }
        #expect(notUpgraded?.code == .transport, "\(String(describing: notUpgraded))")
        try await wrongPath.shutdown()

        // A stranger's certificate is refused inside the WebSocket exactly as over TCP.
        let stranger = LocalLinkSite(siteName: "alpha", tls: try LinkTLS(identity: .generate()))
        let refused = await #expect(throws: LinkError.self) { try await pair.dial(identity: stranger) }
        #expect(refused?.message.contains("CERTIFICATE_UNKNOWN") == true, "\(String(describing: refused))")
        let mismatch = await #expect(throws: LinkError.self) {
            try await pair.dial(expecting: try SiteIdentity.generate().fingerprint)
        }
        #expect(mismatch?.message.contains("CERTIFICATE_VERIFY_FAILED") == true)
        // And the real alpha still links and carries a stream.
        try await pair.dial()
        #expect(try await Self.transfer(pair, bytes: 1 << 20))
        try await pair.shutdown()
    }

    @Test(
        "links through tinyproxy's CONNECT (with basic auth) and a SOCKS5 proxy, over TCP and WebSocket",
        .enabled(
            if: TestEnvironment.runs(needing: "/usr/bin/tinyproxy"),
            "tinyproxy is not installed (scripts/install-deps.sh installs it)"))
    func throughProxies() async throws {
        try await HeavyTestGate.exclusive { try await throughProxiesAlone() }
    }

    func throughProxiesAlone() async throws {
        let directory = NSTemporaryDirectory() + "weft-proxy-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let httpPort = try FreePort.find()
        try """
        Port \(httpPort)
        Listen 127.0.0.1
        Allow 127.0.0.1
        Timeout 60
        LogLevel Connect
        LogFile "\(directory)/tinyproxy.log"
        BasicAuth weft s3cret
        """.write(toFile: directory + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        let tinyproxy = try ChildProcess(
            "/usr/bin/tinyproxy", ["-d", "-c", directory + "/tinyproxy.conf"], stderr: directory + "/tinyproxy.err")
        defer { tinyproxy.signal(SIGKILL) }
        let socksPort = try FreePort.find()
        let socks = try ChildProcess(
            "/usr/bin/env",
            ["python3", Self.repository + "/scripts/socks5-proxy.py", "\(socksPort)", directory + "/socks.log"],
            stdout: directory + "/socks.out", stderr: directory + "/socks.err")
        defer { socks.signal(SIGKILL) }
        for port in [httpPort, socksPort] {
            let deadline = ContinuousClock.now + .seconds(60)
            while !FreePort.accepts(port) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(FreePort.accepts(port), "proxy on \(port) did not start")
        }

        let http = try #require(try? LinkProxy.parse("http://weft:s3cret@127.0.0.1:\(httpPort)").get())
        let socks5 = try #require(try? LinkProxy.parse("socks5://127.0.0.1:\(socksPort)").get())
        for proxy in [http, socks5] {
            let context = LinkTransportContext(proxy: proxy)
            let tcp = try TunnelPair(dialTransport: TCPLinkTransport(context: context))
            try await tcp.listen()
            try await tcp.dial()
            #expect(try await Self.transfer(tcp, bytes: 4 << 20), "TLS link through \(proxy)")
            try await tcp.shutdown()
            let webSocket = try Self.webSocketPair(dialing: context)
            try await webSocket.listen()
            try await webSocket.dial()
            #expect(try await Self.transfer(webSocket, bytes: 4 << 20), "WebSocket link through \(proxy)")
            try await webSocket.shutdown()
        }
        let tinyLog = (try? String(contentsOfFile: directory + "/tinyproxy.log", encoding: .utf8)) ?? ""
        #expect(tinyLog.components(separatedBy: "CONNECT").count - 1 >= 2, "tinyproxy log: \(tinyLog.suffix(2000))")
        let socksLog = (try? String(contentsOfFile: directory + "/socks.log", encoding: .utf8)) ?? ""
        #expect(socksLog.components(separatedBy: "CONNECT 127.0.0.1:").count - 1 == 2, "socks log: \(socksLog)")

        // Wrong proxy credentials: the proxy refuses, the dial fails with a transport error.
        let wrong = try #require(try? LinkProxy.parse("http://weft:wrong@127.0.0.1:\(httpPort)").get())
        let refusedPair = try TunnelPair(dialTransport: TCPLinkTransport(context: LinkTransportContext(proxy: wrong)))
        try await refusedPair.listen()
        await #expect(throws: (any Error).self) { try await refusedPair.dial() }
        try await refusedPair.shutdown()
    }

    @Test(
        "TCP_CONGESTION: link sockets on both sides use the congestion control asked for (ss -ti)",
        .enabled(
            if: TestEnvironment.runs(needing: "/usr/bin/ss") || TestEnvironment.runs(needing: "/bin/ss"),
            "ss is not installed"))
    func congestionControl() async throws {
        func names(_ file: String) -> [String] {
            ((try? String(contentsOfFile: "/proc/sys/net/ipv4/\(file)", encoding: .utf8)) ?? "")
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        }
        // One the system would not pick anyway (some machines default to bbr): else the test
        // would pass without the option being set. reno is always built in.
        let system = names("tcp_congestion_control").first ?? "cubic"
        let available = names("tcp_available_congestion_control")
        let wanted = ["bbr", "reno", "cubic"].first { $0 != system && available.contains($0) } ?? "reno"
        let context = LinkTransportContext(congestionControl: wanted)
        let pair = try TunnelPair(
            listenTransport: TCPLinkTransport(context: context), dialTransport: TCPLinkTransport(context: context))
        try await pair.listen()
        try await pair.dial()
        _ = try #require(await pair.acceptedLink())
        let ss = FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") ? "/usr/bin/ss" : "/bin/ss"
        let output = try await ChildProcess.run(
            ss, ["-tinH", "state", "established", "( sport = :\(pair.port) or dport = :\(pair.port) )"]
        ).stdout
        // Two sockets (each end of the one link), each with its congestion control named.
        let named =
            output.components(separatedBy: " \(wanted) ").count - 1
            + output.components(separatedBy: "\t\(wanted) ").count - 1
        #expect(named >= 2, "ss output: \(output)")
        try await pair.shutdown()
    }
}
