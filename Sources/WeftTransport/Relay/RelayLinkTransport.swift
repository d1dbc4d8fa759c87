import NIOCore
import WeftIdentity
import WeftWire

/// Links relayed by a third site: the byte stream is a stream of this site's tunnel to the
/// relay (`RelayProtocol.request`, the far site as its target), which the relay splices to a
/// stream of its own tunnel to the far site. The link's TLS and handshake run inside as on any
/// transport, so the relay carries only ciphertext and cannot pose as either site.
///
/// It only dials: relayed links arrive as streams of a tunnel, not on a socket
/// (`RelayedLinkAcceptor`).
public struct RelayLinkTransport: LinkTransport {
    /// This site's tunnel to `relay`, once it has a link — and only a tunnel none of whose links
    /// is itself relayed (a relayed link never rides on another). Fails when there is none.
    public typealias TunnelLookup = @Sendable (_ relay: String) -> EventLoopFuture<TunnelDriver>

    private let tunnel: TunnelLookup

    public init(tunnel: @escaping TunnelLookup) {
        self.tunnel = tunnel
    }

    public var kind: LinkEndpoint.Kind { .relay }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint, ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        guard endpoint.transport == .relay, !endpoint.host.isEmpty, !endpoint.target.isEmpty,
            endpoint.host != endpoint.target
        else {
            return eventLoop.makeFailedFuture(LinkError(.transport, "not a relay endpoint: \(endpoint)"))
        }
        // The stream opens at once; a refusal comes back as its reset, which closes the
        // channel (the dialer watches that), and a silent relay meets the handshake's timeout.
        // A tunnel to the relay that never gets its link fails the dial within `timeout`.
        let opened = eventLoop.makePromise(of: Channel.self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            opened.fail(LinkError(.handshakeTimeout, "no tunnel to the relay \(endpoint.host) in time"))
        }
        tunnel(endpoint.host).flatMap { driver in
            driver.eventLoop.submit {
                try TunnelStreamChannel.open(
                    on: driver, appName: RelayProtocol.request, target: endpoint.target, ready: ready) as Channel
            }
        }.hop(to: eventLoop).whenComplete { result in
            deadline.cancel()
            switch result {
            case .success(let channel):
                // Too late: the dial already failed, so nobody would watch this channel.
                opened.futureResult.whenFailure { _ in channel.close(promise: nil) }
                opened.succeed(channel)
            case .failure(let error):
                opened.fail(error)
            }
        }
        return opened.futureResult
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        group.next().makeFailedFuture(
            LinkError(.transport, "relayed links arrive as tunnel streams; nothing listens for them"))
    }
}
