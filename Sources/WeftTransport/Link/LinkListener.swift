import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import WeftIdentity
import WeftTunnel
import WeftWire

/// Accepts links: TLS 1.3 with a pinned client certificate, then the handshake, then the link
/// is handed to `onLink` (on its event loop, at once) to join a tunnel.
///
/// Whatever fails before that — an unknown certificate, bytes that are not a hello, a peer too
/// slow to finish within `handshakeTimeout` — costs that connection only, with a log line (at
/// most one a kind and source address every 10 s: strangers choose how often they fail). Handshakes in progress
/// are capped (`HandshakeAdmission`), in all and per source address.
public struct LinkListener: Sendable {
    public let channel: Channel
    /// What its links travel over.
    public let transport: LinkEndpoint.Kind

    /// Where the listener is bound (the port, when 0 was asked for).
    public var localAddress: SocketAddress? { channel.localAddress }

    public struct Handlers: Sendable {
        /// Whether a certificate may connect at all (checked during TLS).
        public var trusts: @Sendable (CertificateFingerprint) -> Bool
        /// Whether a valid hello from this certificate is accepted (checked after the hello).
        public var decide: @Sendable (LinkHello, CertificateFingerprint) -> LinkDecision
        /// The link is established: attach it to its tunnel now, on the link's event loop.
        public var onLink: @Sendable (Channel, LinkHandshake.Established, LinkEndpoint.Kind) -> Void

        public init(
            trusts: @escaping @Sendable (CertificateFingerprint) -> Bool,
            decide: @escaping @Sendable (LinkHello, CertificateFingerprint) -> LinkDecision,
            onLink: @escaping @Sendable (Channel, LinkHandshake.Established, LinkEndpoint.Kind) -> Void
        ) {
            self.trusts = trusts
            self.decide = decide
            self.onLink = onLink
        }
    }

    public static func bind(
        host: String,
        port: Int,
        over transport: any LinkTransport = TCPLinkTransport(),
        group: EventLoopGroup,
        site: LocalLinkSite,
        handshakeTimeout: TimeAmount = .seconds(5),
        admission: HandshakeAdmission = HandshakeAdmission(),
        backup: Bool = false,
        handlers: Handlers,
        logger: Logger
    ) -> EventLoopFuture<LinkListener> {
        let warnings = LogLimiter()
        let kind = transport.kind
        let securedByTransport = transport.securesLinks
        return transport.listen(
            host: host, port: port, group: group, timeout: handshakeTimeout,
            trusts: { channel, presented in
                trusts(presented, from: channel, handlers: handlers, warnings: warnings, logger: logger)
            },
            accept: { channel in
                // Behind a reverse proxy on this machine every WebSocket peer comes from
                // loopback: one slow client there must not lock the others out.
                let viaLocalProxy = kind == .websocket && Self.isLoopback(channel.remoteAddress)
                return admit(
                    channel, source: channel.remoteAddress?.ipAddress ?? "?", capPerSource: !viaLocalProxy,
                    site: site, handshakeTimeout: handshakeTimeout, admission: admission, handlers: handlers,
                    transport: kind, securedByTransport: securedByTransport, backup: backup, warnings: warnings,
                    logger: logger)
            }
        )
        .map { LinkListener(channel: $0, transport: kind) }
    }

    /// Admits a new byte stream (or refuses it: nil, logged) and says what runs on it once it is
    /// ready: the link's TLS and handshake, with one deadline for all of it.
    static func admit(
        _ channel: Channel, source: String, capPerSource: Bool, site: LocalLinkSite, handshakeTimeout: TimeAmount,
        admission: HandshakeAdmission, handlers: Handlers, transport kind: LinkEndpoint.Kind,
        securedByTransport: Bool, backup: Bool, warnings: LogLimiter, logger: Logger
    ) -> LinkTransport.Ready? {
        if let refusal = admission.admit(source, capPerSource: capPerSource) {
            let (allowed, suppressed) = warnings.admit("admission \(refusal)")
            if allowed {
                logger.warning(
                    "refused a link connection before TLS: \(refusal.rawValue)",
                    metadata: ["remote": "\(source)", "alsoRefusedSinceLastLine": "\(suppressed)"])
            }
            return nil
        }
        // The slot is given back once, when the handshake ends or the connection does.
        let released = NIOLockedValueBox(false)
        let release: @Sendable () -> Void = {
            let first = released.withLockedValue { done in
                defer { done = true }
                return !done
            }
            if first { admission.release(source) }
        }
        channel.closeFuture.whenComplete { _ in release() }
        // One deadline for the whole handshake: whatever the transport spent opening its
        // stream (an HTTP upgrade) counts against it.
        let deadline = NIODeadline.now() + handshakeTimeout
        return { channel in
            let left = max(deadline - NIODeadline.now(), .milliseconds(1))
            try initialize(
                channel, site: site, timeout: left, handlers: handlers, transport: kind,
                securedByTransport: securedByTransport, backup: backup, warnings: warnings,
                release: release, logger: logger)
        }
    }

    private static func initialize(
        _ channel: Channel, site: LocalLinkSite, timeout: TimeAmount, handlers: Handlers,
        transport: LinkEndpoint.Kind, securedByTransport: Bool, backup: Bool, warnings: LogLimiter,
        release: @escaping @Sendable () -> Void, logger: Logger
    ) throws {
        let source = channel.remoteAddress?.ipAddress ?? "?"
        let remote = channel.remoteAddress.map { "\($0)" } ?? "?"
        let fingerprint = NIOLockedValueBox<CertificateFingerprint?>(nil)
        var tls: NIOSSLServerHandler?
        if securedByTransport {
            // The transport's TLS checked the certificate already (with `trusts` below).
            fingerprint.withLockedValue { $0 = (channel as? PeerAuthenticatedChannel)?.peerFingerprint }
        } else {
            tls = site.tls.makeServerHandler { presented in
                fingerprint.withLockedValue { $0 = presented }
                return trusts(presented, from: channel, handlers: handlers, warnings: warnings, logger: logger)
            }
        }
        let result = channel.eventLoop.makePromise(of: LinkHandshake.Established.self)
        let handshake = LinkHandshakeHandler(
            // The acceptor's half is the one `decide` picks (`acceptInto`).
            machine: LinkHandshake(
                role: .acceptor, siteName: site.siteName, incarnation: LinkHandshake.unknownIncarnation,
                backup: backup),
            timeout: timeout,
            result: result,
            decide: { hello in
                guard let presented = fingerprint.withLockedValue({ $0 }) else {
                    return .refuse(.wrongIdentity, "no certificate")
                }
                return handlers.decide(hello, presented)
            },
            onEstablished: { channel, established in handlers.onLink(channel, established, transport) }
        )
        if let tls { try channel.pipeline.syncOperations.addHandler(tls) }
        try channel.pipeline.syncOperations.addHandler(handshake)
        result.futureResult.whenComplete { _ in release() }
        result.futureResult.whenFailure { error in
            let (allowed, suppressed) = warnings.admit("handshake failed from \(source)")
            guard allowed else { return }
            logger.warning(
                "link refused or failed during its handshake",
                metadata: ["remote": "\(remote)", "error": "\(error)", "alsoFailedSinceLastLine": "\(suppressed)"])
        }
    }

    /// Asks the site whether a certificate may connect, and says why not when it may not.
    private static func trusts(
        _ presented: CertificateFingerprint, from channel: Channel, handlers: Handlers, warnings: LogLimiter,
        logger: Logger
    ) -> Bool {
        let trusted = handlers.trusts(presented)
        let source = channel.remoteAddress?.ipAddress ?? "?"
        if !trusted, case (true, let suppressed) = warnings.admit("unknown certificate from \(source)") {
            logger.warning(
                "refused a link: its certificate is not one this site knows (a stranger, or a peer whose announcement has not arrived yet)",
                metadata: [
                    "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")", "fingerprint": "\(presented)",
                    "alsoRefusedSinceLastLine": "\(suppressed)",
                ])
        }
        return trusted
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let text = address?.ipAddress else { return false }
        return text.hasPrefix("127.") || text == "::1" || text.hasPrefix("::ffff:127.")
    }

    public func close() -> EventLoopFuture<Void> {
        channel.close()
    }
}
