import NIOCore

/// A way to carry a link's bytes: it listens and dials and yields a byte-stream channel, on
/// which the link's TLS, its handshake and then the tunnel's frames run, the same on every
/// transport. TLS over TCP is one implementation (`TCPLinkTransport`), WebSocket another.
///
/// A transport only moves bytes: the site certificates, the pin on the announced fingerprint and
/// weft's handshake are added by `LinkDialer` and `LinkListener` in `ready`, so no transport can
/// weaken them.
public protocol LinkTransport: Sendable {
    /// The link type announced for (and dialed on) this transport.
    var kind: LinkEndpoint.Kind { get }

    /// Opens a byte stream to `endpoint` and calls `ready` on its event loop once bytes can flow
    /// (after any proxy or upgrade exchange). The future fails when the stream cannot be opened;
    /// a stream that closes before it is ready closes its channel, which the caller watches.
    func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel>

    /// What the listener does with a byte stream once it is ready.
    typealias Ready = @Sendable (Channel) throws -> Void

    /// Listens on `host`:`port`. Each new connection is first offered to `accept`, which
    /// answers nil to close it before anything is read, or what to do once its byte stream is
    /// ready (within `timeout`; run on its event loop). Returns the listening channel.
    func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel>
}
