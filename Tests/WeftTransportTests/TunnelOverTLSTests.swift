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

@Suite("tunnel over real TLS links on loopback", .serialized, .timeLimit(.minutes(10)))
struct TunnelOverTLSTests {
    /// Total bytes for the big transfer; `WEFT_TLS_TEST_MIB` makes it smaller for a quick run.
    static let totalBytes = (Int(ProcessInfo.processInfo.environment["WEFT_TLS_TEST_MIB"] ?? "") ?? 1024) << 20

    @Test("3 links move 1 GiB, sha256 equal, while links are closed and reopened at random")
    func gigabyteWithChurn() async throws {
        try await HeavyTestGate.exclusive { try await gigabyteWithChurnAlone() }
    }

    func gigabyteWithChurnAlone() async throws {
        try await Self.gigabyteWithChurn(try TunnelPair(), label: "tls")
    }

    /// 1 GiB (`totalBytes`) in three streams over three links of `pair`'s transport, while
    /// links are closed and re-dialed; both digests compared, the rate printed.
    static func gigabyteWithChurn(_ pair: TunnelPair, label: String) async throws {
        try await pair.listen()
        for _ in 0..<3 { try await pair.dial() }

        // Two streams alpha → beta, one beta → alpha: 1 GiB in all.
        let quarter = Self.totalBytes / 4
        let sizes = [("alpha", quarter + quarter / 2), ("alpha", quarter + quarter / 2), ("beta", quarter)]
        let received = NIOLockedValueBox<[EventLoopFuture<(Int, String)>]>([])
        pair.beta.onIncomingStream = { [beta = pair.beta] _, _, _ in
            let done = beta.eventLoop.makePromise(of: (Int, String).self)
            received.withLockedValue { $0.append(done.futureResult) }
            return HashingReceiver(driver: beta, done: done)
        }
        pair.alpha.onIncomingStream = { [alpha = pair.alpha] _, _, _ in
            let done = alpha.eventLoop.makePromise(of: (Int, String).self)
            received.withLockedValue { $0.append(done.futureResult) }
            return HashingReceiver(driver: alpha, done: done)
        }
        var sent: [EventLoopFuture<String>] = []
        for (side, size) in sizes {
            let driver = side == "alpha" ? pair.alpha : pair.beta
            let done = driver.eventLoop.makePromise(of: String.self)
            sent.append(done.futureResult)
            try await driver.eventLoop.submit {
                PatternSender(driver: driver, total: size, done: done).start(appName: "sink")
            }.get()
        }

        // Churn: every 150–400 ms close a random link (from either side) and dial a new one.
        let started = Date()
        let churn = Task { () -> Int in
            var closed = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 150...400)))
                } catch {
                    break
                }
                let fromAlpha = Bool.random()
                let links = fromAlpha ? pair.alphaLinks : pair.betaLinks
                let victim = links.withLockedValue { channels -> Channel? in
                    channels.removeAll { !$0.isActive }
                    return channels.randomElement()
                }
                guard let victim else { continue }
                try? await victim.close()
                closed += 1
                _ = try? await pair.dial()
            }
            return closed
        }

        var sentDigests: [String] = []
        for future in sent { sentDigests.append(try await future.get()) }
        // Receivers register as streams arrive: wait until all three exist.
        let arrivalDeadline = ContinuousClock.now + .seconds(300)
        while received.withLockedValue({ $0.count }) < 3 {
            guard ContinuousClock.now < arrivalDeadline else {
                churn.cancel()
                Issue.record("only \(received.withLockedValue { $0.count }) of 3 streams arrived")
                try await pair.shutdown()
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        var receivedDigests: [(Int, String)] = []
        for future in received.withLockedValue({ $0 }) { receivedDigests.append(try await future.get()) }
        churn.cancel()
        let closed = await churn.value
        let seconds = Date().timeIntervalSince(started)

        #expect(receivedDigests.map(\.0).sorted() == sizes.map(\.1).sorted())
        #expect(Set(receivedDigests.map(\.1)) == Set(sentDigests), "digests differ")
        #expect(closed >= 3, "the test closed only \(closed) links")
        let kinds = try await pair.alpha.eventLoop.submit { Set(pair.alpha.snapshot().links.map(\.transport)) }.get()
        #expect(kinds == [pair.dialTransport.kind])
        let mib = Double(Self.totalBytes) / Double(1 << 20)
        print(
            "[\(label)] \(Int(mib)) MiB over 3 \(label) links in \(String(format: "%.1f", seconds)) s (\(String(format: "%.0f", mib / seconds)) MiB/s, debug build), \(closed) links closed and re-dialed"
        )
        try await pair.shutdown()
    }

    @Test("a client with a certificate other than the pinned one is refused; the tunnel is unharmed")
    func wrongCertificate() async throws {
        let pair = try TunnelPair()
        try await pair.listen()
        try await pair.dial()

        // A stranger with its own certificate, claiming to be alpha.
        let stranger = LocalLinkSite(siteName: "alpha", tls: try LinkTLS(identity: .generate()))
        // Beta refuses its certificate during TLS (an alert), before any hello.
        let refused = await #expect(throws: LinkError.self) { try await pair.dial(identity: stranger) }
        #expect(refused?.code == .handshakeFailed && refused?.message.contains("CERTIFICATE_UNKNOWN") == true)

        // Alpha expecting another certificate for beta refuses beta's.
        let mismatch = await #expect(throws: LinkError.self) {
            try await pair.dial(expecting: try SiteIdentity.generate().fingerprint)
        }
        #expect(mismatch?.code == .handshakeFailed && mismatch?.message.contains("CERTIFICATE_VERIFY_FAILED") == true)

        // A dialer that believes beta is an earlier incarnation is refused: unknown tunnel.
        do {
            try await pair.dial(peerIncarnation: 201)
            Issue.record("a link into a stale tunnel was accepted")
        } catch let error as LinkError {
            #expect(error.refusal?.reason == .unknownTunnel)
        }
        // A dial whose tunnel changed while it connected is dropped before its hello.
        do {
            try await pair.dial(stillWanted: { false })
            Issue.record("a link no longer wanted was established")
        } catch let error as LinkError {
            #expect(error.code == .closed && error.refusal == nil, "\(error)")
        }

        // The original link still carries a stream.
        let done = pair.beta.eventLoop.makePromise(of: (Int, String).self).failing(after: PatternSender.deadline)
        pair.beta.onIncomingStream = { [beta = pair.beta] _, _, _ in HashingReceiver(driver: beta, done: done) }
        let sentDone = pair.alpha.eventLoop.makePromise(of: String.self)
        try await pair.alpha.eventLoop.submit {
            PatternSender(driver: pair.alpha, total: 1 << 20, done: sentDone).start(appName: "sink")
        }.get()
        let (count, digest) = try await done.futureResult.get()
        #expect(count == 1 << 20)
        #expect(digest == (try await sentDone.futureResult.get()))
        let links = try await pair.beta.eventLoop.submit { pair.beta.linkCount }.get()
        #expect(links == 1)
        try await pair.shutdown()
    }

    @Test("a link bound to a local address leaves from it, with the socket options set")
    func boundLink() async throws {
        let pair = try TunnelPair()
        try await pair.listen()
        try await pair.dial(from: try SocketAddress(ipAddress: "127.0.0.2", port: 0))
        let channel = try #require(pair.alphaLinks.withLockedValue { $0.first })
        #expect(channel.localAddress?.ipAddress == "127.0.0.2")
        let accepted = try #require(await pair.acceptedLink())
        #expect(accepted.remoteAddress?.ipAddress == "127.0.0.2")
        let noDelay = try await channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        #expect(noDelay != 0)
        // SOL_SOCKET's option 1 is SO_DEBUG, which needs CAP_NET_ADMIN: setting TCP_NODELAY at the
        // wrong level made every dial fail for a site run as an unprivileged user.
        let debug = try await channel.getOption(ChannelOptions.socketOption(.init(rawValue: 1))).get()
        #expect(debug == 0)
        let lowWater = try await channel.getOption(
            ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: 25))
        ).get()
        #expect(lowWater == SocketOptionValue(LinkSocketOptions.notSentLowWater))
        try await pair.shutdown()
    }

    @Test("a connection that never finishes TLS and the hello is dropped after the handshake timeout")
    func silentConnectionDropped() async throws {
        let pair = try TunnelPair()
        try await pair.listen(handshakeTimeout: .milliseconds(300))
        let closed = pair.group.next().makePromise(of: Void.self).failing(after: PatternSender.deadline)
        let channel = try await ClientBootstrap(group: pair.group)
            .channelInitializer { channel in
                channel.closeFuture.whenComplete { _ in closed.succeed() }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .connect(host: "127.0.0.1", port: pair.port).get()
        let started = Date()
        try await closed.futureResult.get()
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.2 && waited < 3, "closed after \(waited) s")
        _ = channel
        try await pair.shutdown()
    }
}
