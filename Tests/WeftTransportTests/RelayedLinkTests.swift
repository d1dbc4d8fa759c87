import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import WeftIdentity
import WeftTestSupport
import WeftTunnel
import WeftWire

@testable import WeftTransport

/// Three sites on loopback: `relay` listens; `alpha` and `beta` dial it (neither listens, as if
/// both sat behind NAT); alpha then links to beta through the relay. Each pair of sites has its
/// tunnel drivers; the relay splices, beta accepts relayed links like a listener would.
private final class RelayMesh: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let identities: [String: SiteIdentity]
    let sites: [String: LocalLinkSite]
    /// drivers["alpha"]["relay"]: alpha's half of its tunnel to relay.
    var drivers: [String: [String: TunnelDriver]] = [:]
    var listener: LinkListener!
    let relayed = NIOLockedValueBox(0)
    let splicesEnded = NIOLockedValueBox(0)
    /// Whether the relay relays (`tunnel.relay`).
    let relays = NIOLockedValueBox(true)
    /// Whether beta refuses relayed links (resets them itself).
    let betaRefuses = NIOLockedValueBox(false)
    let logger = Logger(label: "relay-test")

    init() throws {
        var identities: [String: SiteIdentity] = [:]
        var sites: [String: LocalLinkSite] = [:]
        for name in ["alpha", "relay", "beta"] {
            identities[name] = try SiteIdentity.generate()
            sites[name] = LocalLinkSite(siteName: name, tls: try LinkTLS(identity: identities[name]!))
        }
        self.identities = identities
        self.sites = sites
        let loops = Array(group.makeIterator())
        var incarnation: UInt64 = 100
        for (one, other) in [("alpha", "relay"), ("beta", "relay"), ("alpha", "beta")] {
            for (site, peer) in [(one, other), (other, one)] {
                incarnation += 1
                drivers[site, default: [:]][peer] = TunnelDriver(
                    eventLoop: loops[Int(incarnation) % loops.count], localIncarnation: incarnation, peerSite: peer,
                    // Nobody here re-dials a lost link (a site would): a link starved silent for 2 s by
                    // the other test processes on a loaded 2-core machine would end the test.
                    options: TunnelEngine.Options(opensOddStreams: site < peer, silenceLimit: .seconds(20)),
                    logger: logger)
            }
        }
    }

    func driver(_ site: String, to peer: String) -> TunnelDriver { drivers[site]![peer]! }

    /// The relay listens for alpha and beta; beta accepts relayed links from its tunnel to it.
    func start() async throws {
        let fingerprints = identities.mapValues(\.fingerprint)
        let relayDrivers = drivers["relay"]!
        listener = try await LinkListener.bind(
            host: "127.0.0.1", port: 0, group: group, site: sites["relay"]!,
            handlers: .init(
                trusts: { presented in fingerprints.values.contains(presented) },
                decide: { hello, presented in
                    guard let driver = relayDrivers[hello.siteName], fingerprints[hello.siteName] == presented else {
                        return .refuse(.wrongIdentity, "not a member")
                    }
                    return .acceptInto(incarnation: driver.localIncarnation)
                },
                onLink: { channel, established, kind in
                    relayDrivers[established.peerSite]?.attach(
                        channel, leftover: established.leftover, dialed: false, transport: kind)
                }),
            logger: logger
        ).get()
        // The relay: a request from either site for the other is spliced onto its tunnel there.
        for (asker, other) in [("alpha", "beta"), ("beta", "alpha")] {
            let from = driver("relay", to: asker)
            let onward = driver("relay", to: other)
            try await from.eventLoop.submit {
                from.onIncomingStream = { [unowned from, self] stream, appName, target in
                    guard appName == RelayProtocol.request else { return nil }
                    guard self.relays.withLockedValue({ $0 }) else {
                        from.reset(stream, code: .relayNotOffered, message: "this site does not relay")
                        return nil
                    }
                    guard target == other else {
                        from.reset(stream, code: .relayNoPath, message: "no tunnel to \(target ?? "nobody")")
                        return nil
                    }
                    return RelaySplice.join(
                        stream, from: from, to: onward,
                        carried: { count in self.relayed.withLockedValue { $0 += count } },
                        ended: { self.splicesEnded.withLockedValue { $0 += 1 } })
                }
            }.get()
        }
        // Beta: links relayed from alpha join beta's tunnel to alpha.
        let betaToAlpha = driver("beta", to: "alpha")
        let acceptor = RelayedLinkAcceptor(
            site: sites["beta"]!, admission: HandshakeAdmission(),
            handlers: .init(
                trusts: { $0 == fingerprints["alpha"] },
                decide: { hello, presented in
                    hello.siteName == "alpha" && presented == fingerprints["alpha"]
                        ? .acceptInto(incarnation: betaToAlpha.localIncarnation)
                        : .refuse(.wrongIdentity, "not alpha")
                },
                onLink: { channel, established, kind in
                    betaToAlpha.attach(channel, leftover: established.leftover, dialed: false, transport: kind)
                }),
            logger: logger)
        let betaToRelay = driver("beta", to: "relay")
        try await betaToRelay.eventLoop.submit {
            betaToRelay.onIncomingStream = { [unowned betaToRelay, self] stream, appName, _ in
                guard appName == RelayProtocol.delivery else { return nil }
                if self.betaRefuses.withLockedValue({ $0 }) {
                    betaToRelay.reset(stream, code: .limitReached, message: "beta says no")
                    return nil
                }
                return acceptor.accept(stream, from: betaToRelay)
            }
        }.get()
        // Alpha and beta dial the relay.
        for site in ["alpha", "beta"] {
            try await dial(
                from: site, to: "relay", endpoint: LinkEndpoint(host: "127.0.0.1", port: listener.localAddress!.port!),
                over: TCPLinkTransport())
        }
    }

    /// Dials one link from `site` to `peer` and attaches it to the site's tunnel there.
    @discardableResult
    func dial(
        from site: String, to peer: String, endpoint: LinkEndpoint, over transport: any LinkTransport
    ) async throws -> LinkHandshake.Established {
        let local = driver(site, to: peer)
        let remote = driver(peer, to: site)
        let target = LinkDialer.Target(
            endpoint: endpoint, peerSite: peer, peerIncarnation: remote.localIncarnation,
            localIncarnation: local.localIncarnation, fingerprint: identities[peer]!.fingerprint)
        return try await LinkDialer.dial(
            target, over: transport, on: local.eventLoop, site: sites[site]!, linkNumber: 1
        ) { channel, established in
            local.attach(channel, leftover: established.leftover, transport: transport.kind)
        }.get()
    }

    /// Alpha's transport for relayed links: its tunnel to the relay.
    var relayTransport: RelayLinkTransport {
        let toRelay = driver("alpha", to: "relay")
        return RelayLinkTransport { relay in
            relay == "relay"
                ? toRelay.eventLoop.makeSucceededFuture(toRelay)
                : toRelay.eventLoop.makeFailedFuture(LinkError(.transport, "no tunnel to \(relay)"))
        }
    }

    func shutdown() async throws {
        for (_, peers) in drivers {
            for (_, driver) in peers { try? await driver.eventLoop.submit { driver.close() }.get() }
        }
        try? await listener?.close().get()
        try await group.shutdownGracefully()
    }
}

@Suite("Relayed links through a third site", .timeLimit(.minutes(10)))
struct RelayedLinkTests {
    @Test("a link relayed by a third site carries a stream whole; the relay counts what it carried")
    func relayedTransfer() async throws {
        // Three sites' TLS work on two cores: alone, or another heavy test can starve a link
        // into its 2 s silence before the relayed handshake is through.
        try await HeavyTestGate.exclusive { try await relayedTransferAlone() }
    }

    private func relayedTransferAlone() async throws {
        let mesh = try RelayMesh()
        try await mesh.start()
        let established = try await mesh.dial(
            from: "alpha", to: "beta", endpoint: .relay(via: "relay", to: "beta"), over: mesh.relayTransport)
        #expect(established.peerSite == "beta")
        let alpha = mesh.driver("alpha", to: "beta")
        let beta = mesh.driver("beta", to: "alpha")
        // Bounded from the start: a stream that never reaches beta fails the test, not hangs it.
        let received = beta.eventLoop.makePromise(of: (Int, String).self).failing(after: PatternSender.deadline)
        try await beta.eventLoop.submit {
            beta.onIncomingStream = { _, _, _ in HashingReceiver(driver: beta, done: received) }
        }.get()
        let total = 32 << 20
        let sent = alpha.eventLoop.makePromise(of: String.self)
        try await alpha.eventLoop.submit {
            PatternSender(driver: alpha, total: total, done: sent).start(appName: "sink")
        }.get()
        let (count, digest) = try await received.futureResult.get()
        #expect(count == total)
        #expect(digest == (try await sent.futureResult.get()))
        // The relay carried the whole stream (plus TLS and framing), as ciphertext.
        #expect(mesh.relayed.withLockedValue { $0 } > total)
        let relayedLinks = try await alpha.eventLoop.submit { alpha.relayedLinks }.get()
        #expect(relayedLinks == 1)
        try await mesh.shutdown()
    }

    @Test("refusals: a relay that does not relay, a site it cannot reach, each with its code")
    func refusals() async throws {
        let mesh = try RelayMesh()
        try await mesh.start()
        // No path to a site the relay has no tunnel to.
        let noPath = await #expect(throws: (any Error).self) {
            try await mesh.dial(
                from: "alpha", to: "beta", endpoint: .relay(via: "relay", to: "gamma"), over: mesh.relayTransport)
        }
        #expect("\(noPath.map { "\($0)" } ?? "")".contains("no direct tunnel"), "\(String(describing: noPath))")
        mesh.relays.withLockedValue { $0 = false }
        let notOffered = await #expect(throws: (any Error).self) {
            try await mesh.dial(
                from: "alpha", to: "beta", endpoint: .relay(via: "relay", to: "beta"), over: mesh.relayTransport)
        }
        #expect("\(notOffered.map { "\($0)" } ?? "")".contains("does not relay"), "\(String(describing: notOffered))")
        // The far site's refusal reaches the dialer through the relay, with its reason.
        mesh.relays.withLockedValue { $0 = true }
        mesh.betaRefuses.withLockedValue { $0 = true }
        let farRefusal = await #expect(throws: (any Error).self) {
            try await mesh.dial(
                from: "alpha", to: "beta", endpoint: .relay(via: "relay", to: "beta"), over: mesh.relayTransport)
        }
        #expect("\(farRefusal.map { "\($0)" } ?? "")".contains("beta says no"), "\(String(describing: farRefusal))")
        // No relay stream stayed behind, and the tunnels to the relay carry on.
        let alphaToRelay = mesh.driver("alpha", to: "relay")
        var streams = -1
        for _ in 0..<1_000 {
            streams = try await alphaToRelay.eventLoop.submit { alphaToRelay.streamCount }.get()
            if streams == 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(streams == 0)
        #expect(mesh.splicesEnded.withLockedValue { $0 } == 1)
        #expect(alphaToRelay.establishedLinks == 1)
        try await mesh.shutdown()
    }
}
