import Logging
import NIOCore
import NIOPosix
import WeftIdentity
import WeftTunnel

/// Dials a link to a peer: TCP (optionally from a given local address), TLS 1.3 accepting only
/// the fingerprint the peer announced, then the handshake.
public enum LinkDialer {
    public struct Target: Sendable {
        public var endpoint: LinkEndpoint
        /// Bind the link to this local address (which picks the interface) before connecting.
        public var localAddress: SocketAddress?
        public var peerSite: String
        /// The peer's half of the tunnel, or `LinkHandshake.unknownIncarnation` for a new one.
        public var peerIncarnation: UInt64
        /// This side's half of the tunnel.
        public var localIncarnation: UInt64
        public var fingerprint: CertificateFingerprint
        /// This end is a backup path (a metered uplink): said in the hello.
        public var backup = false

        public init(
            endpoint: LinkEndpoint, localAddress: SocketAddress? = nil, backup: Bool = false, peerSite: String,
            peerIncarnation: UInt64, localIncarnation: UInt64, fingerprint: CertificateFingerprint
        ) {
            self.backup = backup
            self.localIncarnation = localIncarnation
            self.endpoint = endpoint
            self.localAddress = localAddress
            self.peerSite = peerSite
            self.peerIncarnation = peerIncarnation
            self.fingerprint = fingerprint
        }

        /// A TLS link to `address`.
        public init(
            address: SocketAddress, localAddress: SocketAddress? = nil, peerSite: String, peerIncarnation: UInt64,
            localIncarnation: UInt64, fingerprint: CertificateFingerprint
        ) {
            self.init(
                endpoint: LinkEndpoint.tls(address)!, localAddress: localAddress, peerSite: peerSite,
                peerIncarnation: peerIncarnation, localIncarnation: localIncarnation, fingerprint: fingerprint)
        }
    }

    /// Opens the transport's byte stream, then runs TLS and the handshake on it; `onEstablished`
    /// runs on the link's event loop the moment it succeeds (attach the link to its tunnel
    /// there). `stillWanted`, asked once the stream is up, can drop a link whose tunnel changed
    /// while it connected. The future fails with a `LinkError` (or a connection error) otherwise.
    /// `handshakeTimeout` bounds the stream's opening and, separately, TLS and the handshake.
    public static func dial(
        _ target: Target,
        over transport: any LinkTransport = TCPLinkTransport(),
        on eventLoop: EventLoop,
        site: LocalLinkSite,
        linkNumber: UInt32,
        handshakeTimeout: TimeAmount = .seconds(5),
        stillWanted: (@Sendable () -> Bool)? = nil,
        onEstablished: @escaping @Sendable (Channel, LinkHandshake.Established) -> Void
    ) -> EventLoopFuture<LinkHandshake.Established> {
        let result = eventLoop.makePromise(of: LinkHandshake.Established.self)
        precondition(transport.kind == target.endpoint.transport, "an endpoint dialed over another transport")
        let securedByTransport = transport.securesLinks
        transport.dial(
            target.endpoint, from: target.localAddress, on: eventLoop, timeout: handshakeTimeout,
            expecting: target.fingerprint
        ) { channel in
            let handshake = LinkHandshakeHandler(
                machine: LinkHandshake(
                    role: .dialer(
                        peerSite: target.peerSite, peerIncarnation: target.peerIncarnation, linkID: linkNumber),
                    siteName: site.siteName,
                    incarnation: target.localIncarnation,
                    backup: target.backup
                ),
                timeout: handshakeTimeout,
                result: result,
                stillWanted: stillWanted,
                onEstablished: onEstablished
            )
            if !securedByTransport {
                try channel.pipeline.syncOperations.addHandler(
                    site.tls.makeClientHandler(expecting: target.fingerprint))
            }
            try channel.pipeline.syncOperations.addHandler(handshake)
        }.whenComplete { opened in
            switch opened {
            case .success(let channel):
                // A stream that ends before the handshake handler sees it (a completed promise
                // ignores this).
                channel.closeFuture.whenComplete { _ in
                    result.fail(LinkError(.closed, "the connection closed"))
                }
            case .failure(let error):
                result.fail(error)
            }
        }
        return result.futureResult
    }
}
