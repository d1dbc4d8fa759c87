import Logging
import NIOCore
import NIOPosix
import WeftIdentity
import WeftTunnel

/// Dials a link to a peer: TCP (optionally from a given local address), TLS 1.3 accepting only
/// the fingerprint the peer announced, then the handshake.
public enum LinkDialer {
    public struct Target: Sendable {
        public var address: SocketAddress
        /// Bind the link to this local address (which picks the interface) before connecting.
        public var localAddress: SocketAddress?
        public var peerSite: String
        /// The peer's half of the tunnel, or `LinkHandshake.unknownIncarnation` for a new one.
        public var peerIncarnation: UInt64
        /// This side's half of the tunnel.
        public var localIncarnation: UInt64
        public var fingerprint: CertificateFingerprint

        public init(
            address: SocketAddress, localAddress: SocketAddress? = nil, peerSite: String, peerIncarnation: UInt64,
            localIncarnation: UInt64, fingerprint: CertificateFingerprint
        ) {
            self.localIncarnation = localIncarnation
            self.address = address
            self.localAddress = localAddress
            self.peerSite = peerSite
            self.peerIncarnation = peerIncarnation
            self.fingerprint = fingerprint
        }
    }

    /// Connects and runs the handshake; `onEstablished` runs on the link's event loop the moment
    /// it succeeds (attach the link to its tunnel there). `stillWanted`, asked once the TCP
    /// connection is up, can drop a link whose tunnel changed while it connected. The future fails with a `LinkError`
    /// (or a connection error) otherwise.
    public static func dial(
        _ target: Target,
        on eventLoop: EventLoop,
        site: LocalLinkSite,
        linkNumber: UInt32,
        handshakeTimeout: TimeAmount = .seconds(5),
        stillWanted: (@Sendable () -> Bool)? = nil,
        onEstablished: @escaping @Sendable (Channel, LinkHandshake.Established) -> Void
    ) -> EventLoopFuture<LinkHandshake.Established> {
        let result = eventLoop.makePromise(of: LinkHandshake.Established.self)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(handshakeTimeout)
            .channelInitializer { channel in
                LinkSocketOptions.apply(to: channel).flatMapThrowing {
                    let tls = try site.tls.makeClientHandler(expecting: target.fingerprint)
                    let handshake = LinkHandshakeHandler(
                        machine: LinkHandshake(
                            role: .dialer(
                                peerSite: target.peerSite, peerIncarnation: target.peerIncarnation, linkID: linkNumber),
                            siteName: site.siteName,
                            incarnation: target.localIncarnation
                        ),
                        timeout: handshakeTimeout,
                        result: result,
                        stillWanted: stillWanted,
                        onEstablished: onEstablished
                    )
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(handshake)
                }
            }
        if let local = target.localAddress { bootstrap = bootstrap.bind(to: local) }
        bootstrap.connect(to: target.address).whenFailure { result.fail($0) }
        return result.futureResult
    }
}
