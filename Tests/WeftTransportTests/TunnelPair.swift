import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftIdentity
import WeftTransport
import WeftTunnel
import WeftWire

/// `count` random bytes, made fast: `UInt8.random` costs a `getrandom` call per byte, seconds
/// per MiB on a loaded machine — long enough, inside an event loop, for links to go silent.
func randomBytes(_ count: Int) -> [UInt8] {
    // SplitMix64, seeded once from the system.
    var state = UInt64.random(in: .min ... .max)
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var word = state
            word = (word ^ (word >> 30)) &* 0xBF58_476D_1CE4_E5B9
            word = (word ^ (word >> 27)) &* 0x94D0_49BB_1331_11EB
            word ^= word >> 31
            let take = min(8, count - offset)
            withUnsafeBytes(of: word.littleEndian) { raw[offset..<(offset + take)].copyBytes(from: $0.prefix(take)) }
            offset += take
        }
    }
    return bytes
}

extension EventLoopPromise {
    /// Fails the promise after `limit` unless it completed: a test whose transfer is lost then
    /// fails instead of waiting past its time limit (`get()` does not see the test cancelled).
    func failing(after limit: TimeAmount) -> Self {
        let task = futureResult.eventLoop.scheduleTask(in: limit) {
            self.fail(LinkError(.closed, "nothing completed within \(limit)"))
        }
        futureResult.whenComplete { _ in task.cancel() }
        return self
    }
}

/// Sends `total` bytes of a repeating random pattern on a stream, as fast as the tunnel lets it,
/// hashing what it sends. Lives on the driver's event loop.
final class PatternSender: TunnelStreamDelegate {
    static let pattern = ByteBuffer(bytes: randomBytes(1 << 20))
    /// A transfer that has not ended by then failed: a wait on it never hangs, even where a time
    /// limit cannot end it (a future's `get()` ignores cancellation).
    static let deadline: TimeAmount = .seconds(300)

    let driver: TunnelDriver
    var stream: StreamID?
    var remaining: Int
    var chunk = 0
    var paused = false
    var hash = SHA256()
    let done: EventLoopPromise<String>

    init(driver: TunnelDriver, total: Int, done: EventLoopPromise<String>) {
        self.driver = driver
        self.remaining = total
        self.done = done.failing(after: Self.deadline)
    }

    func start(appName: String) {
        stream = driver.openStream(appName: appName, delegate: self)
        pump()
    }

    func pump() {
        guard let stream else { return }
        while !paused && remaining > 0 {
            let size = min(remaining, 64 << 10)
            let start = (chunk &* 7_919) % (Self.pattern.readableBytes - size)
            chunk += 1
            let slice = Self.pattern.getSlice(at: start, length: size)!
            slice.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            remaining -= size
            driver.send(slice, on: stream)
        }
        if remaining == 0 {
            remaining = -1
            driver.finish(stream)
            done.succeed(Array(hash.finalize()).hexEncoded)
        }
    }

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) { driver.consumed(bytes.readableBytes, on: stream) }
    func streamRemoteFinished(_ stream: StreamID) {}
    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        done.fail(LinkError(.closed, "stream reset: \(code) \(message)"))
    }
    func streamClosed(_ stream: StreamID) {}
    func streamPauseReading(_ stream: StreamID) { paused = true }
    func streamResumeReading(_ stream: StreamID) {
        paused = false
        pump()
    }
}

/// Takes a stream's bytes, hashes them, and answers the end with its own.
final class HashingReceiver: TunnelStreamDelegate {
    let driver: TunnelDriver
    var hash = SHA256()
    var received = 0
    let done: EventLoopPromise<(Int, String)>

    init(driver: TunnelDriver, done: EventLoopPromise<(Int, String)>) {
        self.driver = driver
        self.done = done.failing(after: PatternSender.deadline)
    }

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        bytes.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        received += bytes.readableBytes
        driver.consumed(bytes.readableBytes, on: stream)
    }

    func streamRemoteFinished(_ stream: StreamID) {
        done.succeed((received, Array(hash.finalize()).hexEncoded))
        driver.finish(stream)
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        done.fail(LinkError(.closed, "stream reset: \(code) \(message)"))
    }
    func streamClosed(_ stream: StreamID) {}
    func streamPauseReading(_ stream: StreamID) {}
    func streamResumeReading(_ stream: StreamID) {}
}

/// Two sites on loopback: `alpha` dials links to `beta`'s listener; each runs a tunnel driver,
/// on different event loops (accepted links land on either, so some bytes hop between loops).
final class TunnelPair: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let alphaIdentity: SiteIdentity
    let betaIdentity: SiteIdentity
    let alphaSite: LocalLinkSite
    let betaSite: LocalLinkSite
    let alpha: TunnelDriver
    let beta: TunnelDriver
    var listener: LinkListener!
    /// Link channels at alpha, as the test sees them (to close some).
    let alphaLinks = NIOLockedValueBox<[Channel]>([])
    let betaLinks = NIOLockedValueBox<[Channel]>([])
    let linkNumber = NIOLockedValueBox<UInt32>(0)
    /// What beta listens on and alpha dials over (TLS over TCP unless a test says otherwise).
    let listenTransport: any LinkTransport
    let dialTransport: any LinkTransport
    /// The endpoint alpha dials, given beta's port (a WebSocket URL, for WebSocket pairs).
    let endpointFor: @Sendable (Int) -> LinkEndpoint

    init(
        logger: Logger = Logger(label: "test"), listenTransport: any LinkTransport = TCPLinkTransport(),
        dialTransport: any LinkTransport = TCPLinkTransport(),
        endpoint: @escaping @Sendable (Int) -> LinkEndpoint = { LinkEndpoint(host: "127.0.0.1", port: $0) },
        silenceLimit: Duration? = nil,
        transports: (
            (_ alpha: SiteIdentity, _ beta: SiteIdentity) throws -> (listen: any LinkTransport, dial: any LinkTransport)
        )? = nil
    ) throws {
        self.endpointFor = endpoint
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        alphaIdentity = try SiteIdentity.generate()
        betaIdentity = try SiteIdentity.generate()
        // Transports with TLS of their own (QUIC) carry the site's identity.
        let made = try transports?(alphaIdentity, betaIdentity)
        self.listenTransport = made?.listen ?? listenTransport
        self.dialTransport = made?.dial ?? dialTransport
        alphaSite = LocalLinkSite(siteName: "alpha", tls: try LinkTLS(identity: alphaIdentity))
        betaSite = LocalLinkSite(siteName: "beta", tls: try LinkTLS(identity: betaIdentity))
        let loops = Array(group.makeIterator())
        alpha = TunnelDriver(
            eventLoop: loops[0], localIncarnation: 101, peerSite: "beta", peerIncarnation: 202,
            options: Self.options(odd: true, silenceLimit: silenceLimit), logger: logger)
        beta = TunnelDriver(
            eventLoop: loops[loops.count - 1], localIncarnation: 202, peerSite: "alpha", peerIncarnation: 101,
            options: Self.options(odd: false, silenceLimit: silenceLimit), logger: logger)
    }

    static func options(odd: Bool, silenceLimit: Duration?) -> TunnelEngine.Options {
        var options = TunnelEngine.Options(opensOddStreams: odd)
        if let silenceLimit { options.silenceLimit = silenceLimit }
        return options
    }

    /// Beta listens; only alpha's certificate, as site alpha, in the right tunnel, may link.
    /// `host` and `port` are the transport's (a Bluetooth adapter and RFCOMM channel).
    func listen(
        host: String = "127.0.0.1", port: Int = 0,
        handshakeTimeout: TimeAmount = .seconds(5), admission: HandshakeAdmission = HandshakeAdmission()
    ) async throws {
        let alphaFingerprint = alphaIdentity.fingerprint
        let beta = self.beta
        let betaLinks = self.betaLinks
        listenedPort = port
        listener = try await LinkListener.bind(
            host: host, port: port, over: listenTransport, group: group, site: betaSite,
            handshakeTimeout: handshakeTimeout,
            admission: admission,
            handlers: .init(
                trusts: { $0 == alphaFingerprint },
                decide: { hello, fingerprint in
                    hello.siteName == "alpha" && fingerprint == alphaFingerprint
                        ? .acceptInto(incarnation: 202) : .refuse(.wrongIdentity, "that certificate is not alpha's")
                },
                onLink: { channel, established, kind in
                    betaLinks.withLockedValue { $0.append(channel) }
                    beta.attach(channel, leftover: established.leftover, dialed: false, transport: kind)
                }
            ),
            logger: Logger(label: "listener")
        ).get()
    }

    /// The port asked for, when it was not 0 (a transport whose channels have no socket address).
    var listenedPort = 0
    var port: Int { listener.localAddress?.port ?? listenedPort }

    /// Beta's first accepted link, once it is there: the dialer's handshake completes when the
    /// welcome arrives, a moment before the acceptor hands its side over.
    func acceptedLink(within timeout: Duration = .seconds(60)) async -> Channel? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let channel = betaLinks.withLockedValue({ $0.first }) { return channel }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return betaLinks.withLockedValue { $0.first }
    }

    /// Dials one link from alpha.
    @discardableResult
    func dial(
        identity: LocalLinkSite? = nil, expecting: CertificateFingerprint? = nil, peerIncarnation: UInt64 = 202,
        from localAddress: SocketAddress? = nil, over transport: (any LinkTransport)? = nil,
        stillWanted: (@Sendable () -> Bool)? = nil
    ) async throws -> LinkHandshake.Established {
        let transport = transport ?? dialTransport
        let number = linkNumber.withLockedValue {
            $0 += 1
            return $0
        }
        let alpha = self.alpha
        let alphaLinks = self.alphaLinks
        let target = LinkDialer.Target(
            endpoint: endpointFor(port), localAddress: localAddress,
            peerSite: "beta",
            peerIncarnation: peerIncarnation, localIncarnation: 101, fingerprint: expecting ?? betaIdentity.fingerprint)
        return try await LinkDialer.dial(
            target, over: transport, on: alpha.eventLoop, site: identity ?? alphaSite, linkNumber: number,
            stillWanted: stillWanted
        ) { channel, established in
            alphaLinks.withLockedValue { $0.append(channel) }
            alpha.attach(channel, leftover: established.leftover, transport: transport.kind)
        }.get()
    }

    func shutdown() async throws {
        try? await alpha.eventLoop.submit { self.alpha.close() }.get()
        try? await beta.eventLoop.submit { self.beta.close() }.get()
        try? await listener?.close().get()
        try await group.shutdownGracefully()
    }
}
