import NIOCore
import NIOPosix
import WeftIdentity

/// Links as TLS over plain TCP: the stream is the TCP connection itself.
public struct TCPLinkTransport: LinkTransport {
    public let context: LinkTransportContext

    public init(context: LinkTransportContext = LinkTransportContext()) {
        self.context = context
    }

    public var kind: LinkEndpoint.Kind { .tls }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        StreamConnector.connect(
            host: endpoint.host, port: endpoint.port, from: local, context: context, on: eventLoop, timeout: timeout
        ).readied(ready)
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        let congestion = context.congestionControl
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard let ready = accept(channel) else { return channel.close() }
                return LinkSocketOptions.apply(to: channel, congestionControl: congestion).flatMapThrowing {
                    try ready(channel)
                }
            }
            .bind(host: host, port: port)
    }
}
